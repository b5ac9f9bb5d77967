"""Frozen-dataclass configs of the emg2pose networks, decoders and pose modules.

The dataclasses mirror the constructor arguments of Meta's emg2pose modules
(`emg2pose.networks.*`, `emg2pose.pose_modules.*`) so that a Hydra
``network_conf`` maps onto them field by field (see
`emgjax.convert.emg2pose_map`). They are hashable, so a `PoseModelConfig` can
be a static argument of `jax.jit`. Every config round-trips through JSON with
`to_dict()` / `from_dict()`; sequence fields are tuples.

`EXPERIMENTS` holds the five published experiments (emg2pose's
``config/experiment/*.yaml``) at their published sizes; any other size is
constructible (tests use small ones). ``tracking_emg2pose`` and
``regression_emg2pose`` share one network and decoder: only
``provide_initial_pos`` tells them apart.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from emgjax import config as _config
from emgjax.config import TaggedConfig, config_to_dict

EMG_SAMPLE_RATE = 2000.0  # Hz, emg2pose's wrist bands
NUM_JOINTS = 20  # joint angles predicted per sample


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _require_positive_pair(name: str, value: tuple[int, int]) -> None:
    # Widths and lengths are divided by these: 0 would fail later as a ZeroDivisionError.
    _require(all(v >= 1 for v in value), f"{name}: expected (time, electrode) sizes >= 1, found {value}")


# ----------------------------------------------------------------------------- TDS network


@dataclass(frozen=True)
class Conv1dBlockConfig(TaggedConfig):
    """Valid 1-D conv → (BatchNorm) → ReLU → dropout → (LayerNorm over channels).

    `norm_type` is "layer" (LayerNorm after dropout, Meta's default), "batch"
    (BatchNorm between conv and ReLU) or "none".
    """

    in_channels: int
    out_channels: int
    kernel_size: int
    stride: int
    norm_type: str = "layer"
    dropout: float = 0.0

    def __post_init__(self):
        _require(
            self.norm_type in ("layer", "batch", "none"),
            f"Conv1dBlockConfig.norm_type: expected 'layer', 'batch' or 'none', found {self.norm_type!r}",
        )
        _require(
            self.kernel_size >= 1 and self.stride >= 1,
            f"Conv1dBlockConfig: expected kernel_size >= 1 and stride >= 1, found {self.kernel_size}, {self.stride}",
        )


@dataclass(frozen=True)
class TdsStageConfig(TaggedConfig):
    """Conv1dBlock (in → channels·feature_width) then `num_blocks` × (TDS conv2d block, TDS FC block),
    then an optional Linear over channels to `out_channels`."""

    in_channels: int
    in_conv_kernel_width: int
    in_conv_stride: int
    num_blocks: int
    channels: int
    feature_width: int
    kernel_width: int
    out_channels: int | None = None

    @property
    def num_features(self) -> int:
        """Channels inside the stage: channels × feature_width."""
        return self.channels * self.feature_width

    @property
    def output_channels(self) -> int:
        return self.num_features if self.out_channels is None else self.out_channels

    @property
    def conv_block(self) -> Conv1dBlockConfig:
        return Conv1dBlockConfig(self.in_channels, self.num_features, self.in_conv_kernel_width, self.in_conv_stride)


@dataclass(frozen=True)
class TdsNetworkConfig(TaggedConfig):
    """Meta's TdsNetwork: conv blocks, then TDS stages. All convolutions are valid (no padding)."""

    conv_blocks: tuple[Conv1dBlockConfig, ...]
    tds_stages: tuple[TdsStageConfig, ...]

    def __post_init__(self):
        _require(
            len(self.conv_blocks) + len(self.tds_stages) > 0,
            "TdsNetworkConfig: expected at least one layer, found none",
        )
        channels = self.in_channels
        for i, block in enumerate(self.conv_blocks):
            _require(
                block.in_channels == channels,
                f"TdsNetworkConfig.conv_blocks[{i}].in_channels: expected {channels}, found {block.in_channels}",
            )
            channels = block.out_channels
        for i, stage in enumerate(self.tds_stages):
            _require(
                stage.in_channels == channels,
                f"TdsNetworkConfig.tds_stages[{i}].in_channels: expected {channels}, found {stage.in_channels}",
            )
            channels = stage.output_channels

    @property
    def in_channels(self) -> int:
        return self.conv_blocks[0].in_channels if self.conv_blocks else self.tds_stages[0].in_channels

    @property
    def out_channels(self) -> int:
        return self.tds_stages[-1].output_channels if self.tds_stages else self.conv_blocks[-1].out_channels

    def temporal_convs(self) -> tuple[tuple[int, int], ...]:
        """(kernel, stride) of every convolution along time, in order."""
        convs: list[tuple[int, int]] = [(b.kernel_size, b.stride) for b in self.conv_blocks]
        for stage in self.tds_stages:
            convs.append((stage.in_conv_kernel_width, stage.in_conv_stride))
            convs.extend([(stage.kernel_width, 1)] * stage.num_blocks)
        return tuple(convs)

    @property
    def left_context(self) -> int:
        """Input samples consumed before the first output: Σ (kernel−1)·(stride so far). 1790 for Meta's "tds"."""
        context, stride_so_far = 0, 1
        for kernel, stride in self.temporal_convs():
            context += (kernel - 1) * stride_so_far
            stride_so_far *= stride
        return context

    @property
    def right_context(self) -> int:
        return 0

    @property
    def stride(self) -> int:
        return math.prod(s for _, s in self.temporal_convs())

    def output_length(self, num_samples: int) -> int:
        """Feature steps produced from `num_samples` input samples (0 if too short)."""
        length = num_samples
        for kernel, stride in self.temporal_convs():
            if length < kernel:
                return 0
            length = (length - kernel) // stride + 1
        return length


# ----------------------------------------------------------------------------- NeuroPose


@dataclass(frozen=True)
class EncoderBlockConfig(TaggedConfig):
    """Conv2d ("same") → BatchNorm2d → ReLU → dropout → MaxPool2d, on (time, electrode) images."""

    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]
    max_pool_size: tuple[int, int]
    dropout_rate: float = 0.05

    def __post_init__(self):
        _require_positive_pair("EncoderBlockConfig.max_pool_size", self.max_pool_size)


@dataclass(frozen=True)
class ResidualBlockConfig(TaggedConfig):
    """x + f(x) where f is `num_convs` × (Conv2d "same" → BatchNorm2d → ReLU → dropout)."""

    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]
    num_convs: int
    dropout_rate: float = 0.05

    def __post_init__(self):
        _require(
            self.in_channels == self.out_channels,
            "ResidualBlockConfig: expected in_channels == out_channels for the residual add, "
            f"found {self.in_channels} != {self.out_channels}",
        )


@dataclass(frozen=True)
class DecoderBlockConfig(TaggedConfig):
    """Conv2d ("same") → BatchNorm2d → ReLU → dropout → nearest upsampling by `upsampling`."""

    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]
    upsampling: tuple[int, int]
    dropout_rate: float = 0.05

    def __post_init__(self):
        _require_positive_pair("DecoderBlockConfig.upsampling", self.upsampling)


@dataclass(frozen=True)
class NeuroPoseConfig(TaggedConfig):
    """Meta's NeuroPose: (B, C, T) EMG viewed as a one-channel (T, C) image, encoder/residual/decoder
    blocks, then Linear(linear_in_channels → out_channels) over the last image axis."""

    encoder_blocks: tuple[EncoderBlockConfig, ...]
    residual_blocks: tuple[ResidualBlockConfig, ...]
    decoder_blocks: tuple[DecoderBlockConfig, ...]
    linear_in_channels: int
    out_channels: int = NUM_JOINTS
    in_channels: int = 16  # EMG electrodes: the image width

    def __post_init__(self):
        blocks = self.blocks
        _require(len(blocks) > 0, "NeuroPoseConfig: expected at least one block, found none")
        channels = 1
        for i, block in enumerate(blocks):
            _require(
                block.in_channels == channels,
                f"NeuroPoseConfig block {i} in_channels: expected {channels}, found {block.in_channels}",
            )
            channels = block.out_channels
        _require(channels == 1, f"NeuroPoseConfig: expected the last block to output 1 image channel, found {channels}")
        width = self.output_width
        _require(
            width == self.linear_in_channels,
            f"NeuroPoseConfig.linear_in_channels: expected {width} (image width after the blocks), "
            f"found {self.linear_in_channels}",
        )

    @property
    def blocks(self) -> tuple:
        return (*self.encoder_blocks, *self.residual_blocks, *self.decoder_blocks)

    @property
    def output_width(self) -> int:
        width = self.in_channels
        for encoder in self.encoder_blocks:
            width //= encoder.max_pool_size[1]
        for decoder in self.decoder_blocks:
            width *= decoder.upsampling[1]
        return width

    @property
    def left_context(self) -> int:
        return 0

    @property
    def right_context(self) -> int:
        return 0

    def output_length(self, num_samples: int) -> int:
        length = num_samples
        for encoder in self.encoder_blocks:
            length //= encoder.max_pool_size[0]
        for decoder in self.decoder_blocks:
            length *= decoder.upsampling[0]
        return length


# ----------------------------------------------------------------------------- decoders


@dataclass(frozen=True)
class LSTMDecoderConfig(TaggedConfig):
    """Meta's SequentialLSTM: torch LSTM (zero initial state) → LeakyReLU → Linear, times `scale`."""

    in_channels: int
    out_channels: int
    hidden_size: int
    num_layers: int
    scale: float = 1.0


@dataclass(frozen=True)
class MLPDecoderConfig(TaggedConfig):
    """Meta's MLP: per hidden size Linear (→ LayerNorm) → LeakyReLU, then Linear → out, times `scale`."""

    in_channels: int
    layer_sizes: tuple[int, ...]
    out_channels: int
    layer_norm: bool = False
    scale: float = 1.0


NetworkConfig = TdsNetworkConfig | NeuroPoseConfig
DecoderConfig = LSTMDecoderConfig | MLPDecoderConfig

POSE_KINDS = ("pose", "state", "vemg2pose")
# The precision option (`emgjax.models.layers.COMPUTE_DTYPES` maps each name to its operand dtype).
COMPUTE_DTYPE_NAMES = ("float32", "bfloat16")


@dataclass(frozen=True)
class PoseModelConfig(TaggedConfig):
    """One emg2pose pose module.

    kind:
      "pose"       PoseModule: the network output is the pose (or its velocity when predict_vel).
      "state"      StatePoseModule: features resampled to `rollout_freq`, decoder rolled out
                   on concat(features, previous pose) when state_condition.
      "vemg2pose"  VEMG2PoseWithInitialState: the decoder outputs position ‖ velocity; the first
                   round(num_position_steps · rollout_freq / sample_rate) steps use the position.

    compute_dtype: "float32", or "bfloat16" for bfloat16 operands of every convolution and matmul of
    the TDS network and the decoder (float32 accumulation; LayerNorm, BatchNorm, the LSTM state and
    the rollout's poses stay float32). Parameters stay float32. The streaming path runs float32.
    """

    kind: str
    network: NetworkConfig
    decoder: DecoderConfig | None = None
    predict_vel: bool = False
    state_condition: bool = True
    rollout_freq: float = 50.0
    num_position_steps: int = 500
    sample_rate: float = EMG_SAMPLE_RATE
    num_joints: int = NUM_JOINTS
    compute_dtype: str = "float32"

    def __post_init__(self):
        _require(self.kind in POSE_KINDS, f"PoseModelConfig.kind: expected one of {POSE_KINDS}, found {self.kind!r}")
        _require(
            self.compute_dtype in COMPUTE_DTYPE_NAMES,
            f"PoseModelConfig.compute_dtype: expected one of {list(COMPUTE_DTYPE_NAMES)}, found {self.compute_dtype!r}",
        )
        _require(
            self.compute_dtype == "float32" or isinstance(self.network, TdsNetworkConfig),
            f"PoseModelConfig.compute_dtype: {self.compute_dtype!r} is supported for TDS networks, found "
            f"{type(self.network).__name__} (NeuroPose runs float32)",
        )
        if self.kind == "pose":
            _require(self.decoder is None, "PoseModelConfig: kind 'pose' takes no decoder, found one")
            _require(
                self.network.out_channels == self.num_joints,
                f"PoseModelConfig: kind 'pose' expects the network to output {self.num_joints} channels, "
                f"found {self.network.out_channels}",
            )
            return
        _require(self.decoder is not None, f"PoseModelConfig: kind {self.kind!r} needs a decoder, found None")
        expected_in = self.network.out_channels + (self.num_joints if self.state_condition else 0)
        _require(
            self.decoder.in_channels == expected_in,
            f"PoseModelConfig: expected decoder in_channels {expected_in} (network out {self.network.out_channels}"
            f"{' + ' + str(self.num_joints) + ' state' if self.state_condition else ''}), "
            f"found {self.decoder.in_channels}",
        )
        expected_out = 2 * self.num_joints if self.kind == "vemg2pose" else self.num_joints
        _require(
            self.decoder.out_channels == expected_out,
            f"PoseModelConfig: kind {self.kind!r} expects decoder out_channels {expected_out}, "
            f"found {self.decoder.out_channels}",
        )

    @property
    def in_channels(self) -> int:
        return self.network.in_channels

    @property
    def left_context(self) -> int:
        return self.network.left_context

    @property
    def right_context(self) -> int:
        return self.network.right_context

    @property
    def num_position_rollout_steps(self) -> int:
        """Rollout steps that use the position head (vemg2pose): Python round, so 500 → round(12.5) = 12."""
        return round(self.num_position_steps * self.rollout_freq / self.sample_rate)

    def rollout_steps(self, num_samples: int) -> int:
        """Decoder steps for a window of `num_samples`: round(seconds beyond context · rollout_freq)."""
        seconds = (num_samples - self.left_context - self.right_context) / self.sample_rate
        return round(seconds * self.rollout_freq)

    def min_window_length(self) -> int:
        """Shortest window giving at least one network output step (and one rollout step)."""
        minimum = self.left_context + self.right_context + 1
        if isinstance(self.network, NeuroPoseConfig):
            minimum = max(minimum, math.prod(b.max_pool_size[0] for b in self.network.encoder_blocks))
        if self.kind != "pose":
            # round(x) >= 1 needs x > 0.5 rollout steps (Python rounds 0.5 to 0).
            per_step = self.sample_rate / self.rollout_freq
            minimum = max(minimum, self.left_context + self.right_context + math.floor(per_step / 2) + 1)
        while self.network.output_length(minimum) < 1 or (self.kind != "pose" and self.rollout_steps(minimum) < 1):
            minimum += 1
        return minimum


# ----------------------------------------------------------------------------- experiments


@dataclass(frozen=True)
class LossWeights(TaggedConfig):
    """emg2pose training loss: angle_mae · L1 angle error + fingertip_distance · fingertip distance (mm)."""

    angle_mae: float = 1.0
    fingertip_distance: float = 0.01


@dataclass(frozen=True)
class Emg2PoseExperiment(TaggedConfig):
    """A published emg2pose experiment: model plus the training setup it was trained with.

    ``window_length``/``val_window_length``: the datamodule's ``window_length`` and
    ``val_test_window_length`` (samples, left context included). ``skip_ik_failures``:
    the datamodule's default (emg2pose's ``config/datamodule/default.yaml``), which
    keeps only windows inside runs without IK failure for train, val and test alike.
    """

    name: str
    model: PoseModelConfig
    provide_initial_pos: bool
    window_length: int
    val_window_length: int = 11_790
    skip_ik_failures: bool = True
    learning_rate: float = 1e-3
    batch_size: int = 64
    gradient_clip_val: float = 1.0
    loss_weights: LossWeights = field(default_factory=LossWeights)
    max_epochs: int = 500
    early_stopping_patience: int = 50


# ----------------------------------------------------------------------------- (de)serialisation

AnyConfig = (
    Conv1dBlockConfig
    | TdsStageConfig
    | TdsNetworkConfig
    | EncoderBlockConfig
    | ResidualBlockConfig
    | DecoderBlockConfig
    | NeuroPoseConfig
    | LSTMDecoderConfig
    | MLPDecoderConfig
    | PoseModelConfig
    | LossWeights
    | Emg2PoseExperiment
)


def config_from_dict(data: Any) -> AnyConfig:
    """Any of this module's configs from its `to_dict()` form, told apart by its "type" key."""
    return _config.config_from_dict(AnyConfig, data)


# ----------------------------------------------------------------------------- published sizes


def tds_network(out_channels: int = 64, in_channels: int = 16) -> TdsNetworkConfig:
    """Meta's "tds" network: 16 EMG channels at 2 kHz → 64 features at 25 Hz, left context 1790."""
    return TdsNetworkConfig(
        conv_blocks=(
            Conv1dBlockConfig(in_channels, 256, kernel_size=11, stride=5),
            Conv1dBlockConfig(256, 256, kernel_size=5, stride=2),
        ),
        tds_stages=(
            TdsStageConfig(
                256,
                in_conv_kernel_width=17,
                in_conv_stride=4,
                num_blocks=2,
                channels=16,
                feature_width=16,
                kernel_width=9,
            ),
            TdsStageConfig(
                256,
                in_conv_kernel_width=9,
                in_conv_stride=2,
                num_blocks=2,
                channels=16,
                feature_width=16,
                kernel_width=5,
                out_channels=out_channels,
            ),
        ),
    )


def neuropose_network(in_channels: int = 16, out_channels: int = NUM_JOINTS) -> NeuroPoseConfig:
    """Meta's NeuroPose at its published size (6.35M parameters)."""
    k = (3, 2)
    return NeuroPoseConfig(
        encoder_blocks=(
            EncoderBlockConfig(1, 32, k, (10, 2)),
            EncoderBlockConfig(32, 128, k, (8, 2)),
            EncoderBlockConfig(128, 256, k, (4, 4)),
        ),
        residual_blocks=tuple(ResidualBlockConfig(256, 256, k, num_convs=3) for _ in range(5)),
        decoder_blocks=(
            DecoderBlockConfig(256, 128, k, (10, 4)),
            DecoderBlockConfig(128, 32, k, (8, 4)),
            DecoderBlockConfig(32, 1, k, (4, 2)),
        ),
        linear_in_channels=32,
        out_channels=out_channels,
        in_channels=in_channels,
    )


def _published() -> dict[str, Emg2PoseExperiment]:
    tds = tds_network()
    features = tds.out_channels + NUM_JOINTS  # 84: features ‖ previous pose
    lstm = LSTMDecoderConfig(features, NUM_JOINTS, hidden_size=512, num_layers=2, scale=0.01)
    return {
        "tracking_vemg2pose": Emg2PoseExperiment(
            "tracking_vemg2pose",
            PoseModelConfig("state", tds, lstm, predict_vel=True),
            provide_initial_pos=True,
            window_length=11_790,
            gradient_clip_val=1.0,
        ),
        "regression_vemg2pose": Emg2PoseExperiment(
            "regression_vemg2pose",
            PoseModelConfig("vemg2pose", tds, dataclasses.replace(lstm, out_channels=2 * NUM_JOINTS)),
            provide_initial_pos=False,
            window_length=11_790,
            gradient_clip_val=0.0,
        ),
        "tracking_emg2pose": Emg2PoseExperiment(
            "tracking_emg2pose",
            PoseModelConfig(
                "state",
                tds,
                MLPDecoderConfig(features, (512, 512), NUM_JOINTS, layer_norm=True, scale=0.01),
                predict_vel=False,
            ),
            provide_initial_pos=True,
            window_length=5_790,
            gradient_clip_val=1.0,
        ),
        "regression_emg2pose": Emg2PoseExperiment(
            "regression_emg2pose",
            PoseModelConfig(
                "state",
                tds,
                MLPDecoderConfig(features, (512, 512), NUM_JOINTS, layer_norm=True, scale=0.01),
                predict_vel=False,
            ),
            provide_initial_pos=False,
            window_length=5_790,
            gradient_clip_val=1.0,
        ),
        "regression_neuropose": Emg2PoseExperiment(
            "regression_neuropose",
            PoseModelConfig("pose", neuropose_network()),
            provide_initial_pos=False,
            window_length=4_000,
            val_window_length=10_000,
            gradient_clip_val=0.0,
        ),
    }


EXPERIMENTS: dict[str, Emg2PoseExperiment] = _published()


def get_experiment(name: str) -> Emg2PoseExperiment:
    if name not in EXPERIMENTS:
        raise ValueError(f"experiment: expected one of {sorted(EXPERIMENTS)}, found {name!r}")
    return EXPERIMENTS[name]


__all__ = [
    "EMG_SAMPLE_RATE",
    "NUM_JOINTS",
    "Conv1dBlockConfig",
    "TdsStageConfig",
    "TdsNetworkConfig",
    "EncoderBlockConfig",
    "ResidualBlockConfig",
    "DecoderBlockConfig",
    "NeuroPoseConfig",
    "LSTMDecoderConfig",
    "MLPDecoderConfig",
    "PoseModelConfig",
    "LossWeights",
    "Emg2PoseExperiment",
    "EXPERIMENTS",
    "get_experiment",
    "tds_network",
    "neuropose_network",
    "config_to_dict",
    "config_from_dict",
]
