"""emg2pose decoders (SequentialLSTM, MLP) with a rollout interface.

A pose rollout feeds each step's output back as part of the next input
(concat(features_t, previous pose)). Only the *feature* part of the first
layer's input projection is independent of the feedback, so
`prepare_rollout` computes it for every step at once (one matmul, time-major)
and returns the step weights; the pose module then runs one `lax.scan` over
`rollout_step`, which does only the state/recurrent part (the LSTM decoder
through `lstm.lstm_step`, with the package's one `LSTMCarry`).

Param names mirror Meta's attributes: SequentialLSTM `lstm/layer_{n}/…` and
`mlp_out_1`; MLP `mlp_{i}` at the nn.Sequential indices of its Linear and
LayerNorm layers.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import linen as nn

from emgjax.models.configs import LSTMDecoderConfig, MLPDecoderConfig
from emgjax.models.hoisted_scan import Dot
from emgjax.models.layers import Dense, LayerNorm, layer_norm, matmul
from emgjax.models.lstm import LSTM, LSTMCarry, LSTMLayerWeights, lstm_step, zero_carry

LEAKY_RELU_SLOPE = 0.01  # torch.nn.LeakyReLU default


def _split_input_kernel(kernel: jax.Array, feature_channels: int) -> tuple[jax.Array, jax.Array]:
    """Rows of an (in, out) kernel for the features and for the fed-back state."""
    return kernel[:feature_channels], kernel[feature_channels:]


def _project_features(features: jax.Array, kernel: jax.Array, bias: jax.Array, compute_dtype: Any = None) -> jax.Array:
    """features: (B, n, F) @ kernel (F, P) + bias -> time-major (n, B, P), for the scan.

    ``compute_dtype``: the operands' dtype (`layers.matmul`), float32 result."""
    if compute_dtype is None:
        return jnp.einsum("bnf,fp->nbp", features, kernel) + bias
    # Time-major rows first, then one plain (rows, F) @ (F, P) product: XLA's CPU runtime has no
    # bfloat16 kernel for the transposed contraction it picks for the einsum.
    rows = jnp.swapaxes(features, 0, 1)  # (n, B, F)
    return matmul(rows, kernel, compute_dtype) + bias


# ----------------------------------------------------------------------------- SequentialLSTM


class LSTMStepWeights(NamedTuple):
    """Weights used inside the rollout scan.

    first_state: (S, 4H) state rows of layer 0's kernel_ih (S = 0 without state conditioning);
    lstm: every layer's `LSTMLayerWeights` (layer 0's feature rows are applied before the scan);
    head_kernel (H, out), head_bias (out,); scale: output multiplier.
    """

    first_state: jax.Array
    lstm: tuple[LSTMLayerWeights, ...]
    head_kernel: jax.Array
    head_bias: jax.Array
    scale: float


class SequentialLSTM(nn.Module):
    """Meta's SequentialLSTM: LSTM → LeakyReLU(0.01) → Linear, times `scale`; zero initial state.

    `feature_channels`: leading input channels that do not depend on the rollout's feedback
    (in_channels − 20 with state conditioning, else in_channels).
    """

    config: LSTMDecoderConfig
    feature_channels: int
    compute_dtype: Any = None  # matmul operand dtype (`layers.COMPUTE_DTYPES`); None: float32

    def setup(self):
        cfg = self.config
        self.lstm = LSTM(cfg.in_channels, cfg.hidden_size, cfg.num_layers, compute_dtype=self.compute_dtype)
        self.mlp_out_1 = Dense(cfg.hidden_size, cfg.out_channels, compute_dtype=self.compute_dtype)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Teacher-forced sequence: x (B, T, in) -> (B, T, out)."""
        hidden, _ = self.lstm(x)
        return self.mlp_out_1(jax.nn.leaky_relu(hidden, LEAKY_RELU_SLOPE)) * self.config.scale

    def initial_carry(self, batch: int, dtype=jnp.float32) -> LSTMCarry:
        """Zero state: h, c (num_layers, batch, hidden)."""
        return zero_carry(self.config.num_layers, batch, self.config.hidden_size, dtype)

    def prepare_rollout(self, features: jax.Array) -> tuple[jax.Array, LSTMStepWeights]:
        """features: (B, n, F) -> (per-step projections (n, B, 4H), step weights)."""
        layers = self.lstm.weights()
        first = layers[0]
        feature_kernel, state_kernel = _split_input_kernel(first.kernel_ih, self.feature_channels)
        projected = _project_features(features, feature_kernel, first.bias_ih + first.bias_hh, self.compute_dtype)
        head_kernel, head_bias = self.mlp_out_1.weights()
        step_weights = LSTMStepWeights(state_kernel, tuple(layers), head_kernel, head_bias, self.config.scale)
        return projected, step_weights

    @staticmethod
    def rollout_step(
        weights: LSTMStepWeights,
        carry: LSTMCarry,
        projected_t: jax.Array,
        state: jax.Array | None,
        dot: Dot = jnp.dot,
    ) -> tuple[LSTMCarry, jax.Array]:
        """One decoder step. projected_t: (B, 4H); state: (B, S) or None -> (carry, out (B, out)).

        ``dot``: the product with a weight matrix (see `emgjax.models.hoisted_scan`)."""
        state_gates = None if state is None else dot(state, weights.first_state)
        carry, h = lstm_step(weights.lstm, carry, projected_t, state_gates, dot)
        out = dot(jax.nn.leaky_relu(h, LEAKY_RELU_SLOPE), weights.head_kernel) + weights.head_bias
        return carry, out * weights.scale


# ----------------------------------------------------------------------------- MLP


def mlp_layer_indices(config: MLPDecoderConfig) -> list[tuple[str, int]]:
    """Meta's nn.Sequential layout as (kind, index): ("linear", i), ("norm", i); LeakyReLUs take indices too."""
    out, index = [], 0
    for _ in config.layer_sizes:
        out.append(("linear", index))
        index += 1
        if config.layer_norm:
            out.append(("norm", index))
            index += 1
        index += 1  # LeakyReLU
    out.append(("linear", index))
    return out


class MLPStepWeights(NamedTuple):
    """first_state: (S, H0) state rows of the first Linear; hidden: per hidden layer
    (kernel, bias, norm scale or None, norm bias or None) for layers after the first
    (the first layer's norm sits in first_norm); last: (kernel, bias)."""

    first_state: jax.Array
    first_norm: Any
    hidden: tuple
    last: tuple[jax.Array, jax.Array]
    scale: float


class MLP(nn.Module):
    """Meta's MLP decoder: [Linear (→ LayerNorm) → LeakyReLU] per layer size, Linear → out, times scale."""

    config: MLPDecoderConfig
    feature_channels: int
    compute_dtype: Any = None  # matmul operand dtype (`layers.COMPUTE_DTYPES`); None: float32

    def setup(self):
        cfg = self.config
        sizes = [cfg.in_channels, *cfg.layer_sizes]
        layers: list[Dense | LayerNorm] = []
        linear_count = 0
        for kind, index in mlp_layer_indices(cfg):
            if kind == "linear":
                out_size = sizes[linear_count + 1] if linear_count < len(cfg.layer_sizes) else cfg.out_channels
                layers.append(
                    Dense(sizes[linear_count], out_size, compute_dtype=self.compute_dtype, name=f"mlp_{index}")
                )
                linear_count += 1
            else:
                layers.append(LayerNorm(sizes[linear_count], name=f"mlp_{index}"))
        self.layers = layers

    def _groups(self):
        """[(Dense, LayerNorm or None)] per hidden layer, then the final Dense."""
        items = self.layers
        groups, k = [], 0
        while k < len(items) - 1:
            dense = items[k]
            norm = items[k + 1] if self.config.layer_norm else None
            groups.append((dense, norm))
            k += 2 if self.config.layer_norm else 1
        return groups, items[-1]

    def __call__(self, x: jax.Array) -> jax.Array:
        """x: (..., in) -> (..., out)."""
        groups, last = self._groups()
        for dense, norm in groups:
            x = dense(x)
            if norm is not None:
                x = norm(x)
            x = jax.nn.leaky_relu(x, LEAKY_RELU_SLOPE)
        return last(x) * self.config.scale

    def initial_carry(self, batch: int, dtype=jnp.float32):
        return ()

    def prepare_rollout(self, features: jax.Array) -> tuple[jax.Array, MLPStepWeights]:
        """features: (B, n, F) -> (first-layer feature projections (n, B, H0), step weights)."""
        groups, last = self._groups()
        (first_dense, first_norm), rest = groups[0], groups[1:]
        kernel, bias = first_dense.weights()
        feature_kernel, state_kernel = _split_input_kernel(kernel, self.feature_channels)
        projected = _project_features(features, feature_kernel, bias, self.compute_dtype)
        hidden = tuple(
            (*dense.weights(), *(norm.weights() if norm is not None else (None, None))) for dense, norm in rest
        )
        first_norm_weights = first_norm.weights() if first_norm is not None else None
        return projected, MLPStepWeights(state_kernel, first_norm_weights, hidden, last.weights(), self.config.scale)

    @staticmethod
    def rollout_step(
        weights: MLPStepWeights, carry, projected_t: jax.Array, state: jax.Array | None, dot: Dot = jnp.dot
    ):
        """One decoder step (stateless). projected_t: (B, H0); state: (B, S) or None -> ((), out).

        ``dot``: the product with a weight matrix (see `emgjax.models.hoisted_scan`)."""
        x = projected_t if state is None else projected_t + dot(state, weights.first_state)
        if weights.first_norm is not None:
            x = layer_norm(x, *weights.first_norm)
        x = jax.nn.leaky_relu(x, LEAKY_RELU_SLOPE)
        for kernel, bias, norm_scale, norm_bias in weights.hidden:
            x = dot(x, kernel) + bias
            if norm_scale is not None:
                x = layer_norm(x, norm_scale, norm_bias)
            x = jax.nn.leaky_relu(x, LEAKY_RELU_SLOPE)
        kernel, bias = weights.last
        return carry, (dot(x, kernel) + bias) * weights.scale


def make_decoder(
    config, feature_channels: int, name: str = "decoder", compute_dtype: Any = None
) -> SequentialLSTM | MLP:
    if isinstance(config, LSTMDecoderConfig):
        return SequentialLSTM(config, feature_channels, compute_dtype, name=name)
    if isinstance(config, MLPDecoderConfig):
        return MLP(config, feature_channels, compute_dtype, name=name)
    raise ValueError(f"decoder config: expected LSTMDecoderConfig or MLPDecoderConfig, found {type(config).__name__}")


__all__ = ["SequentialLSTM", "MLP", "LSTMStepWeights", "MLPStepWeights", "mlp_layer_indices", "make_decoder"]
