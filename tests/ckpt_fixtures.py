"""Torch-free builders of PyTorch Lightning checkpoint files, for the checkpoint reader's tests.

`write_checkpoint` writes the zip layout ``torch.save`` writes (checked against
torch 2.x with ``zipfile`` and ``pickletools``)::

    <stem>/data.pkl                 protocol-2 pickle of the checkpoint object
    <stem>/.format_version          b"1"
    <stem>/.storage_alignment       b"64"
    <stem>/byteorder                b"little"
    <stem>/data/<key>               raw storage bytes, one entry per storage
    <stem>/version                  b"3\\n"
    <stem>/.data/serialization_id   40 ASCII digits

(torch pads each storage entry to a 64-byte boundary; the reader does not
depend on alignment, so these files do not pad.) The pickle is written by a
pure-Python pickler that emits exactly the globals torch writes
(``torch._utils._rebuild_tensor_v2``, ``torch FloatStorage`` in persistent ids
``("storage", class, key, "cpu", numel)``, ``collections OrderedDict``,
``omegaconf.dictconfig DictConfig`` ...) from small stand-in objects, so no
test needs torch or omegaconf to make a checkpoint.

    storages = Storages()
    w = storages.tensor(np.ones((2, 3), np.float32))
    write_checkpoint(tmp_path / "m.ckpt", {"state_dict": state_dict({"w": w})}, storages)
"""

from __future__ import annotations

import collections
import io
import pathlib
import pickle
import zipfile
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

# numpy dtype -> the legacy storage class torch pickles for it.
STORAGE_CLASSES = {
    np.dtype("float32"): "FloatStorage",
    np.dtype("float64"): "DoubleStorage",
    np.dtype("float16"): "HalfStorage",
    np.dtype("int64"): "LongStorage",
    np.dtype("int32"): "IntStorage",
    np.dtype("int16"): "ShortStorage",
    np.dtype("int8"): "CharStorage",
    np.dtype("uint8"): "ByteStorage",
    np.dtype("bool"): "BoolStorage",
    np.dtype("complex64"): "ComplexFloatStorage",
    np.dtype("complex128"): "ComplexDoubleStorage",
}


class Global:
    """A pickled global ``module.name`` (written as GLOBAL, never imported); interned so the pickle memoises it."""

    _interned: ClassVar[dict[tuple[str, str], Global]] = {}

    def __new__(cls, module: str, name: str) -> Global:
        key = (module, name)
        if key not in cls._interned:
            obj = super().__new__(cls)
            obj.module, obj.name = module, name
            cls._interned[key] = obj
        return cls._interned[key]

    def __call__(self, *args):  # pickle's save_reduce requires a callable
        raise TypeError(f"{self.module}.{self.name} is a stand-in and cannot be called")

    def __repr__(self) -> str:
        return f"Global({self.module}.{self.name})"


REBUILD_TENSOR_V2 = Global("torch._utils", "_rebuild_tensor_v2")
REBUILD_PARAMETER = Global("torch._utils", "_rebuild_parameter")
ORDERED_DICT = Global("collections", "OrderedDict")


@dataclass(eq=False)
class Storage:
    """A storage: written as the persistent id ``("storage", torch.<storage_class>, key, location, numel)``
    (`storage_class` "FloatStorage", or qualified as "torch.storage.UntypedStorage")."""

    key: str
    storage_class: str
    numel: int
    location: str = "cpu"


@dataclass(eq=False)
class Tensor:
    """A tensor view of a storage.

    Written as ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``.
    """

    storage: Storage
    offset: int
    size: tuple
    stride: tuple
    requires_grad: bool = False


@dataclass(eq=False)
class Parameter:
    """``torch.nn.Parameter``: written as ``torch._utils._rebuild_parameter(tensor, requires_grad, OrderedDict())``."""

    data: Tensor
    requires_grad: bool = True


@dataclass(eq=False)
class Reduce:
    """Any ``func(*args)`` call in the pickle (REDUCE).

    E.g. a hostile ``Reduce(Global("posix", "system"), ("ls",))``.
    """

    func: Global
    args: tuple


@dataclass(eq=False)
class NewObj:
    """``cls.__new__(cls)`` then BUILD with ``state`` (how OmegaConf objects pickle)."""

    cls: Global
    state: Any = None


@dataclass(eq=False)
class StateDict:
    """A module's state_dict: an ``OrderedDict`` with torch's ``_metadata`` attribute (set by BUILD)."""

    items: dict
    metadata: dict | None = None


@dataclass(eq=False)
class RawDict:
    """A dict written from (key, value) pairs without building it here: keys that would be
    too costly to hash (a key bomb) stay unhashed until the reader's SETITEMS."""

    pairs: list


@dataclass
class Storages:
    """Collects the raw bytes of every storage a checkpoint references (key -> bytes)."""

    data: dict[str, bytes] = field(default_factory=dict)

    def add(self, raw: bytes, storage_class: str, numel: int, key: str | None = None) -> Storage:
        key = str(len(self.data)) if key is None else key
        self.data[key] = raw
        return Storage(key, storage_class, numel)

    def tensor(self, array: np.ndarray, *, requires_grad: bool = False) -> Tensor:
        """A contiguous tensor holding `array` (little-endian) in a storage of its own."""
        array = np.array(array, order="C")  # (ascontiguousarray would make a 0-d array 1-d)
        little = array.astype(array.dtype.newbyteorder("<"))
        storage = self.add(little.tobytes(), STORAGE_CLASSES[array.dtype.newbyteorder("=")], array.size)
        stride = tuple(s // array.itemsize for s in array.strides) if array.size else (1,) * array.ndim
        return Tensor(storage, 0, tuple(array.shape), stride, requires_grad)


class TorchLikePickler(pickle._Pickler):
    """Pure-Python protocol-2 pickler writing the stand-ins above as torch.save writes the real objects."""

    dispatch: ClassVar[dict[type, Any]] = dict(pickle._Pickler.dispatch)

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, Storage):
            module, _, name = obj.storage_class.rpartition(".")  # "FloatStorage" or "torch.storage.UntypedStorage"
            return ("storage", Global(module or "torch", name), obj.key, obj.location, obj.numel)
        return None

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, Tensor):
            return REBUILD_TENSOR_V2, (
                obj.storage,
                obj.offset,
                tuple(obj.size),
                tuple(obj.stride),
                obj.requires_grad,
                collections.OrderedDict(),
            )
        if isinstance(obj, Parameter):
            return REBUILD_PARAMETER, (obj.data, obj.requires_grad, collections.OrderedDict())
        if isinstance(obj, Reduce):
            return obj.func, tuple(obj.args)
        if isinstance(obj, StateDict):
            state = None if obj.metadata is None else {"_metadata": obj.metadata}
            return ORDERED_DICT, (), state, None, iter(obj.items.items())
        return NotImplemented

    def save_global(self, obj: Any, name: str | None = None) -> None:
        if isinstance(obj, Global):
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
            self.memoize(obj)
            return
        super().save_global(obj, name)

    def save_newobj(self, obj: NewObj) -> None:
        # As Python pickles a class instance: cls, (), NEWOBJ, memoise (children may point back at it), state, BUILD.
        self.save(obj.cls)
        self.write(pickle.EMPTY_TUPLE + pickle.NEWOBJ)
        self.memoize(obj)
        if obj.state is not None:
            self.save(obj.state)
            self.write(pickle.BUILD)

    def save_raw_dict(self, obj: RawDict) -> None:
        self.write(pickle.EMPTY_DICT)
        self.memoize(obj)
        self._batch_setitems(iter(obj.pairs))

    dispatch[Global] = lambda self, obj: self.save_global(obj)
    dispatch[RawDict] = save_raw_dict
    dispatch[NewObj] = save_newobj


def dumps(obj: Any) -> bytes:
    buffer = io.BytesIO()
    TorchLikePickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


SERIALIZATION_ID = b"1234567890123456789012345678901234567890"


def write_checkpoint(
    path: str | pathlib.Path,
    obj: Any = None,
    storages: Storages | dict | None = None,
    *,
    pickle_bytes: bytes | None = None,
    root: str | None = None,
    byteorder: str | None = "little",
    with_pickle: bool = True,
    extra_entries: dict[str, bytes] | None = None,
    compression: int = zipfile.ZIP_STORED,
) -> pathlib.Path:
    """Write `obj` (or raw `pickle_bytes`) and its storages in torch.save's zip layout; returns the path.

    root: the archive folder (torch uses the file's stem); byteorder None leaves the record out;
    extra_entries: more zip entries, by full name (e.g. a zip-slip ``"../evil"``).
    """
    path = pathlib.Path(path)
    root = path.stem if root is None else root
    data = storages.data if isinstance(storages, Storages) else dict(storages or {})
    if pickle_bytes is None:
        pickle_bytes = dumps(obj)
    with zipfile.ZipFile(path, "w", compression) as zf:
        if with_pickle:
            zf.writestr(f"{root}/data.pkl", pickle_bytes)
        zf.writestr(f"{root}/.format_version", b"1")
        zf.writestr(f"{root}/.storage_alignment", b"64")
        if byteorder is not None:
            zf.writestr(f"{root}/byteorder", byteorder.encode("ascii"))
        for key, raw in data.items():
            zf.writestr(f"{root}/data/{key}", raw)
        zf.writestr(f"{root}/version", b"3\n")
        zf.writestr(f"{root}/.data/serialization_id", SERIALIZATION_ID)
        for name, raw in (extra_entries or {}).items():
            zf.writestr(name, raw)
    return path


# ----------------------------------------------------------------------------- OmegaConf containers


def _metadata(
    cls: str, *, key: Any, object_type: Global | None, container: bool, element_type: Global | None = None
) -> NewObj:
    any_type = Global("typing", "Any")
    state = {
        "ref_type": any_type,
        "object_type": object_type,
        "optional": True,
        "key": key,
        "flags": {},
        "flags_root": False,
        "resolver_cache": Reduce(Global("collections", "defaultdict"), (Global("__builtin__", "dict"),)),
    }
    if container:
        state["key_type"] = any_type if element_type is None else element_type
        state["element_type"] = any_type
    return NewObj(Global("omegaconf.base", cls), state)


def omegaconf(value: Any, *, key: Any = None, parent: NewObj | None = None) -> Any:
    """`value` (dicts, lists, scalars, "${...}" strings) as OmegaConf's DictConfig/ListConfig/AnyNode pickles.

    Children point back to their container through ``_parent``, so node interpolations
    (``${.x}``, ``${a.b}``) resolve against the tree, as in a saved hydra config.
    """
    if isinstance(value, dict):
        node = NewObj(Global("omegaconf.dictconfig", "DictConfig"))
        content = {}
        node.state = {
            "_metadata": _metadata(
                "ContainerMetadata", key=key, object_type=Global("__builtin__", "dict"), container=True
            ),
            "_parent": parent,
            "_content": content,
        }
        for k, v in value.items():
            content[k] = omegaconf(v, key=k, parent=node)
        return node
    if isinstance(value, list):
        node = NewObj(Global("omegaconf.listconfig", "ListConfig"))
        content = []
        node.state = {
            "_metadata": _metadata(
                "ContainerMetadata",
                key=key,
                object_type=Global("__builtin__", "list"),
                container=True,
                element_type=Global("__builtin__", "long"),
            ),
            "_parent": parent,
            "_content": content,
        }
        content.extend(omegaconf(v, key=i, parent=node) for i, v in enumerate(value))
        return node
    return NewObj(
        Global("omegaconf.nodes", "AnyNode"),
        {
            "_metadata": _metadata("Metadata", key=key, object_type=None, container=False),
            "_parent": parent,
            "_val": value,
        },
    )


def hyper_parameters_as_saved(hparams: dict, experiment: str) -> dict:
    """hyper_parameters as Lightning saves a hydra config: the dict/list values are children of one root config."""
    root = omegaconf(
        {"experiment": experiment, "module": hparams, "data_module": {"window_length": 11790, "padding": [0, 0]}}
    )
    module = root.state["_content"]["module"]
    return {k: (module.state["_content"][k] if isinstance(v, (dict, list)) else v) for k, v in hparams.items()}


# ----------------------------------------------------------------------------- a Lightning checkpoint


def state_dict(tensors: dict[str, Tensor], prefix_modules: tuple[str, ...] = ("",)) -> StateDict:
    """An nn.Module state_dict as torch pickles it (OrderedDict + ``_metadata`` {module: {"version": 1}})."""
    return StateDict(dict(tensors), {name: {"version": 1} for name in prefix_modules})


def lightning_checkpoint(
    weights: dict[str, np.ndarray], hyper_parameters: dict | None, *, experiment: str = "tracking_vemg2pose"
) -> tuple[dict, Storages]:
    """(checkpoint object, storages) shaped like a Lightning 1.9 checkpoint of `weights` (already "model."-prefixed).

    Holds what Lightning puts next to the weights (loops, callbacks with tensors and a
    PosixPath, an Adam optimizer state with two moments per parameter, ...) so a reader
    is checked on everything a real file carries, not only the state_dict.
    """
    storages = Storages()
    tensors = {
        k: Parameter(storages.tensor(np.asarray(v)))
        if np.asarray(v).dtype.kind == "f"
        else storages.tensor(np.asarray(v))
        for k, v in weights.items()
    }
    score = storages.tensor(np.array(0.3125, np.float32))
    best_path = f"/checkpoints/{experiment}/epoch=3-step=120.ckpt"
    float_weights = [k for k, v in weights.items() if np.asarray(v).dtype.kind == "f"]
    adam_state = {
        i: {
            "step": storages.tensor(np.array(1.0, np.float32)),
            "exp_avg": storages.tensor(np.full(np.shape(weights[k]), 1e-4, np.float32)),
            "exp_avg_sq": storages.tensor(np.full(np.shape(weights[k]), 1e-8, np.float32)),
        }
        for i, k in enumerate(float_weights)
    }
    checkpoint = {
        "epoch": 3,
        "global_step": 120,
        "pytorch-lightning_version": "1.9.5",
        "state_dict": state_dict(tensors),
        "loops": {"fit_loop": {"state_dict": {}, "epoch_loop.state_dict": {"_batches_that_stepped": 120}}},
        "callbacks": {
            "ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min'}": {
                "monitor": "val_loss",
                "best_model_score": score,
                "best_model_path": best_path,
                "dirpath": Reduce(Global("pathlib", "PosixPath"), ("/checkpoints", experiment)),
                "best_k_models": collections.OrderedDict([(best_path, score)]),
            },
        },
        "optimizer_states": [
            {
                "state": adam_state,
                "param_groups": [
                    {
                        "lr": 0.001,
                        "betas": (0.9, 0.999),
                        "eps": 1e-08,
                        "weight_decay": 0,
                        "amsgrad": False,
                        "params": list(range(len(float_weights))),
                    }
                ],
            }
        ],
        "lr_schedulers": [],
        "hparams_name": "kwargs",
    }
    if hyper_parameters is not None:
        checkpoint["hyper_parameters"] = hyper_parameters_as_saved(hyper_parameters, experiment)
    return checkpoint, storages


def write_lightning_checkpoint(
    path: str | pathlib.Path, weights: dict[str, np.ndarray], hyper_parameters: dict | None, **kwargs: Any
) -> pathlib.Path:
    obj, storages = lightning_checkpoint(weights, hyper_parameters, **kwargs)
    return write_checkpoint(path, obj, storages)


# ----------------------------------------------------------------------------- hostile payloads


def shared_reference_bomb(depth: int, kind: str = "list") -> Any:
    """``l = [0]; for _ in range(depth): l = [l, l]`` (or tuple/dict): ~10 bytes of pickle per level,
    2**depth elements for anything that copies it without memoising shared objects."""
    node: Any = {"x": 0} if kind == "dict" else ((0,) if kind == "tuple" else [0])
    for _ in range(depth):
        node = {"a": node, "b": node} if kind == "dict" else ((node, node) if kind == "tuple" else [node, node])
    return node


def small_state() -> tuple[dict, Storages]:
    """A one-tensor state_dict and its storages, for payloads that need a valid checkpoint around them."""
    storages = Storages()
    return {"w": storages.tensor(np.arange(4, dtype=np.float32))}, storages


def forge_entry_size(path: str | pathlib.Path, name: str, declared: int) -> None:
    """Rewrite the uncompressed size zip entry `name` declares (local header and central directory) to `declared`,
    as a forged archive would; the entry's bytes stay as they are."""
    import struct

    path = pathlib.Path(path)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
        local = info.header_offset
    raw = bytearray(path.read_bytes())
    assert raw[local : local + 4] == b"PK\x03\x04"
    struct.pack_into("<I", raw, local + 22, declared)
    central = raw.index(b"PK\x01\x02")
    while True:  # the central directory header whose local-header offset is this entry's
        if struct.unpack_from("<I", raw, central + 42)[0] == local:
            break
        central = raw.index(b"PK\x01\x02", central + 4)
    struct.pack_into("<I", raw, central + 24, declared)
    path.write_bytes(bytes(raw))
