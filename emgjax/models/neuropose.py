"""Meta's NeuroPose network (regression_neuropose) as Flax Linen modules.

EMG (B, T, 16) is viewed as a one-channel image (B, T, 16, 1) in NHWC (time is
the image height, electrodes the width). Encoder blocks (conv "same" → BN →
ReLU → dropout → max-pool), residual blocks (x + f(x)), decoder blocks (conv →
BN → ReLU → dropout → nearest upsampling), then Linear over the width.

Param names mirror Meta's: block j is `network_{j}`; inside it the conv of
sub-layer i is `network_{4i}` and its BatchNorm `network_{4i+1}` (the
nn.Sequential indices; ReLU and dropout take the other two).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn
from jax import lax

from emgjax.models.configs import DecoderBlockConfig, EncoderBlockConfig, NeuroPoseConfig, ResidualBlockConfig
from emgjax.models.layers import BatchNorm, Dense, torch_uniform_init


def same_padding(kernel_size: tuple[int, ...]) -> list[tuple[int, int]]:
    """PyTorch padding="same": total k−1, the smaller half before (k=2 pads 0 before, 1 after)."""
    return [((k - 1) // 2, (k - 1) - (k - 1) // 2) for k in kernel_size]


class Conv2dSame(nn.Module):
    """Conv2d with PyTorch "same" padding on NHWC.

    Params: kernel (kh, kw, in, out) = PyTorch weight.transpose(2, 3, 1, 0), and bias (out,).
    """

    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kh, kw = self.kernel_size
        init = torch_uniform_init(self.in_channels * kh * kw)
        kernel = self.param("kernel", init, (kh, kw, self.in_channels, self.out_channels))
        bias = self.param("bias", init, (self.out_channels,))
        y = lax.conv_general_dilated(
            x, kernel, (1, 1), same_padding(self.kernel_size), dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        return y + bias


def _conv_bn_relu_dropout(
    x: jax.Array, train: bool, in_ch: int, out_ch: int, kernel: Sequence[int], rate: float, sub_index: int
) -> jax.Array:
    """Sub-layer `sub_index` (conv "same" → BatchNorm → ReLU → dropout) of the block whose compact
    method calls it; its parts are named `network_{4i}` / `network_{4i+1}` as in Meta's nn.Sequential."""
    x = Conv2dSame(in_ch, out_ch, (kernel[0], kernel[1]), name=f"network_{4 * sub_index}")(x)
    x = BatchNorm(out_ch, name=f"network_{4 * sub_index + 1}")(x, train)
    x = jax.nn.relu(x)
    if rate > 0:
        x = nn.Dropout(rate, deterministic=not train)(x)
    return x


class EncoderBlock(nn.Module):
    config: EncoderBlockConfig

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """x: (B, H, W, in) -> (B, H // ph, W // pw, out)."""
        c = self.config
        x = _conv_bn_relu_dropout(x, train, c.in_channels, c.out_channels, c.kernel_size, c.dropout_rate, 0)
        pool = tuple(c.max_pool_size)
        return nn.max_pool(x, pool, strides=pool, padding="VALID")


class ResidualBlock(nn.Module):
    config: ResidualBlockConfig

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """x: (B, H, W, C) -> x + f(x), same shape."""
        c = self.config
        h = x
        for i in range(c.num_convs):
            h = _conv_bn_relu_dropout(
                h, train, c.in_channels if i == 0 else c.out_channels, c.out_channels, c.kernel_size, c.dropout_rate, i
            )
        return x + h


class DecoderBlock(nn.Module):
    config: DecoderBlockConfig

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """x: (B, H, W, in) -> (B, H·uh, W·uw, out), nearest-neighbour upsampling."""
        c = self.config
        x = _conv_bn_relu_dropout(x, train, c.in_channels, c.out_channels, c.kernel_size, c.dropout_rate, 0)
        uh, uw = c.upsampling
        return jnp.repeat(jnp.repeat(x, uh, axis=1), uw, axis=2)


class NeuroPose(nn.Module):
    """emg: (B, T, in_channels) -> (B, output_length(T), out_channels)."""

    config: NeuroPoseConfig

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        cfg = self.config
        image = x[..., None]  # (B, T, electrodes, 1): NHWC with one channel
        j = 0
        for encoder in cfg.encoder_blocks:
            image = EncoderBlock(encoder, name=f"network_{j}")(image, train)
            j += 1
        for residual in cfg.residual_blocks:
            image = ResidualBlock(residual, name=f"network_{j}")(image, train)
            j += 1
        for decoder in cfg.decoder_blocks:
            image = DecoderBlock(decoder, name=f"network_{j}")(image, train)
            j += 1
        return Dense(cfg.linear_in_channels, cfg.out_channels, name="linear")(image[..., 0])


__all__ = ["NeuroPose", "EncoderBlock", "ResidualBlock", "DecoderBlock", "Conv2dSame", "same_padding"]
