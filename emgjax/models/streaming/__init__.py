"""Stateful, jittable streaming of every model kind, with offline twins (issue 10, items 1–2).

Pure functions over ``(config, variables, state, chunk)``; the state is an
explicit pytree whose shapes never change while streaming, so one compiled
step serves the whole stream (jit with ``config`` static):

    state = init_stream_state(config, variables, batch_size, chunk_samples)
    prepared = prepare_variables(config, variables)  # once: the weight layout the step reads as it is
    state, poses, valid = stream_step(config, prepared, state, chunk)  # raw variables work too, slower

``chunk``: (B, channels, chunk_samples) at the model's input rate;
``poses``: (B, *pose_shape, k_max) and ``valid``: (B, k_max) bool, the first
valid entries being the poses this chunk completes (a fixed ``k_max`` per
chunk size; chunk sizes need not divide the model's stride).
``predict_streaming_offline`` of each kind computes the same poses over a whole
recording at once. The dispatchers here pick the kind from the config type:
`PoseModelConfig` (`emgjax.models.streaming.emg2pose`), `DirectConfig`
(`emgjax.models.streaming.direct`), `AdapterModelConfig`
(`emgjax.models.streaming.adapter`).
"""

from __future__ import annotations

from typing import Any

import jax

from emgjax.models.configs import PoseModelConfig
from emgjax.models.direct import DirectConfig
from emgjax.models.streaming import adapter, direct, emg2pose
from emgjax.models.streaming.adapter import AdapterModelConfig
from emgjax.models.streaming.buffers import StreamBuffer

StreamConfig = PoseModelConfig | DirectConfig | AdapterModelConfig


def _kind(config: Any) -> Any:
    if isinstance(config, PoseModelConfig):
        return emg2pose
    if isinstance(config, DirectConfig):
        return direct
    if isinstance(config, AdapterModelConfig):
        return adapter
    raise ValueError(
        "streaming: expected a PoseModelConfig, DirectConfig or AdapterModelConfig, found " + type(config).__name__
    )


def init_stream_state(config: StreamConfig, variables: dict, batch_size: int, chunk_samples: int) -> Any:
    """A fresh stream state for ``config``'s kind (emg2pose and adapter streams start from a zero pose;
    call the kind's own ``init_stream_state`` to give an ``initial_pose``)."""
    return _kind(config).init_stream_state(config, variables, batch_size, chunk_samples)


def prepare_variables(config: StreamConfig, variables: Any) -> Any:
    """``variables`` laid out for ``config``'s kind's stream step, once (jittable; prepared ones pass through).

    `stream_step` takes either form and computes the same poses; the prepared form spares the
    per-chunk program the weight layout work (permutations, slices, folded constants).
    """
    return _kind(config).prepare_variables(config, variables)


def stream_step(config: StreamConfig, variables: Any, state: Any, chunk: jax.Array) -> tuple[Any, jax.Array, jax.Array]:
    """One chunk through ``config``'s kind: (state, poses (B, *pose_shape, k_max), valid (B, k_max)).

    variables: the model's variables or their `prepare_variables` form.
    """
    return _kind(config).stream_step(config, variables, state, chunk)


def streaming_steps(config: StreamConfig, num_samples: int) -> int:
    """Poses a stream has emitted after ``num_samples`` input samples (the offline twin's length)."""
    return int(_kind(config).streaming_steps(config, num_samples))


def max_poses_per_chunk(config: StreamConfig, chunk_samples: int) -> int:
    """k_max, the fixed pose axis of `stream_step`'s outputs for chunks of ``chunk_samples``."""
    if isinstance(config, AdapterModelConfig):
        return emg2pose.max_poses_per_chunk(config.emg2pose, config.pipeline.upsampler.factor * chunk_samples)
    return int(_kind(config).max_poses_per_chunk(config, chunk_samples))


jit_stream_step = jax.jit(stream_step, static_argnums=0)
"""`stream_step` compiled once per (config, shapes): the function a live loop calls."""

__all__ = [
    "StreamConfig",
    "StreamBuffer",
    "AdapterModelConfig",
    "init_stream_state",
    "prepare_variables",
    "stream_step",
    "jit_stream_step",
    "streaming_steps",
    "max_poses_per_chunk",
    "emg2pose",
    "direct",
    "adapter",
]
