"""PyTorch reference of Meta's emg2pose models, for parity tests and benchmarks.

Written from the behaviour described in ``shared/design/emg2pose_facts.md``; the
*attribute names* reproduce Meta's modules so that ``state_dict`` keys are the
ones found in released checkpoints (``model.network.layers.0.conv.0.weight``,
``model.decoder.lstm.weight_ih_l0``, ...).

Public API
----------
``EXPERIMENTS``                     the five published experiments.
``hyper_parameters_for(exp, **o)``  Meta-style hydra ``hyper_parameters`` dict.
``build_torch_model(exp, **o)``     the pose module (``.network``, ``.decoder``,
                                    ``.left_context``, ``.right_context``), built
                                    from ``hyper_parameters_for(exp, **o)["network_conf"]``.
``randomize_(model, seed)``         seeded re-draw of every parameter, with
                                    LayerNorm/BatchNorm affine parameters and
                                    running statistics moved away from their defaults.
``save_lightning_checkpoint(...)``  a ``.ckpt`` with Lightning's layout.
``torch_forward(...)``              eval-mode, no-grad forward -> numpy (pred, target, mask).

Overrides (keyword arguments of the functions above; defaults reproduce the
published configs exactly, so pass none of them for the real sizes):

=======================  ====================  =========================================
name                     default               meaning
=======================  ====================  =========================================
``tds_channels``         16                    TDS channels (C = tds_channels * feature_width
``feature_width``        16                    is also the width of both conv blocks)
``num_blocks``           2                     TDS blocks per stage
``tds_out_channels``     64                    features out of the TDS network
``hidden_size``          512                   LSTM hidden size
``num_layers``           2                     LSTM layers
``mlp_hidden``           512                   width of both MLP hidden layers
``neuropose_channels``   (32, 128, 256)        NeuroPose encoder widths (decoder mirrors them)
``num_residual_blocks``  5                     NeuroPose residual blocks
``dropout``              0.05                  NeuroPose dropout rate
=======================  ====================  =========================================

The TDS kernels, strides and hence ``left_context`` (1790 samples) never change,
and neither do the 16 EMG channels or 20 joint angles.
"""

from __future__ import annotations

import collections
import math
import pathlib
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

EXPERIMENTS = (
    "tracking_vemg2pose",
    "regression_vemg2pose",
    "tracking_emg2pose",
    "regression_emg2pose",
    "regression_neuropose",
)

EMG_SAMPLE_RATE = 2000.0
NUM_JOINTS = 20
NUM_EMG_CHANNELS = 16

# ----------------------------------------------------------------------------
# TDS featurizer
# ----------------------------------------------------------------------------


def _over_channels(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply a last-axis module (LayerNorm/Linear) to (B, C, T) over C."""
    return module(x.transpose(1, 2)).transpose(1, 2)


class _ChannelBatchNorm(nn.Module):
    """BatchNorm over the channels of (B, C, T); attribute name ``bn`` as in Meta's wrapper.

    Meta's wrapper permutes (B, T, C) -> (B, C, T) around BatchNorm1d although a
    Conv1dBlock hands it (B, C, T), which only runs when T == C; no published
    config uses norm_type="batch". This reference normalises over channels.
    """

    def __init__(self, num_features: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x)


class Conv1dBlock(nn.Module):
    """Valid Conv1d -> [BatchNorm] -> ReLU -> Dropout, then LayerNorm over channels.

    x: (B, in_channels, T) -> (B, out_channels, (T - kernel_size) // stride + 1)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        norm_type: Literal["layer", "batch", "none"] = "layer",
        dropout: float = 0.0,
    ):
        super().__init__()
        if norm_type not in ("layer", "batch", "none"):
            raise ValueError(f"norm_type must be 'layer', 'batch' or 'none', got {norm_type!r}")
        self.kernel_size = kernel_size
        self.stride = stride
        self.norm_type = norm_type
        parts: list[nn.Module] = [nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride)]
        if norm_type == "batch":
            parts.append(_ChannelBatchNorm(out_channels))
        parts += [nn.ReLU(), nn.Dropout(dropout)]
        self.conv = nn.Sequential(*parts)
        if norm_type == "layer":
            self.norm = nn.LayerNorm(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return _over_channels(self.norm, x) if self.norm_type == "layer" else x


class TDSConv2dBlock(nn.Module):
    """Time-depth-separable conv: (B, c*w, T) -> (B, c*w, T - kernel_width + 1), residual + LayerNorm."""

    def __init__(self, channels: int, width: int, kernel_width: int):
        super().__init__()
        self.channels = channels
        self.width = width
        self.conv2d = nn.Conv2d(channels, channels, kernel_size=(1, kernel_width))
        self.layer_norm = nn.LayerNorm(channels * width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, features, time = x.shape
        y = torch.relu(self.conv2d(x.reshape(batch, self.channels, self.width, time)))
        y = y.reshape(batch, features, -1)
        # The valid convolution drops kernel_width - 1 leading samples: the
        # residual keeps the input's last samples so both stay time-aligned.
        y = y + x[..., x.shape[-1] - y.shape[-1] :]
        return _over_channels(self.layer_norm, y)


class TDSFullyConnectedBlock(nn.Module):
    """Per-time-step Linear -> ReLU -> Linear over channels, residual + LayerNorm. (B, C, T) -> (B, C, T)."""

    def __init__(self, num_features: int):
        super().__init__()
        self.fc_block = nn.Sequential(
            nn.Linear(num_features, num_features), nn.ReLU(), nn.Linear(num_features, num_features)
        )
        self.layer_norm = nn.LayerNorm(num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _over_channels(self.layer_norm, x + _over_channels(self.fc_block, x))


class TDSConvEncoder(nn.Module):
    """Alternating TDSConv2dBlock / TDSFullyConnectedBlock, one pair per entry of block_channels."""

    def __init__(self, num_features: int, block_channels: Sequence[int], kernel_width: int):
        super().__init__()
        if not block_channels:
            raise ValueError("block_channels must not be empty")
        self.kernel_width = kernel_width
        self.num_blocks = len(block_channels)
        blocks: list[nn.Module] = []
        for channels in block_channels:
            if num_features % channels:
                raise ValueError(f"block channels {channels} must divide num_features {num_features}")
            blocks.append(TDSConv2dBlock(channels, num_features // channels, kernel_width))
            blocks.append(TDSFullyConnectedBlock(num_features))
        self.tds_conv_blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tds_conv_blocks(x)


class TdsStage(nn.Module):
    """Conv1dBlock (in -> channels*feature_width), TDS blocks, optional Linear to out_channels."""

    def __init__(
        self,
        in_channels: int = 16,
        in_conv_kernel_width: int = 5,
        in_conv_stride: int = 1,
        num_blocks: int = 1,
        channels: int = 8,
        feature_width: int = 2,
        kernel_width: int = 1,
        out_channels: int | None = None,
    ):
        super().__init__()
        width = channels * feature_width
        parts: OrderedDict[str, nn.Module] = OrderedDict()
        if in_conv_kernel_width > 0:
            parts["conv1dblock"] = Conv1dBlock(in_channels, width, in_conv_kernel_width, in_conv_stride)
        elif in_channels != width:
            raise ValueError(
                f"without an input conv, in_channels ({in_channels}) must equal "
                f"channels * feature_width ({channels} * {feature_width})"
            )
        parts["tds_block"] = TDSConvEncoder(width, [channels] * num_blocks, kernel_width)
        self.layers = nn.Sequential(parts)
        self.out_channels = out_channels
        if out_channels is not None:
            self.linear_layer = nn.Linear(width, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(x)
        return _over_channels(self.linear_layer, x) if self.out_channels is not None else x


class TdsNetwork(nn.Module):
    """Conv blocks then TDS stages: (B, 16, T) -> (B, out, T'); total stride 80 when published."""

    def __init__(self, conv_blocks: Sequence[Conv1dBlock], tds_stages: Sequence[TdsStage]):
        super().__init__()
        self.layers = nn.Sequential(*conv_blocks, *tds_stages)
        # Every valid conv removes (kernel - 1) input samples at the stride it runs at.
        left, stride = 0, 1
        for block in conv_blocks:
            left += (block.kernel_size - 1) * stride
            stride *= block.stride
        for stage in tds_stages:
            if "conv1dblock" in stage.layers._modules:
                block = stage.layers.conv1dblock
                left += (block.kernel_size - 1) * stride
                stride *= block.stride
            encoder = stage.layers.tds_block
            left += encoder.num_blocks * (encoder.kernel_width - 1) * stride
        self.left_context = left
        self.right_context = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


# ----------------------------------------------------------------------------
# NeuroPose
# ----------------------------------------------------------------------------


def _conv_bn_relu_dropout(cin: int, cout: int, kernel_size: Sequence[int], dropout_rate: float) -> list[nn.Module]:
    # padding="same" with an even kernel pads 0 before and 1 after, as the facts say.
    return [
        nn.Conv2d(cin, cout, tuple(kernel_size), padding="same"),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
        nn.Dropout(dropout_rate),
    ]


class EncoderBlock(nn.Module):
    """(B, Cin, T, E) -> (B, Cout, T // p0, E // p1)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Sequence[int],
        max_pool_size: Sequence[int],
        dropout_rate: float = 0.05,
    ):
        super().__init__()
        pool = tuple(max_pool_size)
        self.network = nn.Sequential(
            *_conv_bn_relu_dropout(in_channels, out_channels, kernel_size, dropout_rate),
            nn.MaxPool2d(pool, stride=pool),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)


class ResidualBlock(nn.Module):
    """x + f(x), f = num_convs x (Conv2d same, BN, ReLU, Dropout)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Sequence[int],
        num_convs: int,
        dropout_rate: float = 0.05,
    ):
        super().__init__()
        parts: list[nn.Module] = []
        for i in range(num_convs):
            parts += _conv_bn_relu_dropout(
                in_channels if i == 0 else out_channels, out_channels, kernel_size, dropout_rate
            )
        self.network = nn.Sequential(*parts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.network(x)


class DecoderBlock(nn.Module):
    """(B, Cin, T, E) -> (B, Cout, T * u0, E * u1) by nearest upsampling."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Sequence[int],
        upsampling: Sequence[int],
        dropout_rate: float = 0.05,
    ):
        super().__init__()
        self.out_channels = out_channels
        scale = (float(upsampling[0]), float(upsampling[1]))
        self.network = nn.Sequential(
            *_conv_bn_relu_dropout(in_channels, out_channels, kernel_size, dropout_rate),
            nn.Upsample(scale_factor=scale, mode="nearest"),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)


class NeuroPose(nn.Module):
    """(B, 16, T) -> image (B, 1, T, 16) -> convs -> (B, T, linear_in) -> Linear -> (B, out, T)."""

    def __init__(
        self,
        encoder_blocks: Sequence[nn.Module],
        residual_blocks: Sequence[nn.Module],
        decoder_blocks: Sequence[nn.Module],
        linear_in_channels: int,
        out_channels: int = 22,
    ):
        super().__init__()
        self.network = nn.Sequential(*encoder_blocks, *residual_blocks, *decoder_blocks)
        self.linear = nn.Linear(linear_in_channels, out_channels)
        self.left_context = 0
        self.right_context = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        image = x.unsqueeze(1).transpose(2, 3)  # (B, 1, T, E)
        with warnings.catch_warnings():
            # Meta's (3, 2) kernels with padding="same": torch warns that an even
            # kernel needs a padded copy. Expected, so keep test output clean.
            warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")
            y = self.network(image)  # (B, C', T, E')
        y = y.permute(0, 2, 1, 3).flatten(2)  # (B, T, C' * E')
        return self.linear(y).transpose(1, 2)  # (B, out, T)


# ----------------------------------------------------------------------------
# Decoders
# ----------------------------------------------------------------------------


class MLP(nn.Module):
    """(B, in) -> (B, out): [Linear, (LayerNorm), LeakyReLU] per hidden size, Linear, times scale."""

    def __init__(
        self,
        in_channels: int,
        layer_sizes: Sequence[int],
        out_channels: int,
        layer_norm: bool = False,
        scale: float = 1.0,
    ):
        super().__init__()
        parts: list[nn.Module] = []
        width = in_channels
        for size in layer_sizes:
            parts.append(nn.Linear(width, size))
            if layer_norm:
                parts.append(nn.LayerNorm(size))
            parts.append(nn.LeakyReLU())
            width = size
        parts.append(nn.Linear(width, out_channels))
        self.mlp = nn.Sequential(*parts)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x) * self.scale


class SequentialLSTM(nn.Module):
    """One LSTM step per call: (B, in) -> (B, out); the (h, c) state persists until reset_state()."""

    def __init__(self, in_channels: int, out_channels: int, hidden_size: int, num_layers: int = 1, scale: float = 1.0):
        super().__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.lstm = nn.LSTM(in_channels, hidden_size, num_layers, batch_first=True)
        self.mlp_out = nn.Sequential(nn.LeakyReLU(), nn.Linear(hidden_size, out_channels))
        self.scale = scale
        self.hidden: tuple[torch.Tensor, torch.Tensor] | None = None

    def reset_state(self) -> None:
        self.hidden = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.hidden is None:
            zeros = x.new_zeros(self.num_layers, x.shape[0], self.hidden_size)
            self.hidden = (zeros, zeros.clone())
        out, self.hidden = self.lstm(x.unsqueeze(1), self.hidden)
        return self.mlp_out(out[:, 0]) * self.scale


# ----------------------------------------------------------------------------
# Pose modules
# ----------------------------------------------------------------------------


class BasePoseModule(nn.Module):
    """Shared forward: initial pose, prediction, target slicing and alignment.

    batch: emg (B, 16, T) float, joint_angles (B, 20, T) float, no_ik_failure (B, T) bool.
    Returns pred (B, 20, T'), target (B, 20, T'), mask (B, T') with
    T' = T - left_context - right_context.
    """

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network
        self.left_context = network.left_context
        self.right_context = network.right_context

    def forward(self, batch: dict[str, torch.Tensor], provide_initial_pos: bool):
        emg, joint_angles, mask = batch["emg"], batch["joint_angles"], batch["no_ik_failure"]
        initial_pos = joint_angles[..., self.left_context]
        if not provide_initial_pos:
            initial_pos = torch.zeros_like(initial_pos)
        pred = self._predict_pose(emg, initial_pos)

        stop = joint_angles.shape[-1] - self.right_context
        target = joint_angles[..., self.left_context : stop]
        mask = mask[..., self.left_context : stop]
        n_time = target.shape[-1]
        pred = F.interpolate(pred, size=n_time, mode="linear", align_corners=False)
        mask = F.interpolate(mask[:, None].float(), size=n_time, mode="nearest")[:, 0].bool()
        return pred, target, mask

    def _rollout_features(self, emg: torch.Tensor) -> torch.Tensor:
        """Network features at the rollout rate: (B, F, n), n = round(seconds * rollout_freq)."""
        features = self.network(emg)
        seconds = (emg.shape[-1] - self.left_context - self.right_context) / EMG_SAMPLE_RATE
        steps = round(seconds * self.rollout_freq)
        return F.interpolate(features, size=steps, mode="linear", align_corners=True)

    def _predict_pose(self, emg: torch.Tensor, initial_pos: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class PoseModule(BasePoseModule):
    """The network output is the pose (or its velocity, integrated from the initial pose)."""

    def __init__(self, network: nn.Module, predict_vel: bool = False):
        super().__init__(network)
        self.predict_vel = predict_vel

    def _predict_pose(self, emg, initial_pos):
        pred = self.network(emg)
        return initial_pos[..., None] + torch.cumsum(pred, dim=-1) if self.predict_vel else pred


class StatePoseModule(BasePoseModule):
    """Autoregressive rollout: decoder(features_t ‖ previous pose) -> pose (or velocity)."""

    def __init__(
        self,
        network: nn.Module,
        decoder: nn.Module,
        state_condition: bool = True,
        predict_vel: bool = False,
        rollout_freq: int = 50,
    ):
        super().__init__(network)
        self.decoder = decoder
        self.state_condition = state_condition
        self.predict_vel = predict_vel
        self.rollout_freq = rollout_freq

    def _predict_pose(self, emg, initial_pos):
        features = self._rollout_features(emg)
        if isinstance(self.decoder, SequentialLSTM):
            self.decoder.reset_state()
        previous = initial_pos
        poses = []
        for t in range(features.shape[-1]):
            step_in = features[..., t]
            if self.state_condition:
                step_in = torch.cat([step_in, previous], dim=-1)
            out = self.decoder(step_in)
            previous = previous + out if self.predict_vel else out
            poses.append(previous)
        return torch.stack(poses, dim=-1)


class VEMG2PoseWithInitialState(BasePoseModule):
    """Rollout whose decoder emits position ‖ velocity: positions first, then integrated velocities."""

    def __init__(
        self,
        network: nn.Module,
        decoder: nn.Module,
        num_position_steps: int,
        state_condition: bool = True,
        rollout_freq: int = 50,
    ):
        super().__init__(network)
        self.decoder = decoder
        self.num_position_steps = num_position_steps
        self.state_condition = state_condition
        self.rollout_freq = rollout_freq

    def _predict_pose(self, emg, initial_pos):
        features = self._rollout_features(emg)
        if isinstance(self.decoder, SequentialLSTM):
            self.decoder.reset_state()
        # Python's round: 500 samples at 2 kHz -> 12.5 rollout steps -> 12.
        position_steps = round(self.num_position_steps * self.rollout_freq / EMG_SAMPLE_RATE)
        previous = initial_pos
        poses = []
        for t in range(features.shape[-1]):
            step_in = features[..., t]
            if self.state_condition:
                step_in = torch.cat([step_in, previous], dim=-1)
            position, velocity = self.decoder(step_in).chunk(2, dim=-1)
            previous = position if t < position_steps else previous + velocity
            poses.append(previous)
        return torch.stack(poses, dim=-1)


# ----------------------------------------------------------------------------
# Configs (Meta-style hydra dicts) and instantiation
# ----------------------------------------------------------------------------

_DEFAULTS: dict[str, Any] = {
    "tds_channels": 16,
    "feature_width": 16,
    "num_blocks": 2,
    "tds_out_channels": 64,
    "hidden_size": 512,
    "num_layers": 2,
    "mlp_hidden": 512,
    "neuropose_channels": (32, 128, 256),
    "num_residual_blocks": 5,
    "dropout": 0.05,
}


def _settings(experiment: str, overrides: dict[str, Any]) -> dict[str, Any]:
    if experiment not in EXPERIMENTS:
        raise ValueError(f"expected experiment in {EXPERIMENTS}, got {experiment!r}")
    unknown = sorted(set(overrides) - set(_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown overrides {unknown}; expected some of {sorted(_DEFAULTS)}")
    settings = {**_DEFAULTS, **overrides}
    if len(tuple(settings["neuropose_channels"])) != 3:
        raise ValueError(f"neuropose_channels needs 3 widths, got {settings['neuropose_channels']!r}")
    return settings


def _tds_conf(s: dict[str, Any]) -> dict[str, Any]:
    width = s["tds_channels"] * s["feature_width"]

    def conv(cin, k, stride):
        return {
            "_target_": "emg2pose.networks.Conv1dBlock",
            "in_channels": cin,
            "out_channels": width,
            "kernel_size": k,
            "stride": stride,
        }

    def stage(k, stride, tds_k, out=None):
        conf = {
            "_target_": "emg2pose.networks.TdsStage",
            "in_channels": width,
            "in_conv_kernel_width": k,
            "in_conv_stride": stride,
            "num_blocks": s["num_blocks"],
            "channels": s["tds_channels"],
            "feature_width": s["feature_width"],
            "kernel_width": tds_k,
        }
        if out is not None:
            conf["out_channels"] = out
        return conf

    return {
        "_target_": "emg2pose.networks.TdsNetwork",
        "conv_blocks": [conv(NUM_EMG_CHANNELS, 11, 5), conv(width, 5, 2)],
        "tds_stages": [stage(17, 4, 9), stage(9, 2, 5, s["tds_out_channels"])],
    }


def _lstm_conf(s: dict[str, Any], out_channels: int) -> dict[str, Any]:
    return {
        "_target_": "emg2pose.networks.SequentialLSTM",
        "in_channels": s["tds_out_channels"] + NUM_JOINTS,
        "out_channels": out_channels,
        "hidden_size": s["hidden_size"],
        "num_layers": s["num_layers"],
        "scale": 0.01,
    }


def _neuropose_conf(s: dict[str, Any]) -> dict[str, Any]:
    c1, c2, c3 = (int(c) for c in s["neuropose_channels"])
    rate = s["dropout"]

    def enc(cin, cout, pool):
        return {
            "_target_": "emg2pose.networks.EncoderBlock",
            "in_channels": cin,
            "out_channels": cout,
            "kernel_size": [3, 2],
            "max_pool_size": pool,
            "dropout_rate": rate,
        }

    def dec(cin, cout, up):
        return {
            "_target_": "emg2pose.networks.DecoderBlock",
            "in_channels": cin,
            "out_channels": cout,
            "kernel_size": [3, 2],
            "upsampling": up,
            "dropout_rate": rate,
        }

    residual = {
        "_target_": "emg2pose.networks.ResidualBlock",
        "in_channels": c3,
        "out_channels": c3,
        "kernel_size": [3, 2],
        "num_convs": 3,
        "dropout_rate": rate,
    }
    return {
        "_target_": "emg2pose.networks.NeuroPose",
        "encoder_blocks": [enc(1, c1, [10, 2]), enc(c1, c2, [8, 2]), enc(c2, c3, [4, 4])],
        "residual_blocks": [dict(residual) for _ in range(s["num_residual_blocks"])],
        # 16 electrodes: pooled 2*2*4 = 16 -> 1, upsampled 4*4*2 = 32 -> 32 features per step.
        "decoder_blocks": [dec(c3, c2, [10, 4]), dec(c2, c1, [8, 4]), dec(c1, 1, [4, 2])],
        "linear_in_channels": 32,
        "out_channels": NUM_JOINTS,
    }


def hyper_parameters_for(experiment: str, **overrides: Any) -> dict:
    """The ``hyper_parameters`` a Meta emg2pose Lightning checkpoint carries (plain data)."""
    s = _settings(experiment, overrides)
    if experiment == "tracking_vemg2pose":
        network_conf = {
            "_target_": "emg2pose.pose_modules.StatePoseModule",
            "network": _tds_conf(s),
            "decoder": _lstm_conf(s, NUM_JOINTS),
            "state_condition": True,
            "predict_vel": True,
            "rollout_freq": 50,
        }
        provide_initial_pos = True
    elif experiment == "regression_vemg2pose":
        network_conf = {
            "_target_": "emg2pose.pose_modules.VEMG2PoseWithInitialState",
            "network": _tds_conf(s),
            "decoder": _lstm_conf(s, 2 * NUM_JOINTS),
            "num_position_steps": 500,
            "state_condition": True,
            "rollout_freq": 50,
        }
        provide_initial_pos = False
    elif experiment in ("tracking_emg2pose", "regression_emg2pose"):
        # One network and decoder; only provide_initial_pos differs.
        decoder = {
            "_target_": "emg2pose.networks.MLP",
            "in_channels": s["tds_out_channels"] + NUM_JOINTS,
            "layer_sizes": [s["mlp_hidden"], s["mlp_hidden"]],
            "out_channels": NUM_JOINTS,
            "layer_norm": True,
            "scale": 0.01,
        }
        network_conf = {
            "_target_": "emg2pose.pose_modules.StatePoseModule",
            "network": _tds_conf(s),
            "decoder": decoder,
            "state_condition": True,
            "predict_vel": False,
            "rollout_freq": 50,
        }
        provide_initial_pos = experiment == "tracking_emg2pose"
    else:  # regression_neuropose
        network_conf = {
            "_target_": "emg2pose.pose_modules.PoseModule",
            "network": _neuropose_conf(s),
            "predict_vel": False,
        }
        provide_initial_pos = False
    return {
        "network_conf": network_conf,
        "optimizer_conf": {"_target_": "torch.optim.Adam", "lr": 0.001},
        "lr_scheduler_conf": None,
        "provide_initial_pos": provide_initial_pos,
        "loss_weights": {"mae": 1.0, "fingertip_distance": 0.01},
    }


_TARGETS = {
    "emg2pose.pose_modules.PoseModule": PoseModule,
    "emg2pose.pose_modules.StatePoseModule": StatePoseModule,
    "emg2pose.pose_modules.VEMG2PoseWithInitialState": VEMG2PoseWithInitialState,
    "emg2pose.networks.TdsNetwork": TdsNetwork,
    "emg2pose.networks.Conv1dBlock": Conv1dBlock,
    "emg2pose.networks.TdsStage": TdsStage,
    "emg2pose.networks.SequentialLSTM": SequentialLSTM,
    "emg2pose.networks.MLP": MLP,
    "emg2pose.networks.NeuroPose": NeuroPose,
    "emg2pose.networks.EncoderBlock": EncoderBlock,
    "emg2pose.networks.ResidualBlock": ResidualBlock,
    "emg2pose.networks.DecoderBlock": DecoderBlock,
}


def instantiate(conf: Any) -> Any:
    """Minimal hydra-style instantiate over ``_target_`` dicts (recursive, local classes only)."""
    if isinstance(conf, dict):
        kwargs = {k: instantiate(v) for k, v in conf.items() if k != "_target_"}
        if "_target_" not in conf:
            return kwargs
        target = conf["_target_"]
        if target not in _TARGETS:
            raise ValueError(f"unknown _target_ {target!r}; expected one of {sorted(_TARGETS)}")
        return _TARGETS[target](**kwargs)
    if isinstance(conf, list):
        return [instantiate(v) for v in conf]
    return conf


def build_torch_model(experiment: str, **overrides: Any) -> nn.Module:
    """The pose module of `experiment` (train mode, PyTorch default init)."""
    return instantiate(hyper_parameters_for(experiment, **overrides)["network_conf"])


# ----------------------------------------------------------------------------
# Randomisation, checkpoints, forward
# ----------------------------------------------------------------------------

_NORMS = (nn.LayerNorm, nn.BatchNorm1d, nn.BatchNorm2d)


@torch.no_grad()
def randomize_(model: nn.Module, seed: int) -> None:
    """Re-draw every parameter from `seed` and move norm layers away from their defaults.

    Weights and biases of Linear/Conv/LSTM layers: uniform(+-1/sqrt(fan_in)), the
    bound PyTorch's default init uses (fan_in = hidden_size for LSTMs), so
    activations keep realistic scales. LayerNorm/BatchNorm: weight ~ 1 + N(0, 0.2),
    bias ~ N(0, 0.2); BatchNorm running_mean ~ N(0, 0.5), running_var ~ U(0.5, 2)
    (positive), num_batches_tracked = 100. A weight of 1 / bias of 0 / mean 0 /
    var 1 would hide a port that skips or mis-maps a norm layer.
    """
    gen = torch.Generator().manual_seed(seed)

    def uniform_(t: torch.Tensor, bound: float) -> None:
        t.copy_((torch.rand(t.shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound)

    def normal_(t: torch.Tensor, mean: float, std: float) -> None:
        t.copy_(mean + std * torch.randn(t.shape, generator=gen, dtype=torch.float64))

    for module in model.modules():
        if isinstance(module, _NORMS):
            if module.weight is not None:
                normal_(module.weight, 1.0, 0.2)
                normal_(module.bias, 0.0, 0.2)
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                normal_(module.running_mean, 0.0, 0.5)
                module.running_var.copy_(0.5 + 1.5 * torch.rand(module.running_var.shape, generator=gen))
                module.num_batches_tracked.fill_(100)
        elif isinstance(module, nn.LSTM):
            for param in module.parameters(recurse=False):
                uniform_(param, 1.0 / math.sqrt(module.hidden_size))
        elif isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            fan_in = module.weight[0].numel()
            for param in module.parameters(recurse=False):
                uniform_(param, 1.0 / math.sqrt(fan_in))


class _LightningLike(nn.Module):
    """Holds the pose module as ``.model`` so state_dict keys get Lightning's "model." prefix."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model


def _as_dictconfig(hparams: dict, experiment: str) -> dict:
    """hyper_parameters as Lightning stores hydra configs: DictConfig children of one root config."""
    from omegaconf import OmegaConf

    root = OmegaConf.create(
        {"experiment": experiment, "module": hparams, "data_module": {"window_length": 11790, "padding": [0, 0]}}
    )
    return {key: (root.module[key] if isinstance(value, (dict, list)) else value) for key, value in hparams.items()}


def save_lightning_checkpoint(model: nn.Module, path: str | pathlib.Path, experiment: str, **overrides: Any) -> None:
    """Write `model` as a PyTorch Lightning checkpoint of `experiment` (``torch.save`` zip).

    Keys: epoch, global_step, pytorch-lightning_version, state_dict ("model."
    prefix), loops, callbacks (ModelCheckpoint/EarlyStopping with tensors),
    optimizer_states (a real Adam state after one step on copies of the
    parameters, so `model` is unchanged), lr_schedulers, hparams_name and
    hyper_parameters (OmegaConf DictConfig nodes of a root config, as Lightning's
    save_hyperparameters keeps hydra configs).
    """
    hparams = hyper_parameters_for(experiment, **overrides)
    state_dict = _LightningLike(model).state_dict()

    gen = torch.Generator().manual_seed(0)
    copies = [p.detach().clone().requires_grad_(True) for p in model.parameters()]
    optimizer = torch.optim.Adam(copies, lr=hparams["optimizer_conf"]["lr"])
    for p in copies:
        p.grad = 1e-3 * torch.randn(p.shape, generator=gen)
    optimizer.step()

    best_path = f"/checkpoints/{experiment}/epoch=3-step=120.ckpt"
    score = torch.tensor(0.3125)
    checkpoint = {
        "epoch": 3,
        "global_step": 120,
        "pytorch-lightning_version": "1.9.5",
        "state_dict": state_dict,
        "loops": {
            "fit_loop": {
                "state_dict": {},
                "epoch_loop.state_dict": {"_batches_that_stepped": 120},
                "epoch_progress": {
                    "total": {"ready": 4, "started": 4, "processed": 4, "completed": 3},
                    "current": {"ready": 4, "started": 4, "processed": 4, "completed": 3},
                },
                "epoch_loop.batch_progress": {"total": {"ready": 120, "completed": 120}, "is_last_batch": True},
            },
            "validate_loop": {"state_dict": {}, "dataloader_progress": {"total": {"ready": 4, "completed": 4}}},
            "test_loop": {"state_dict": {}},
            "predict_loop": {"state_dict": {}},
        },
        "callbacks": {
            "ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min', 'every_n_train_steps': 0, "
            "'every_n_epochs': 1, 'train_time_interval': None}": {
                "monitor": "val_loss",
                "best_model_score": score,
                "best_model_path": best_path,
                "current_score": score,
                "dirpath": pathlib.PosixPath(f"/checkpoints/{experiment}"),
                "best_k_models": collections.OrderedDict([(best_path, score)]),
                "kth_best_model_path": best_path,
                "kth_value": score,
                "last_model_path": "",
            },
            "EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}": {
                "wait_count": 0,
                "stopped_epoch": 0,
                "best_score": score.clone(),
                "patience": 50,
            },
        },
        "optimizer_states": [optimizer.state_dict()],
        "lr_schedulers": [],
        "hparams_name": "kwargs",
        "hyper_parameters": _as_dictconfig(hparams, experiment),
    }
    torch.save(checkpoint, str(path))


def torch_forward(
    model: nn.Module, emg: np.ndarray, joint_angles: np.ndarray, no_ik_failure: np.ndarray, provide_initial_pos: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eval-mode, no-grad forward of a pose module.

    emg: (B, 16, T), joint_angles: (B, 20, T), no_ik_failure: (B, T) bool.
    Returns numpy (pred (B, 20, T'), target (B, 20, T'), mask (B, T')),
    T' = T - left_context - right_context.
    """
    emg = np.asarray(emg)
    joint_angles = np.asarray(joint_angles)
    no_ik_failure = np.asarray(no_ik_failure)
    if emg.ndim != 3 or emg.shape[1] != NUM_EMG_CHANNELS:
        raise ValueError(f"expected emg (batch, {NUM_EMG_CHANNELS}, time), got shape {emg.shape}")
    batch, _, time = emg.shape
    if joint_angles.shape != (batch, NUM_JOINTS, time):
        raise ValueError(f"expected joint_angles {(batch, NUM_JOINTS, time)}, got {joint_angles.shape}")
    if no_ik_failure.shape != (batch, time):
        raise ValueError(f"expected no_ik_failure {(batch, time)}, got {no_ik_failure.shape}")
    if time <= model.left_context + model.right_context:
        raise ValueError(
            f"expected more than {model.left_context + model.right_context} samples (the model's context), got {time}"
        )
    model.eval()
    with torch.no_grad():
        batch_in = {
            "emg": torch.from_numpy(np.ascontiguousarray(emg, dtype=np.float32)),
            "joint_angles": torch.from_numpy(np.ascontiguousarray(joint_angles, dtype=np.float32)),
            "no_ik_failure": torch.from_numpy(np.ascontiguousarray(no_ik_failure, dtype=bool)),
        }
        pred, target, mask = model(batch_in, provide_initial_pos)
    return pred.numpy(), target.numpy(), mask.numpy()
