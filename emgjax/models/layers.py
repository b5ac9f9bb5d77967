"""Generic layers with PyTorch's conventions, shared by the emg2pose networks (TDS, NeuroPose, decoders, LSTM).

Parameters keep PyTorch's values and channel order under Flax names (`kernel`
= PyTorch weight transposed, `scale`/`bias`), so `emgjax.convert.emg2pose_map`
is a plain transpose per tensor. Numerics follow torch.nn: LayerNorm with eps
1e-5 and a two-pass variance, BatchNorm with PyTorch's unbiased running
variance and momentum 0.1, PyTorch's default initialisers. Arrays are
channels-last: (..., features) for Dense/LayerNorm, (B, T, C) for `conv1d`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from jax import lax

TORCH_NORM_EPS = 1e-5
TORCH_BN_MOMENTUM = 0.1  # PyTorch convention: new = (1 − m)·old + m·batch

# The precision option of the models' configs (`compute_dtype`): the operand dtype of their matmuls and
# convolutions (None: float32 throughout). Accumulation, normalisation and recurrent state stay float32.
COMPUTE_DTYPES: dict[str, Any] = {"float32": None, "bfloat16": jnp.bfloat16}


def matmul(a: jax.Array, b: jax.Array, compute_dtype: Any = None) -> jax.Array:
    """``a @ b`` with both operands in ``compute_dtype`` (None: as they are) and a float32 result.

    With ``jnp.bfloat16`` this is the precision option: bfloat16 products, float32 accumulation.
    """
    if compute_dtype is None:
        return jnp.dot(a, b)
    return jnp.dot(a.astype(compute_dtype), b.astype(compute_dtype), preferred_element_type=jnp.float32)


def conv(
    x: jax.Array, kernel: jax.Array, strides: tuple[int, ...], dimension_numbers: Any, compute_dtype: Any = None
) -> jax.Array:
    """A VALID convolution (`lax.conv_general_dilated`), operands in ``compute_dtype`` with a float32 result."""
    if compute_dtype is None:
        return lax.conv_general_dilated(x, kernel, strides, "VALID", dimension_numbers=dimension_numbers)
    return lax.conv_general_dilated(
        x.astype(compute_dtype),
        kernel.astype(compute_dtype),
        strides,
        "VALID",
        dimension_numbers=dimension_numbers,
        preferred_element_type=jnp.float32,
    )


# ----------------------------------------------------------------------------- PyTorch-convention layers


def torch_uniform_init(fan_in: int) -> Callable[..., jax.Array]:
    """PyTorch's default Linear/Conv init: U(−1/√fan_in, 1/√fan_in) (kaiming_uniform with a=√5)."""
    bound = 1.0 / math.sqrt(max(fan_in, 1))

    def init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def layer_norm(x: jax.Array, scale: jax.Array, bias: jax.Array, eps: float = TORCH_NORM_EPS) -> jax.Array:
    """LayerNorm over the last axis with PyTorch's biased, two-pass variance."""
    mean = jnp.mean(x, axis=-1, keepdims=True)
    centered = x - mean
    var = jnp.mean(centered * centered, axis=-1, keepdims=True)
    return centered * lax.rsqrt(var + eps) * scale + bias


class LayerNorm(nn.Module):
    """LayerNorm over the last axis, params `scale`, `bias` (PyTorch `weight`, `bias`).

    `order` optionally permutes the stored parameters (see TdsStage).
    """

    features: int
    order: tuple[int, ...] | None = None

    def setup(self) -> None:
        self.scale = self.param("scale", nn.initializers.ones, (self.features,))
        self.bias = self.param("bias", nn.initializers.zeros, (self.features,))

    def weights(self) -> tuple[jax.Array, jax.Array]:
        """(scale, bias), permuted to `order`."""
        if self.order is None:
            return self.scale, self.bias
        order = np.asarray(self.order)
        return self.scale[order], self.bias[order]

    def __call__(self, x: jax.Array) -> jax.Array:
        return layer_norm(x, *self.weights())


class Dense(nn.Module):
    """Linear over the last axis; `kernel` is (in, out) = PyTorch weight.T.

    `in_order`/`out_order` optionally permute the stored kernel's rows/columns (see TdsStage).
    """

    in_features: int
    out_features: int
    in_order: tuple[int, ...] | None = None
    out_order: tuple[int, ...] | None = None
    compute_dtype: Any = None  # matmul operand dtype (see `matmul`); None: float32

    def setup(self) -> None:
        init = torch_uniform_init(self.in_features)
        self.kernel = self.param("kernel", init, (self.in_features, self.out_features))
        self.bias = self.param("bias", init, (self.out_features,))

    def weights(self) -> tuple[jax.Array, jax.Array]:
        """(kernel (in, out), bias (out,)), permuted to `in_order`/`out_order`."""
        kernel, bias = self.kernel, self.bias
        if self.in_order is not None:
            kernel = kernel[np.asarray(self.in_order)]
        if self.out_order is not None:
            kernel, bias = kernel[:, np.asarray(self.out_order)], bias[np.asarray(self.out_order)]
        return kernel, bias

    def __call__(self, x: jax.Array) -> jax.Array:
        kernel, bias = self.weights()
        return matmul(x, kernel, self.compute_dtype) + bias


class BatchNorm(nn.Module):
    """BatchNorm over all axes but the last, with PyTorch's numerics.

    Params `scale`, `bias`; batch_stats `mean`, `var`. Training normalises
    with the biased batch variance and updates the running variance with the
    *unbiased* one, momentum 0.1 — as torch.nn.BatchNorm does (Flax's own
    BatchNorm keeps the biased one).
    """

    features: int

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        scale = self.param("scale", nn.initializers.ones, (self.features,))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        running_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((self.features,), jnp.float32))
        running_var = self.variable("batch_stats", "var", lambda: jnp.ones((self.features,), jnp.float32))
        if train:
            axes = tuple(range(x.ndim - 1))
            mean = jnp.mean(x, axis=axes)
            var = jnp.mean(jnp.square(x - mean), axis=axes)
            count = math.prod(x.shape[:-1])
            if not self.is_initializing():
                unbiased = var * (count / max(count - 1, 1))
                running_mean.value = (1 - TORCH_BN_MOMENTUM) * running_mean.value + TORCH_BN_MOMENTUM * mean
                running_var.value = (1 - TORCH_BN_MOMENTUM) * running_var.value + TORCH_BN_MOMENTUM * unbiased
        else:
            mean, var = running_mean.value, running_var.value
        return (x - mean) * (lax.rsqrt(var + TORCH_NORM_EPS) * scale) + bias


class ConvParams(nn.Module):
    """Holds a conv kernel (k, in, out) and bias (out,) under one name, like nn.Conv does."""

    kernel_size: int
    in_channels: int
    out_channels: int
    # Not named `init`: a field of that name would shadow nn.Module.init.
    initializer: Callable[..., jax.Array]

    @nn.compact
    def __call__(self) -> tuple[jax.Array, jax.Array]:
        kernel = self.param("kernel", self.initializer, (self.kernel_size, self.in_channels, self.out_channels))
        bias = self.param("bias", self.initializer, (self.out_channels,))
        return kernel, bias


def conv1d(x: jax.Array, kernel: jax.Array, stride: int, compute_dtype: Any = None) -> jax.Array:
    """Valid strided conv. x: (B, T, Cin), kernel: (k, Cin, Cout) -> (B, T_out, Cout) float32.

    ``compute_dtype``: the operands' dtype (see `conv`); None: as they are."""
    return conv(x, kernel, (stride,), ("NWC", "WIO", "NWC"), compute_dtype)


__all__ = [
    "COMPUTE_DTYPES",
    "TORCH_NORM_EPS",
    "TORCH_BN_MOMENTUM",
    "torch_uniform_init",
    "layer_norm",
    "LayerNorm",
    "Dense",
    "BatchNorm",
    "ConvParams",
    "conv",
    "conv1d",
    "matmul",
]
