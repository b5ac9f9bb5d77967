"""Torch-free, restricted reader of PyTorch Lightning checkpoints (``.ckpt``).

A checkpoint written by ``torch.save`` (PyTorch >= 1.6) is a zip archive::

    <root>/data.pkl          one pickle: the checkpoint dict
    <root>/data/<key>        raw storages (little-endian unless <root>/byteorder says "big")
    <root>/version, <root>/byteorder, <root>/.data/serialization_id, ...

Tensors appear in the pickle as calls of ``torch._utils._rebuild_tensor_v2(storage,
offset, size, stride, ...)`` whose storages are persistent ids
``("storage", <storage class>, key, location, numel)``.

Unpickling is arbitrary code execution in general, so this reader never imports
torch and never resolves a global by importing it: ``find_class`` maps an
explicit allow-list of names (tensor rebuild functions, storage classes and
dtypes, plain builtins, ``collections.OrderedDict``, OmegaConf containers and
nodes, ``pathlib`` paths, numpy scalars) to local stand-ins that only build
data. Every other global (``os.system``, ``builtins.eval``, ``subprocess.Popen``,
a user's class, ...) raises `CheckpointError` naming the refused global and the
file, before anything is called. The allow-list follows torch's own
``weights_only`` unpickler, plus what Lightning and hydra put into
``hyper_parameters``.

Tensors are read lazily: only the ``state_dict`` (and any tensor inside
``hyper_parameters``) is materialised, so the Adam state that makes up two
thirds of a Lightning checkpoint is never read from the archive.

Supported tensor dtypes: float32, float64, float16, bfloat16 (returned as
float32, since numpy has no bfloat16), int64, int32, int16, int8, uint8,
uint16, uint32, uint64, bool, complex64, complex128; others (float8, quantized)
raise `CheckpointError` when a tensor of that dtype is needed. Big-endian
archives are byte-swapped to native order.

Hostile files are refused quickly, each with a `CheckpointError` naming the
limit: data.pkl size and opcode count (which bound the objects it can create),
nesting depth, the size of dict keys and set elements (hashing walks them),
the size of ``hyper_parameters`` counting shared objects where they appear (a
300-byte pickle can nest a list in itself 40 times by shared reference; each
loaded object is converted once), zip entries whose declared size the file
cannot hold, storages larger than their entries, and the bytes materialised
(at most twice the file's size plus 256 MiB).

OmegaConf containers (hydra configs saved by ``save_hyperparameters``) come back
as plain dicts and lists. Node interpolations (``${a.b}``, ``${.x}``,
``${..x}``, also inside longer strings) are resolved against the pickled parent
config; custom resolvers such as ``${oc.env:HOME}`` are *not* run and stay as
text, as do missing values (``"???"``).

Example::

    ckpt = read_lightning_checkpoint("tracking_vemg2pose.ckpt")
    ckpt.state_dict["model.network.layers.0.conv.0.weight"].shape   # (256, 16, 11)
    ckpt.hyper_parameters["network_conf"]["_target_"]               # 'emg2pose.pose_modules.StatePoseModule'
"""

from __future__ import annotations

import _compat_pickle
import collections
import datetime
import io
import math
import os
import pathlib
import pickle
import re
import reprlib
import types
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

__all__ = ["CheckpointError", "LightningCheckpoint", "read_lightning_checkpoint"]


class CheckpointError(ValueError):
    """A checkpoint file is malformed, unsupported or refused as unsafe."""


@dataclass(frozen=True)
class LightningCheckpoint:
    """What a converter needs from a Lightning checkpoint.

    state_dict: parameter/buffer name -> array, keys exactly as in the file
        (``"model.network.layers.0.conv.0.weight"``); arrays are C-contiguous,
        writable copies in native byte order (bfloat16 as float32).
    hyper_parameters: the file's ``hyper_parameters`` as plain data (dict, list,
        str, int, float, bool, None; OmegaConf containers converted, node
        interpolations resolved). Empty when the file has none.
    top_level_keys: the keys of the checkpoint dict in file order, e.g.
        ``("epoch", "global_step", "pytorch-lightning_version", "state_dict", ...)``;
        empty when the file holds a bare state_dict.
    """

    state_dict: dict[str, np.ndarray]
    hyper_parameters: dict
    top_level_keys: tuple[str, ...]


# --------------------------------------------------------------------------- #
# Limits. A checkpoint is a little structure (data.pkl) plus big raw storages; a
# file that needs more work than these to read is hostile or not a checkpoint,
# and is refused with a CheckpointError before it costs minutes or gigabytes.
# --------------------------------------------------------------------------- #

# data.pkl holds structure, not weights (real ones: well under 1 MB).
_MAX_PICKLE_BYTES = 256 << 20
# Pickle opcodes executed; each creates at most one object, so this bounds the
# objects (and memory) the unpickler can make. A Lightning checkpoint needs ~30 per tensor.
_MAX_PICKLE_OPS = 5_000_000
# Nesting depth of hyper_parameters, and of a dict key or set element.
_MAX_DEPTH = 100
# Elements inside one dict key or set element: hashing and comparing keys walk
# every element, with no memo, so a key nested in itself by shared reference
# (t = (t, t) 40 times) would take 2**40 steps inside one dict insertion.
_MAX_KEY_ELEMENTS = 10_000
# hyper_parameters elements counting a shared object at every place it appears,
# so that whoever walks the returned plain data (without a memo) does bounded work.
_MAX_PLAIN_ELEMENTS = 1_000_000
# Bytes materialised (state_dict + tensors in hyper_parameters): at most twice the
# file (tied weights are copied per entry) plus room for stride-0 expansions.
_MATERIALIZE_SLACK_BYTES = 256 << 20
# Deflate cannot expand more than ~1032:1; torch itself stores entries uncompressed.
_MAX_DEFLATE_RATIO = 1032
_MAX_TENSOR_DIMS = 64


# --------------------------------------------------------------------------- #
# Dtypes
# --------------------------------------------------------------------------- #

# torch dtype name -> numpy dtype (little-endian). bfloat16 is read as uint16 bits.
_BFLOAT16 = "bfloat16"
_NUMPY_DTYPES: dict[str, np.dtype] = {
    "float32": np.dtype("<f4"),
    "float64": np.dtype("<f8"),
    "float16": np.dtype("<f2"),
    _BFLOAT16: np.dtype("<u2"),
    "int64": np.dtype("<i8"),
    "int32": np.dtype("<i4"),
    "int16": np.dtype("<i2"),
    "int8": np.dtype("i1"),
    "uint8": np.dtype("u1"),
    "uint16": np.dtype("<u2"),
    "uint32": np.dtype("<u4"),
    "uint64": np.dtype("<u8"),
    "bool": np.dtype("?"),
    "complex64": np.dtype("<c8"),
    "complex128": np.dtype("<c16"),
}
_SUPPORTED_DTYPES = ", ".join(n for n in _NUMPY_DTYPES)

# Legacy storage class names (what torch pickles) -> dtype name.
_STORAGE_CLASSES: dict[str, str] = {
    "FloatStorage": "float32",
    "DoubleStorage": "float64",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128",
    "UntypedStorage": "uint8",
}

# torch dtype attribute names (as pickled: GLOBAL 'torch float32') -> canonical name.
# Unsupported ones are still allowed as *names* (optimizer states may hold them);
# materialising a tensor of such a dtype raises.
_TORCH_DTYPE_ALIASES: dict[str, str] = {
    "float": "float32",
    "double": "float64",
    "half": "float16",
    "long": "int64",
    "int": "int32",
    "short": "int16",
    "cfloat": "complex64",
    "cdouble": "complex128",
    "chalf": "complex32",
}
_OTHER_TORCH_DTYPES = frozenset(
    {
        "complex32",
        "float8_e4m3fn",
        "float8_e5m2",
        "float8_e4m3fnuz",
        "float8_e5m2fnuz",
        "float8_e8m0fnu",
        "float4_e2m1fn_x2",
        "qint8",
        "quint8",
        "qint32",
        "quint4x2",
        "quint2x4",
        "bits8",
        "bits16",
        "bits1x8",
        "bits2x4",
        "bits4x2",
    }
)


@dataclass(frozen=True)
class _StorageClass:
    """Stand-in for a torch storage class such as ``torch.FloatStorage``."""

    name: str
    dtype: str | None  # None: a storage type this reader cannot decode


@dataclass(frozen=True)
class _TorchDtype:
    """Stand-in for a pickled ``torch.dtype`` (e.g. in optimizer states)."""

    name: str


@dataclass(frozen=True)
class _TorchDevice:
    """Stand-in for a pickled ``torch.device``."""

    type: str
    index: int | None = None

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"


# --------------------------------------------------------------------------- #
# Storages and lazy tensors
# --------------------------------------------------------------------------- #


class _Archive:
    """The opened zip: locates entries and reads storages once, on demand."""

    def __init__(self, path: str, zf: zipfile.ZipFile):
        self.path = path
        self.zf = zf
        self.file_size = os.path.getsize(path)
        self._check_names()
        self.root = self._find_root()
        self.big_endian = self._read_byteorder()
        self._cache: dict[str, bytes] = {}
        self.materialize_budget = 2 * self.file_size + _MATERIALIZE_SLACK_BYTES

    def charge(self, nbytes: int, what: str) -> None:
        """Count `nbytes` about to be materialised against the file's budget."""
        if nbytes > self.materialize_budget:
            raise self.error(
                f"{what} would bring the arrays read from this {self.file_size}-byte file to more than "
                f"{2 * self.file_size + _MATERIALIZE_SLACK_BYTES} bytes (2 x file size + "
                f"{_MATERIALIZE_SLACK_BYTES >> 20} MiB); refusing (the file may be a decompression bomb)"
            )
        self.materialize_budget -= nbytes

    def error(self, problem: str) -> CheckpointError:
        return CheckpointError(f"{self.path}: {problem}")

    def _check_names(self) -> None:
        # This reader never extracts, but a name that escapes the archive ("../x", "/etc/x") is
        # never written by torch: refuse the file rather than guess what it is.
        for name in self.zf.namelist():
            parts = name.replace("\\", "/").split("/")
            if name.startswith(("/", "\\")) or ".." in parts or name[1:2] == ":":
                raise self.error(
                    f"expected zip entry names inside the archive, found {_short(name)} (an absolute or '..' path)"
                )

    def _find_root(self) -> str:
        roots = sorted(
            name[: -len("/data.pkl")]
            for name in self.zf.namelist()
            if name.endswith("/data.pkl") and name.count("/") == 1
        )
        if not roots:
            raise self.error(
                "expected a PyTorch zip checkpoint with '<archive>/data.pkl', "
                f"found no data.pkl among {len(self.zf.namelist())} zip entries"
            )
        if len(roots) > 1:
            raise self.error(f"expected one '<archive>/data.pkl', found {len(roots)}: {roots}")
        return roots[0]

    def _read_byteorder(self) -> bool:
        name = f"{self.root}/byteorder"
        if name not in self.zf.NameToInfo:
            return False  # files written before the record existed are little-endian
        order = self.zf.read(name).decode("ascii", errors="replace").strip()
        if order not in ("little", "big"):
            raise self.error(f"expected byteorder 'little' or 'big', found {_short(order)}")
        return order == "big"

    def read_pickle_bytes(self) -> bytes:
        return self.zf.read(f"{self.root}/data.pkl")

    def storage_entry(self, key: str) -> zipfile.ZipInfo:
        name = f"{self.root}/data/{key}"
        info = self.zf.NameToInfo.get(name)
        if info is None:
            raise self.error(f"storage {_short(key)} is referenced by data.pkl but '{name}' is missing")
        self.check_entry_size(info)
        return info

    def check_entry_size(self, info: zipfile.ZipInfo) -> None:
        """Refuse an entry whose declared sizes cannot be true of this file (a forged zip directory)."""
        if info.compress_type == zipfile.ZIP_STORED:
            limit, how = min(info.compress_size, self.file_size), "stored uncompressed"
        elif info.compress_type == zipfile.ZIP_DEFLATED:
            limit, how = _MAX_DEFLATE_RATIO * min(info.compress_size, self.file_size), "deflated"
        else:
            raise self.error(
                f"'{info.filename}': expected a stored or deflated zip entry, found compression "
                f"method {info.compress_type}"
            )
        if info.file_size > limit:
            raise self.error(
                f"'{info.filename}' declares {info.file_size} bytes but, {how} with {info.compress_size} "
                f"compressed bytes in a {self.file_size}-byte file, can hold at most {limit}"
            )

    def storage_bytes(self, key: str, nbytes: int) -> bytes:
        if key not in self._cache:
            info = self.storage_entry(key)
            with self.zf.open(info) as f:
                data = f.read(nbytes)
            if len(data) < nbytes:
                raise self.error(f"storage {_short(key)} is truncated: expected {nbytes} bytes, found {len(data)}")
            self._cache[key] = data
        return self._cache[key]


@dataclass(frozen=True)
class _StorageRef:
    """A storage named by data.pkl: archive entry, dtype and element count."""

    archive: _Archive
    key: str
    dtype: str | None
    numel: int

    @property
    def nbytes(self) -> int:
        return self.numel * _NUMPY_DTYPES[self.dtype].itemsize if self.dtype in _NUMPY_DTYPES else 0


# A view whose elements repeat storage elements (stride 0, i.e. torch.expand)
# is materialised by copying; cap the copy so a tiny hostile file cannot demand
# terabytes.
_MAX_EXPANDED_ELEMENTS = 1 << 24


@dataclass(frozen=True)
class _TensorRef:
    """A tensor as data.pkl describes it; read from the archive only on demand."""

    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: str | None

    def materialize(self, what: str) -> np.ndarray:
        archive = self.storage.archive
        if self.dtype not in _NUMPY_DTYPES:
            raise archive.error(
                f"{what} has unsupported dtype {_short(self.dtype or self.storage.dtype)} "
                f"(supported: {_SUPPORTED_DTYPES})"
            )
        dtype = _NUMPY_DTYPES[self.dtype]
        if archive.big_endian:
            dtype = dtype.newbyteorder(">")
        count = math.prod(self.size)  # exact Python ints: no overflow on hostile sizes
        if count == 0:
            return np.zeros(self.size, dtype=_output_dtype(self.dtype))
        storage_nbytes = self.storage.nbytes if self.storage.dtype in _NUMPY_DTYPES else self.storage.numel
        available = storage_nbytes // dtype.itemsize
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride, strict=True))
        if last >= available:
            raise archive.error(
                f"{what} (size {list(self.size)}, stride {list(self.stride)}, offset "
                f"{self.offset}) reaches element {last} but its storage {self.storage.key!r} "
                f"holds {available} elements"
            )
        if count > max(available, _MAX_EXPANDED_ELEMENTS):
            raise archive.error(
                f"{what} repeats its {available} storage elements into {count}; "
                f"refusing to materialise more than {_MAX_EXPANDED_ELEMENTS} repeated elements"
            )
        archive.charge(count * _output_dtype(self.dtype).itemsize, what)
        raw = archive.storage_bytes(self.storage.key, available * dtype.itemsize)
        flat = np.frombuffer(raw, dtype=dtype, count=available)
        # Bounds were checked above, so this strided view stays inside `flat`.
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset :],
            shape=self.size,
            strides=tuple(s * dtype.itemsize for s in self.stride),
            writeable=False,
        )
        out = np.array(view, dtype=dtype.newbyteorder("="), order="C", copy=True)
        if self.dtype == _BFLOAT16:
            # bfloat16 is the upper half of a float32: shift the bits into place.
            out = (out.astype(np.uint32) << 16).view(np.float32)
        return out


def _output_dtype(name: str) -> np.dtype:
    return np.dtype(np.float32) if name == _BFLOAT16 else _NUMPY_DTYPES[name].newbyteorder("=")


# --------------------------------------------------------------------------- #
# Stand-ins for allowed globals. Each is called with attacker-controlled
# arguments, so each checks them and only ever builds data.
# --------------------------------------------------------------------------- #


def _require(cond: bool, problem: str | Callable[[], str]) -> None:
    # `problem` may be a callable so hot paths (every tensor) format nothing unless they fail.
    if not cond:
        raise CheckpointError(problem() if callable(problem) else problem)


_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxlevel, _SHORT_REPR.maxstring, _SHORT_REPR.maxother = 3, 60, 60


def _short(obj: Any, limit: int = 100) -> str:
    """A bounded repr for error messages: ``repr`` of a hostile value (a list nested in itself
    40 times by shared reference) would take exponential time and memory."""
    text = _SHORT_REPR.repr(obj)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _rebuild_tensor(storage, storage_offset, size, stride, dtype=None) -> _TensorRef:
    _require(
        isinstance(storage, _StorageRef),
        f"expected a storage as the first argument of a tensor rebuild, found {type(storage).__name__}",
    )
    _require(
        _is_int(storage_offset) and storage_offset >= 0,
        lambda: f"expected a non-negative int storage offset, found {_short(storage_offset)}",
    )
    _require(
        isinstance(size, tuple) and len(size) <= _MAX_TENSOR_DIMS and all(_is_int(n) and n >= 0 for n in size),
        lambda: (
            f"expected a tuple of at most {_MAX_TENSOR_DIMS} non-negative ints as tensor size, found {_short(size)}"
        ),
    )
    _require(
        isinstance(stride, tuple) and len(stride) == len(size) and all(_is_int(s) and s >= 0 for s in stride),
        lambda: f"expected {len(size)} non-negative int strides, found {_short(stride)}",
    )
    name = storage.dtype if dtype is None else dtype.name
    return _TensorRef(storage, storage_offset, size, stride, name)


def _rebuild_tensor_v1(storage, storage_offset, size, stride):
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None):
    _require(isinstance(dtype, _TorchDtype), f"expected a torch dtype, found {_short(dtype)}")
    return _rebuild_tensor(storage, storage_offset, size, stride, dtype=dtype)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    _require(isinstance(data, _TensorRef), f"expected a tensor inside a Parameter, found {type(data).__name__}")
    return data


class _TensorClass:
    """Stand-in for ``torch.Tensor`` / ``torch.nn.Parameter`` used as a type."""

    def __init__(self, name: str):
        self.name = name


_TENSOR_CLASSES = {
    "torch.Tensor": _TensorClass("torch.Tensor"),
    "torch.nn.parameter.Parameter": _TensorClass("torch.nn.parameter.Parameter"),
}
_REBUILD_FUNCTIONS = {
    "torch._utils._rebuild_tensor": _rebuild_tensor_v1,
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
    "torch._utils._rebuild_tensor_v3": _rebuild_tensor_v3,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
}


def _rebuild_from_type_v2(func, new_type, args, state):
    # Used for tensors with Python attributes; the rebuild itself is `func(*args)`.
    _require(func in _REBUILD_FUNCTIONS.values(), f"refused tensor rebuild function {_short(func)}")
    _require(isinstance(new_type, _TensorClass), f"refused tensor subclass {_short(new_type)}")
    _require(isinstance(args, tuple), f"expected a tuple of rebuild arguments, found {_short(args)}")
    return func(*args)


def _torch_size(dims=()):
    _require(isinstance(dims, tuple) and all(_is_int(d) for d in dims), f"bad torch.Size {_short(dims)}")
    return tuple(dims)


def _torch_device(kind, index=None):
    _require(isinstance(kind, str) and (index is None or _is_int(index)), f"bad torch.device {_short(kind)}")
    if index is None and ":" in kind:
        kind, _, idx = kind.partition(":")
        index = int(idx) if idx.isdigit() else None
    return _TorchDevice(kind, index)


def _get_layout(name):
    _require(isinstance(name, str), f"bad torch layout {_short(name)}")
    return f"torch.{name}"


def _codecs_encode(obj, encoding="utf-8"):
    # Protocol-2 pickles store bytes as _codecs.encode(str, 'latin1'); nothing else.
    _require(
        isinstance(obj, str) and encoding in ("latin1", "latin-1"),
        f"refused _codecs.encode with encoding {_short(encoding)}",
    )
    return obj.encode("latin1")


def _bytes_like(kind):
    def build(*args):
        # bytes(n) / bytearray(n) would allocate n zero bytes: only accept data.
        _require(
            len(args) <= 2 and (not args or isinstance(args[0], (bytes, bytearray, str))),
            f"refused {kind.__name__}() with arguments {_short(args, 80)}",
        )
        if args and isinstance(args[0], str):
            encoding = args[1] if len(args) > 1 else "latin1"
            _require(
                encoding in ("latin1", "latin-1", "utf-8", "utf8", "ascii"),
                f"refused {kind.__name__}() with encoding {_short(encoding, 40)}",
            )
            return kind(args[0], encoding)
        _require(len(args) <= 1, f"refused {kind.__name__}() with arguments {_short(args, 80)}")
        return kind(*args)

    return build


def _empty_dict(*_args):
    # collections.defaultdict(factory): its items arrive later through SETITEMS.
    # A plain dict keeps the data without ever calling a factory.
    return {}


class _AttributeDict(dict):
    """Stand-in for Lightning's AttributeDict (a dict subclass)."""


class _NumpyDtype:
    """Stand-in for a pickled ``numpy.dtype`` (numeric kinds only)."""

    def __init__(self, spec, align=False, copy=False):
        _require(isinstance(spec, str), f"bad numpy dtype {_short(spec)}")
        dtype = np.dtype(spec)
        _require(dtype.kind in "biufc", f"refused numpy dtype {_short(spec)} (only numeric scalars)")
        self.dtype = dtype

    def __setstate__(self, state):
        # state = (version, byteorder, ...): only the byte order matters here.
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">"):
            self.dtype = self.dtype.newbyteorder(state[1])


def _numpy_scalar(dtype, data=None):
    _require(
        isinstance(dtype, _NumpyDtype) and isinstance(data, bytes) and len(data) == dtype.dtype.itemsize,
        "bad numpy scalar",
    )
    return np.frombuffer(data, dtype=dtype.dtype)[0].item()


class _Sentinel:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


class _OmegaObject:
    """Stand-in for an OmegaConf object: keeps only its pickled state dict."""

    state: Mapping[str, Any] = types.MappingProxyType({})  # replaced (never mutated) by __setstate__

    def __setstate__(self, state):
        _require(
            isinstance(state, dict), f"expected a state dict for an OmegaConf object, found {type(state).__name__}"
        )
        self.state = state


class _OmegaDict(_OmegaObject):
    pass


class _OmegaList(_OmegaObject):
    pass


class _OmegaValue(_OmegaObject):
    pass


class _OmegaMetadata(_OmegaObject):
    pass


_PURE_PATHS = {
    "PosixPath": pathlib.PurePosixPath,
    "PurePosixPath": pathlib.PurePosixPath,
    "WindowsPath": pathlib.PureWindowsPath,
    "PureWindowsPath": pathlib.PureWindowsPath,
}

# Fully qualified name -> the object find_class returns for it.
_ALLOWED: dict[str, Any] = {
    # plain data
    "builtins.dict": dict,
    "builtins.list": list,
    "builtins.tuple": tuple,
    "builtins.set": set,
    "builtins.frozenset": frozenset,
    "builtins.int": int,
    "builtins.float": float,
    "builtins.complex": complex,
    "builtins.str": str,
    "builtins.bool": bool,
    "builtins.slice": slice,
    "builtins.bytes": _bytes_like(bytes),
    "builtins.bytearray": _bytes_like(bytearray),
    "builtins.object": object,  # only as an OmegaConf type annotation value
    "_codecs.encode": _codecs_encode,
    "collections.OrderedDict": collections.OrderedDict,
    "collections.defaultdict": _empty_dict,
    "collections.Counter": collections.Counter,
    "datetime.datetime": datetime.datetime,
    "datetime.date": datetime.date,
    "datetime.time": datetime.time,
    "datetime.timedelta": datetime.timedelta,
    "datetime.timezone": datetime.timezone,
    "typing.Any": _Sentinel("typing.Any"),
    **{f"pathlib.{name}": cls for name, cls in _PURE_PATHS.items()},
    # numpy scalars (Lightning callbacks and hparams sometimes hold them)
    "numpy.dtype": _NumpyDtype,
    "numpy.core.multiarray.scalar": _numpy_scalar,
    "numpy._core.multiarray.scalar": _numpy_scalar,
    # torch
    **_REBUILD_FUNCTIONS,
    **_TENSOR_CLASSES,
    "torch._tensor._rebuild_from_type_v2": _rebuild_from_type_v2,
    "torch.Size": _torch_size,
    "torch.device": _torch_device,
    "torch.serialization._get_layout": _get_layout,
    "torch.storage.UntypedStorage": _StorageClass("UntypedStorage", "uint8"),
    # Lightning
    "pytorch_lightning.utilities.parsing.AttributeDict": _AttributeDict,
    "lightning.fabric.utilities.data.AttributeDict": _AttributeDict,
    "lightning_fabric.utilities.data.AttributeDict": _AttributeDict,
    # OmegaConf (checked against omegaconf 2.3 pickles with pickletools)
    "omegaconf.dictconfig.DictConfig": _OmegaDict,
    "omegaconf.listconfig.ListConfig": _OmegaList,
    "omegaconf.base.ContainerMetadata": _OmegaMetadata,
    "omegaconf.base.Metadata": _OmegaMetadata,
    **{
        f"omegaconf.nodes.{name}": _OmegaValue
        for name in (
            "AnyNode",
            "StringNode",
            "IntegerNode",
            "FloatNode",
            "BooleanNode",
            "BytesNode",
            "PathNode",
            "InterpolationResultNode",
            "ValueNode",
        )
    },
}


def _resolve_global(module: str, name: str) -> Any:
    # Protocol-2 pickles name Python 2 modules ('__builtin__ long'); map them the
    # way pickle's own find_class does, then look the result up in the allow-list.
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    elif module in _compat_pickle.IMPORT_MAPPING:
        module = _compat_pickle.IMPORT_MAPPING[module]
    qualified = f"{module}.{name}"
    if qualified in _ALLOWED:
        return _ALLOWED[qualified]
    if module == "torch":
        if name in _STORAGE_CLASSES:
            return _StorageClass(name, _STORAGE_CLASSES[name])
        if name.endswith("Storage") and name.isidentifier():
            return _StorageClass(name, None)  # e.g. QInt8Storage: refused on use
        if name in _NUMPY_DTYPES or name in _OTHER_TORCH_DTYPES:
            return _TorchDtype(name)
        if name in _TORCH_DTYPE_ALIASES:
            return _TorchDtype(_TORCH_DTYPE_ALIASES[name])
    raise KeyError(qualified)


def _key_elements(obj: Any, memo: dict[int, int], depth: int) -> int:
    """Elements hashing `obj` visits (tuples and frozensets recurse; memoised, so linear in distinct objects)."""
    if not isinstance(obj, (tuple, frozenset)):
        return 1
    known = memo.get(id(obj))
    if known is not None:
        return known
    if depth >= _MAX_DEPTH:
        raise CheckpointError(
            f"expected a dict key or set element nested at most {_MAX_DEPTH} levels deep, "
            "found a deeper one (the file may be a pickle bomb)"
        )
    count = 1
    for item in obj:
        count += _key_elements(item, memo, depth + 1)
        if count > _MAX_KEY_ELEMENTS:
            raise CheckpointError(
                f"expected a dict key or set element of at most {_MAX_KEY_ELEMENTS} elements, found one of more "
                "(shared references counted where they appear; the file may be a pickle bomb)"
            )
    memo[id(obj)] = count
    return count


_SCALARS = (str, bytes, int, float, complex, bool, type(None))


def _check_hashed(items: Any) -> None:
    """Check every object in `items` before Python hashes (and maybe compares) it."""
    memo: dict[int, int] = {}
    for item in items:
        if not isinstance(item, _SCALARS):
            _key_elements(item, memo, 0)


# Allowed callables that hash their arguments' elements (set(iterable), dict(pairs), ...).
_HASHING_CALLABLES = (dict, set, frozenset, collections.Counter)


def _check_call(func: Any, args: Any) -> None:
    """Checks on a REDUCE/OBJ call of an allowed callable before it runs."""
    if not isinstance(args, tuple):
        raise CheckpointError(f"expected a tuple of call arguments, found {type(args).__name__}")
    if func is str:
        # str(x) of a container is its repr: exponential for a list nested in itself by shared reference.
        _require(
            all(isinstance(a, _SCALARS) for a in args),
            lambda: f"refused str() of {', '.join(type(a).__name__ for a in args)[:80]}",
        )
    elif isinstance(func, type) and issubclass(func, _HASHING_CALLABLES):
        for arg in args:
            if isinstance(arg, (list, tuple, set, frozenset)):
                # dict([(key, value), ...]) hashes only the keys
                pairs = issubclass(func, dict) and all(isinstance(x, tuple) and len(x) == 2 for x in arg)
                _check_hashed([x[0] for x in arg] if pairs else arg)
            elif isinstance(arg, dict):
                _check_hashed(arg.keys())


def _counted(op: Callable[[Any], None]) -> Callable[[Any], None]:
    def run(unpickler: Any) -> None:
        unpickler.ops_left -= 1
        if unpickler.ops_left < 0:
            raise unpickler.archive.error(
                f"expected data.pkl to run at most {_MAX_PICKLE_OPS} pickle opcodes, found more "
                "(not a checkpoint, or a pickle bomb)"
            )
        op(unpickler)

    return run


# Classes that NEWOBJ may instantiate (cls.__new__(cls, *args)) and objects BUILD
# may set state on. Everything else is refused: BUILD on an arbitrary object
# could overwrite attributes of the stand-ins (or of functions) after checks.
_NEWOBJ_CLASSES = (
    dict,
    list,
    tuple,
    set,
    frozenset,
    collections.OrderedDict,
    collections.Counter,
    _AttributeDict,
    _OmegaDict,
    _OmegaList,
    _OmegaValue,
    _OmegaMetadata,
)
_DICT_STATE_CLASSES = (collections.OrderedDict, collections.Counter, _AttributeDict)


class _RestrictedUnpickler(pickle._Unpickler):
    """Pickle machine with an allow-list of globals and restricted BUILD/NEWOBJ.

    Uses the pure-Python unpickler (``pickle._Unpickler``) because the C one
    offers no hook for BUILD and NEWOBJ; a checkpoint's data.pkl holds only
    structure (storages are separate), so speed does not matter here.
    """

    dispatch: ClassVar[dict[int, Callable[..., Any]]] = dict(pickle._Unpickler.dispatch)

    def __init__(self, data: bytes, archive: _Archive):
        super().__init__(io.BytesIO(data), encoding="utf-8")
        self.archive = archive
        self.ops_left = _MAX_PICKLE_OPS

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _resolve_global(module, name)
        except KeyError as exc:
            qualified = exc.args[0]
            raw = f"{module}.{name}"
            pickled_as = f" (pickled as '{raw}')" if raw != qualified else ""
            raise self.archive.error(
                f"refused to load global '{qualified}'{pickled_as}: not on the allow-list "
                "of data types a checkpoint may contain (the file may be malicious, or "
                "hold objects this reader does not support)"
            ) from None

    def _new_object(self, cls: Any, args: Any, kwargs: Any) -> Any:
        if not (isinstance(cls, type) and issubclass(cls, _NEWOBJ_CLASSES)):
            raise self.archive.error(f"refused to instantiate {_short(cls, 80)} (NEWOBJ)")
        if not isinstance(args, tuple) or not isinstance(kwargs, dict):
            raise self.archive.error("malformed NEWOBJ arguments")
        if issubclass(cls, frozenset):  # frozenset.__new__ hashes its argument's elements
            _check_call(frozenset, args)
        return cls.__new__(cls, *args, **kwargs)

    # Opcodes that call an allowed callable or hash keys: checked first (see _check_call, _check_hashed).
    def load_reduce(self) -> None:
        args = self.stack.pop()
        func = self.stack[-1]
        _check_call(func, args)
        self.stack[-1] = func(*args)

    def _instantiate(self, klass: Any, args: Any) -> None:  # INST and OBJ (protocol 0/1) call klass(*args)
        _check_call(klass, tuple(args))
        self.append(klass(*args))

    def load_setitem(self) -> None:
        _check_hashed([self.stack[-2]])
        super().load_setitem()

    # After MARK, self.stack holds just the items since the mark (pickle keeps outer stacks in metastack).
    def load_setitems(self) -> None:
        _check_hashed(self.stack[0::2])
        super().load_setitems()

    def load_dict(self) -> None:
        _check_hashed(self.stack[0::2])
        super().load_dict()

    def load_additems(self) -> None:
        _check_hashed(self.stack)
        super().load_additems()

    def load_frozenset(self) -> None:
        _check_hashed(self.stack)
        super().load_frozenset()

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._new_object(cls, args, {}))

    def load_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._new_object(cls, args, kwargs))

    def load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(inst, (_OmegaObject, _NumpyDtype)):
            inst.__setstate__(state)
        elif isinstance(inst, _DICT_STATE_CLASSES) and (
            state is None or (isinstance(state, dict) and all(isinstance(k, str) for k in state))
        ):
            # e.g. the `_metadata` attribute torch puts on every state_dict OrderedDict
            inst.__dict__.update(state or {})
        else:
            raise self.archive.error(
                f"refused to set state on a {type(inst).__name__} (BUILD): only OmegaConf "
                "containers, numpy dtypes and dicts carry state in a checkpoint"
            )

    dispatch[pickle.NEWOBJ[0]] = load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex
    dispatch[pickle.BUILD[0]] = load_build
    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.SETITEM[0]] = load_setitem
    dispatch[pickle.SETITEMS[0]] = load_setitems
    dispatch[pickle.DICT[0]] = load_dict
    dispatch[pickle.ADDITEMS[0]] = load_additems
    dispatch[pickle.FROZENSET[0]] = load_frozenset
    # Every opcode counts against _MAX_PICKLE_OPS.
    dispatch = {code: _counted(op) for code, op in dispatch.items()}

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise self.archive.error(
                f"expected persistent ids ('storage', class, key, location, numel), found {_short(pid, 120)}"
            )
        _, storage_class, key, _location, numel = pid
        if not isinstance(storage_class, _StorageClass):
            raise self.archive.error(f"expected a torch storage class, found {_short(storage_class, 80)}")
        if (
            not isinstance(key, str)
            or not key
            or key in (".", "..")
            or "/" in key
            or "\\" in key
            or not _is_int(numel)
            or numel < 0
        ):
            raise self.archive.error(f"bad storage reference key={_short(key, 40)} numel={_short(numel, 40)}")
        storage = _StorageRef(self.archive, key, storage_class.dtype, numel)
        info = self.archive.storage_entry(key)
        if storage.dtype in _NUMPY_DTYPES and info.file_size < storage.nbytes:
            raise self.archive.error(
                f"storage {_short(key)} ({storage_class.name}, {numel} elements) needs "
                f"{storage.nbytes} bytes but its archive entry holds {info.file_size}"
            )
        return storage


# --------------------------------------------------------------------------- #
# Plain-data conversion (OmegaConf stand-ins, lazy tensors, ...)
# --------------------------------------------------------------------------- #

_INTERPOLATION = re.compile(r"\$\{([^${}]*)\}")


class _Unresolvable(Exception):
    """An interpolation this reader leaves as text (custom resolver, missing key)."""


def _omega_parent(node: _OmegaObject) -> Any:
    return node.state.get("_parent")


def _omega_root(node: _OmegaObject) -> _OmegaObject:
    for _ in range(_MAX_DEPTH):
        parent = _omega_parent(node)
        if not isinstance(parent, (_OmegaDict, _OmegaList)):
            return node
        node = parent
    raise CheckpointError("OmegaConf parent chain is too deep or cyclic")


def _omega_select(container: _OmegaObject, key: str) -> Any:
    """The node that interpolation `${key}` inside `container` refers to."""
    if ":" in key or not key.strip():
        raise _Unresolvable(key)  # a resolver call such as oc.env:HOME
    dots = len(key) - len(key.lstrip("."))
    if dots == 0:
        node = _omega_root(container)
    else:
        node = container
        for _ in range(dots - 1):
            node = _omega_parent(node)
            if node is None:
                raise _Unresolvable(key)
    path = key[dots:]
    tokens = [t for t in re.split(r"[.\[\]]", path) if t] if path else []
    for token in tokens:
        content = node.state.get("_content") if isinstance(node, _OmegaObject) else None
        if isinstance(node, _OmegaDict) and isinstance(content, dict):
            matches = [v for k, v in content.items() if str(k) == token]
            if not matches:
                raise _Unresolvable(key)
            node = matches[0]
        elif isinstance(node, _OmegaList) and isinstance(content, list) and token.lstrip("-").isdigit():
            index = int(token)
            if not -len(content) <= index < len(content):
                raise _Unresolvable(key)
            node = content[index]
        else:
            raise _Unresolvable(key)
    return node


class _PlainConverter:
    """Turns loaded stand-ins into plain Python data, converting each loaded object once.

    A pickle may share one object in many places (``l = [l, l]`` forty times is a
    300-byte file); converting by identity (memo on ``id``) keeps the work linear in
    the pickle's size and keeps the sharing in the result. Each result's size
    counting shared objects at every place they appear is bounded by
    `_MAX_PLAIN_ELEMENTS`, so whoever walks the result without a memo does bounded
    work too; nesting is bounded by `_MAX_DEPTH`; an object that contains itself
    (or a cyclic interpolation) is refused.
    """

    def __init__(self) -> None:
        self.memo: dict[int, tuple[Any, int]] = {}  # id(loaded object) -> (plain value, elements)
        self.active: set[int] = set()  # objects being converted (a repeat means a cycle)

    def convert(self, obj: Any) -> Any:
        return self.visit(obj, 0)[0]

    def visit(self, obj: Any, depth: int) -> tuple[Any, int]:
        if isinstance(obj, _SCALARS):
            return obj, 1
        if depth > _MAX_DEPTH:
            raise CheckpointError(
                f"expected hyper_parameters nested at most {_MAX_DEPTH} levels deep, found deeper "
                "nesting (or a cyclic interpolation)"
            )
        key = id(obj)
        if key in self.memo:
            return self.memo[key]
        if key in self.active:
            raise CheckpointError(
                "expected hyper_parameters without cycles, found an object that contains itself "
                "(or a cyclic interpolation)"
            )
        self.active.add(key)
        try:
            value, elements = self._convert(obj, depth)
        finally:
            self.active.discard(key)
        if elements > _MAX_PLAIN_ELEMENTS:
            raise CheckpointError(
                f"expected hyper_parameters of at most {_MAX_PLAIN_ELEMENTS} elements, found an object of "
                f"{elements} once shared references are counted where they appear (the file may be a pickle bomb)"
            )
        self.memo[key] = (value, elements)
        return value, elements

    def _items(self, pairs: Any, depth: int) -> tuple[dict, int]:
        out, elements = {}, 1
        for k, v in pairs:
            value, n = self.visit(v, depth + 1)
            out[_plain_key(k)] = value
            elements += n
        return out, elements

    def _list(self, items: Any, depth: int) -> tuple[list, int]:
        out, elements = [], 1
        for v in items:
            value, n = self.visit(v, depth + 1)
            out.append(value)
            elements += n
        return out, elements

    def _convert(self, obj: Any, depth: int) -> tuple[Any, int]:
        if isinstance(obj, _TensorRef):
            return obj.materialize("a tensor in hyper_parameters"), 1
        if isinstance(obj, _OmegaValue):
            value = obj.state.get("_val")
            if isinstance(value, str):
                return self.resolve(value, _omega_parent(obj), depth)
            return self.visit(value, depth + 1)
        if isinstance(obj, (_OmegaDict, _OmegaList)):
            content = obj.state.get("_content")
            if isinstance(content, str):  # the whole container is an interpolation or "???"
                return self.resolve(content, _omega_parent(obj), depth)
            if content is None:
                return None, 1
            if isinstance(obj, _OmegaDict):
                _require(isinstance(content, dict), "expected a dict as DictConfig content")
                return self._items(content.items(), depth)
            _require(isinstance(content, list), "expected a list as ListConfig content")
            return self._list(content, depth)
        if isinstance(obj, _OmegaObject):
            return None, 1
        if isinstance(obj, dict):
            return self._items(obj.items(), depth)
        if isinstance(obj, (list, tuple)):
            return self._list(obj, depth)
        if isinstance(obj, (pathlib.PurePath, _TorchDevice)):
            return str(obj), 1
        if isinstance(obj, (_TorchDtype, _Sentinel)):
            return obj.name, 1
        if isinstance(obj, (set, frozenset)):
            return obj, 1 + len(obj)  # elements were bounded when the pickle hashed them
        return obj, 1

    def resolve(self, text: str, container: Any, depth: int) -> tuple[Any, int]:
        """A string value with OmegaConf node interpolations resolved against `container`."""
        if "${" not in text or not isinstance(container, (_OmegaDict, _OmegaList)):
            return text, 1
        whole = _INTERPOLATION.fullmatch(text)
        try:
            if whole:
                return self.visit(_omega_select(container, whole.group(1)), depth + 1)
            elements = 1

            def substitute(match: re.Match) -> str:
                nonlocal elements
                value, n = self.visit(_omega_select(container, match.group(1)), depth + 1)
                elements += n
                return str(value)  # bounded: n <= _MAX_PLAIN_ELEMENTS

            return _INTERPOLATION.sub(substitute, text), elements
        except _Unresolvable:
            return text, 1


def _to_plain(obj: Any) -> Any:
    """Turn loaded stand-ins into plain Python data (see `_PlainConverter`)."""
    return _PlainConverter().convert(obj)


def _plain_key(key: Any) -> Any:
    # Dict keys stay as they are (str/int in practice); paths become strings.
    return str(key) if isinstance(key, pathlib.PurePath) else key


# --------------------------------------------------------------------------- #
# Public entry point
# --------------------------------------------------------------------------- #

_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"


def _open_zip(path: str) -> zipfile.ZipFile:
    with open(path, "rb") as f:
        head = f.read(len(_LEGACY_MAGIC))
    if not zipfile.is_zipfile(path):
        if head.startswith(_LEGACY_MAGIC):
            raise CheckpointError(
                f"{path}: expected a zip-format PyTorch checkpoint, found the legacy "
                "(PyTorch < 1.6) format; re-save it with a current torch.save"
            )
        raise CheckpointError(
            f"{path}: expected a PyTorch checkpoint (a zip archive), found "
            f"{'an empty file' if not head else 'no zip directory'} "
            "(the file is truncated or not a checkpoint)"
        )
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: damaged zip archive: {exc}") from exc


def _load_object(path: str) -> tuple[Any, _Archive]:
    zf = _open_zip(path)
    try:
        archive = _Archive(path, zf)
        info = zf.getinfo(f"{archive.root}/data.pkl")
        archive.check_entry_size(info)
        if info.file_size > _MAX_PICKLE_BYTES:
            raise archive.error(f"data.pkl is {info.file_size} bytes; expected at most {_MAX_PICKLE_BYTES}")
        data = archive.read_pickle_bytes()
        obj = _RestrictedUnpickler(data, archive).load()
    except CheckpointError as exc:
        zf.close()
        raise _with_path(exc, path) from exc.__cause__
    except (zipfile.BadZipFile, OSError, zlib.error) as exc:
        zf.close()
        raise CheckpointError(f"{path}: damaged or truncated archive: {exc}") from exc
    except Exception as exc:
        zf.close()
        raise CheckpointError(
            f"{path}: data.pkl is not a valid checkpoint pickle: {type(exc).__name__}: {exc}"
        ) from exc
    return obj, archive


def _with_path(exc: CheckpointError, path: str) -> CheckpointError:
    # Stand-ins raise without knowing the file; every message must name it.
    return exc if str(exc).startswith(f"{path}: ") else CheckpointError(f"{path}: {exc}")


def _is_state_dict(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, _TensorRef) for k, v in obj.items())
    )


def read_lightning_checkpoint(path: str | os.PathLike) -> LightningCheckpoint:
    """Read a PyTorch Lightning ``.ckpt`` (or a bare ``torch.save``'d state_dict) without torch.

    Args:
        path: the checkpoint file.
    Returns:
        `LightningCheckpoint` with the state_dict as numpy arrays, hyper_parameters
        as plain data and the checkpoint's top-level keys.
    Raises:
        FileNotFoundError: no such file.
        CheckpointError: (a ValueError) the file is not a zip-format torch
            checkpoint, is truncated or damaged, references a missing or short
            storage, holds a tensor of an unsupported dtype, has no
            ``state_dict``, or names a global outside the allow-list (nothing
            from the pickle is executed in that case).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    if os.path.isdir(path):
        raise CheckpointError(f"{path}: expected a checkpoint file, found a directory")

    obj, archive = _load_object(path)
    try:
        return _assemble(obj, archive)
    except CheckpointError as exc:
        raise _with_path(exc, path) from exc.__cause__
    except RecursionError as exc:
        raise archive.error("expected hyper_parameters of bounded depth, found nesting too deep to convert") from exc
    except (TypeError, ValueError, AttributeError, zipfile.BadZipFile, OSError, zlib.error) as exc:
        raise archive.error(f"could not read the checkpoint contents: {type(exc).__name__}: {exc}") from exc
    finally:
        archive.zf.close()


def _assemble(obj: Any, archive: _Archive) -> LightningCheckpoint:
    if _is_state_dict(obj):
        # A bare state_dict: torch.save(model.state_dict(), path).
        raw_state, hparams, top_keys = obj, {}, ()
    elif isinstance(obj, dict):
        top_keys = tuple(str(k) for k in obj)
        if "state_dict" not in obj:
            raise archive.error(
                "expected a Lightning checkpoint dict with a 'state_dict' entry (or a bare "
                f"state_dict), found keys {list(top_keys)[:20]}"
            )
        raw_state = obj["state_dict"]
        hparams = obj.get("hyper_parameters", {})
    else:
        raise archive.error(f"expected a checkpoint dict, found {type(obj).__name__}")

    if not isinstance(raw_state, dict):
        raise archive.error(f"expected 'state_dict' to be a dict, found {type(raw_state).__name__}")
    state_dict: dict[str, np.ndarray] = {}
    for key, value in raw_state.items():
        if not isinstance(key, str):
            raise archive.error(f"expected str state_dict keys, found {_short(key, 60)}")
        if not isinstance(value, _TensorRef):
            raise archive.error(f"state_dict entry {_short(key)} is a {type(value).__name__}, expected a tensor")
        state_dict[key] = value.materialize(f"state_dict entry {_short(key)}")

    plain = _to_plain(hparams) if hparams is not None else {}
    if not isinstance(plain, dict):
        raise archive.error(f"expected hyper_parameters to be a dict, found {type(plain).__name__}")
    return LightningCheckpoint(state_dict=state_dict, hyper_parameters=plain, top_level_keys=top_keys)
