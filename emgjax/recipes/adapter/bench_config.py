"""What the adapter benchmark runs: its configuration, the variant grid and the checks made before any work.

``BenchmarkConfig`` and its presets (``quick_config`` for a 2-core CPU,
``tiny_config`` for tests, ``full_config`` for an accelerator), the reference
rows' pipelines (floors, fixed interpolation rows, the calibrated ceiling), the
adapters' optimiser settings, and ``validate_benchmark``, which checks every
variant, objective and the emg2pose config on the host before anything compiles.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from emgjax.config import Config
from emgjax.models.adapter.channel_adapter import ChannelAdapterConfig
from emgjax.models.adapter.pipeline import PipelineConfig, validate_pipeline, variant_config
from emgjax.models.adapter.upsampler import UpsamplerConfig
from emgjax.models.configs import (
    EXPERIMENTS,
    Conv1dBlockConfig,
    MLPDecoderConfig,
    PoseModelConfig,
    TdsNetworkConfig,
    TdsStageConfig,
)
from emgjax.recipes.adapter import objectives as obj
from emgjax.recipes.adapter.frozen import NUM_JOINTS, quick_emg2pose_config, tiny_emg2pose_config
from emgjax.train.optim import OptimConfig

__all__ = [
    "BenchmarkConfig",
    "quick_config",
    "tiny_config",
    "full_config",
    "FLOOR_VARIANTS",
    "FIXED_VARIANTS",
    "CALIBRATED_CEILING",
    "MEASURED_CHANNELS",
    "SYNTHESISED_CHANNELS",
    "benchmark_variant",
    "emg2pose_config_for",
    "read_pretrained_config",
    "optim_config",
    "target_space_config",
    "window_samples",
    "validate_benchmark",
]

FLOOR_VARIANTS = ("zero_fill+zero_stuff", "duplicate+hold")
# The conv adapter's default final BatchNorm+ReLU, applied to its zero-initialised residual branch, outputs
# exactly 0 where ReLU's gradient is 0: the branch would never train. The benchmark drops it (a signed EMG
# signal should not be rectified anyway); see ChannelAdapterConfig.final_activation.
_ADAPTER_OPTIONS = {"conv": {"final_activation": False}}


def benchmark_variant(name: str) -> PipelineConfig:
    """The pipeline config of variant 'adapter+upsampler' as the benchmark builds it."""
    return variant_config(name, adapter_options=_ADAPTER_OPTIONS.get(name.split("+")[0].strip()))


FIXED_VARIANTS = ("interpolation+linear", "interpolation+sinc")
MEASURED_CHANNELS = tuple(range(0, 16, 2))  # simulate_mindrove_view keeps every other electrode
SYNTHESISED_CHANNELS = tuple(range(1, 16, 2))


@dataclasses.dataclass(frozen=True)
class BenchmarkConfig(Config):
    """What the benchmark runs (see ``quick_config`` / ``tiny_config`` / ``full_config``).

    Statistics: every trained row is one model per (data seed, init seed[, objective]).
    A data seed is one draw of users and sessions for the adapters' train and
    held-out sets (held-out users are never seen in training, by the adapters or
    the frozen model); an init seed draws the initial parameters and dropout.
    variants: trainable 'adapter+upsampler' variants; objectives: names in
    ``objectives.NAMED_OBJECTIVES`` or 'term=w,...'. steps / batch_size: the
    budget of *every* trained row (adapters, calibrated ceiling, direct and
    target-space models); each row family gets its own learning rate, the best
    of ``learning_rates`` on a validation draw (``sweep_data_seed``: users seen
    by no test draw), one init seed, the same budget. phase2_steps > 0 then
    continues with emg2pose's decoder unfrozen. predict_seconds: window length
    beyond emg2pose's left context. emg2pose: "quick", "tiny" or a published
    experiment name, trained here (when no emg2pose_dir is given) on its own pool
    of ``frozen_users`` x ``frozen_sessions_per_user`` sessions, until the
    validation error on ``frozen_val_users`` more users stops improving
    (checked every ``emg2pose_eval_every`` steps, ``emg2pose_patience`` checks
    without improvement, at most ``emg2pose_steps`` steps). high_band_info: the
    synthetic generator's known-answer knob (``SyntheticConfig.high_band_info``);
    knob_values: the values ``--knob`` sweeps. heldout_stages: with data_dir,
    emg2pose stages held out (with the held-out users) as its own evaluation does.
    """

    mode: str = "quick"
    variants: tuple[str, ...] = ("linear+sinc",)
    objectives: tuple[str, ...] = ("pose", "recon+pose")
    seeds: tuple[int, ...] = (0, 1, 2)
    # Five draws of users: the statistics' units are data seeds (see stats.py), so they set the tests' power.
    data_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    learning_rates: tuple[float, ...] = (1e-3, 3e-3, 1e-2)
    sweep_data_seed: int = 99
    steps: int = 150
    phase2_steps: int = 0
    batch_size: int = 8
    predict_seconds: float = 0.25
    n_train_users: int = 4
    n_heldout_users: int = 2
    session_seconds: float = 20.0
    frozen_users: int = 8
    frozen_sessions_per_user: int = 1
    frozen_val_users: int = 2
    frozen_session_seconds: float = 30.0
    emg2pose: str = "quick"
    emg2pose_steps: int = 2400
    emg2pose_eval_every: int = 200
    emg2pose_patience: int = 3
    emg2pose_batch_size: int = 16
    # The frozen model must beat predict-the-mean by this fraction; None only reports it (tiny mode).
    emg2pose_min_gain: float | None = 0.15
    direct: bool = True
    # The emg2pose architecture trained from scratch on the 8 ch / 500 Hz view (the target-space baseline).
    target_space: bool = True
    # Also train the same input stage on the true 16 ch / 2 kHz input (the fair ceiling for pose-trained adapters).
    calibrated_ceiling: bool = True
    direct_hidden: int = 64
    eval_batch_size: int = 16
    max_heldout_windows: int = 64
    high_band_info: float = 0.0
    knob_values: tuple[float, ...] = (0.0, 0.5, 1.0)
    heldout_stages: tuple[str, ...] = ()
    data_dir: str | None = None
    emg2pose_dir: str | None = None

    def __post_init__(self) -> None:
        for name in (
            "variants",
            "objectives",
            "seeds",
            "data_seeds",
            "learning_rates",
            "knob_values",
            "heldout_stages",
        ):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.mode not in ("quick", "tiny", "full"):
            raise ValueError(f"BenchmarkConfig.mode: expected 'quick', 'tiny' or 'full', found {self.mode!r}")
        for name in (
            "steps",
            "batch_size",
            "n_train_users",
            "n_heldout_users",
            "frozen_users",
            "frozen_sessions_per_user",
            "frozen_val_users",
            "emg2pose_steps",
            "emg2pose_eval_every",
            "emg2pose_patience",
            "eval_batch_size",
            "max_heldout_windows",
            "emg2pose_batch_size",
            "direct_hidden",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"BenchmarkConfig.{name}: expected a positive int, found {value!r}")
        if self.phase2_steps < 0:
            raise ValueError(f"BenchmarkConfig.phase2_steps: expected >= 0, found {self.phase2_steps}")
        for name in ("seeds", "data_seeds", "learning_rates", "knob_values"):
            values = getattr(self, name)
            if not values or len(set(values)) != len(values):
                raise ValueError(f"BenchmarkConfig.{name}: expected distinct {name.replace('_', ' ')}, found {values}")
        if self.sweep_data_seed in self.data_seeds:
            raise ValueError(
                f"BenchmarkConfig.sweep_data_seed: expected a draw no test uses (data seeds {self.data_seeds}), "
                f"found {self.sweep_data_seed}"
            )
        if not all(lr > 0 for lr in self.learning_rates):
            raise ValueError(f"BenchmarkConfig.learning_rates: expected values > 0, found {self.learning_rates}")
        for name, values in (("high_band_info", (self.high_band_info,)), ("knob_values", self.knob_values)):
            if not all(0.0 <= value <= 1.0 for value in values):
                raise ValueError(f"BenchmarkConfig.{name}: expected shares in [0, 1], found {getattr(self, name)}")
        if not self.predict_seconds > 0 or not self.session_seconds > 0 or not self.frozen_session_seconds > 0:
            raise ValueError("BenchmarkConfig: predict_seconds, session_seconds and frozen_session_seconds must be > 0")


def quick_config(**changes: Any) -> BenchmarkConfig:
    """The CPU quick benchmark (target: under 10 minutes on an idle 2-core CPU)."""
    return dataclasses.replace(BenchmarkConfig(), **changes)


def tiny_config(**changes: Any) -> BenchmarkConfig:
    """A smoke run for tests (same code paths, toy sizes: 2 data seeds x 1 init seed, 2 learning rates).

    As many learning rates as data seeds: the sweep's stack is as large as the test runs', one compile each.
    """
    base = BenchmarkConfig(
        mode="tiny",
        variants=("linear+sinc",),
        objectives=("recon", "pose"),
        seeds=(0,),
        data_seeds=(0, 1),
        learning_rates=(1e-3, 1e-2),
        steps=4,
        batch_size=4,
        predict_seconds=0.25,
        n_train_users=2,
        n_heldout_users=1,
        session_seconds=3.0,
        frozen_users=2,
        frozen_val_users=1,
        frozen_session_seconds=3.0,
        emg2pose="tiny",
        emg2pose_steps=40,
        emg2pose_eval_every=20,
        emg2pose_patience=1,
        emg2pose_batch_size=8,
        emg2pose_min_gain=None,
        direct_hidden=16,
        eval_batch_size=8,
        max_heldout_windows=8,
        knob_values=(0.0, 1.0),
    )
    return dataclasses.replace(base, **changes)


def full_config(**changes: Any) -> BenchmarkConfig:
    """The full grid, meant for a GPU/TPU (every variant, objective, 3 x 3 seeds, phase 2 too)."""
    variants = tuple(
        f"{a}+{u}"
        for a in ("interpolation", "linear", "conv")
        for u in ("linear", "sinc", "learned_residual", "subpixel")
        if not (a == "interpolation" and u in ("linear", "sinc"))
    )
    base = BenchmarkConfig(
        mode="full",
        variants=variants,
        objectives=("recon", "pose", "recon+pose", "pose+prior"),
        seeds=(0, 1, 2),
        data_seeds=(0, 1, 2, 3, 4),
        learning_rates=(3e-4, 1e-3, 3e-3, 1e-2),
        steps=3000,
        phase2_steps=1000,
        batch_size=32,
        predict_seconds=2.0,
        n_train_users=8,
        n_heldout_users=4,
        session_seconds=120.0,
        frozen_users=32,
        frozen_sessions_per_user=2,
        frozen_val_users=4,
        frozen_session_seconds=120.0,
        emg2pose="quick",
        emg2pose_steps=20000,
        emg2pose_eval_every=500,
        emg2pose_patience=5,
        emg2pose_batch_size=32,
        eval_batch_size=32,
        max_heldout_windows=512,
        direct_hidden=256,
    )
    return dataclasses.replace(base, **changes)


def emg2pose_config_for(config: BenchmarkConfig) -> PoseModelConfig:
    """The emg2pose architecture to train and freeze (config.emg2pose: 'quick', 'tiny' or an experiment name)."""
    if config.emg2pose == "quick":
        return quick_emg2pose_config()
    if config.emg2pose == "tiny":
        return tiny_emg2pose_config()
    if config.emg2pose in EXPERIMENTS:
        return EXPERIMENTS[config.emg2pose].model
    raise ValueError(f"emg2pose: expected 'quick', 'tiny' or one of {sorted(EXPERIMENTS)}, found {config.emg2pose!r}")


def validate_benchmark(config: BenchmarkConfig, emg2pose_config: PoseModelConfig | None = None) -> list[PipelineConfig]:
    """Check every variant, objective and the emg2pose config before anything compiles.

    Returns the pipeline configs of (floors, fixed rows, trained variants) in that order.
    """
    if emg2pose_config is None:
        if config.emg2pose_dir is not None:
            emg2pose_config = read_pretrained_config(config.emg2pose_dir)
        else:
            emg2pose_config = emg2pose_config_for(config)
    for name in config.objectives:
        obj.objective_weights(name)
        if obj.objective_weights(name).landmarks > 0 or obj.objective_weights(name).mano > 0:
            raise ValueError(
                f"objective {name!r}: the benchmark's emg2pose-format data has joint angles and the true "
                "EMG, not landmark or MANO labels; use reconstruction/spectral/pose/prior terms"
            )
    pipelines = []
    for name in (*FLOOR_VARIANTS, *FIXED_VARIANTS, *config.variants):
        pipeline_config = benchmark_variant(name)
        validate_pipeline(pipeline_config, emg2pose_config, input_channels=8, input_rate=500.0)
        pipelines.append(pipeline_config)
    for name in config.variants:
        if benchmark_variant(name).is_fixed:
            raise ValueError(
                f"variant {name!r} has no parameters to train; it is evaluated as a fixed row "
                f"(fixed rows: {FIXED_VARIANTS + FLOOR_VARIANTS})"
            )
    if config.phase2_steps and emg2pose_config.decoder is None:
        raise ValueError("phase2_steps > 0 unfreezes the emg2pose decoder, but this emg2pose has none")
    return pipelines


def read_pretrained_config(directory: str | os.PathLike) -> PoseModelConfig:
    """The emg2pose config of a model bundle (e.g. from `emgjax convert`), without loading the weights."""
    from emgjax.bundle import read_config

    config: PoseModelConfig = read_config(directory, kind="emg2pose")
    return config


# The true input through a trainable 16x16 channel matrix (starts at the identity) and no resampling.
CALIBRATED_CEILING = PipelineConfig(
    ChannelAdapterConfig(kind="linear", in_channels=16, out_channels=16),
    UpsamplerConfig(kind="hold", factor=1, channels=16),
    input_rate=2000.0,
    output_rate=2000.0,
)


def optim_config(config: BenchmarkConfig, learning_rate: float = 1.0) -> OptimConfig:
    """The optimiser of every trained row (adapters, calibrated ceiling, direct, target-space): phase 1's schedule.

    With the default learning_rate 1 the schedule is relative (warm-up to 1, cosine to 0.1): the benchmark
    multiplies it by each model's own learning rate (``stack.with_learning_rates``), so models with different
    learning rates share one compiled step.
    """
    return OptimConfig(
        learning_rate=learning_rate,
        schedule="warmup_cosine",
        warmup_steps=max(1, config.steps // 10),
        decay_steps=config.steps + 1,
        end_learning_rate=learning_rate * 0.1,
        grad_clip_norm=1.0,
    )


def window_samples(config: BenchmarkConfig, emg2pose_config: PoseModelConfig) -> int:
    """Window length at 2 kHz: emg2pose's context plus ``predict_seconds``, at least its minimum, a multiple of 4."""
    window = emg2pose_config.left_context + emg2pose_config.right_context + round(config.predict_seconds * 2000)
    window = max(window, emg2pose_config.min_window_length())
    return -(-window // 4) * 4


def target_space_config(config: BenchmarkConfig, emg2pose_config: PoseModelConfig) -> PoseModelConfig:
    """The target-space baseline: the emg2pose architecture for 8 ch / 500 Hz input, trained from scratch.

    The same family as the frozen model (conv blocks, TDS stages, MLP state decoder, rollout at 50 Hz), with
    the first convolutions' kernels and strides adapted to a 4x lower rate so the features come at a similar
    rate and the left context spans at most the frozen model's (in seconds): quick: 8 -> 32 ch, kernel 3,
    stride 1, then kernel 5, stride 2, then the quick model's two TDS stages (left context 118 samples,
    0.24 s, vs 590 samples, 0.30 s); tiny: one conv and one small TDS stage. Predictions are interpolated
    onto the 2 kHz samples every other row predicts (``target_row``).
    """
    if config.emg2pose == "tiny":
        network = TdsNetworkConfig(
            conv_blocks=(Conv1dBlockConfig(8, 16, 3, 1),),
            tds_stages=(TdsStageConfig(16, 3, 2, 1, 4, 4, 3, out_channels=16),),
        )
        hidden = 32
    else:
        network = TdsNetworkConfig(
            conv_blocks=(Conv1dBlockConfig(8, 32, 3, 1), Conv1dBlockConfig(32, 32, 5, 2)),
            tds_stages=(TdsStageConfig(32, 9, 4, 1, 8, 8, 5), TdsStageConfig(64, 5, 2, 1, 8, 8, 3, out_channels=32)),
        )
        hidden = 64
    decoder = MLPDecoderConfig(network.out_channels + NUM_JOINTS, (hidden,), NUM_JOINTS, layer_norm=True, scale=1.0)
    target = PoseModelConfig("state", network, decoder, predict_vel=False, sample_rate=500.0)
    if 4 * target.left_context > emg2pose_config.left_context:
        raise ValueError(
            f"target-space model: expected a left context of at most the frozen model's {emg2pose_config.left_context} "
            f"samples at 2 kHz, found {4 * target.left_context}"
        )
    return target
