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
from emgjax.models.configs import EXPERIMENTS, PoseModelConfig
from emgjax.recipes.adapter import objectives as obj
from emgjax.recipes.adapter.frozen import quick_emg2pose_config, tiny_emg2pose_config
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

    variants: trainable 'adapter+upsampler' variants; objectives: names in
    ``objectives.NAMED_OBJECTIVES`` or 'term=w,...'; seeds: one model per
    (variant, objective, seed). steps / batch_size / learning_rate: adapter
    phase 1 (the direct model gets the same budget); phase2_steps > 0 then
    continues with emg2pose's decoder unfrozen. predict_seconds: window length
    beyond emg2pose's left context. emg2pose: "quick", "tiny" or a published
    experiment name (trained here when no emg2pose_dir is given).
    """

    mode: str = "quick"
    variants: tuple[str, ...] = ("linear+sinc", "conv+subpixel")
    objectives: tuple[str, ...] = ("recon", "pose", "recon+pose")
    seeds: tuple[int, ...] = (0, 1)
    steps: int = 120
    phase2_steps: int = 0
    batch_size: int = 8
    learning_rate: float = 2e-3
    predict_seconds: float = 0.5
    n_train_sessions: int = 8
    n_heldout_sessions: int = 2
    session_seconds: float = 45.0
    emg2pose: str = "quick"
    emg2pose_steps: int = 1500
    emg2pose_batch_size: int = 16
    # The frozen model must beat predict-the-mean by this fraction; None only reports it (tiny mode).
    emg2pose_min_gain: float | None = 0.15
    direct: bool = True
    # Also train the same input stage on the true 16 ch / 2 kHz input (the fair ceiling for pose-trained adapters).
    calibrated_ceiling: bool = True
    direct_hidden: int = 96
    eval_batch_size: int = 16
    max_heldout_windows: int = 96
    data_dir: str | None = None
    emg2pose_dir: str | None = None

    def __post_init__(self) -> None:
        for name in ("variants", "objectives", "seeds"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.mode not in ("quick", "tiny", "full"):
            raise ValueError(f"BenchmarkConfig.mode: expected 'quick', 'tiny' or 'full', found {self.mode!r}")
        for name in (
            "steps",
            "batch_size",
            "n_train_sessions",
            "n_heldout_sessions",
            "emg2pose_steps",
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
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"BenchmarkConfig.seeds: expected distinct seeds, found {self.seeds}")
        if not self.predict_seconds > 0 or not self.session_seconds > 0 or not self.learning_rate > 0:
            raise ValueError("BenchmarkConfig: predict_seconds, session_seconds and learning_rate must be > 0")


def quick_config(**changes: Any) -> BenchmarkConfig:
    """The CPU quick benchmark (target: under 10 minutes on 2 cores)."""
    return dataclasses.replace(BenchmarkConfig(), **changes)


def tiny_config(**changes: Any) -> BenchmarkConfig:
    """A seconds-long smoke run for tests (same code paths, toy sizes)."""
    base = BenchmarkConfig(
        mode="tiny",
        variants=("linear+sinc",),
        objectives=("recon", "pose"),
        seeds=(0, 1),
        steps=4,
        batch_size=4,
        predict_seconds=0.25,
        n_train_sessions=2,
        n_heldout_sessions=1,
        session_seconds=4.0,
        emg2pose="tiny",
        emg2pose_steps=40,
        emg2pose_batch_size=8,
        emg2pose_min_gain=None,
        direct_hidden=16,
        eval_batch_size=8,
        max_heldout_windows=8,
    )
    return dataclasses.replace(base, **changes)


def full_config(**changes: Any) -> BenchmarkConfig:
    """The full grid, meant for a GPU/TPU (every variant, objective and 3 seeds, phase 2 too)."""
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
        steps=3000,
        phase2_steps=1000,
        batch_size=32,
        predict_seconds=2.0,
        n_train_sessions=16,
        n_heldout_sessions=4,
        session_seconds=120.0,
        emg2pose="quick",
        emg2pose_steps=6000,
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


def optim_config(config: BenchmarkConfig) -> OptimConfig:
    """The optimiser of every trained row (adapters, calibrated ceiling, direct model): phase 1's schedule."""
    return OptimConfig(
        learning_rate=config.learning_rate,
        schedule="warmup_cosine",
        warmup_steps=max(1, config.steps // 10),
        decay_steps=config.steps + 1,
        end_learning_rate=config.learning_rate * 0.1,
        grad_clip_norm=1.0,
    )


def window_samples(config: BenchmarkConfig, emg2pose_config: PoseModelConfig) -> int:
    """Window length at 2 kHz: emg2pose's context plus ``predict_seconds``, at least its minimum, a multiple of 4."""
    window = emg2pose_config.left_context + emg2pose_config.right_context + round(config.predict_seconds * 2000)
    window = max(window, emg2pose_config.min_window_length())
    return -(-window // 4) * 4
