"""Analytic FLOP counts of the benchmarked models (multiply-adds x 2), to cross-check XLA's cost analysis.

Convolutions, linear layers and LSTM matmuls only: norms, activations, pooling and the optimizer
update are left out (a few per cent of the total at these sizes). A training step counts as three
forwards (the backward pass costs about two), the usual convention for model-FLOP utilisation.
"""

from __future__ import annotations

import math

from emgjax.models.configs import PoseModelConfig, TdsNetworkConfig
from emgjax.models.direct import DirectConfig

__all__ = ["TRAIN_FACTOR", "direct_flops", "emg2pose_flops"]

TRAIN_FACTOR = 3.0  # forward + backward (about twice the forward) per training step


def emg2pose_flops(config: PoseModelConfig, num_samples: int, batch: int) -> float:
    """FLOPs of one windowed forward of ``batch`` windows of ``num_samples`` (TDS network + LSTM rollout)."""
    net: TdsNetworkConfig = config.network
    flops, length = 0.0, num_samples
    for block in net.conv_blocks:
        length = (length - block.kernel_size) // block.stride + 1
        flops += 2 * length * block.kernel_size * block.in_channels * block.out_channels
    for stage in net.tds_stages:
        c = stage.num_features
        length = (length - stage.in_conv_kernel_width) // stage.in_conv_stride + 1
        flops += 2 * length * stage.in_conv_kernel_width * stage.in_channels * c
        for _ in range(stage.num_blocks):
            length = length - stage.kernel_width + 1
            flops += 2 * length * stage.kernel_width * stage.channels * c  # conv2d: width columns x ch x ch x k
            flops += 2 * 2 * length * c * c  # two Linear C->C
        if stage.out_channels is not None:
            flops += 2 * length * c * stage.out_channels
    dec = config.decoder
    steps = config.rollout_steps(num_samples)
    h = dec.hidden_size
    per_step = 2 * 4 * h * (dec.in_channels + h) + 2 * 4 * h * 2 * h * (dec.num_layers - 1) + 2 * h * dec.out_channels
    flops += steps * per_step
    return batch * flops


def direct_flops(config: DirectConfig, num_samples: int, batch: int) -> float:
    """FLOPs of one forward of the direct model ("same" convolutions, max-pools, LSTM over every step, head)."""
    flops, length, width = 0.0, num_samples, config.in_channels
    for channels in config.conv_channels:
        flops += 2 * length * config.kernel_size * width * channels
        length //= config.pool_size
        width = channels
    h = config.lstm_hidden
    flops += length * (2 * 4 * h * (width + h) + 2 * 4 * h * 2 * h * (config.lstm_layers - 1))
    outputs = math.prod(config.output_shape)
    head = 2 * h * config.head_hidden + 2 * config.head_hidden * outputs
    flops += head * (length if config.mode == "sequence" else 1)
    return batch * flops
