"""The one multi-layer LSTM of the package: `jax.lax.scan`, numerically PyTorch's `nn.LSTM`.

Used by the emg2pose decoder (`decoders.SequentialLSTM`, also step by step in its pose rollout)
and the direct models (`direct.DirectModel`).

Gate order along the 4·hidden axis is PyTorch's (input, forget, cell, output)
and both biases are kept, so converted weights are a plain transpose:
``kernel_ih = weight_ih_l{n}.T`` (in, 4H), ``kernel_hh = weight_hh_l{n}.T``
(H, 4H), ``bias_ih``/``bias_hh`` (4H,). Params live under ``layer_{n}``.

The carry is explicit, one `LSTMCarry(h, c)` with h, c: (num_layers, B, H) like
PyTorch's state: pass it in to continue a sequence (streaming, chunk by chunk)
and get the final one back.

Speed: over a whole sequence each layer's input projection is one big matmul
*before* its scan; only ``h @ kernel_hh`` runs inside. Arrays inside the scan
are time-major (T, B, ·) so each step reads one contiguous slice. Short
sequences (at most `FULL_UNROLL_MAX_STEPS` steps, e.g. the direct model's 12)
are unrolled completely: no loop, so XLA fuses each step's gate arithmetic with
its neighbours and schedules across steps (measured ~30 % faster forward on the
direct model's LSTM; see docs/performance.md). Longer ones keep a rolled loop
(compile time and code size grow with the unrolled length).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import linen as nn
from jax import lax

from emgjax.models.layers import matmul, torch_uniform_init

# Sequences up to this many steps are fully unrolled by default (`scan_unroll`).
FULL_UNROLL_MAX_STEPS = 32


class LSTMLayerWeights(NamedTuple):
    """One layer's weights. kernel_ih: (in, 4H), kernel_hh: (H, 4H), bias_ih/bias_hh: (4H,)."""

    kernel_ih: jax.Array
    kernel_hh: jax.Array
    bias_ih: jax.Array
    bias_hh: jax.Array


class LSTMCarry(NamedTuple):
    """The LSTM state, like PyTorch's (h, c). h, c: (num_layers, B, H)."""

    h: jax.Array
    c: jax.Array


def lstm_cell(gates: jax.Array, c: jax.Array) -> tuple[jax.Array, jax.Array]:
    """PyTorch LSTM cell update from pre-activations. gates: (B, 4H) in order i, f, g, o; c: (B, H)."""
    i, f, g, o = jnp.split(gates, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return h, c


def zero_carry(num_layers: int, batch: int, hidden_size: int, dtype: Any = jnp.float32) -> LSTMCarry:
    """All-zero state (PyTorch's default): h, c (num_layers, batch, hidden_size)."""
    zeros = jnp.zeros((num_layers, batch, hidden_size), dtype)
    return LSTMCarry(zeros, zeros)


def check_carry(carry: Any, num_layers: int, batch: int, hidden_size: int) -> LSTMCarry:
    """An (h, c) pair of (num_layers, batch, hidden_size) arrays as an `LSTMCarry`, else a one-line ValueError.

    Shapes are static, so this raises even under jit.
    """
    expected = (num_layers, batch, hidden_size)
    if not isinstance(carry, tuple) or len(carry) != 2:
        raise ValueError(f"LSTM initial_carry: expected (h, c) each of shape {expected}, found {type(carry).__name__}")
    h, c = carry
    if tuple(jnp.shape(h)) != expected or tuple(jnp.shape(c)) != expected:
        raise ValueError(
            f"LSTM initial_carry: expected (h, c) each of shape {expected}, "
            f"found {tuple(jnp.shape(h))} and {tuple(jnp.shape(c))}"
        )
    return LSTMCarry(h, c)


def scan_unroll(num_steps: int, unroll: int | bool | None = None) -> int | bool:
    """The ``unroll`` for a `lax.scan` over ``num_steps``: ``unroll`` if given, else full for short sequences.

    None: True (no loop at all) when ``num_steps <= FULL_UNROLL_MAX_STEPS``, else 1 (a rolled loop).
    """
    if unroll is not None:
        return unroll
    return True if num_steps <= FULL_UNROLL_MAX_STEPS else 1


def _layer_forward(
    weights: LSTMLayerWeights,
    x: jax.Array,
    h0: jax.Array,
    c0: jax.Array,
    unroll: int | bool,
    compute_dtype: Any = None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The plain (autodiff-able) layer: x (T, B, in), h0, c0 (B, H) -> (outputs (T, B, H), cells (T, B, H), acts).

    acts: (T, B, 4H) the gate activations sigmoid(i), sigmoid(f), tanh(g), sigmoid(o), kept for the backward.
    ``compute_dtype``: the matmuls' operand dtype (see `matmul`); the state h, c stays float32.
    """
    # Hoisted: the input projection of every step at once (one matmul), both biases folded in.
    projected = matmul(x, weights.kernel_ih, compute_dtype) + (weights.bias_ih + weights.bias_hh)

    def step(carry: tuple[jax.Array, jax.Array], projected_t: jax.Array) -> tuple[tuple[jax.Array, jax.Array], Any]:
        h, c = carry
        i, f, g, o = jnp.split(projected_t + matmul(h, weights.kernel_hh, compute_dtype), 4, axis=-1)
        i, f, g, o = jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)
        c = f * c + i * g  # lstm_cell's arithmetic, activations kept
        h = o * jnp.tanh(c)
        return (h, c), (h, c, jnp.concatenate([i, f, g, o], axis=-1))

    _, (outputs, cells, acts) = lax.scan(step, (h0, c0), projected, unroll=unroll)
    return outputs, cells, acts


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def _layer(
    weights: LSTMLayerWeights, x: jax.Array, h0: jax.Array, c0: jax.Array, unroll: int | bool, compute_dtype: Any
) -> tuple[jax.Array, jax.Array]:
    outputs, cells, _ = _layer_forward(weights, x, h0, c0, unroll, compute_dtype)
    return outputs, cells


def _layer_fwd(
    weights: LSTMLayerWeights, x: jax.Array, h0: jax.Array, c0: jax.Array, unroll: int | bool, compute_dtype: Any
) -> tuple[tuple[jax.Array, jax.Array], tuple[Any, ...]]:
    outputs, cells, acts = _layer_forward(weights, x, h0, c0, unroll, compute_dtype)
    return (outputs, cells), (weights, x, h0, c0, outputs, cells, acts)


def _layer_bwd(
    unroll: int | bool, compute_dtype: Any, residuals: tuple[Any, ...], cotangents: tuple[jax.Array, jax.Array]
) -> tuple[LSTMLayerWeights, jax.Array, jax.Array, jax.Array]:
    """Backpropagation through time with the weight gradients hoisted out of the loop.

    Only what is truly sequential runs per step (the gate gradients and ``dgates @ kernel_hh.T``);
    the weight, bias and input gradients are then one matmul each over all T·B rows, instead of
    T small accumulations inside the loop (measured ~20 % less CPU for the direct model's LSTM).
    """
    weights, x, h0, c0, outputs, cells, acts = residuals
    d_outputs, d_cells = cotangents  # (T, B, H) each
    previous_c = jnp.concatenate([c0[None], cells[:-1]], axis=0)

    def step(carry: tuple[jax.Array, jax.Array], inputs: tuple[jax.Array, ...]) -> tuple[Any, jax.Array]:
        dh_next, dc_next = carry
        dh_out, dc_out, c, c_prev, a = inputs
        i, f, g, o = jnp.split(a, 4, axis=-1)
        dh = dh_out + dh_next
        tanh_c = jnp.tanh(c)
        dc = dc_next + dc_out + dh * o * (1.0 - tanh_c * tanh_c)
        dgates = jnp.concatenate(
            [dc * g * i * (1.0 - i), dc * c_prev * f * (1.0 - f), dc * i * (1.0 - g * g), dh * tanh_c * o * (1.0 - o)],
            axis=-1,
        )
        return (matmul(dgates, weights.kernel_hh.T, compute_dtype), dc * f), dgates

    zeros = jnp.zeros_like(h0)
    (dh0, dc0), dgates = lax.scan(
        step, (zeros, zeros), (d_outputs, d_cells, cells, previous_c, acts), reverse=True, unroll=unroll
    )
    previous_h = jnp.concatenate([h0[None], outputs[:-1]], axis=0)
    rows = dgates.reshape(-1, dgates.shape[-1])  # (T·B, 4H)
    d_bias = jnp.sum(rows, axis=0)
    grads = LSTMLayerWeights(
        kernel_ih=matmul(x.reshape(-1, x.shape[-1]).T, rows, compute_dtype),
        kernel_hh=matmul(previous_h.reshape(-1, previous_h.shape[-1]).T, rows, compute_dtype),
        bias_ih=d_bias,
        bias_hh=d_bias,
    )
    return grads, matmul(dgates, weights.kernel_ih.T, compute_dtype), dh0, dc0


_layer.defvjp(_layer_fwd, _layer_bwd)


def lstm_layer_scan(
    weights: LSTMLayerWeights,
    x: jax.Array,
    h0: jax.Array,
    c0: jax.Array,
    unroll: int | bool | None = None,
    compute_dtype: Any = None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One layer over a time-major sequence. x: (T, B, in), h0, c0: (B, H) -> (outputs (T, B, H), h_T, c_T).

    ``unroll``: `lax.scan`'s unroll; None picks it from the length (`scan_unroll`). Reverse-mode
    derivatives use a hand-written backward (`jax.custom_vjp`, checked against autodiff in the tests);
    forward-mode (`jax.jvp`) is not defined for it. ``compute_dtype``: see `matmul` (None: float32 throughout).
    """
    outputs, cells = _layer(weights, x, h0, c0, scan_unroll(x.shape[0], unroll), compute_dtype)
    return outputs, outputs[-1], cells[-1]


def lstm_sequence(
    layers: Sequence[LSTMLayerWeights],
    x: jax.Array,
    carry: LSTMCarry | None = None,
    between_layers: Callable[[jax.Array], jax.Array] | None = None,
    unroll: int | bool | None = None,
    compute_dtype: Any = None,
) -> tuple[jax.Array, LSTMCarry]:
    """Multi-layer LSTM over a batch-first sequence, layer by layer.

    x: (B, T, in) -> (outputs (B, T, H), final LSTMCarry with h, c: (num_layers, B, H)).
    ``between_layers`` maps one layer's time-major outputs (T, B, H) to the next layer's input
    (inter-layer dropout, as PyTorch applies it: not after the last layer).
    ``unroll``, ``compute_dtype``: see `lstm_layer_scan`.
    """
    batch = x.shape[0]
    hidden = layers[0].kernel_hh.shape[0]
    if carry is None:
        carry = zero_carry(len(layers), batch, hidden, x.dtype)
    sequence = jnp.swapaxes(x, 0, 1)
    hs, cs = [], []
    for n, weights in enumerate(layers):
        if n > 0 and between_layers is not None:
            sequence = between_layers(sequence)
        sequence, h, c = lstm_layer_scan(weights, sequence, carry.h[n], carry.c[n], unroll, compute_dtype)
        hs.append(h)
        cs.append(c)
    return jnp.swapaxes(sequence, 0, 1), LSTMCarry(jnp.stack(hs), jnp.stack(cs))


def lstm_step(
    layers: Sequence[LSTMLayerWeights],
    carry: LSTMCarry,
    input_gates: jax.Array,
    extra_gates: jax.Array | None = None,
    dot: Callable[[jax.Array, jax.Array], jax.Array] = jnp.dot,
) -> tuple[LSTMCarry, jax.Array]:
    """One time step of every layer, for callers that drive the recurrence themselves (the pose rollout).

    input_gates: (B, 4H) the first layer's input projection ``x_t @ kernel_ih + bias_ih + bias_hh``,
    computed by the caller (usually for all steps at once, outside its scan); extra_gates: optional
    (B, 4H) added to the first layer's pre-activations after the recurrent term (the rollout's fed-back
    pose); carry: h, c (num_layers, B, H) -> (new carry, top layer's h (B, H)).
    The first layer's ``kernel_ih``/``bias_*`` are not read. ``dot``: the product with a weight matrix
    (`emgjax.models.hoisted_scan.scan_hoisted` passes one that takes its gradient out of the loop).
    """
    # Separate matmuls rather than one on concatenated inputs: no per-step copies, and the
    # recurrent products of different layers are independent of each other (measured ~7 % faster
    # at batch 1 in the pose rollout, where each step streams all of the decoder's weights).
    gates = input_gates + dot(carry.h[0], layers[0].kernel_hh)
    if extra_gates is not None:
        gates = gates + extra_gates
    h, c = lstm_cell(gates, carry.c[0])
    hs, cs = [h], [c]
    for n, w in enumerate(layers[1:], start=1):
        h, c = lstm_cell(dot(h, w.kernel_ih) + dot(carry.h[n], w.kernel_hh) + (w.bias_ih + w.bias_hh), carry.c[n])
        hs.append(h)
        cs.append(c)
    return LSTMCarry(jnp.stack(hs), jnp.stack(cs)), h


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
    """PyTorch-compatible multi-layer LSTM (batch_first, optional inter-layer dropout).

    `__call__(x (B, T, in), carry=None, *, train=False) -> (outputs (B, T, H), LSTMCarry)`, carry
    h, c: (num_layers, B, H), zeros when None. ``dropout`` > 0 drops between layers (not after the
    last, like PyTorch) when ``train`` is True, drawing from the "dropout" rng collection.
    `weights()` returns the per-layer `LSTMLayerWeights` for callers that drive the recurrence
    themselves with `lstm_step` (the pose rollout).
    Params: ``layer_{n}/{kernel_ih (in or H, 4H), kernel_hh (H, 4H), bias_ih (4H,), bias_hh (4H,)}``.
    """

    in_features: int
    hidden_size: int
    num_layers: int = 1
    dropout: float = 0.0
    compute_dtype: Any = None  # matmul operand dtype, e.g. jnp.bfloat16 (see `matmul`); None: float32

    def setup(self) -> None:
        self.layers = [
            _LSTMLayerParams(self.in_features if n == 0 else self.hidden_size, self.hidden_size, name=f"layer_{n}")
            for n in range(self.num_layers)
        ]
        self.inter_layer_dropout = nn.Dropout(self.dropout)

    def weights(self) -> list[LSTMLayerWeights]:
        return [layer() for layer in self.layers]

    def __call__(
        self, x: jax.Array, carry: LSTMCarry | None = None, *, train: bool = False
    ) -> tuple[jax.Array, LSTMCarry]:
        if x.ndim != 3 or x.shape[-1] != self.in_features:
            raise ValueError(f"LSTM x: expected shape (batch, time, {self.in_features}), found {tuple(x.shape)}")
        if carry is not None:
            carry = check_carry(carry, self.num_layers, x.shape[0], self.hidden_size)
        between = None
        if train and self.dropout > 0.0:  # only then is a "dropout" rng needed

            def between(y: jax.Array) -> jax.Array:
                return self.inter_layer_dropout(y, deterministic=False)

        return lstm_sequence(self.weights(), x, carry, between, compute_dtype=self.compute_dtype)


__all__ = [
    "FULL_UNROLL_MAX_STEPS",
    "LSTM",
    "LSTMCarry",
    "LSTMLayerWeights",
    "check_carry",
    "lstm_cell",
    "lstm_layer_scan",
    "lstm_sequence",
    "lstm_step",
    "scan_unroll",
    "zero_carry",
]
