"""Meta's TDS network (time-depth-separable convolutions) as Flax Linen modules.

Internally every module works on **(batch, time, channels)** so the
convolutions are XLA's preferred NWC/NHWC layout; `TdsNetwork.__call__` takes
and returns that layout and `emgjax.models.pose_modules` does the one
transpose from the public channel-first arrays.

Parameters keep PyTorch's *channel order* (so `emg2pose_map` is a plain
transpose per tensor), but a TdsStage works on a width-major channel order
internally: PyTorch's TDS conv2d views channel c = i·width + w as (i, w); we
instead order channels as w·channels + i, which makes the (B, T, width,
channels) view a free reshape, so the conv2d runs as an NHWC convolution with
no activation transposes. The stage permutes its *weights* (cheap, 256-wide)
instead; LayerNorm over all channels is order-invariant.

The PyTorch-convention layers it builds on (LayerNorm, Dense, BatchNorm,
conv parameters, initialisers) live in `emgjax.models.layers`.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from flax import linen as nn

from emgjax.models.configs import Conv1dBlockConfig, TdsNetworkConfig, TdsStageConfig
from emgjax.models.layers import BatchNorm, ConvParams, Dense, LayerNorm, conv, conv1d, torch_uniform_init

# ----------------------------------------------------------------------------- TDS blocks


def width_major_order(channels: int, width: int) -> tuple[int, ...]:
    """order[w·channels + i] = i·width + w: PyTorch channel index of each width-major position."""
    return tuple(int(i * width + w) for w in range(width) for i in range(channels))


class Conv1dBlock(nn.Module):
    """Meta's Conv1dBlock. x: (B, T, in) -> (B, (T − k)//stride + 1, out).

    Params `conv` {kernel (k, in, out) = weight.transpose(2, 1, 0), bias}, then
    `norm` (LayerNorm) or `bn` (BatchNorm). `out_order` permutes the output
    channels (TdsStage's width-major order).
    """

    config: Conv1dBlockConfig
    out_order: tuple[int, ...] | None = None
    compute_dtype: Any = None  # operand dtype of the convolution (see layers.conv); None: float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        cfg = self.config
        init = torch_uniform_init(cfg.in_channels * cfg.kernel_size)
        conv = ConvParams(cfg.kernel_size, cfg.in_channels, cfg.out_channels, init, name="conv")
        kernel, bias = conv()
        if self.out_order is not None:
            order = np.asarray(self.out_order)
            kernel, bias = kernel[..., order], bias[order]
        x = conv1d(x, kernel, cfg.stride, self.compute_dtype) + bias
        if cfg.norm_type == "batch":
            if self.out_order is not None:
                raise ValueError(
                    "Conv1dBlock: a channel order is only supported with LayerNorm, found norm_type 'batch'"
                )
            x = BatchNorm(cfg.out_channels, name="bn")(x, train)
        x = jax.nn.relu(x)
        if cfg.dropout > 0:
            x = nn.Dropout(cfg.dropout, deterministic=not train)(x)
        if cfg.norm_type == "layer":
            x = LayerNorm(cfg.out_channels, order=self.out_order, name="norm")(x)
        return x


class TDSConv2dBlock(nn.Module):
    """Conv over time per feature-width column, ReLU, residual, LayerNorm.

    x: (B, T, width·channels) in width-major order -> (B, T − k + 1, width·channels).
    Params `conv2d` {kernel (k, ch_in, ch_out) = weight[:, :, 0, :].transpose(2, 1, 0), bias},
    `layer_norm` (PyTorch channel order).
    """

    channels: int
    width: int
    kernel_width: int
    compute_dtype: Any = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        batch, time, num_features = x.shape
        ch, width, k = self.channels, self.width, self.kernel_width
        init = torch_uniform_init(ch * k)
        kernel, bias = ConvParams(k, ch, ch, init, name="conv2d")()
        # Free reshape thanks to the width-major order: (B, T, width, channels) is NHWC.
        image = x.reshape(batch, time, width, ch)
        out = conv(image, kernel[:, None], (1, 1), ("NHWC", "HWIO", "NHWC"), self.compute_dtype)
        out = jax.nn.relu(out + bias).reshape(batch, time - k + 1, num_features)
        out = out + x[:, time - out.shape[1] :]  # residual over the last T_out samples
        return LayerNorm(num_features, order=width_major_order(ch, width), name="layer_norm")(out)


class TDSFullyConnectedBlock(nn.Module):
    """Linear → ReLU → Linear over channels, residual, LayerNorm. x: (B, T, C) -> (B, T, C).

    Params `fc_block_0`, `fc_block_2` (Dense), `layer_norm`; `order` as in TdsStage.
    """

    num_features: int
    order: tuple[int, ...] | None = None
    compute_dtype: Any = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c, order, dtype = self.num_features, self.order, self.compute_dtype
        h = jax.nn.relu(Dense(c, c, in_order=order, out_order=order, compute_dtype=dtype, name="fc_block_0")(x))
        h = Dense(c, c, in_order=order, out_order=order, compute_dtype=dtype, name="fc_block_2")(h)
        return LayerNorm(c, order=order, name="layer_norm")(h + x)


class TdsStage(nn.Module):
    """Meta's TdsStage. x: (B, T, in) -> (B, T', out_channels or channels·width), PyTorch channel order."""

    config: TdsStageConfig
    compute_dtype: Any = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        cfg, dtype = self.config, self.compute_dtype
        order = width_major_order(cfg.channels, cfg.feature_width)
        x = Conv1dBlock(cfg.conv_block, out_order=order, compute_dtype=dtype, name="conv1dblock")(x, train)
        for k in range(cfg.num_blocks):
            x = TDSConv2dBlock(
                cfg.channels, cfg.feature_width, cfg.kernel_width, dtype, name=f"tds_conv_blocks_{2 * k}"
            )(x)
            x = TDSFullyConnectedBlock(cfg.num_features, order, dtype, name=f"tds_conv_blocks_{2 * k + 1}")(x)
        if cfg.out_channels is not None:
            return Dense(cfg.num_features, cfg.out_channels, in_order=order, compute_dtype=dtype, name="linear_layer")(
                x
            )
        # Back to PyTorch channel order for whatever consumes the stage.
        batch, time, _ = x.shape
        return x.reshape(batch, time, cfg.feature_width, cfg.channels).swapaxes(-1, -2).reshape(batch, time, -1)


class TdsNetwork(nn.Module):
    """Meta's TdsNetwork. emg: (B, T, in_channels) -> features (B, T', out_channels).

    T' = network output_length(T); the first output sees samples [0, left_context].
    Submodules `layers_{i}`: conv blocks, then TDS stages (Meta's nn.Sequential indices).
    ``compute_dtype``: the operand dtype of every convolution and Dense (`layers.COMPUTE_DTYPES`); the
    outputs, LayerNorm and BatchNorm stay float32.
    """

    config: TdsNetworkConfig
    compute_dtype: Any = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        index = 0
        for block in self.config.conv_blocks:
            x = Conv1dBlock(block, compute_dtype=self.compute_dtype, name=f"layers_{index}")(x, train)
            index += 1
        for stage in self.config.tds_stages:
            x = TdsStage(stage, self.compute_dtype, name=f"layers_{index}")(x, train)
            index += 1
        return x


__all__ = [
    "width_major_order",
    "Conv1dBlock",
    "TDSConv2dBlock",
    "TDSFullyConnectedBlock",
    "TdsStage",
    "TdsNetwork",
]
