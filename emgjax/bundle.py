"""emgjax's one on-disk model format, for every model kind, and the one reader and writer of it.

    model = emgjax.load_model("runs/direct/model")          # any kind
    pose = model.predict(raw_emg)                           # raw EMG in, preprocessing applied here
    model.kind, model.config, model.params, model.input_spec, model.output_spec, model.metadata

A model directory (a "bundle")::

    DIR/bundle.json   {"format": "emgjax-model", "format_version": 1, "kind": ...,
                       "config": the kind's config (its to_dict),
                       "input_spec": {channels, sample_rate, units, preprocessing},
                       "output_spec": {what, shape, units, rate, alignment, offset_s, postprocessing},
                       "metadata": {emgjax_version, num_params, source, training report, ...},
                       ["references": {"emg2pose": {path, sha256, format, format_version}}]}
    DIR/variables/    Orbax checkpoint (StandardCheckpointHandler) of the variables pytree

The JSON is ``bundle.json`` rather than ``config.json``: a training run's folder already holds the
experiment's ``config.json``, and the distinct name tells a bundle from the older
"emgjax-emg2pose" directories (``config.json`` + ``variables/``), which `load_model` still reads.

`save_model` is the one writer. It writes into a hidden directory beside DIR and renames it into
place when complete (an existing bundle is moved aside first, then deleted), so a failed or killed
save never leaves a DIR that loads half-written. `load_model` is the one reader; it checks the
format and version, the kind, every variable's shape against the one the config builds, and that
every weight is finite, and reports each problem as one line naming the file.

Kinds (`KINDS`, the one place a new model kind plugs in; see `ModelKind`):

- ``emg2pose``: Meta's emg2pose network (converted, or trained here); `Emg2PoseModel`.
- ``direct``: the MindRove Conv1D + LSTM model (joints or MANO theta).
- ``adapter_pipeline``: channel adapter + upsampler + the frozen emg2pose it was trained against
  (embedded, or by reference to another bundle checked by checksum).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import pathlib
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from emgjax import errors
from emgjax.config import Config
from emgjax.models import pose_modules
from emgjax.models.adapter.pipeline import AdapterModelConfig
from emgjax.models.configs import PoseModelConfig

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "BUNDLE_FILE",
    "VARIABLES_DIR",
    "BundleError",
    "PretrainedError",
    "InputSpec",
    "OutputSpec",
    "Preprocessing",
    "ModelKind",
    "KINDS",
    "register_kind",
    "AdapterModelConfig",
    "Model",
    "Emg2PoseModel",
    "save_model",
    "save_adapter_pipeline",
    "load_model",
    "load_pretrained",
    "read_bundle_info",
    "read_config",
    "bundle_checksum",
    "is_bundle",
    "resolve_model_dir",
    "direct_specs",
    "adapter_specs",
    "emg2pose_specs",
]

FORMAT_NAME = "emgjax-model"
FORMAT_VERSION = 1
BUNDLE_FILE = "bundle.json"
VARIABLES_DIR = "variables"
# The format `emgjax convert` wrote before bundles (config.json + variables/); read, never written.
LEGACY_FORMAT_NAME = "emgjax-emg2pose"
LEGACY_CONFIG_FILE = "config.json"


class BundleError(ValueError):
    """A model directory is missing pieces, corrupt, of another kind or version, or does not match its config."""


# The name emgjax used before bundles; the same class.
PretrainedError = BundleError


# ============================================================================= specs


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """What `Model.predict` applies to raw EMG before the network, in this order.

    notch_hz / band_hz: zero-phase (forward-backward) notch and band-pass over each window's time
    axis (None = off); mean / std: per-channel z-score with training statistics (None = off).
    """

    notch_hz: float | None = None
    band_hz: tuple[float, float] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.band_hz is not None:
            object.__setattr__(self, "band_hz", tuple(float(f) for f in self.band_hz))
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(float(v) for v in value))
        if (self.mean is None) != (self.std is None) or (
            self.mean is not None and self.std is not None and len(self.mean) != len(self.std)
        ):
            raise ValueError("preprocessing: expected both normalisation mean and std of one length, or neither")

    @property
    def normalisation(self) -> dict[str, list[float]] | None:
        """{"mean", "std"} (the recipes' NormStats dict) or None."""
        if self.mean is None or self.std is None:
            return None
        return {"mean": list(self.mean), "std": list(self.std)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "filter": None
            if self.notch_hz is None and self.band_hz is None
            else {"notch_hz": self.notch_hz, "band_hz": None if self.band_hz is None else list(self.band_hz)},
            "normalisation": self.normalisation,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Preprocessing:
        filt = d.get("filter") or {}
        norm = d.get("normalisation") or {}
        return cls(filt.get("notch_hz"), filt.get("band_hz"), norm.get("mean"), norm.get("std"))

    def apply(self, emg: np.ndarray, sample_rate: float) -> np.ndarray:
        """emg (B, C, T) float -> (B, C, T) float32, filtered then z-scored."""
        if self.notch_hz is not None or self.band_hz is not None:
            from emgjax.data.signal import design_emg_filter, filter_offline

            sos = design_emg_filter(sample_rate, notch_hz=self.notch_hz, band=self.band_hz)
            emg = filter_offline(np.asarray(emg, np.float64), sos, axis=-1)
        if self.mean is not None and self.std is not None:
            emg = (np.asarray(emg, np.float64) - np.asarray(self.mean)[:, None]) / np.asarray(self.std)[:, None]
        return np.asarray(emg, np.float32)


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """The EMG a model takes: ``channels`` at ``sample_rate`` Hz in ``units``; `Preprocessing` it applies."""

    channels: int
    sample_rate: float
    units: str = "uV"
    preprocessing: Preprocessing = Preprocessing()

    def to_dict(self) -> dict[str, Any]:
        return {
            "channels": self.channels,
            "sample_rate": self.sample_rate,
            "units": self.units,
            "preprocessing": self.preprocessing.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> InputSpec:
        return cls(
            int(d["channels"]),
            float(d["sample_rate"]),
            str(d["units"]),
            Preprocessing.from_dict(d.get("preprocessing") or {}),
        )


@dataclasses.dataclass(frozen=True)
class OutputSpec:
    """What `Model.predict` returns and how its frames line up with the input samples.

    what: "joint_angles" (20 emg2pose angles, rad), "joints" (21 x 3 MediaPipe landmarks, mm) or
    "mano_theta" (45 axis-angle values, rad); shape: one frame's shape.
    alignment "sample": frames at ``rate`` Hz, frame i at ``offset_s + i / rate`` seconds after the
    window's first sample (the left context); "window_end": one frame per window, at its last sample.
    postprocessing: {"mean", "scale"} the network's standardised output is mapped back with
    (``pose * scale + mean``; direct models), plus "centre_on_wrist"; None for none.
    """

    what: str
    shape: tuple[int, ...]
    units: str
    rate: float | None
    alignment: str
    offset_s: float = 0.0
    postprocessing: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if self.alignment not in ("sample", "window_end"):
            raise ValueError(f"output alignment: expected 'sample' or 'window_end', found {self.alignment!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "what": self.what,
            "shape": list(self.shape),
            "units": self.units,
            "rate": self.rate,
            "alignment": self.alignment,
            "offset_s": self.offset_s,
            "postprocessing": None if self.postprocessing is None else dict(self.postprocessing),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OutputSpec:
        return cls(
            str(d["what"]),
            tuple(d["shape"]),
            str(d["units"]),
            None if d.get("rate") is None else float(d["rate"]),
            str(d["alignment"]),
            float(d.get("offset_s", 0.0)),
            d.get("postprocessing"),
        )


def emg2pose_specs(
    config: PoseModelConfig, normalisation: Mapping[str, Any] | None = None
) -> tuple[InputSpec, OutputSpec]:
    """The specs of an emg2pose network: 16 ch at 2 kHz in, 20 angles per input sample after the left context."""
    norm = dict(normalisation or {})
    rate = float(config.sample_rate)
    return (
        InputSpec(
            config.in_channels,
            rate,
            "uV (high-pass filtered)",
            Preprocessing(mean=norm.get("mean"), std=norm.get("std")),
        ),
        OutputSpec("joint_angles", (config.num_joints,), "rad", rate, "sample", config.left_context / rate),
    )


# ============================================================================= model


def _float_input(name: str, value: Any) -> np.ndarray:
    errors.check_array_like(name, value)
    errors.check_float_dtype(name, value)
    return np.asarray(value, np.float32)


class Model:
    """A loaded model of any kind.

    kind: a key of `KINDS`; config: the kind's config object; params: the variables pytree
    {"params", ["batch_stats"]} (JAX arrays); input_spec / output_spec: `InputSpec` / `OutputSpec`;
    metadata: free-form facts (emgjax_version, num_params, source, training report ...);
    path: the directory it was loaded from (None if built in memory).
    """

    def __init__(
        self,
        kind: str,
        config: Any,
        params: dict,
        input_spec: InputSpec,
        output_spec: OutputSpec,
        metadata: Mapping[str, Any] | None = None,
        path: pathlib.Path | None = None,
    ) -> None:
        if kind not in KINDS:
            raise BundleError(f"model kind: expected one of {sorted(KINDS)}, found {kind!r}")
        self.kind = kind
        self.config = config
        self.params = params
        self.input_spec = input_spec
        self.output_spec = output_spec
        self.metadata = dict(metadata or {})
        self.path = path

    @property
    def variables(self) -> dict:
        """The same pytree as ``params`` (the name the recipes used)."""
        return self.params

    def __repr__(self) -> str:
        where = f", path={str(self.path)!r}" if self.path is not None else ""
        return f"{type(self).__name__}(kind={self.kind!r}, output={self.output_spec.what!r}{where})"

    def predict(
        self,
        emg: Any,
        initial_pose: Any = None,
        *,
        sample_rate: float | None = None,
        preprocessed: bool = False,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Poses from offline windows of raw EMG.

        emg: (B, input_spec.channels, T) float, in ``input_spec.units`` at ``input_spec.sample_rate``
        Hz; the bundle's preprocessing (filters over each window, z-score) is applied here unless
        ``preprocessed=True``. initial_pose: (B, 20) rad, the pose a tracking rollout starts from
        (emg2pose and adapter pipelines; None = zeros, as emg2pose with provide_initial_pos=False);
        refused by kinds without a rollout. sample_rate: if given, must equal the model's.
        batch_size: run the windows in chunks of this many (None = all at once).

        Returns a float32 NumPy array (see ``output_spec``):
        - emg2pose: (B, 20, T - left_context - right_context) angles, one per input sample
          after the left context;
        - adapter_pipeline: (B, 20, 4T - left_context) angles at 2 kHz (4 = the upsampling
          factor), or (B, 45, 4T - left_context) MANO theta when it has a MANO head;
        - direct, mode "last": (B, 21, 3) mm or (B, 45) rad, one pose at each window's last
          sample; mode "sequence": (B, T', 21, 3) or (B, T', 45), T' = T // time_stride.
        """
        record = KINDS[self.kind]
        spec = self.input_spec
        if sample_rate is not None and float(sample_rate) != spec.sample_rate:
            raise ValueError(
                f"sample_rate: expected {spec.sample_rate:g} Hz (the model's), found {float(sample_rate):g} Hz; "
                "resample the EMG first"
            )
        emg = _float_input("emg", emg)
        layout = "(batch, channels, time)"
        errors.check_rank("emg", emg, 3, layout)
        errors.check_axis_size("emg", emg, 1, spec.channels, "channels", layout)
        errors.check_nonempty("emg", emg, 0, "window", layout)
        errors.check_min_length("emg", emg, 2, record.min_samples(self), record.min_samples_why(self))
        errors.check_finite("emg", emg)
        if initial_pose is not None:
            if not record.takes_initial_pose:
                raise ValueError(f"initial_pose: a {self.kind} model has no pose rollout to start; pass None")
            initial_pose = _float_input("initial_pose", initial_pose)
            errors.check_rank("initial_pose", initial_pose, 2, "(batch, joints)")
            errors.check_same_size("emg", emg, 0, "initial_pose", initial_pose, 0, "batch size")
            errors.check_axis_size("initial_pose", initial_pose, 1, 20, "joint angles", "(batch, joints)")
            errors.check_finite("initial_pose", initial_pose)
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
        ):
            raise ValueError(f"batch_size: expected None or a positive integer, found {batch_size!r}")
        if not preprocessed:
            emg = spec.preprocessing.apply(emg, spec.sample_rate)
        step = emg.shape[0] if batch_size is None else batch_size
        out = [
            np.asarray(
                record.predict(self, emg[i : i + step], None if initial_pose is None else initial_pose[i : i + step])
            )
            for i in range(0, emg.shape[0], step)
        ]
        return np.concatenate(out).astype(np.float32, copy=False)


# One jitted function per kind, shared by all models: the config is static (hashable), so jit keeps
# one executable per (config, input shape).
_FORWARD = jax.jit(pose_modules.pose_forward, static_argnums=(0,))
_FEATURES = jax.jit(pose_modules.features, static_argnums=(0,))


@functools.partial(jax.jit, static_argnums=(0,))
def _emg2pose_predict(config: PoseModelConfig, variables: dict, emg: jax.Array, initial_pos: jax.Array) -> jax.Array:
    raw = pose_modules.predict_pose(config, variables, emg, initial_pos)
    return pose_modules.align_predictions(raw, emg.shape[-1] - config.left_context - config.right_context)


class Emg2PoseModel(Model):
    """An emg2pose network (converted from Meta's checkpoint or trained here): kind "emg2pose".

    Besides `Model`'s interface it keeps emg2pose's own forward, ``model(emg, joint_angles,
    no_ik_failure)``, and ``features``. experiment: published experiment name or None;
    provide_initial_pos: the experiment's default for ``__call__``.
    """

    def __init__(
        self,
        config: PoseModelConfig,
        params: dict,
        experiment: str | None = None,
        provide_initial_pos: bool = False,
        metadata: Mapping[str, Any] | None = None,
        *,
        input_spec: InputSpec | None = None,
        output_spec: OutputSpec | None = None,
        path: pathlib.Path | None = None,
    ) -> None:
        default_in, default_out = emg2pose_specs(config)
        super().__init__(
            "emg2pose",
            config,
            params,
            input_spec or default_in,
            output_spec or default_out,
            {**dict(metadata or {}), "experiment": experiment, "provide_initial_pos": bool(provide_initial_pos)},
            path,
        )
        self.experiment = experiment
        self.provide_initial_pos = bool(provide_initial_pos)

    def __call__(
        self,
        emg: Any,
        joint_angles: Any,
        no_ik_failure: Any,
        provide_initial_pos: bool | None = None,
        *,
        sample_rate: float | None = None,
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """emg2pose's forward on EMG as given (no preprocessing applied).

        emg (B, 16, T), joint_angles (B, 20, T), no_ik_failure (B, T) bool ->
        (pred, target, mask): (B, 20, T − left_context), same, (B, T − left_context) bool.
        provide_initial_pos: start the rollout from the true pose at the left context
        (default: the experiment's setting). sample_rate, if given, must equal the model's (2000 Hz).
        """
        self._check_rate(sample_rate)
        emg = _as_float32("emg", emg)
        joint_angles = _as_float32("joint_angles", joint_angles)
        errors.check_array_like("no_ik_failure", no_ik_failure)
        pose_modules.check_pose_inputs(self.config, emg, joint_angles, no_ik_failure)
        errors.check_nonempty("emg", emg, 0, "example", "(batch, channels, time)")
        if provide_initial_pos is None:
            provide_initial_pos = self.provide_initial_pos
        if not isinstance(provide_initial_pos, (bool, np.bool_)):
            raise ValueError(f"provide_initial_pos: expected a bool, found {type(provide_initial_pos).__name__}")
        # provide_initial_pos is traced, so both settings share one compiled function.
        return _FORWARD(self.config, self.params, emg, joint_angles, no_ik_failure, np.bool_(provide_initial_pos))

    def features(self, emg: Any, *, sample_rate: float | None = None) -> jax.Array:
        """Network features: emg (B, 16, T) -> (B, F, T') channel-first, T' = config.network.output_length(T)."""
        self._check_rate(sample_rate)
        emg = _as_float32("emg", emg)
        pose_modules.check_emg(self.config, emg)
        errors.check_nonempty("emg", emg, 0, "example", "(batch, channels, time)")
        return _FEATURES(self.config, self.params, emg)

    def _check_rate(self, sample_rate: float | None) -> None:
        if sample_rate is not None and float(sample_rate) != float(self.config.sample_rate):
            raise ValueError(
                f"sample_rate: expected {self.config.sample_rate:g} Hz (the model's), found {sample_rate:g} Hz; "
                "resample the EMG first"
            )

    @property
    def left_context(self) -> int:
        return self.config.left_context


def _as_float32(name: str, value: Any) -> Any:
    """Checked float array, cast to float32 on its own side (NumPy stays NumPy, JAX stays JAX)."""
    errors.check_array_like(name, value)
    errors.check_float_dtype(name, value)
    if value.dtype == jnp.float32:
        return value
    return value.astype(np.float32) if isinstance(value, np.ndarray) else value.astype(jnp.float32)


# ============================================================================= kinds


@dataclasses.dataclass(frozen=True)
class BundleParts:
    """What `load_model` read, handed to a kind's ``make_model``."""

    config: Any
    variables: dict
    input_spec: InputSpec
    output_spec: OutputSpec
    metadata: dict
    path: pathlib.Path | None
    json_path: pathlib.Path


@dataclasses.dataclass(frozen=True)
class ModelKind:
    """Everything the bundle needs to know about one model kind (register with `register_kind`).

    config_type / config_from_dict / config_to_dict: its config and the JSON round trip.
    abstract_variables(config, references) -> the pytree of ``jax.ShapeDtypeStruct`` its variables
    must match (``references``: names of parts stored in other bundles, left out).
    predict(model, emg (B, C, T) preprocessed float32, initial_pose (B, 20) | None) -> array.
    min_samples(model) / min_samples_why(model): shortest window and why (for the error message).
    takes_initial_pose: whether predict accepts an initial pose (a tracking rollout).
    make_model(parts) -> Model: the object to return (a subclass, or checks of kind-specific metadata).
    init_stream / stream_step: optional streaming hooks (none implemented yet).
    """

    name: str
    config_type: type
    config_from_dict: Callable[[Mapping[str, Any]], Any]
    config_to_dict: Callable[[Any], dict]
    abstract_variables: Callable[[Any, frozenset[str]], Any]
    predict: Callable[[Model, np.ndarray, np.ndarray | None], Any]
    min_samples: Callable[[Model], int]
    min_samples_why: Callable[[Model], str]
    takes_initial_pose: bool = False
    make_model: Callable[[BundleParts], Model] | None = None
    init_stream: Callable[..., Any] | None = None
    stream_step: Callable[..., Any] | None = None


KINDS: dict[str, ModelKind] = {}


def register_kind(kind: ModelKind) -> ModelKind:
    """Add (or replace) a model kind: the one place a new kind plugs in."""
    KINDS[kind.name] = kind
    return kind


# ----------------------------------------------------------------------------- emg2pose


def _emg2pose_abstract(config: PoseModelConfig, references: frozenset[str]) -> Any:
    return jax.eval_shape(lambda: pose_modules.init_variables(config, jax.random.key(0)))


def _zeros_pose(emg: np.ndarray) -> np.ndarray:
    return np.zeros((emg.shape[0], 20), np.float32)


def _emg2pose_kind_predict(model: Model, emg: np.ndarray, initial_pose: np.ndarray | None) -> Any:
    start = _zeros_pose(emg) if initial_pose is None else initial_pose
    return _emg2pose_predict(model.config, model.params, emg, start)


def _emg2pose_make(parts: BundleParts) -> Model:
    meta = parts.metadata
    provide_initial_pos = meta.get("provide_initial_pos", False)
    if not isinstance(provide_initial_pos, bool):
        raise BundleError(f"{parts.json_path}: expected a boolean 'provide_initial_pos', found {provide_initial_pos!r}")
    experiment = meta.get("experiment")
    if experiment is not None and not isinstance(experiment, str):
        raise BundleError(f"{parts.json_path}: expected 'experiment' to be a name or null, found {experiment!r}")
    return Emg2PoseModel(
        parts.config,
        parts.variables,
        experiment,
        provide_initial_pos,
        meta,
        input_spec=parts.input_spec,
        output_spec=parts.output_spec,
        path=parts.path,
    )


register_kind(
    ModelKind(
        name="emg2pose",
        config_type=PoseModelConfig,
        config_from_dict=PoseModelConfig.from_dict,
        config_to_dict=lambda c: c.to_dict(),
        abstract_variables=_emg2pose_abstract,
        predict=_emg2pose_kind_predict,
        min_samples=lambda m: m.config.min_window_length(),
        min_samples_why=lambda m: (
            f"left context {m.config.left_context} + right context {m.config.right_context} + one output step"
        ),
        takes_initial_pose=True,
        make_model=_emg2pose_make,
    )
)


# ----------------------------------------------------------------------------- direct


def _direct_config_type() -> type[Config]:
    from emgjax.models.direct import DirectConfig

    return DirectConfig


@functools.lru_cache(maxsize=8)
def _direct_apply(config: Any) -> Callable[[dict, Any], jax.Array]:
    from emgjax.models.direct import DirectModel

    model = DirectModel(config)

    @jax.jit
    def apply(variables: dict, emg: jax.Array) -> jax.Array:
        pose, _ = model.apply(variables, emg, train=False)
        return pose

    return apply


def _direct_abstract(config: Any, references: frozenset[str]) -> Any:
    from emgjax.models.direct import DirectModel

    emg = jnp.zeros((1, config.in_channels, config.time_stride), jnp.float32)
    return jax.eval_shape(lambda: DirectModel(config).init({"params": jax.random.key(0)}, emg, train=False))


def _direct_predict(model: Model, emg: np.ndarray, initial_pose: np.ndarray | None) -> np.ndarray:
    """Network output mapped back to target units: (B, *pose) or (B, T', *pose)."""
    pose = np.asarray(_direct_apply(model.config)(model.params, emg))
    if model.config.mode == "sequence":
        pose = np.moveaxis(pose, -1, 1)  # (B, T', *pose)
    post = model.output_spec.postprocessing or {}
    if "scale" in post:
        pose = pose * np.float32(post["scale"]) + np.asarray(post["mean"], np.float32)
    return pose


def direct_specs(
    config: Any,
    sample_rate: float,
    *,
    notch_hz: float | None,
    band_hz: tuple[float, float] | None,
    normalisation: Mapping[str, Any],
    target: Mapping[str, Any],
) -> tuple[InputSpec, OutputSpec]:
    """Specs of a direct model trained by `emgjax.recipes.direct` (target: its target statistics)."""
    joints = config.output == "joints"
    pre = Preprocessing(notch_hz, band_hz, normalisation["mean"], normalisation["std"])
    post = {k: target[k] for k in ("kind", "centre_on_wrist", "mean", "scale")}
    what = {"joints": "joints", "mano": "mano_theta", "angles": "joint_angles"}[config.output]
    common = (what, config.output_shape, "mm" if joints else "rad")
    if config.mode == "last":
        out = OutputSpec(*common, None, "window_end", 0.0, post)
    else:
        stride = config.time_stride
        out = OutputSpec(*common, float(sample_rate) / stride, "sample", (stride - 1) / float(sample_rate), post)
    return InputSpec(config.in_channels, float(sample_rate), "uV", pre), out


register_kind(
    ModelKind(
        name="direct",
        config_type=_direct_config_type(),
        config_from_dict=lambda d: _direct_config_type().from_dict(dict(d)),
        config_to_dict=lambda c: c.to_dict(),
        abstract_variables=_direct_abstract,
        predict=_direct_predict,
        min_samples=lambda m: m.config.time_stride,
        min_samples_why=lambda m: "one LSTM step",
    )
)


# ----------------------------------------------------------------------------- adapter pipeline


@functools.lru_cache(maxsize=8)
def _adapter_pipeline(config: AdapterModelConfig) -> Any:
    from emgjax.models.adapter.pipeline import AdapterPipeline

    return AdapterPipeline(config.pipeline, config.emg2pose)


@functools.lru_cache(maxsize=8)
def _adapter_apply(config: AdapterModelConfig) -> Callable[[dict, Any, Any], jax.Array]:
    pipeline = _adapter_pipeline(config)
    key = "angles" if config.pipeline.mano_head is None else "mano_theta"

    @jax.jit
    def apply(variables: dict, emg: jax.Array, initial_pos: jax.Array) -> jax.Array:
        outputs, _ = pipeline(variables, emg, initial_pos)
        return outputs[key]

    return apply


def _adapter_abstract(config: AdapterModelConfig, references: frozenset[str]) -> Any:
    pipeline = _adapter_pipeline(config)

    def init() -> dict:
        key = jax.random.key(0)
        return pipeline.init(key, pose_modules.init_variables(config.emg2pose, key))

    abstract = jax.eval_shape(init)
    if "emg2pose" in references:
        abstract = {name: {k: v for k, v in tree.items() if k != "emg2pose"} for name, tree in abstract.items()}
    return abstract


def _adapter_predict(model: Model, emg: np.ndarray, initial_pose: np.ndarray | None) -> Any:
    start = _zeros_pose(emg) if initial_pose is None else initial_pose
    return _adapter_apply(model.config)(model.params, emg, start)


def adapter_specs(
    config: AdapterModelConfig, normalisation: Mapping[str, Any] | None = None
) -> tuple[InputSpec, OutputSpec]:
    """Specs of an adapter pipeline: MindRove EMG in; angles (or MANO theta) at the emg2pose rate out."""
    pipe, pose = config.pipeline, config.emg2pose
    norm = dict(normalisation or {})
    rate = float(pipe.output_rate)
    head = pipe.mano_head
    return (
        InputSpec(
            pipe.adapter.in_channels,
            float(pipe.input_rate),
            "uV",
            Preprocessing(mean=norm.get("mean"), std=norm.get("std")),
        ),
        OutputSpec(
            "mano_theta" if head is not None else "joint_angles",
            (head.out_features,) if head is not None else (pose.num_joints,),
            "rad",
            rate,
            "sample",
            pose.left_context / rate,
        ),
    )


register_kind(
    ModelKind(
        name="adapter_pipeline",
        config_type=AdapterModelConfig,
        config_from_dict=AdapterModelConfig.from_dict,
        config_to_dict=lambda c: c.to_dict(),
        abstract_variables=_adapter_abstract,
        predict=_adapter_predict,
        min_samples=lambda m: _adapter_pipeline(m.config).min_input_length(),
        min_samples_why=lambda m: (
            f"at {m.config.pipeline.input_rate:g} Hz: emg2pose left context {m.config.emg2pose.left_context} at "
            f"{m.config.pipeline.output_rate:g} Hz + one output step"
        ),
        takes_initial_pose=True,
    )
)


# ============================================================================= writing


def _flatten(tree: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    if isinstance(tree, Mapping):
        for key, value in tree.items():
            yield from _flatten(value, (*prefix, str(key)))
    else:
        yield "/".join(prefix), tree


def _drop_empty(tree: Any) -> Any:
    """The pytree without empty sub-dicts (Orbax does not store them; loading tolerates their absence)."""
    if not isinstance(tree, Mapping):
        return tree
    kept = {k: _drop_empty(v) for k, v in tree.items()}
    return {k: v for k, v in kept.items() if not (isinstance(v, dict) and not v)}


def _shape_problems(expected: Any, found: Any) -> list[str]:
    want = {path: tuple(np.shape(v)) for path, v in _flatten(expected)}
    have = {path: tuple(np.shape(v)) for path, v in _flatten(found)}
    problems = [f"missing {p} (expected {s})" for p, s in want.items() if p not in have]
    problems += [f"unexpected {p} {s}" for p, s in have.items() if p not in want]
    problems += [f"{p}: expected {s}, found {have[p]}" for p, s in want.items() if p in have and have[p] != s]
    return problems


def _summarise(problems: list[str]) -> str:
    return "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")


def _staging_dir(out_dir: pathlib.Path) -> pathlib.Path:
    """A new empty directory beside `out_dir` (same file system, so publishing it is one rename)."""
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        return pathlib.Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    except OSError as exc:
        raise ValueError(
            f"{out_dir}: cannot write the model directory ({exc.strerror or exc} in {out_dir.parent})"
        ) from exc


def _publish(staging: pathlib.Path, out_dir: pathlib.Path) -> None:
    """Move the finished `staging` directory to `out_dir`, replacing an empty or existing one."""
    if not out_dir.exists() or not any(out_dir.iterdir()):
        os.replace(staging, out_dir)  # atomic, also over an empty directory
        return
    # A non-empty directory cannot be renamed over: move it aside first, put it back if the second rename fails.
    old = pathlib.Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".old", dir=out_dir.parent))
    os.replace(out_dir, old)
    try:
        os.replace(staging, out_dir)
    except OSError:
        os.replace(old, out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


def is_bundle(directory: str | os.PathLike[str]) -> bool:
    """Whether ``directory`` holds a model (a bundle, or an older emgjax-emg2pose directory)."""
    directory = pathlib.Path(directory)
    return (directory / BUNDLE_FILE).is_file() or (
        (directory / LEGACY_CONFIG_FILE).is_file() and (directory / VARIABLES_DIR).is_dir()
    )


def _write_variables(path: pathlib.Path, variables: Any) -> None:
    import orbax.checkpoint as ocp

    checkpointer = ocp.Checkpointer(ocp.StandardCheckpointHandler())
    try:
        checkpointer.save(path, args=ocp.args.StandardSave(variables))
    finally:
        checkpointer.close()


def save_model(
    directory: str | os.PathLike[str],
    kind: str,
    config: Any,
    variables: Mapping[str, Any],
    *,
    input_spec: InputSpec,
    output_spec: OutputSpec,
    metadata: Mapping[str, Any] | None = None,
    references: Mapping[str, Mapping[str, Any]] | None = None,
    overwrite: bool = False,
) -> pathlib.Path:
    """Write a model bundle to ``directory`` atomically; returns its absolute path.

    The one writer of the format (`emgjax convert`, the recipes, the adapter pipelines).
    variables: the pytree {"params", ["batch_stats"]} (JAX or NumPy), checked against the shapes
    ``config`` builds before anything is written. An existing bundle in ``directory`` is replaced;
    any other non-empty directory only with ``overwrite=True``. ``metadata`` gets
    ``emgjax_version`` and ``num_params`` added. ``references``: parts stored in other bundles
    (see `save_adapter_pipeline`).
    """
    from emgjax._version import __version__

    if kind not in KINDS:
        raise BundleError(f"model kind: expected one of {sorted(KINDS)}, found {kind!r}")
    record = KINDS[kind]
    if not isinstance(config, record.config_type):
        raise BundleError(f"{kind} config: expected a {record.config_type.__name__}, found {type(config).__name__}")
    directory = pathlib.Path(directory).absolute()
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"{directory}: expected a directory for the model, found a file")
    if directory.is_dir() and any(directory.iterdir()) and not is_bundle(directory) and not overwrite:
        raise ValueError(
            f"{directory}: expected a new, empty or model directory to write the model to, found other files "
            "(pass overwrite=True to replace them)"
        )
    host = _drop_empty(jax.tree_util.tree_map(lambda x: np.asarray(jax.device_get(x), np.float32), dict(variables)))
    problems = _shape_problems(_drop_empty(record.abstract_variables(config, frozenset(references or ()))), host)
    if problems:
        raise BundleError(f"{directory}: the {kind} variables do not match its config: {_summarise(problems)}")
    info = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "config": record.config_to_dict(config),
        "input_spec": input_spec.to_dict(),
        "output_spec": output_spec.to_dict(),
        "metadata": {
            "emgjax_version": __version__,
            "num_params": int(sum(np.size(x) for x in jax.tree_util.tree_leaves(host.get("params", {})))),
            **dict(metadata or {}),
        },
    }
    if references:
        info["references"] = {name: dict(ref) for name, ref in references.items()}
    text = json.dumps(info, indent=2, allow_nan=False) + "\n"  # fails before anything is written
    staging = _staging_dir(directory)
    try:
        _write_variables(staging / VARIABLES_DIR, host)
        (staging / BUNDLE_FILE).write_text(text)
        _publish(staging, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already unless something failed
    return directory


def bundle_checksum(directory: str | os.PathLike[str]) -> str:
    """sha256 over a bundle's bundle.json and every file under variables/ (names and bytes, sorted)."""
    directory = pathlib.Path(directory)
    digest = hashlib.sha256()
    files = [directory / BUNDLE_FILE, *sorted(p for p in (directory / VARIABLES_DIR).rglob("*") if p.is_file())]
    for path in files:
        digest.update(str(path.relative_to(directory)).encode() + b"\0")
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def save_adapter_pipeline(
    directory: str | os.PathLike[str],
    pipeline_config: Any,
    emg2pose_config: PoseModelConfig,
    variables: Mapping[str, Any],
    *,
    emg2pose_ref: str | os.PathLike[str] | None = None,
    normalisation: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> pathlib.Path:
    """Save an `AdapterPipeline`'s variables with the frozen emg2pose they were trained against.

    variables: {"params": {"adapter", "emg2pose", ["mano_head"]}, "batch_stats": {...}} (as
    ``AdapterPipeline.init`` makes). The emg2pose part is embedded, unless ``emg2pose_ref`` names
    an emg2pose bundle holding exactly those variables: then only the adapter part is written and
    bundle.json records the reference's path (relative to ``directory``) and checksum, both checked
    on load. normalisation: {"mean", "std"} (8 values) the pipeline's input is z-scored with.
    """
    config = AdapterModelConfig(pipeline_config, emg2pose_config)
    variables = {name: dict(tree) for name, tree in variables.items()}
    references = None
    if emg2pose_ref is not None:
        ref_dir = pathlib.Path(emg2pose_ref).absolute()
        frozen = load_pretrained(ref_dir)
        if frozen.config != emg2pose_config:
            raise BundleError(f"{ref_dir}: expected the emg2pose the adapter was trained against, found another config")
        mine = {
            "params": variables["params"].get("emg2pose", {}),
            "batch_stats": variables.get("batch_stats", {}).get("emg2pose", {}),
        }
        same = jax.tree_util.tree_map(
            lambda a, b: bool(np.array_equal(np.asarray(a), np.asarray(b))),
            _drop_empty(mine),
            _drop_empty(frozen.params),
        )
        if not all(jax.tree_util.tree_leaves(same)):
            raise BundleError(f"{ref_dir}: expected the emg2pose weights the adapter was trained against, found others")
        target = pathlib.Path(directory).absolute()
        references = {
            "emg2pose": {
                "path": os.path.relpath(ref_dir, target),
                "sha256": bundle_checksum(ref_dir),
                "format": FORMAT_NAME,
                "format_version": FORMAT_VERSION,
            }
        }
        variables = {name: {k: v for k, v in tree.items() if k != "emg2pose"} for name, tree in variables.items()}
    input_spec, output_spec = adapter_specs(config, normalisation)
    return save_model(
        directory,
        "adapter_pipeline",
        config,
        variables,
        input_spec=input_spec,
        output_spec=output_spec,
        metadata=metadata,
        references=references,
        overwrite=overwrite,
    )


# ============================================================================= reading

# What StandardCheckpointHandler writes into variables/ besides the array data.
_ORBAX_FILES = ("_METADATA", "_CHECKPOINT_METADATA")
# Orbax restores all arrays concurrently through tensorstore. When one read fails, Orbax
# closes its event loop while the other reads are still in flight; each of those then
# reports, as an "unraisable" RuntimeError with a traceback, that it could not deliver its
# result ("Event loop is closed"; "cannot schedule new futures after interpreter shutdown"
# at exit). They are about reads whose result nobody wants, after the one BundleError
# that matters, so this hook drops exactly those and passes every other report on.
_ORPHANED_READ_ERRORS = ("Event loop is closed", "cannot schedule new futures")


def _drop_orphaned_read_errors() -> None:
    previous = sys.unraisablehook
    if getattr(previous, "emgjax_orphaned_read_filter", False):
        return

    def hook(unraisable: Any) -> None:
        exc = unraisable.exc_value
        if isinstance(exc, RuntimeError) and str(exc).startswith(_ORPHANED_READ_ERRORS):
            return
        previous(unraisable)

    hook.emgjax_orphaned_read_filter = True  # type: ignore[attr-defined]
    sys.unraisablehook = hook


# The reads still in flight when one fails may also end with their own exception, which
# asyncio logs later as "Task exception was never retrieved". Those name the variables
# folder that a BundleError has already reported; drop exactly those records.
_REPORTED_VARIABLE_DIRS: set[str] = set()


class _ReportedReadFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None or not str(record.msg).startswith("Task exception was never retrieved"):
            return True
        text = str(exc)
        return not any(path in text for path in _REPORTED_VARIABLE_DIRS)


_ASYNCIO_FILTER = _ReportedReadFilter()


def _orbax_failure(variables_path: pathlib.Path, exc: BaseException) -> BundleError:
    """One readable line for a failed Orbax restore; later reports of the same reads are silenced."""
    _REPORTED_VARIABLE_DIRS.add(str(variables_path))
    asyncio_logger = logging.getLogger("asyncio")
    if _ASYNCIO_FILTER not in asyncio_logger.filters:
        asyncio_logger.addFilter(_ASYNCIO_FILTER)
    # tensorstore appends its whole JSON spec to the message: keep the part a person reads.
    message = " ".join(str(exc).split()).split(" [tensorstore_spec", 1)[0]
    return BundleError(
        f"{variables_path}: could not restore the Orbax checkpoint ({type(exc).__name__}: {message[:300]})"
    )


def _check_version(path: pathlib.Path, data: Mapping[str, Any], name: str) -> None:
    if data.get("format") != name:
        raise BundleError(f"{path}: expected format {name!r}, found {data.get('format')!r}")
    version = data.get("format_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        written_by = data.get("metadata", {}).get("emgjax_version") if isinstance(data.get("metadata"), dict) else None
        raise BundleError(
            f"{path}: expected format_version {FORMAT_VERSION}, found {version} (written by a newer emgjax, "
            f"{written_by or data.get('emgjax_version') or 'unknown version'}); upgrade emgjax"
        )
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise BundleError(f"{path}: expected format_version {FORMAT_VERSION}, found {version!r}")


def _legacy_info(path: pathlib.Path, data: dict) -> dict:
    """An "emgjax-emg2pose" v1 config.json as the bundle.json it stands for."""
    _check_version(path, data, LEGACY_FORMAT_NAME)
    if "model" not in data:
        raise BundleError(f"{path}: expected a valid 'model' config, found none")
    metadata = {k: v for k, v in data.items() if k not in ("format", "format_version", "model")}
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "kind": "emg2pose",
        "config": data["model"],
        "metadata": metadata,
    }


def read_bundle_info(directory: str | os.PathLike[str]) -> tuple[pathlib.Path, dict]:
    """(path of the JSON read, its contents as a bundle.json) of a model directory, weights not read.

    Checks the format and version; older "emgjax-emg2pose" config.json directories read as kind emg2pose.
    """
    directory = pathlib.Path(directory).absolute()
    if not directory.exists():
        raise FileNotFoundError(
            f"{directory}: no such model directory (create one with `emgjax convert` or a training recipe)"
        )
    if not directory.is_dir():
        raise BundleError(f"{directory}: expected a model directory, found a file")
    path = directory / BUNDLE_FILE
    if path.is_file():
        data = errors.read_json_object(path, "the model's description", BundleError)
        _check_version(path, data, FORMAT_NAME)
        return path, data
    legacy = directory / LEGACY_CONFIG_FILE
    if legacy.is_file():
        data = errors.read_json_object(legacy, "the model's description", BundleError)
        if data.get("format") == LEGACY_FORMAT_NAME:
            return legacy, _legacy_info(legacy, data)
    raise BundleError(f"{path}: expected the model's {BUNDLE_FILE}, found none")


def read_config(directory: str | os.PathLike[str], *, kind: str | None = None) -> Any:
    """A model directory's config object, without reading the weights (kind: refuse another kind)."""
    json_path, info = read_bundle_info(directory)
    found = info.get("kind")
    if found not in KINDS:
        raise BundleError(f"{json_path}: expected a model kind among {sorted(KINDS)}, found {found!r}")
    if kind is not None and found != kind:
        raise BundleError(f"{json_path}: expected a {kind} model, found a {found} model")
    try:
        return KINDS[found].config_from_dict(info["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{json_path}: expected a valid {found} config, found: {exc}") from exc


def _restore(variables_path: pathlib.Path) -> dict:
    import orbax.checkpoint as ocp

    if not variables_path.is_dir():
        raise BundleError(f"{variables_path}: expected the Orbax variables directory, found none")
    # Check the structure before Orbax opens it: a missing piece then gets a plain message.
    missing = [name for name in _ORBAX_FILES if not (variables_path / name).is_file()]
    if missing:
        raise BundleError(
            f"{variables_path}: expected an Orbax checkpoint with {', '.join(_ORBAX_FILES)}, "
            f"found no {', '.join(missing)} (an incomplete or damaged copy)"
        )
    _drop_orphaned_read_errors()
    checkpointer = ocp.Checkpointer(ocp.StandardCheckpointHandler())
    try:
        return dict(checkpointer.restore(variables_path))
    except Exception as exc:  # Orbax raises many types for damaged files; report them as one error
        raise _orbax_failure(variables_path, exc) from exc
    finally:
        checkpointer.close()


def _resolve_references(directory: pathlib.Path, json_path: pathlib.Path, info: dict, variables: dict) -> dict:
    """Splice referenced parts (so far: an adapter pipeline's emg2pose) into ``variables``."""
    references = info.get("references") or {}
    if not isinstance(references, dict) or set(references) - {"emg2pose"}:
        raise BundleError(f"{json_path}: expected references among ['emg2pose'], found {references!r}")
    ref = references.get("emg2pose")
    if ref is None:
        return variables
    if not isinstance(ref, dict) or not isinstance(ref.get("path"), str):
        raise BundleError(f"{json_path}: expected the emg2pose reference as {{path, sha256}}, found {ref!r}")
    ref_dir = (directory / ref["path"]).resolve()
    if (ref.get("format"), ref.get("format_version")) != (FORMAT_NAME, FORMAT_VERSION):
        raise BundleError(
            f"{json_path}: expected a reference to a {FORMAT_NAME!r} v{FORMAT_VERSION} bundle, found "
            f"{ref.get('format')!r} v{ref.get('format_version')!r}"
        )
    if not (ref_dir / BUNDLE_FILE).is_file():
        raise BundleError(f"{json_path}: the referenced emg2pose bundle {ref_dir} is missing")
    if bundle_checksum(ref_dir) != ref.get("sha256"):
        raise BundleError(
            f"{json_path}: the referenced emg2pose bundle {ref_dir} changed since the adapter was saved "
            "(sha256 differs); expected the emg2pose it was trained against"
        )
    frozen = load_pretrained(ref_dir)
    if frozen.config != KINDS["adapter_pipeline"].config_from_dict(info["config"]).emg2pose:
        raise BundleError(f"{json_path}: the referenced emg2pose {ref_dir} has another config than the adapter's")
    params = dict(variables.get("params", {}), emg2pose=frozen.params["params"])
    stats = dict(variables.get("batch_stats", {}), emg2pose=frozen.params.get("batch_stats", {}))
    return {"params": params, "batch_stats": stats}


def resolve_model_dir(path: str | os.PathLike[str]) -> pathlib.Path:
    """``path`` if it is a model directory, else ``path/model`` (where a training run exports its model)."""
    path = pathlib.Path(path)
    return path if is_bundle(path) or not (path / "model").is_dir() else path / "model"


def load_model(directory: str | os.PathLike[str], *, kind: str | None = None) -> Model:
    """Load any model directory (a bundle, or an older `emgjax convert` directory).

    kind: if given, refuse a model of another kind. Returns a `Model` (an `Emg2PoseModel` for
    kind "emg2pose"). Raises FileNotFoundError for a missing directory and `BundleError` (a
    ValueError) naming the file for everything else.
    """
    config = read_config(directory, kind=kind)
    json_path, info = read_bundle_info(directory)
    directory = json_path.parent
    found = info["kind"]
    record = KINDS[found]
    try:
        if "input_spec" in info:
            input_spec, output_spec = InputSpec.from_dict(info["input_spec"]), OutputSpec.from_dict(info["output_spec"])
        else:  # an older emgjax-emg2pose directory
            input_spec, output_spec = emg2pose_specs(config, info["metadata"].get("emg_norm"))
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{json_path}: expected a valid {found} config and specs, found: {exc}") from exc
    metadata = info.get("metadata", {})
    if not isinstance(metadata, dict):
        raise BundleError(f"{json_path}: expected 'metadata' to be a JSON object, found {type(metadata).__name__}")

    variables_path = directory / VARIABLES_DIR
    restored = _restore(variables_path)
    references = frozenset(info.get("references") or ())
    # Orbax does not check shapes against a target, so compare against the config here.
    problems = _shape_problems(_drop_empty(record.abstract_variables(config, references)), restored)
    if problems:
        raise BundleError(f"{variables_path}: variables do not match {json_path.name}: {_summarise(problems)}")
    non_finite = [path for path, value in _flatten(restored) if not np.isfinite(np.asarray(value)).all()]
    if non_finite:
        raise BundleError(
            f"{variables_path}: expected finite weights, found NaN/Inf in {len(non_finite)} "
            f"variable(s), first {non_finite[0]}"
        )
    variables = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float32), restored)
    variables = _resolve_references(directory, json_path, info, variables)
    parts = BundleParts(config, variables, input_spec, output_spec, metadata, directory, json_path)
    if record.make_model is not None:
        return record.make_model(parts)
    return Model(found, config, variables, input_spec, output_spec, metadata, directory)


def load_pretrained(directory: str | os.PathLike[str]) -> Emg2PoseModel:
    """Load an emg2pose model (from `emgjax convert` or trained here); refuses other kinds."""
    model = load_model(directory, kind="emg2pose")
    assert isinstance(model, Emg2PoseModel)
    return model
