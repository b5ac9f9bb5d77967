"""Multi-layer LSTM as `jax.lax.scan`, numerically PyTorch's `nn.LSTM`.

Gate order along the 4·hidden axis is PyTorch's (input, forget, cell, output)
and both biases are kept, so converted weights are a plain transpose:
``kernel_ih = weight_ih_l{n}.T`` (in, 4H), ``kernel_hh = weight_hh_l{n}.T``
(H, 4H), ``bias_ih``/``bias_hh`` (4H,). Params live under ``layer_{n}``.

Speed: over a whole sequence each layer's input projection is one big matmul
*before* its scan; only ``h @ kernel_hh`` runs inside. Arrays inside the scan
are time-major (T, B, ·) so each step reads one contiguous slice.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import linen as nn
from jax import lax

from emgjax.models.tds import torch_uniform_init


class LSTMLayerWeights(NamedTuple):
    """One layer's weights. kernel_ih: (in, 4H), kernel_hh: (H, 4H), bias_ih/bias_hh: (4H,)."""

    kernel_ih: jax.Array
    kernel_hh: jax.Array
    bias_ih: jax.Array
    bias_hh: jax.Array


class LSTMCarry(NamedTuple):
    """h, c: (num_layers, B, H)."""

    h: jax.Array
    c: jax.Array


def lstm_cell(gates: jax.Array, c: jax.Array) -> tuple[jax.Array, jax.Array]:
    """PyTorch LSTM cell update from pre-activations. gates: (B, 4H) in order i, f, g, o; c: (B, H)."""
    i, f, g, o = jnp.split(gates, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return h, c


def zero_carry(num_layers: int, batch: int, hidden_size: int, dtype: Any = jnp.float32) -> LSTMCarry:
    zeros = jnp.zeros((num_layers, batch, hidden_size), dtype)
    return LSTMCarry(zeros, zeros)


def lstm_layer_scan(
    weights: LSTMLayerWeights, x: jax.Array, h0: jax.Array, c0: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One layer over a time-major sequence. x: (T, B, in) -> (outputs (T, B, H), h_T, c_T)."""
    # Hoisted: the input projection of every step at once (one matmul), both biases folded in.
    projected = jnp.dot(x, weights.kernel_ih) + (weights.bias_ih + weights.bias_hh)

    def step(
        carry: tuple[jax.Array, jax.Array], projected_t: jax.Array
    ) -> tuple[tuple[jax.Array, jax.Array], jax.Array]:
        h, c = carry
        h, c = lstm_cell(projected_t + jnp.dot(h, weights.kernel_hh), c)
        return (h, c), h

    (h, c), outputs = lax.scan(step, (h0, c0), projected)
    return outputs, h, c


def lstm_sequence(
    layers: list[LSTMLayerWeights], x: jax.Array, carry: LSTMCarry | None = None
) -> tuple[jax.Array, LSTMCarry]:
    """Multi-layer LSTM over a batch-first sequence, layer by layer.

    x: (B, T, in) -> (outputs (B, T, H), final LSTMCarry with h, c: (num_layers, B, H)).
    """
    batch = x.shape[0]
    hidden = layers[0].kernel_hh.shape[0]
    if carry is None:
        carry = zero_carry(len(layers), batch, hidden, x.dtype)
    sequence = jnp.swapaxes(x, 0, 1)
    hs, cs = [], []
    for n, weights in enumerate(layers):
        sequence, h, c = lstm_layer_scan(weights, sequence, carry.h[n], carry.c[n])
        hs.append(h)
        cs.append(c)
    return jnp.swapaxes(sequence, 0, 1), LSTMCarry(jnp.stack(hs), jnp.stack(cs))


class _LSTMLayerParams(nn.Module):
    in_features: int
    hidden_size: int

    @nn.compact
    def __call__(self) -> LSTMLayerWeights:
        # PyTorch initialises every LSTM tensor U(−1/√H, 1/√H).
        init = torch_uniform_init(self.hidden_size)
        four_h = 4 * self.hidden_size
        return LSTMLayerWeights(
            self.param("kernel_ih", init, (self.in_features, four_h)),
            self.param("kernel_hh", init, (self.hidden_size, four_h)),
            self.param("bias_ih", init, (four_h,)),
            self.param("bias_hh", init, (four_h,)),
        )


class LSTM(nn.Module):
    """PyTorch-compatible multi-layer LSTM (batch_first, no inter-layer dropout).

    `__call__(x (B, T, in), carry=None) -> (outputs (B, T, H), LSTMCarry)`; `weights()` returns the
    per-layer `LSTMLayerWeights` for callers that drive the recurrence themselves (the pose rollout).
    """

    in_features: int
    hidden_size: int
    num_layers: int = 1

    def setup(self) -> None:
        self.layers = [
            _LSTMLayerParams(self.in_features if n == 0 else self.hidden_size, self.hidden_size, name=f"layer_{n}")
            for n in range(self.num_layers)
        ]

    def weights(self) -> list[LSTMLayerWeights]:
        return [layer() for layer in self.layers]

    def __call__(self, x: jax.Array, carry: LSTMCarry | None = None) -> tuple[jax.Array, LSTMCarry]:
        return lstm_sequence(self.weights(), x, carry)


__all__ = ["LSTM", "LSTMCarry", "LSTMLayerWeights", "lstm_cell", "lstm_layer_scan", "lstm_sequence", "zero_carry"]
