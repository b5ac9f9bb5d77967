"""Streaming the direct Conv1D + LSTM models (`emgjax.models.direct`) and their offline twin.

The model's convolutions are "same"-padded: each reads ``(k − 1) // 2`` samples
behind and ``(k − 1) − (k − 1) // 2`` ahead. Streamed, the left padding is the
stream start (each level's buffer starts with that many zero frames, exactly
the zeros the offline padding inserts at that level), and the look-ahead is
waited for: LSTM step i (aligned with input sample ``(i + 1)·s − 1``, s =
``time_stride``) is emitted once sample ``(i + 1)·s − 1 + lookahead_samples``
has arrived (``emgjax.models.direct.lookahead_samples``: 6 samples, 12 ms at
500 Hz for the defaults). BatchNorm runs in inference mode (running
statistics), max-pools and convolutions keep `StreamBuffer`s, the LSTM carry
is explicit, and the head runs on every step.

The offline twin over a recording of T samples is the model's ordinary
"sequence" forward cut to the steps whose look-ahead lies inside the
recording, ``floor((T − lookahead) / s)`` of them (`streaming_steps`): those
steps never read the right edge's zero padding, so forward and stream agree
on them.

Mode "last" (one pose per window, from a fresh LSTM state) has no streaming
form of its own: the stream runs the same parameters in "sequence" form, one
pose per LSTM step with the carry of the whole stream. That is what the model
would output for a window starting at the stream start and ending at that
step without right padding, not what it outputs for its 50-sample training
windows; the twin is likewise the "sequence" forward with the same parameters.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from emgjax.models.direct import DirectConfig, DirectModel, lookahead_samples, output_steps
from emgjax.models.lstm import LSTMCarry, LSTMLayerWeights, lstm_cell, scan_unroll, zero_carry
from emgjax.models.streaming.buffers import (
    StreamBuffer,
    buffered_window_op,
    check_chunk,
    check_stream_sizes,
    init_buffer,
    masked_update,
    max_outputs,
)


class DirectStreamState(NamedTuple):
    """convs / pools: one `StreamBuffer` per conv level (conv inputs, pool inputs); lstm: h, c (layers, B, H)."""

    convs: tuple[StreamBuffer, ...]
    pools: tuple[StreamBuffer, ...]
    lstm: LSTMCarry


def _check_config(config: Any) -> DirectConfig:
    if not isinstance(config, DirectConfig):
        raise ValueError(f"direct streaming: expected a DirectConfig, found {type(config).__name__}")
    return config


def max_poses_per_chunk(config: DirectConfig, chunk_samples: int) -> int:
    """k_max: most LSTM steps one chunk can complete (ceil through every max-pool)."""
    n = chunk_samples
    for _ in config.conv_channels:
        n = max_outputs(n, config.pool_size)
    return n


def streaming_steps(config: DirectConfig, num_samples: int) -> int:
    """Poses the stream has emitted after ``num_samples`` samples: floor((T − lookahead) / time_stride)."""
    return max(
        0, min(output_steps(num_samples, config), (num_samples - lookahead_samples(config)) // config.time_stride)
    )


def init_stream_state(config: DirectConfig, variables: dict, batch_size: int, chunk_samples: int) -> DirectStreamState:
    """A fresh stream: conv buffers holding their left padding, empty pool buffers, a zero LSTM carry.

    ``variables`` is not read; it keeps one signature for every kind.
    """
    del variables
    cfg = _check_config(config)
    check_stream_sizes(batch_size, chunk_samples)
    left_pad = (cfg.kernel_size - 1) // 2
    convs, pools = [], []
    n, channels = chunk_samples, cfg.in_channels
    for width in cfg.conv_channels:
        convs.append(init_buffer(batch_size, cfg.kernel_size, n, channels, prefill=left_pad))
        pools.append(init_buffer(batch_size, cfg.pool_size, n, width))
        n, channels = max_outputs(n, cfg.pool_size), width
    return DirectStreamState(tuple(convs), tuple(pools), zero_carry(cfg.lstm_layers, batch_size, cfg.lstm_hidden))


def prepare_variables(config: DirectConfig, variables: Any) -> Any:
    """The direct model streams its variables as stored: nothing to lay out (one signature for every kind)."""
    _check_config(config)
    return variables


def _lstm_weights(params: dict, num_layers: int) -> list[LSTMLayerWeights]:
    layers = params["lstm"]
    return [
        LSTMLayerWeights(
            layers[f"layer_{n}"]["kernel_ih"],
            layers[f"layer_{n}"]["kernel_hh"],
            layers[f"layer_{n}"]["bias_ih"],
            layers[f"layer_{n}"]["bias_hh"],
        )
        for n in range(num_layers)
    ]


def _masked_layer_scan(
    weights: LSTMLayerWeights, x: jax.Array, h0: jax.Array, c0: jax.Array, valid: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """`emgjax.models.lstm.lstm_layer_scan` whose state stops at the last valid step.

    x: (K, B, in) time-major, h0, c0: (B, H), valid: (K,) bool, valid steps first -> (outputs (K, B, H), h, c).
    """
    projected = jnp.dot(x, weights.kernel_ih) + (weights.bias_ih + weights.bias_hh)

    def step(
        carry: tuple[jax.Array, jax.Array], inputs: tuple[jax.Array, jax.Array]
    ) -> tuple[tuple[jax.Array, jax.Array], jax.Array]:
        projected_t, valid_t = inputs
        h, c = lstm_cell(projected_t + jnp.dot(carry[0], weights.kernel_hh), carry[1])
        return masked_update(valid_t, (h, c), carry), h

    (h, c), outputs = lax.scan(step, (h0, c0), (projected, valid), unroll=scan_unroll(x.shape[0]))
    return outputs, h, c


def stream_step(
    config: DirectConfig, variables: dict, state: DirectStreamState, chunk: jax.Array
) -> tuple[DirectStreamState, jax.Array, jax.Array]:
    """Feed one chunk. chunk: (B, in_channels, chunk_samples) at the model's rate (500 Hz).

    Returns (state, poses (B, *output_shape, k_max), valid (B, k_max) bool): the first valid poses
    are the LSTM steps this chunk completes. Jit with ``config`` static.
    """
    cfg = _check_config(config)
    first = state.convs[0].frames
    check_chunk(chunk, first.shape[0], cfg.in_channels, first.shape[1] - (cfg.kernel_size - 1))
    params, stats = variables["params"], variables.get("batch_stats", {})
    x = jnp.swapaxes(jnp.asarray(chunk, jnp.float32), 1, 2)  # (B, N, C)
    count: jax.Array = jnp.asarray(x.shape[1], jnp.int32)
    convs, pools = [], []
    for index, width in enumerate(cfg.conv_channels):

        def conv_bn_relu(frames: jax.Array, index: int = index, width: int = width) -> jax.Array:
            y = nn.Conv(width, (cfg.kernel_size,), padding="VALID", use_bias=False).apply(
                {"params": params[f"conv_{index}"]}, frames
            )
            y = nn.BatchNorm(use_running_average=True, momentum=0.9, epsilon=1e-5).apply(
                {"params": params[f"bn_{index}"], "batch_stats": stats[f"bn_{index}"]}, y
            )
            return nn.relu(cast(jax.Array, y))

        def pool(frames: jax.Array) -> jax.Array:
            return nn.max_pool(frames, (cfg.pool_size,), strides=(cfg.pool_size,), padding="VALID")

        conv_buffer, x, count = buffered_window_op(state.convs[index], x, count, cfg.kernel_size, 1, conv_bn_relu)
        pool_buffer, x, count = buffered_window_op(state.pools[index], x, count, cfg.pool_size, cfg.pool_size, pool)
        convs.append(conv_buffer)
        pools.append(pool_buffer)
    k_max = x.shape[1]
    valid = jnp.arange(k_max) < count
    # Layer by layer, as the offline LSTM runs (no feedback from the output here, unlike the emg2pose
    # rollout): each layer's input projection is one matmul over the k_max candidate steps, so only
    # kernel_hh is read once per step (step by step through every layer would read kernel_ih too).
    sequence = jnp.swapaxes(x, 0, 1)  # (k_max, B, C)
    hs, cs = [], []
    for n, weights in enumerate(_lstm_weights(params, cfg.lstm_layers)):
        sequence, h_n, c_n = _masked_layer_scan(weights, sequence, state.lstm.h[n], state.lstm.c[n], valid)
        hs.append(h_n)
        cs.append(c_n)
    carry, hidden = LSTMCarry(jnp.stack(hs), jnp.stack(cs)), sequence  # hidden: (k_max, B, H)
    h = cast(jax.Array, nn.Dense(cfg.head_hidden).apply({"params": params["head_hidden"]}, jnp.swapaxes(hidden, 0, 1)))
    h = nn.relu(h)
    out = cast(jax.Array, nn.Dense(int(np.prod(cfg.output_shape))).apply({"params": params["head_out"]}, h))
    batch = out.shape[0]
    poses = jnp.moveaxis(out.reshape(batch, k_max, *cfg.output_shape), 1, -1)  # (B, *pose, k_max)
    new_state = DirectStreamState(tuple(convs), tuple(pools), carry)
    return new_state, poses, jnp.broadcast_to(valid, (batch, k_max))


def predict_streaming_offline(config: DirectConfig, variables: dict, emg: jax.Array) -> jax.Array:
    """The stream's poses over a whole recording. emg: (B, in_channels, T) -> (B, *output_shape, n).

    n = `streaming_steps(config, T)`: the "sequence" forward (inference mode, zero initial carry)
    cut to the steps whose look-ahead lies inside the recording. Jit with ``config`` static.
    """
    cfg = _check_config(config)
    sequence = DirectModel(dataclasses.replace(cfg, mode="sequence"))
    poses, _ = sequence.apply(variables, jnp.asarray(emg, jnp.float32), train=False)
    return cast(jax.Array, poses)[..., : streaming_steps(cfg, emg.shape[-1])]


__all__ = [
    "DirectStreamState",
    "init_stream_state",
    "prepare_variables",
    "stream_step",
    "predict_streaming_offline",
    "streaming_steps",
    "max_poses_per_chunk",
]
