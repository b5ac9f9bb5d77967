"""The one streaming buffer: fixed-shape frames plus a count of the valid ones.

A streamed layer that reads a window of ``kernel`` input frames with a
``stride`` keeps the input frames it has not finished with. How many that is
varies from chunk to chunk (a chunk need not divide the stride), but shapes may
not vary under `jax.jit`, so a `StreamBuffer` holds a fixed capacity of frames
of which the first ``filled`` are valid; the rest is scratch that no valid
output ever reads (each output of a windowed op reads only its own window).

Capacity for ``n_max`` new frames per step is ``kernel − 1 + n_max``: what is
left after a step is at most ``kernel − 1`` frames (else one more output would
have been possible). The op then runs over the whole capacity, giving
``ceil(n_max / stride)`` candidate outputs, of which the first
``(filled − kernel) // stride + 1`` are valid.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from emgjax import errors

T = TypeVar("T")


class StreamBuffer(NamedTuple):
    """frames: (B, capacity, C) float32, the first ``filled`` valid; filled: () int32."""

    frames: jax.Array
    filled: jax.Array


def buffer_capacity(kernel: int, max_new: int) -> int:
    """Frames a buffer needs for a windowed op of ``kernel`` frames fed up to ``max_new`` frames per step."""
    return kernel - 1 + max_new


def max_outputs(max_new: int, stride: int) -> int:
    """Most outputs one step can complete from up to ``max_new`` new frames: ceil(max_new / stride)."""
    return -(-max_new // stride)


def init_buffer(batch: int, kernel: int, max_new: int, channels: int, prefill: int = 0) -> StreamBuffer:
    """An empty buffer, or one starting with ``prefill`` zero frames (a 'same' convolution's left padding)."""
    frames = jnp.zeros((batch, buffer_capacity(kernel, max_new), channels), jnp.float32)
    return StreamBuffer(frames, jnp.asarray(prefill, jnp.int32))


def buffered_window_op(
    buffer: StreamBuffer,
    new: jax.Array,
    num_new: jax.Array | int,
    kernel: int,
    stride: int,
    op: Callable[[jax.Array], jax.Array],
) -> tuple[StreamBuffer, jax.Array, jax.Array]:
    """Append frames, run a valid windowed op over the buffer, keep the frames still needed.

    buffer: frames (B, kernel − 1 + N, C); new: (B, N, C) whose first ``num_new`` frames are valid;
    op: maps (B, kernel − 1 + N, C) to (B, ceil(N / stride), C') like a VALID strided convolution
    (output j reads frames [j·stride, j·stride + kernel)).
    Returns (buffer, outputs (B, ceil(N / stride), C'), num_outputs () int32): the first
    ``num_outputs`` outputs are the ones this step completes.
    """
    capacity = buffer.frames.shape[1]
    if new.shape[1] != capacity - (kernel - 1):
        raise ValueError(
            f"streaming buffer: expected {capacity - (kernel - 1)} new frames per step, found {new.shape[1]}"
        )
    frames = jax.lax.dynamic_update_slice_in_dim(buffer.frames, new.astype(buffer.frames.dtype), buffer.filled, axis=1)
    total = buffer.filled + jnp.asarray(num_new, jnp.int32)
    num_out = jnp.where(total >= kernel, (total - kernel) // stride + 1, 0).astype(jnp.int32)
    outputs = op(frames)
    # Drop the frames no later output reads: shift left by num_out · stride (the tail is scratch).
    consumed = num_out * stride
    shifted = jax.lax.dynamic_slice_in_dim(
        jnp.concatenate([frames, jnp.zeros_like(frames)], axis=1), consumed, capacity, 1
    )
    return StreamBuffer(shifted, total - consumed), outputs, num_out


def masked_update(valid: jax.Array, new: T, old: T) -> T:
    """Per-leaf ``where(valid, new, old)`` over two pytrees of the same structure (valid: () bool)."""
    out: T = jax.tree_util.tree_map(lambda a, b: jnp.where(valid, a, b), new, old)
    return out


def check_chunk(chunk: Any, batch: int, channels: int, chunk_samples: int) -> None:
    """chunk: (batch, channels, chunk_samples) float, matching the stream state; shapes only (works under jit)."""
    layout = "(batch, channels, chunk_samples)"
    errors.check_rank("chunk", chunk, 3, layout)
    errors.check_float_dtype("chunk", chunk)
    errors.check_axis_size("chunk", chunk, 0, batch, "batch elements (the stream state's batch size)", layout)
    errors.check_axis_size("chunk", chunk, 1, channels, "channels", layout)
    errors.check_axis_size("chunk", chunk, 2, chunk_samples, "samples (the stream state's chunk_samples)", layout)


def check_stream_sizes(batch_size: Any, chunk_samples: Any) -> None:
    """Positive int batch size and chunk length, else a one-line ValueError."""
    for name, value in (("batch_size", batch_size), ("chunk_samples", chunk_samples)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name}: expected a positive int, found {value!r}")


__all__ = [
    "StreamBuffer",
    "buffer_capacity",
    "max_outputs",
    "init_buffer",
    "buffered_window_op",
    "masked_update",
    "check_chunk",
    "check_stream_sizes",
]
