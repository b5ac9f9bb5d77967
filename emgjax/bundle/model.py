"""The model object every bundle loads into, its input/output specs, and the kind registry."""

from __future__ import annotations

import dataclasses
import functools
import pathlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from emgjax import errors
from emgjax.models import pose_modules
from emgjax.models.configs import PoseModelConfig

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

    def sos(self, sample_rate: float) -> np.ndarray | None:
        """The filter's second-order sections at ``sample_rate`` (None when there is no filter)."""
        if self.notch_hz is None and self.band_hz is None:
            return None
        from emgjax.data.signal import design_emg_filter

        return design_emg_filter(sample_rate, notch_hz=self.notch_hz, band=self.band_hz)

    def apply_causal(self, emg: np.ndarray, sample_rate: float) -> np.ndarray:
        """What a stream applies: the filter causally from rest (one pass), then the z-score. (B, C, T) float32."""
        sos = self.sos(sample_rate)
        if sos is not None:
            import scipy.signal

            emg = scipy.signal.sosfilt(sos, np.asarray(emg, np.float64), axis=-1)
        return self.apply(emg, sample_rate, filtered=sos is not None)

    def apply(self, emg: np.ndarray, sample_rate: float, *, filtered: bool = False) -> np.ndarray:
        """emg (B, C, T) float -> (B, C, T) float32, filtered (zero-phase, unless ``filtered``) then z-scored."""
        if not filtered and (self.notch_hz is not None or self.band_hz is not None):
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


@flax.struct.dataclass
class StreamState:
    """A stream's whole state (a pytree): the causal filter's (B, C, 2 x sections) state or None, and
    the model kind's state; ``batch_size`` and ``chunk_samples`` are fixed for the stream (static)."""

    filter: Any
    model: Any
    batch_size: int = flax.struct.field(pytree_node=False)
    chunk_samples: int = flax.struct.field(pytree_node=False)

    if TYPE_CHECKING:

        def replace(self, **updates: Any) -> StreamState: ...


def _compile_stream_step(model: Model, chunk_samples: int) -> Callable[..., Any]:
    """One jitted ``(params, filter, kind_state, chunk) -> (filter, kind_state, poses, valid)`` for the model.

    The causal filter (chunk matrices for this chunk size), the z-score and the kind's step, in order.
    ``params``: the model's variables as `Model._stream_program` passes them, laid out for streaming once
    (`emgjax.models.streaming.prepare_variables`), so that no per-chunk work goes into the weights.
    """
    from emgjax.models.streaming.filters import chunk_filter, filter_chunk

    record = KINDS[model.kind]
    assert record.stream_step is not None
    kind_step = record.stream_step(model)
    pre = model.input_spec.preprocessing
    sos = pre.sos(model.input_spec.sample_rate)
    matrices = None if sos is None else chunk_filter(sos, chunk_samples)
    mean = None if pre.mean is None else jnp.asarray(pre.mean, jnp.float32)[:, None]
    std = None if pre.std is None else jnp.asarray(pre.std, jnp.float32)[:, None]

    @jax.jit
    def step(params: Any, filt: Any, kind_state: Any, chunk: jax.Array) -> tuple[Any, Any, jax.Array, jax.Array]:
        if matrices is not None:
            chunk, filt = filter_chunk(matrices, filt, chunk)
        if mean is not None and std is not None:
            chunk = (chunk - mean) / std
        kind_state, poses, valid = kind_step(params, kind_state, chunk)
        return filt, kind_state, poses, valid

    return step


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
        streaming: bool = False,
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

        ``streaming=True`` is the offline twin of `stream_step`: the same causal semantics (causal
        filter from rest instead of the zero-phase one, the streaming rollout), so feeding the same
        recording chunk by chunk gives the same poses. It returns (B, *output_spec.shape, n), n the
        poses a stream has emitted after T samples, at ``stream_rate`` poses per second.
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
        if streaming:
            if record.predict_streaming is None:
                raise ValueError(f"streaming: a {self.kind} model does not stream")
            if not preprocessed:
                emg = spec.preprocessing.apply_causal(emg, spec.sample_rate)
            return np.asarray(record.predict_streaming(self, emg, initial_pose), np.float32)
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

    # -- streaming ------------------------------------------------------------------------------

    @property
    def default_chunk_samples(self) -> int:
        """40 ms of input samples: the chunk a live stream feeds by default."""
        return max(1, round(0.04 * self.input_spec.sample_rate))

    @property
    def stream_rate(self) -> float:
        """Poses per second while streaming."""
        rate = KINDS[self.kind].stream_rate
        if rate is None:
            raise ValueError(f"streaming: a {self.kind} model does not stream")
        return float(rate(self))

    def init_stream(
        self, batch_size: int = 1, chunk_samples: int | None = None, initial_pose: Any = None
    ) -> StreamState:
        """A fresh stream: the causal filter at rest and the kind's state (conv buffers, LSTM carry, last pose).

        chunk_samples: the fixed chunk every `stream_step` call takes (default `default_chunk_samples`);
        initial_pose: (batch_size, 20) for kinds with a pose rollout (None = zeros).
        """
        record = KINDS[self.kind]
        if record.stream_init is None:
            raise ValueError(f"streaming: a {self.kind} model does not stream")
        chunk = self.default_chunk_samples if chunk_samples is None else chunk_samples
        for name, value in (("batch_size", batch_size), ("chunk_samples", chunk)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, found {value!r}")
        if initial_pose is not None:
            if not record.takes_initial_pose:
                raise ValueError(f"initial_pose: a {self.kind} model has no pose rollout to start; pass None")
            initial_pose = _float_input("initial_pose", initial_pose)
            errors.check_rank("initial_pose", initial_pose, 2, "(batch, joints)")
            if initial_pose.shape != (batch_size, 20):
                raise ValueError(f"initial_pose: expected shape ({batch_size}, 20), found {initial_pose.shape}")
        kind_state = record.stream_init(self, int(batch_size), int(chunk), initial_pose)
        sos = self.input_spec.preprocessing.sos(self.input_spec.sample_rate)
        filt = None if sos is None else jnp.zeros((batch_size, self.input_spec.channels, 2 * len(sos)), jnp.float32)
        return StreamState(filter=filt, model=kind_state, batch_size=int(batch_size), chunk_samples=int(chunk))

    def stream_step(self, state: StreamState, chunk: Any) -> tuple[StreamState, jax.Array, jax.Array]:
        """Feed one chunk of raw EMG: (B, input_spec.channels, chunk_samples) in ``input_spec.units``.

        Returns (state, poses (B, *output_spec.shape, k_max), valid (B, k_max) bool): the poses this
        chunk completed, valid ones first. One compiled program per chunk size serves the whole stream.
        """
        if not isinstance(state, StreamState):
            raise ValueError(f"state: expected the StreamState of init_stream, found {type(state).__name__}")
        shape = (state.batch_size, self.input_spec.channels, state.chunk_samples)
        if np.shape(chunk) != shape:
            raise ValueError(
                f"chunk: expected shape {shape} (batch, channels, chunk_samples), found {tuple(np.shape(chunk))}"
            )
        if getattr(chunk, "dtype", None) != np.float32:  # one dtype, so one program; float32 goes to jit as it is
            chunk = np.asarray(chunk, np.float32)
        step, variables = self._stream_program(state.chunk_samples)
        filt, kind_state, poses, valid = step(variables, state.filter, state.model, chunk)
        return StreamState(filt, kind_state, state.batch_size, state.chunk_samples), poses, valid

    def _stream_program(self, chunk_samples: int) -> tuple[Callable[..., Any], Any]:
        """(the compiled step for this chunk size, the variables it takes: laid out for streaming once)."""
        from emgjax.models import streaming

        cache = self.__dict__.setdefault("_stream_programs", {})
        if chunk_samples not in cache:
            cache[chunk_samples] = _compile_stream_step(self, chunk_samples)
        if "_stream_variables" not in self.__dict__:
            stream_config = isinstance(self.config, streaming.StreamConfig)
            self._stream_variables = (
                streaming.prepare_variables(self.config, self.params) if stream_config else self.params
            )
        return cache[chunk_samples], self._stream_variables


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
    Streaming (None: the kind does not stream), all on *preprocessed* EMG; the `Model` adds the causal
    filter, the z-score and the target mapping around them:
    stream_init(model, batch_size, chunk_samples, initial_pose | None) -> the kind's state pytree;
    stream_step(model) -> a pure ``step(params, state, chunk) -> (state, poses (B, *shape, k), valid (B, k))``;
    predict_streaming(model, emg, initial_pose | None) -> (B, *shape, n), the offline twin;
    stream_rate(model) -> poses per second while streaming.
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
    stream_init: Callable[[Model, int, int, np.ndarray | None], Any] | None = None
    stream_step: Callable[[Model], Callable[[Any, Any, jax.Array], tuple[Any, jax.Array, jax.Array]]] | None = None
    predict_streaming: Callable[[Model, np.ndarray, np.ndarray | None], Any] | None = None
    stream_rate: Callable[[Model], float] | None = None


KINDS: dict[str, ModelKind] = {}


def register_kind(kind: ModelKind) -> ModelKind:
    """Add (or replace) a model kind: the one place a new kind plugs in."""
    KINDS[kind.name] = kind
    return kind
