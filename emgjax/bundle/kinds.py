"""The three model kinds a bundle holds (emg2pose, direct, adapter_pipeline): each registered once here.

A new kind plugs in with one `register_kind` call (see `emgjax.bundle.model.ModelKind`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from emgjax.bundle.model import (
    BundleError,
    BundleParts,
    Emg2PoseModel,
    InputSpec,
    Model,
    ModelKind,
    OutputSpec,
    Preprocessing,
    _emg2pose_predict,
    register_kind,
)
from emgjax.config import Config
from emgjax.models import pose_modules
from emgjax.models.adapter.pipeline import AdapterModelConfig
from emgjax.models.configs import PoseModelConfig

# ============================================================================= model


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


def _streaming_module(config: Any) -> Any:
    """The `emgjax.models.streaming` module of an emg2pose or adapter config (both roll out a pose)."""
    from emgjax.models.streaming import adapter, emg2pose

    return adapter if isinstance(config, AdapterModelConfig) else emg2pose


def _rollout_stream_init(model: Model, batch: int, chunk: int, initial_pose: np.ndarray | None) -> Any:
    start = None if initial_pose is None else jnp.asarray(initial_pose)
    return _streaming_module(model.config).init_stream_state(model.config, model.params, batch, chunk, start)


def _rollout_stream_step(model: Model) -> Callable[[Any, Any, jax.Array], tuple[Any, jax.Array, jax.Array]]:
    config, module = model.config, _streaming_module(model.config)
    return lambda params, state, chunk: module.stream_step(config, params, state, chunk)


@functools.partial(jax.jit, static_argnums=(0,))
def _rollout_twin(config: Any, variables: dict, emg: jax.Array, start: jax.Array) -> jax.Array:
    return _streaming_module(config).predict_streaming_offline(config, variables, emg, start)


def _rollout_predict_streaming(model: Model, emg: np.ndarray, initial_pose: np.ndarray | None) -> Any:
    start = _zeros_pose(emg) if initial_pose is None else initial_pose
    return _rollout_twin(model.config, model.params, emg, start)


def _emg2pose_stream_rate(model: Model) -> float:
    from emgjax.models.streaming import emg2pose as streaming

    config = model.config
    streaming.init_stream_state(config, model.params, 1, 1)  # refuses networks that do not stream, clearly
    step = int(getattr(config.network, "stride", 1)) if config.kind == "pose" else streaming.rollout_hop(config)
    return float(config.sample_rate) / step


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
        stream_init=_rollout_stream_init,
        stream_step=_rollout_stream_step,
        predict_streaming=_rollout_predict_streaming,
        stream_rate=_emg2pose_stream_rate,
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


def _direct_windows(model: Model) -> tuple[int, int] | None:
    """(window, hop) of a mode-"last" model: it streams by windows, one pose per ``hop`` new samples from
    the last ``window`` (what it was trained on: a window's last pose); None for mode "sequence"."""
    if model.config.mode != "last":
        return None
    data = model.metadata.get("data") or {}
    window, hop = data.get("window_length"), data.get("eval_stride") or data.get("stride")
    if not isinstance(window, int) or not isinstance(hop, int) or window < 1 or hop < 1:
        raise ValueError(
            f"streaming: a mode-'last' direct model streams by windows, and its bundle must record the training "
            f"window (metadata data.window_length and data.eval_stride), found {data or 'none'}"
        )
    return window, hop


class _WindowState(NamedTuple):
    """The last ``window - 1`` preprocessed samples (B, C, window - 1) and the samples seen so far."""

    tail: jax.Array
    seen: jax.Array


def _direct_stream_init(model: Model, batch: int, chunk: int, initial_pose: np.ndarray | None) -> Any:
    windows = _direct_windows(model)
    if windows is not None:
        channels = model.input_spec.channels
        return _WindowState(jnp.zeros((batch, channels, windows[0] - 1), jnp.float32), jnp.zeros((), jnp.int32))
    from emgjax.models.streaming import direct as streaming

    return streaming.init_stream_state(model.config, model.params, batch, chunk)


def _direct_target(model: Model) -> tuple[jax.Array, jax.Array] | None:
    """(scale, mean (*pose, 1)): standardised network outputs back to target units, or None."""
    post = model.output_spec.postprocessing or {}
    if "scale" not in post:
        return None
    return jnp.float32(post["scale"]), jnp.asarray(post["mean"], jnp.float32)[..., None]


def _first_window_end(seen: Any, window: int, hop: int) -> Any:
    """The first window end after ``seen`` samples: a multiple of ``hop``, at least ``window``."""
    return jnp.maximum((seen // hop + 1) * hop, -(-window // hop) * hop)


def _windowed_step(model: Model) -> Callable[[Any, Any, jax.Array], tuple[Any, jax.Array, jax.Array]]:
    """Mode "last": each chunk completes the windows ending at multiples of ``hop`` inside it."""
    window, hop = _direct_windows(model) or (0, 0)
    apply = _direct_apply(model.config)

    def step(params: Any, state: _WindowState, chunk: jax.Array) -> tuple[Any, jax.Array, jax.Array]:
        batch, channels, n = chunk.shape
        k_max = n // hop + 1
        frames = jnp.concatenate([state.tail, chunk], axis=-1)  # samples seen - window + 1 .. seen + n - 1
        ends = _first_window_end(state.seen, window, hop) + hop * jnp.arange(k_max)
        starts = ends - state.seen - 1  # where each window starts in `frames`
        windows = jax.vmap(lambda s: jax.lax.dynamic_slice_in_dim(frames, s, window, axis=2))(starts)
        poses = apply(params, windows.reshape(k_max * batch, channels, window))  # (k_max B, *pose)
        poses = jnp.moveaxis(poses.reshape(k_max, batch, *poses.shape[1:]), 0, -1)  # (B, *pose, k_max)
        valid = jnp.broadcast_to(ends <= state.seen + n, (batch, k_max))
        return _WindowState(frames[..., frames.shape[-1] - (window - 1) :], state.seen + n), poses, valid

    return step


def _direct_stream_step(model: Model) -> Callable[[Any, Any, jax.Array], tuple[Any, jax.Array, jax.Array]]:
    from emgjax.models.streaming import direct as streaming

    config, target = model.config, _direct_target(model)
    windowed = _windowed_step(model) if _direct_windows(model) is not None else None

    def step(params: Any, state: Any, chunk: jax.Array) -> tuple[Any, jax.Array, jax.Array]:
        if windowed is not None:
            state, poses, valid = windowed(params, state, chunk)
        else:
            state, poses, valid = streaming.stream_step(config, params, state, chunk)
        if target is not None:
            poses = poses * target[0] + target[1]
        return state, poses, valid

    return step


@functools.partial(jax.jit, static_argnums=(0,))
def _direct_twin(config: Any, variables: dict, emg: jax.Array) -> jax.Array:
    from emgjax.models.streaming import direct as streaming

    return streaming.predict_streaming_offline(config, variables, emg)


def _direct_predict_streaming(model: Model, emg: np.ndarray, initial_pose: np.ndarray | None) -> Any:
    windows = _direct_windows(model)
    if windows is None:
        poses = _direct_twin(model.config, model.params, emg)
    else:
        window, hop = windows
        ends = np.arange(int(_first_window_end(0, window, hop)), emg.shape[-1] + 1, hop)
        if len(ends) == 0:
            raise ValueError(f"emg: expected at least {window} samples (one window), found {emg.shape[-1]}")
        stacked = np.stack([emg[..., end - window : end] for end in ends])  # (n, B, C, window)
        out = np.asarray(_direct_apply(model.config)(model.params, stacked.reshape(-1, *stacked.shape[2:])))
        poses = np.moveaxis(out.reshape(len(ends), emg.shape[0], *out.shape[1:]), 0, -1)
    target = _direct_target(model)
    return poses if target is None else poses * target[0] + target[1]


def _direct_stream_rate(model: Model) -> float:
    windows = _direct_windows(model)
    return model.input_spec.sample_rate / (model.config.time_stride if windows is None else windows[1])


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
        stream_init=_direct_stream_init,
        stream_step=_direct_stream_step,
        predict_streaming=_direct_predict_streaming,
        stream_rate=_direct_stream_rate,
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


def _adapter_streamable(model: Model) -> None:
    if model.config.pipeline.mano_head is not None:
        raise ValueError("streaming: an adapter pipeline with a MANO head does not stream (its angles do)")


def _adapter_stream_init(model: Model, batch: int, chunk: int, initial_pose: np.ndarray | None) -> Any:
    _adapter_streamable(model)
    return _rollout_stream_init(model, batch, chunk, initial_pose)


def _adapter_predict_streaming(model: Model, emg: np.ndarray, initial_pose: np.ndarray | None) -> Any:
    _adapter_streamable(model)
    return _rollout_predict_streaming(model, emg, initial_pose)


def _adapter_stream_rate(model: Model) -> float:
    from emgjax.models.streaming import emg2pose as streaming

    return float(model.config.pipeline.output_rate) / streaming.rollout_hop(model.config.emg2pose)


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
        stream_init=_adapter_stream_init,
        stream_step=_rollout_stream_step,
        predict_streaming=_adapter_predict_streaming,
        stream_rate=_adapter_stream_rate,
    )
)


# ============================================================================= writing
