"""Streaming the adapter pipeline (channel adapter → upsampler → frozen emg2pose) and its offline twin.

The channel adapters "zero_fill", "duplicate", "interpolation" and "linear"
act on each time sample alone, so each chunk goes through the adapter module
as it is. The "conv" adapter ("same"-padded convolutions with BatchNorm) is
not streamed yet.

Upsamplers, by causality (input sample n makes output samples ``factor·n``
to ``factor·n + factor − 1``):

- "zero_stuff", "hold": causal; output block n needs input n only.
- "linear" (``align_corners=False``): block n interpolates towards input
  n + 1, so it waits one input sample (2 ms at 500 Hz). ``align_corners=True``
  spans the whole window and cannot stream.
- "sinc": the symmetric polyphase FIR reads ``half_width`` inputs on each side,
  so block n waits for input ``n + half_width`` (8 samples, 16 ms at 500 Hz);
  the stream's start is the offline zero padding on the left.
- "learned_residual", "subpixel": "same"-padded convolutions (at the output
  or input rate) on top; not streamed yet.

The latency is `UpsamplerConfig.latency_input_samples`. The stream keeps the
upsampler's inputs in a `StreamBuffer` (width ``2·latency + 1`` for sinc, 2 for
linear, 1 otherwise) and feeds the 2 kHz samples it completes to the emg2pose
stream (`emgjax.models.streaming.emg2pose.advance`). The offline twin is the
pipeline's own front end over the recording, cut to the ``factor·(T − latency)``
samples the stream has completed, then emg2pose's streaming twin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp

from emgjax.models.adapter.channel_adapter import ChannelAdapter
from emgjax.models.adapter.pipeline import AdapterModelConfig, AdapterPipeline, validate_pipeline
from emgjax.models.adapter.upsampler import FrequencyUpsampler, polyphase_kernels, sinc_filter
from emgjax.models.streaming import emg2pose as emg2pose_stream
from emgjax.models.streaming.buffers import (
    StreamBuffer,
    buffered_window_op,
    check_chunk,
    check_stream_sizes,
    init_buffer,
)

STREAMABLE_ADAPTERS = ("zero_fill", "duplicate", "interpolation", "linear")
STREAMABLE_UPSAMPLERS = ("zero_stuff", "hold", "linear", "sinc")


class AdapterStreamVariables(NamedTuple):
    """An adapter pipeline's variables laid out for streaming once (`prepare_variables`).

    adapter: the channel adapter's variables; emg2pose: the frozen emg2pose's `Emg2PoseStreamVariables`.
    """

    adapter: dict
    emg2pose: emg2pose_stream.Emg2PoseStreamVariables


class AdapterStreamState(NamedTuple):
    """upsampler: the upsampler's input samples not finished with (B, window − 1 + N, channels);
    emg2pose: the emg2pose stream's state at the output rate."""

    upsampler: StreamBuffer
    emg2pose: emg2pose_stream.Emg2PoseStreamState


def _check_config(config: object) -> AdapterModelConfig:
    if not isinstance(config, AdapterModelConfig):
        raise ValueError(f"adapter streaming: expected an AdapterModelConfig, found {type(config).__name__}")
    validate_pipeline(config.pipeline, config.emg2pose)
    adapter, upsampler = config.pipeline.adapter, config.pipeline.upsampler
    if adapter.kind not in STREAMABLE_ADAPTERS:
        raise ValueError(
            f"adapter streaming: expected a channel adapter among {STREAMABLE_ADAPTERS}, found {adapter.kind!r} "
            "(its 'same'-padded convolutions are not streamed yet)"
        )
    if upsampler.kind not in STREAMABLE_UPSAMPLERS or upsampler.align_corners:
        found = f"{upsampler.kind!r}" + (" with align_corners=True" if upsampler.align_corners else "")
        raise ValueError(
            f"adapter streaming: expected an upsampler among {STREAMABLE_UPSAMPLERS} (linear without align_corners), "
            f"found {found}"
        )
    return config


def upsampler_window(config: AdapterModelConfig) -> int:
    """Input samples one output block reads: 2·latency + 1 for sinc, 2 for linear, 1 for zero_stuff/hold."""
    upsampler = config.pipeline.upsampler
    if upsampler.kind == "sinc":
        return 2 * upsampler.half_width + 1
    return 2 if upsampler.kind == "linear" else 1


def latency_samples(config: AdapterModelConfig) -> int:
    """Input samples the stream waits for beyond a block's own sample (the upsampler's look-ahead)."""
    return config.pipeline.upsampler.latency_input_samples


def _upsample_op(config: AdapterModelConfig) -> Callable[[jax.Array], jax.Array]:
    """Upsample every complete window of a buffer: (B, W − 1 + M, C) -> (B, factor·M, C), block j from window j."""
    upsampler = config.pipeline.upsampler
    factor, window = upsampler.factor, upsampler_window(config)
    if upsampler.kind == "sinc":
        kernels = jnp.asarray(
            polyphase_kernels(sinc_filter(factor, upsampler.half_width, upsampler.kaiser_beta), factor)
        )

        def sinc(frames: jax.Array) -> jax.Array:
            blocks = frames.shape[1] - window + 1
            windows = jnp.stack([frames[:, i : i + blocks] for i in range(window)], axis=-1)  # (B, M, C, W)
            phases = jnp.einsum("btcw,rw->btrc", windows, kernels)  # (B, M, factor, C)
            return phases.reshape(frames.shape[0], blocks * factor, frames.shape[2])

        return sinc
    if upsampler.kind == "linear":
        # Output factor·n + r = x[n]·(1 − r/factor) + x[n + 1]·r/factor, with the module's float32 weights.
        weight = (jnp.arange(factor, dtype=jnp.float32) / factor)[None, None, :, None]

        def linear(frames: jax.Array) -> jax.Array:
            x0, x1 = frames[:, :-1, None], frames[:, 1:, None]
            out = x0 * (1.0 - weight) + x1 * weight  # (B, M, factor, C)
            return out.reshape(frames.shape[0], -1, frames.shape[2])

        return linear
    module = FrequencyUpsampler(upsampler)

    def per_sample(frames: jax.Array) -> jax.Array:
        return jnp.swapaxes(cast(jax.Array, module.apply({}, jnp.swapaxes(frames, 1, 2))), 1, 2)

    return per_sample


def _part_variables(variables: dict, part: str) -> dict:
    """{"params": ..., ["batch_stats": ...]} of one part ("adapter" or "emg2pose") of the pipeline's tree."""
    out = {"params": variables["params"][part]}
    stats = variables.get("batch_stats", {}).get(part, {})
    if stats:
        out["batch_stats"] = stats
    return out


def prepare_variables(config: AdapterModelConfig, variables: Any) -> AdapterStreamVariables:
    """The pipeline's variables laid out for streaming (prepared ones are returned as they are); jittable.

    `stream_step` takes either form and computes the same poses; preparing once saves the per-chunk
    layout of the emg2pose part (`emgjax.models.streaming.emg2pose.prepare_variables`).
    """
    if isinstance(variables, AdapterStreamVariables):
        return variables
    cfg = _check_config(config)
    adapter = {"params": variables["params"]["adapter"].get("channel_adapter", {})}
    inner = emg2pose_stream.prepare_variables(cfg.emg2pose, _part_variables(variables, "emg2pose"))
    return AdapterStreamVariables(adapter, inner)


def init_stream_state(
    config: AdapterModelConfig,
    variables: dict,
    batch_size: int,
    chunk_samples: int,
    initial_pose: jax.Array | None = None,
) -> AdapterStreamState:
    """A fresh stream. chunk_samples counts input-rate samples (500 Hz); initial_pose (B, 20) or zeros."""
    cfg = _check_config(config)
    check_stream_sizes(batch_size, chunk_samples)
    upsampler = cfg.pipeline.upsampler
    # Sinc's left zero padding is the stream start: the buffer starts with half_width zero samples.
    prefill = upsampler.half_width if upsampler.kind == "sinc" else 0
    buffer = init_buffer(batch_size, upsampler_window(cfg), chunk_samples, upsampler.channels, prefill=prefill)
    inner = emg2pose_stream.init_stream_state(
        cfg.emg2pose, _part_variables(variables, "emg2pose"), batch_size, upsampler.factor * chunk_samples, initial_pose
    )
    return AdapterStreamState(buffer, inner)


def stream_step(
    config: AdapterModelConfig, variables: Any, state: AdapterStreamState, chunk: jax.Array
) -> tuple[AdapterStreamState, jax.Array, jax.Array]:
    """Feed one chunk. chunk: (B, adapter in_channels, chunk_samples) at the input rate (500 Hz);
    variables: the pipeline's variables or their `prepare_variables` layout.

    Returns (state, poses (B, 20, k_max), valid (B, k_max)) as `emg2pose.stream_step` does for the
    upsampled samples this chunk completes. Jit with ``config`` static.
    """
    cfg = _check_config(config)
    frames = state.upsampler.frames
    window = upsampler_window(cfg)
    check_chunk(chunk, frames.shape[0], cfg.pipeline.adapter.in_channels, frames.shape[1] - (window - 1))
    prepared = prepare_variables(cfg, variables)
    adapted = ChannelAdapter(cfg.pipeline.adapter).apply(prepared.adapter, jnp.asarray(chunk, jnp.float32))
    x = jnp.swapaxes(cast(jax.Array, adapted), 1, 2)  # (B, N, 16)
    buffer, upsampled, blocks = buffered_window_op(state.upsampler, x, x.shape[1], window, 1, _upsample_op(cfg))
    inner, poses, valid = emg2pose_stream.advance(
        cfg.emg2pose,
        prepared.emg2pose,
        state.emg2pose,
        upsampled,
        blocks * cfg.pipeline.upsampler.factor,
    )
    return AdapterStreamState(buffer, inner), poses, valid


def streaming_steps(config: AdapterModelConfig, num_samples: int) -> int:
    """Poses emitted after ``num_samples`` input samples."""
    cfg = _check_config(config)
    completed = max(0, num_samples - latency_samples(cfg)) * cfg.pipeline.upsampler.factor
    return emg2pose_stream.streaming_steps(cfg.emg2pose, completed)


def predict_streaming_offline(
    config: AdapterModelConfig, variables: dict, emg: jax.Array, initial_pose: jax.Array
) -> jax.Array:
    """The stream's poses over a whole recording. emg: (B, 8, T) at 500 Hz, initial_pose (B, 20) -> (B, 20, n).

    The pipeline's front end (`AdapterPipeline.adapt`, inference mode) over the recording, cut to the
    factor·(T − latency) samples whose upsampling never read the right edge's padding, then
    `emg2pose.predict_streaming_offline`. n = `streaming_steps(config, T)`.
    """
    cfg = _check_config(config)
    pipeline = AdapterPipeline(cfg.pipeline, cfg.emg2pose)
    emg_2k, _ = pipeline.adapt(variables, jnp.asarray(emg, jnp.float32))
    keep = (emg.shape[-1] - latency_samples(cfg)) * cfg.pipeline.upsampler.factor
    return emg2pose_stream.predict_streaming_offline(
        cfg.emg2pose, _part_variables(variables, "emg2pose"), emg_2k[..., :keep], initial_pose
    )


__all__ = [
    "AdapterModelConfig",
    "AdapterStreamState",
    "AdapterStreamVariables",
    "prepare_variables",
    "STREAMABLE_ADAPTERS",
    "STREAMABLE_UPSAMPLERS",
    "init_stream_state",
    "stream_step",
    "predict_streaming_offline",
    "streaming_steps",
    "latency_samples",
    "upsampler_window",
]
