"""Batch benchmark of the hardware adapters: how far each variant gets, and where the ceiling is.

One job trains and evaluates a grid of adapter x upsampler x objective x seed:

1. Data: emg2pose-format sessions (synthetic by default, or ``data_dir`` with
   emg2pose HDF5 files), split by session into train and held-out. Each
   session's 16 ch / 2 kHz EMG is normalised with train-set statistics (when
   the frozen model was trained that way) and degraded to an 8 ch / 500 Hz
   MindRove view with ``simulate_mindrove_view`` (whole sessions, so the
   decimation filter sees no window edges).
2. A frozen emg2pose: a converted checkpoint (``emg2pose_dir``), or the
   emg2pose port trained here on the true 16 ch / 2 kHz train sessions until
   it clearly beats the predict-the-mean baseline, cached in ``OUT/frozen_emg2pose``
   in the ``emgjax convert`` format (``frozen.py``).
3. Per trainable variant, every (objective, seed) model is trained at once:
   one ``jax.vmap``-ed train step over stacked parameters, optimiser states
   and objective weights, all fed the same batches (``phases.py``).
4. Held-out evaluation of every model: reconstruction SNR overall and per
   band (0-250 Hz measured by the armband, 250-1000 Hz invented), per-channel
   correlation of measured vs synthesised electrodes, angle MAE (deg) and
   landmark distance (mm, synthetic hand FK) through the frozen emg2pose,
   parameter count and throughput (windows/s of adapter + emg2pose forward).
5. Reference rows: emg2pose on the true input (ceiling), the same with a
   pose-trained 16x16 input stage and the adapters' step budget (calibrated
   ceiling: the fair bound for pose-trained adapters), naive zero-fill and
   duplicate inputs (floor), parameter-free interpolation rows (fixed,
   untrained), predicting the mean pose, and a direct Conv1D+LSTM model on
   the 8 ch / 500 Hz view trained with the same step budget.

Outputs in ``out_dir``: ``results.csv``, ``results.md``, ``adapter_benchmark.png``,
``summary.json`` (and the cached frozen model).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import pathlib
import time
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from emgjax.models.adapter.channel_adapter import ChannelAdapterConfig
from emgjax.models.adapter.pipeline import AdapterPipeline, PipelineConfig, validate_pipeline, variant_config
from emgjax.models.adapter.upsampler import UpsamplerConfig
from emgjax.models.configs import EXPERIMENTS, PoseModelConfig
from emgjax.models.lstm import LSTM
from emgjax.recipes.adapter import objectives as obj
from emgjax.recipes.adapter.frozen import frozen_emg2pose, quick_emg2pose_config, tiny_emg2pose_config
from emgjax.recipes.adapter.phases import (
    init_states,
    make_adapter_loss_fn,
    make_multi_train_step,
    make_phase_optimizer,
    stack_trees,
    unstack_tree,
)
from emgjax.train.optim import OptimConfig, make_optimizer
from emgjax.train.state import create_train_state

__all__ = [
    "BenchmarkConfig",
    "quick_config",
    "tiny_config",
    "full_config",
    "validate_benchmark",
    "SessionArrays",
    "synthetic_sessions",
    "load_emg2pose_sessions",
    "prepare_sessions",
    "sample_batch",
    "heldout_batches",
    "DirectAnglesConfig",
    "DirectAnglesModel",
    "run_benchmark",
    "CSV_COLUMNS",
]

FLOOR_VARIANTS = ("zero_fill+zero_stuff", "duplicate+hold")
# The conv adapter's default final BatchNorm+ReLU, applied to its zero-initialised residual branch, outputs
# exactly 0 where ReLU's gradient is 0: the branch would never train. The benchmark drops it (a signed EMG
# signal should not be rectified anyway); see ChannelAdapterConfig.final_activation.
_ADAPTER_OPTIONS = {"conv": {"final_activation": False}}


def _variant(name: str) -> PipelineConfig:
    return variant_config(name, adapter_options=_ADAPTER_OPTIONS.get(name.split("+")[0].strip()))


FIXED_VARIANTS = ("interpolation+linear", "interpolation+sinc")
MEASURED_CHANNELS = tuple(range(0, 16, 2))  # simulate_mindrove_view keeps every other electrode
SYNTHESISED_CHANNELS = tuple(range(1, 16, 2))


@dataclasses.dataclass(frozen=True)
class BenchmarkConfig:
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

    def __post_init__(self):
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

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def quick_config(**changes) -> BenchmarkConfig:
    """The CPU quick benchmark (target: under 10 minutes on 2 cores)."""
    return dataclasses.replace(BenchmarkConfig(), **changes)


def tiny_config(**changes) -> BenchmarkConfig:
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


def full_config(**changes) -> BenchmarkConfig:
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


def _emg2pose_config_for(config: BenchmarkConfig) -> PoseModelConfig:
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
            emg2pose_config = _read_pretrained_config(config.emg2pose_dir)
        else:
            emg2pose_config = _emg2pose_config_for(config)
    for name in config.objectives:
        obj.objective_weights(name)
        if obj.objective_weights(name).landmarks > 0 or obj.objective_weights(name).mano > 0:
            raise ValueError(
                f"objective {name!r}: the benchmark's emg2pose-format data has joint angles and the true "
                "EMG, not landmark or MANO labels; use reconstruction/spectral/pose/prior terms"
            )
    pipelines = []
    for name in (*FLOOR_VARIANTS, *FIXED_VARIANTS, *config.variants):
        pipeline_config = _variant(name)
        validate_pipeline(pipeline_config, emg2pose_config, input_channels=8, input_rate=500.0)
        pipelines.append(pipeline_config)
    for name in config.variants:
        if _variant(name).is_fixed:
            raise ValueError(
                f"variant {name!r} has no parameters to train; it is evaluated as a fixed row "
                f"(fixed rows: {FIXED_VARIANTS + FLOOR_VARIANTS})"
            )
    if config.phase2_steps and emg2pose_config.decoder is None:
        raise ValueError("phase2_steps > 0 unfreezes the emg2pose decoder, but this emg2pose has none")
    return pipelines


def _read_pretrained_config(directory) -> PoseModelConfig:
    from emgjax.bundle import read_config

    return read_config(directory, kind="emg2pose")


# ----------------------------------------------------------------------------- data


@dataclasses.dataclass
class SessionArrays:
    """One session, channel-first. emg_2k (16, N) [normalised], joint_angles (20, N), no_ik_failure (N,) bool,
    emg_500 (8, N // 4): the simulated MindRove view of emg_2k."""

    emg_2k: np.ndarray
    joint_angles: np.ndarray
    no_ik_failure: np.ndarray
    emg_500: np.ndarray | None = None
    name: str = ""


def synthetic_sessions(n: int, seconds: float, first_seed: int) -> list[SessionArrays]:
    """``n`` synthetic emg2pose-format sessions (seeds first_seed, first_seed + 1, ...)."""
    from emgjax.data.synthetic import SyntheticConfig, generate_session

    sessions = []
    for seed in range(first_seed, first_seed + n):
        s = generate_session(SyntheticConfig(duration_s=seconds), seed=seed)
        sessions.append(
            SessionArrays(
                np.ascontiguousarray(s.emg_2k.T),
                np.ascontiguousarray(s.angles_2k.T),
                np.asarray(s.no_ik_failure_2k),
                name=f"synthetic-{seed}",
            )
        )
    return sessions


def load_emg2pose_sessions(directory, max_sessions: int | None = None) -> list[SessionArrays]:
    """Every ``*.hdf5`` emg2pose session in ``directory`` (sorted by name), read whole."""
    from emgjax.data.emg2pose import Emg2PoseSession

    paths = sorted(pathlib.Path(directory).glob("*.hdf5"))
    if not paths:
        raise FileNotFoundError(f"{directory}: expected emg2pose session files (*.hdf5), found none")
    sessions = []
    for path in paths[:max_sessions]:
        with Emg2PoseSession(path) as session:
            data = session.read()
        sessions.append(SessionArrays(data["emg"], data["joint_angles"], data["no_ik_failure"], name=path.name))
    return sessions


def prepare_sessions(sessions: Sequence[SessionArrays], norm: dict | None) -> list[SessionArrays]:
    """Normalise (``norm`` = {"mean": (16,), "std": (16,)} or None) and add the simulated MindRove view."""
    from emgjax.data.signal import simulate_mindrove_view

    out = []
    for s in sessions:
        emg = s.emg_2k.astype(np.float32)
        if norm is not None:
            emg = (emg - np.asarray(norm["mean"], np.float32)[:, None]) / np.asarray(norm["std"], np.float32)[:, None]
        n = (emg.shape[1] // 4) * 4
        emg = np.ascontiguousarray(emg[:, :n])
        out.append(
            SessionArrays(
                emg, s.joint_angles[:, :n], s.no_ik_failure[:n], simulate_mindrove_view(emg).astype(np.float32), s.name
            )
        )
    return out


# The true input through a trainable 16x16 channel matrix (starts at the identity) and no resampling.
CALIBRATED_CEILING = PipelineConfig(
    ChannelAdapterConfig(kind="linear", in_channels=16, out_channels=16),
    UpsamplerConfig(kind="hold", factor=1, channels=16),
    input_rate=2000.0,
    output_rate=2000.0,
)


def _train_variant(
    config: BenchmarkConfig,
    pipeline_config: PipelineConfig,
    objectives: Sequence[str],
    optim,
    train,
    evaluator: _Evaluator,
    emg2pose_config,
    emg2pose_vars,
    window: int,
    log,
    *,
    row: str = "trained",
    input_key: str = "emg",
) -> list[dict]:
    """Train every (objective, seed) model of one variant in one vmapped job; one table row per objective."""
    name = pipeline_config.name if input_key == "emg" else f"{pipeline_config.adapter.kind} 16x16 on true 16 ch / 2 kHz"
    start = time.perf_counter()
    models = [(o, s) for o in objectives for s in config.seeds]
    weights = stack_trees([obj.objective_weights(o).as_array_dict() for o, _ in models])
    num_inputs = window // 4 if input_key == "emg" else window
    pipeline = AdapterPipeline(pipeline_config, emg2pose_config)
    template = pipeline.init(jax.random.key(0), emg2pose_vars, num_samples=num_inputs)
    optimizer = make_phase_optimizer(1, optim, template["params"], pipeline)
    states = stack_trees(
        init_states(pipeline, emg2pose_vars, optimizer, [s for _, s in models], num_samples=num_inputs)
    )
    loss_fn = make_adapter_loss_fn(pipeline, ("emg", "emg_2k", "joint_angles", "no_ik_failure"))
    step = make_multi_train_step(loss_fn, optimizer)

    def batches(rng):
        batch = sample_batch(train, rng, config.batch_size, window)
        return batch if input_key == "emg" else dict(batch, emg=batch[input_key])

    rng = np.random.default_rng(1234)  # the same batches for every variant: a paired comparison
    for _i in range(config.steps):
        states, metrics = step(states, batches(rng), weights)
    if config.phase2_steps:
        optimizer2 = make_phase_optimizer(
            2,
            dataclasses.replace(optim, decay_steps=config.phase2_steps + 1, warmup_steps=1),
            template["params"],
            pipeline,
        )
        step2 = make_multi_train_step(loss_fn, optimizer2)
        states = states.replace(opt_state=jax.vmap(optimizer2.init)(states.params))
        for _i in range(config.phase2_steps):
            states, metrics = step2(states, batches(rng), weights)
    jax.block_until_ready(states.params)
    train_s = time.perf_counter() - start
    log(
        f"trained {name}: {len(models)} models vmapped, {config.steps}+{config.phase2_steps} steps, "
        f"{train_s:.1f} s; final losses {np.round(np.asarray(metrics['loss']), 4).tolist()}"
    )
    variables_list = [
        {"params": unstack_tree(states.params, i), "batch_stats": unstack_tree(states.batch_stats, i)}
        for i in range(len(models))
    ]
    results = _evaluate_pipeline(pipeline, variables_list, evaluator, input_key)
    rows = []
    phase = "phase 1" if not config.phase2_steps else "phase 1+2"
    for objective in objectives:
        per_seed = [r for (o, _), r in zip(models, results, strict=True) if o == objective]
        rows.append(_aggregate(row, name, objective, phase, per_seed, per_seed[0]["params"], train_s / len(objectives)))
        log(f"  {name} / {objective}: MAE {rows[-1]['angle_mae_deg'][0]:.2f} deg, SNR {rows[-1]['snr_db'][0]:.2f} dB")
    return rows


def sample_batch(sessions: Sequence[SessionArrays], rng: np.random.Generator, batch: int, window: int) -> dict:
    """Random windows (``window`` samples at 2 kHz, a multiple of 4, starting on a multiple of 4).

    Returns {"emg" (B, 8, window/4), "emg_2k" (B, 16, window), "joint_angles" (B, 20, window),
    "no_ik_failure" (B, window)}.
    """
    rows = []
    for _ in range(batch):
        s = sessions[rng.integers(len(sessions))]
        start = 4 * rng.integers((s.emg_2k.shape[1] - window) // 4 + 1)
        rows.append(_window(s, start, window))
    return {k: np.stack([r[k] for r in rows]) for k in rows[0]}


def _window(s: SessionArrays, start: int, window: int) -> dict:
    return {
        "emg": s.emg_500[:, start // 4 : (start + window) // 4],
        "emg_2k": s.emg_2k[:, start : start + window],
        "joint_angles": s.joint_angles[:, start : start + window],
        "no_ik_failure": s.no_ik_failure[start : start + window],
    }


def heldout_batches(sessions: Sequence[SessionArrays], window: int, batch: int, max_windows: int) -> list[dict]:
    """Non-overlapping held-out windows, in order, in batches of ``batch`` (the last one may be smaller)."""
    rows = []
    for s in sessions:
        for start in range(0, s.emg_2k.shape[1] - window + 1, window):
            rows.append(_window(s, start, window))
    rows = rows[:max_windows]
    if not rows:
        raise ValueError(f"held-out sessions are shorter than one window of {window} samples")
    return [{k: np.stack([r[k] for r in rows[i : i + batch]]) for k in rows[0]} for i in range(0, len(rows), batch)]


# ----------------------------------------------------------------------------- direct reference model


@dataclasses.dataclass(frozen=True)
class DirectAnglesConfig:
    """The original's winner, re-targeted: Conv1D + LSTM on the 8 ch / 500 Hz view -> 20 angles per step."""

    conv_channels: tuple[int, ...] = (32, 64)
    kernel_size: int = 5
    lstm_hidden: int = 96
    lstm_layers: int = 2
    head_hidden: int = 64
    dropout: float = 0.1

    @property
    def time_stride(self) -> int:
        return 2 ** len(self.conv_channels)


class DirectAnglesModel(nn.Module):
    """emg (B, 8, T) at 500 Hz -> angles (B, 20, T // stride), one per LSTM step (causal LSTM, 'same' convs)."""

    config: DirectAnglesConfig

    @nn.compact
    def __call__(self, emg: jax.Array, *, train: bool = False) -> jax.Array:
        cfg = self.config
        x = jnp.swapaxes(emg, 1, 2)
        for i, width in enumerate(cfg.conv_channels):
            x = nn.Conv(width, (cfg.kernel_size,), padding="SAME", use_bias=False, name=f"conv_{i}")(x)
            x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name=f"bn_{i}")(x)
            x = nn.max_pool(nn.relu(x), (2,), strides=(2,))
        x, _ = LSTM(x.shape[-1], cfg.lstm_hidden, cfg.lstm_layers, cfg.dropout, name="lstm")(x, train=train)
        x = nn.Dropout(cfg.dropout, deterministic=not train)(nn.relu(nn.Dense(cfg.head_hidden, name="head_hidden")(x)))
        return jnp.swapaxes(nn.Dense(20, name="head_out")(x), 1, 2)


def _direct_alignment(num_input: int, stride: int, left_context: int, window: int):
    """Static linear-interpolation weights from per-step predictions to 2 kHz samples [left_context, window)."""
    steps = num_input // stride
    # Step i pools 500 Hz samples [i*stride, (i+1)*stride): it is aligned with the last,
    # i.e. 2 kHz sample 4*((i+1)*stride - 1).
    step_2k = 4 * ((np.arange(steps) + 1) * stride - 1)
    position = np.interp(np.arange(left_context, window), step_2k, np.arange(steps))
    i0 = np.floor(position).astype(np.int32)
    i1 = np.minimum(i0 + 1, steps - 1)
    return i0, i1, (position - i0).astype(np.float32)


def _direct_predict(model, variables, emg, alignment, train=False, rng=None):
    i0, i1, w = alignment
    if train:
        steps, updates = model.apply(variables, emg, train=True, rngs={"dropout": rng}, mutable=["batch_stats"])
    else:
        steps, updates = model.apply(variables, emg, train=False), {"batch_stats": variables["batch_stats"]}
    return steps[..., i0] * (1.0 - w) + steps[..., i1] * w, updates["batch_stats"]


# ----------------------------------------------------------------------------- evaluation


def _count(tree) -> int:
    return int(sum(np.size(x) for x in jax.tree_util.tree_leaves(tree)))


def _throughput(fn, batch: int) -> float:
    """Windows per second of a compiled forward ``fn()`` (median of 3 timed calls after a warm-up)."""
    jax.block_until_ready(fn())
    times = []
    for _ in range(3):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return batch / float(np.median(times))


class _Evaluator:
    """Held-out metrics shared by every row (one landmark-metric compile for all)."""

    def __init__(self, batches: list[dict], emg2pose_config: PoseModelConfig):
        from emgjax.kinematics import synthetic_hand_model

        self.batches = batches
        self.cfg = emg2pose_config
        self.hand = synthetic_hand_model()
        stop = batches[0]["joint_angles"].shape[-1] - emg2pose_config.right_context
        self.target = np.concatenate([b["joint_angles"][..., emg2pose_config.left_context : stop] for b in batches])
        self.mask = np.concatenate([b["no_ik_failure"][..., emg2pose_config.left_context : stop] for b in batches])
        self.true_emg = np.concatenate([b["emg_2k"] for b in batches])

    def pose_metrics(self, angles: np.ndarray) -> dict:
        from emgjax.metrics import landmark_distance

        weight = self.mask[:, None, :].astype(np.float64)
        mae = float(np.degrees(np.sum(np.abs(angles - self.target) * weight) / max(weight.sum() * 20, 1)))
        landmarks = float(
            landmark_distance(
                jnp.asarray(angles, jnp.float32), jnp.asarray(self.target), jnp.asarray(self.mask), self.hand
            )
        )
        return {"angle_mae_deg": mae, "landmark_mm": landmarks}

    def recon_metrics(self, emg_2k: np.ndarray) -> dict:
        low, high = obj.band_snr_db(emg_2k, self.true_emg, 2000.0)
        corr = obj.channel_correlation(emg_2k, self.true_emg)
        return {
            "snr_db": obj.snr_db(emg_2k, self.true_emg),
            "snr_0_250_db": low,
            "snr_250_1000_db": high,
            "corr_measured": float(np.mean(corr[list(MEASURED_CHANNELS)])),
            "corr_synthesised": float(np.mean(corr[list(SYNTHESISED_CHANNELS)])),
        }


def _evaluate_pipeline(
    pipeline: AdapterPipeline, variables_list: list[dict], evaluator: _Evaluator, input_key: str = "emg"
) -> list[dict]:
    """input_key: the batch entry fed to the pipeline ("emg": the 8 ch / 500 Hz view; "emg_2k": the truth)."""
    forward = jax.jit(lambda v, emg: pipeline(v, emg)[0])
    results = []
    for variables in variables_list:
        emg_out, angles = [], []
        for batch in evaluator.batches:
            out = forward(variables, batch[input_key])
            emg_out.append(np.asarray(out["emg_2k"]))
            angles.append(np.asarray(out["angles"]))
        metrics = evaluator.recon_metrics(np.concatenate(emg_out))
        metrics.update(evaluator.pose_metrics(np.concatenate(angles)))
        first = evaluator.batches[0]
        inputs = first[input_key]
        metrics["windows_per_s"] = _throughput(functools.partial(forward, variables, inputs), inputs.shape[0])
        metrics["params"] = _count(variables["params"]["adapter"]) + _count(variables["params"].get("mano_head", {}))
        results.append(metrics)
    return results


# ----------------------------------------------------------------------------- the job


CSV_COLUMNS = (
    "row",
    "variant",
    "objective",
    "trained",
    "seeds",
    "params",
    "snr_db",
    "snr_0_250_db",
    "snr_250_1000_db",
    "corr_measured",
    "corr_synthesised",
    "angle_mae_deg",
    "landmark_mm",
    "windows_per_s",
    "train_s",
)
_METRICS = (
    "snr_db",
    "snr_0_250_db",
    "snr_250_1000_db",
    "corr_measured",
    "corr_synthesised",
    "angle_mae_deg",
    "landmark_mm",
    "windows_per_s",
)


def _aggregate(
    row: str, variant: str, objective: str, trained: str, per_seed: list[dict], params: int, train_s: float | None
) -> dict:
    out = {
        "row": row,
        "variant": variant,
        "objective": objective,
        "trained": trained,
        "seeds": len(per_seed),
        "params": params,
        "train_s": train_s,
    }
    for key in _METRICS:
        values = [m[key] for m in per_seed if m.get(key) is not None]
        out[key] = (float(np.mean(values)), float(np.std(values))) if values else None
    return out


def run_benchmark(config: BenchmarkConfig, out_dir, *, log: Callable[[str], None] = print) -> dict:
    """Run the whole benchmark; writes results.csv / results.md / adapter_benchmark.png / summary.json.

    Returns the summary dict (rows, frozen-model report, timings).
    """
    job_start = time.perf_counter()
    out_dir = pathlib.Path(out_dir)
    # Everything is validated on the host before any data is generated or anything compiles.
    pretrained_config = _read_pretrained_config(config.emg2pose_dir) if config.emg2pose_dir else None
    emg2pose_config = pretrained_config or _emg2pose_config_for(config)
    validate_benchmark(config, emg2pose_config)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"out_dir: expected a directory, found a file at {out_dir}")
    timings = {}

    # -- data
    start = time.perf_counter()
    if config.data_dir:
        raw = load_emg2pose_sessions(config.data_dir, config.n_train_sessions + config.n_heldout_sessions)
        if len(raw) < 2:
            raise ValueError(f"{config.data_dir}: expected at least 2 sessions (train + held-out), found {len(raw)}")
        n_heldout = min(config.n_heldout_sessions, max(1, len(raw) // 5))
        raw_train, raw_heldout = raw[:-n_heldout], raw[-n_heldout:]
    else:
        raw_train = synthetic_sessions(config.n_train_sessions, config.session_seconds, first_seed=0)
        raw_heldout = synthetic_sessions(config.n_heldout_sessions, config.session_seconds, first_seed=1000)
    timings["data_s"] = time.perf_counter() - start
    log(f"data: {len(raw_train)} train / {len(raw_heldout)} held-out sessions ({timings['data_s']:.1f} s)")
    # Created only once the data has been read, so a bad --data leaves no output folder behind.
    out_dir.mkdir(parents=True, exist_ok=True)

    window = emg2pose_config.left_context + emg2pose_config.right_context + round(config.predict_seconds * 2000)
    window = max(window, emg2pose_config.min_window_length())
    window = -(-window // 4) * 4

    # -- frozen emg2pose
    start = time.perf_counter()
    if config.emg2pose_dir:
        from emgjax.bundle import load_pretrained

        model = load_pretrained(config.emg2pose_dir)
        norm = model.metadata.get("emg_norm")
        frozen_report = {"source": str(config.emg2pose_dir), "cached": True}
    else:
        from emgjax.data.signal import compute_norm_stats

        stats = compute_norm_stats(s.emg_2k for s in raw_train)
        norm = {"mean": [float(x) for x in stats.mean], "std": [float(x) for x in stats.std]}
    train = prepare_sessions(raw_train, norm)
    heldout = prepare_sessions(raw_heldout, norm)
    eval_batches = heldout_batches(heldout, window, config.eval_batch_size, config.max_heldout_windows)
    mean_pose = _mean_pose(train)
    if not config.emg2pose_dir:
        fingerprint = {
            "emg2pose": emg2pose_config.to_dict(),
            "steps": config.emg2pose_steps,
            "batch": config.emg2pose_batch_size,
            "window": window,
            "data": config.data_dir,
            "sessions": [s.name for s in raw_train],
            "session_seconds": config.session_seconds,
        }
        model, frozen_report = frozen_emg2pose(
            out_dir / "frozen_emg2pose",
            emg2pose_config,
            lambda rng: _emg2pose_batch(sample_batch(train, rng, config.emg2pose_batch_size, window)),
            eval_batches,
            mean_pose,
            fingerprint=fingerprint,
            log=log,
            steps=config.emg2pose_steps,
            min_gain=config.emg2pose_min_gain,
            extra_metadata={"emg_norm": norm},
        )
    emg2pose_vars = model.params
    timings["emg2pose_s"] = time.perf_counter() - start
    log(f"frozen emg2pose: {json.dumps(frozen_report)}")

    evaluator = _Evaluator(eval_batches, emg2pose_config)
    rows: list[dict] = []

    # -- reference rows: mean pose, ceiling
    mean_angles = np.broadcast_to(mean_pose[None, :, None], evaluator.target.shape).astype(np.float32)
    rows.append(_aggregate("mean pose", "-", "-", "no", [evaluator.pose_metrics(mean_angles)], 0, None))
    ceiling = AdapterPipeline(variant_config("interpolation+sinc"), emg2pose_config)
    pose_fn = jax.jit(ceiling.pose)
    ceiling_vars = {
        "params": {"emg2pose": emg2pose_vars["params"]},
        "batch_stats": {"emg2pose": emg2pose_vars.get("batch_stats", {})},
    }
    angles = np.concatenate([np.asarray(pose_fn(ceiling_vars, b["emg_2k"])) for b in eval_batches])
    metrics = evaluator.pose_metrics(angles)
    metrics["windows_per_s"] = _throughput(
        lambda: pose_fn(ceiling_vars, eval_batches[0]["emg_2k"]), eval_batches[0]["emg_2k"].shape[0]
    )
    rows.append(_aggregate("ceiling", "true 16 ch / 2 kHz", "-", "no", [metrics], 0, None))

    # -- floors and fixed rows (no parameters: evaluated untrained)
    start = time.perf_counter()
    for kind, names in (("floor", FLOOR_VARIANTS), ("fixed", FIXED_VARIANTS)):
        for name in names:
            pipeline = AdapterPipeline(_variant(name), emg2pose_config)
            variables = pipeline.init(jax.random.key(0), emg2pose_vars, num_samples=window // 4)
            result = _evaluate_pipeline(pipeline, [variables], evaluator)
            rows.append(_aggregate(kind, name, "-", "no", result, result[0]["params"], None))
            log(f"{kind} {name}: MAE {result[0]['angle_mae_deg']:.2f} deg, SNR {result[0]['snr_db']:.2f} dB")
    timings["fixed_rows_s"] = time.perf_counter() - start

    # -- trained variants: all (objective, seed) models of a variant in one vmapped job
    optim = OptimConfig(
        learning_rate=config.learning_rate,
        schedule="warmup_cosine",
        warmup_steps=max(1, config.steps // 10),
        decay_steps=config.steps + 1,
        end_learning_rate=config.learning_rate * 0.1,
        grad_clip_norm=1.0,
    )
    for name in config.variants:
        rows.extend(
            _train_variant(
                config,
                _variant(name),
                config.objectives,
                optim,
                train,
                evaluator,
                emg2pose_config,
                emg2pose_vars,
                window,
                log,
            )
        )

    # -- calibrated ceiling: the same trainable input stage (a learned 16x16 channel matrix), pose-trained with
    # the same budget and batches, but fed the true 16 ch / 2 kHz input. A pose-trained adapter also calibrates
    # the input for the frozen model; this row gives the true input the same chance, so "adapter vs ceiling"
    # compares information, not training.
    if config.calibrated_ceiling:
        rows.extend(
            _train_variant(
                config,
                CALIBRATED_CEILING,
                ("pose",),
                optim,
                train,
                evaluator,
                emg2pose_config,
                emg2pose_vars,
                window,
                log,
                row="ceiling",
                input_key="emg_2k",
            )
        )

    # -- direct model on the degraded input, same step budget
    if config.direct:
        start = time.perf_counter()
        rows.append(_train_direct(config, train, evaluator, window, emg2pose_config, log))
        rows[-1]["train_s"] = time.perf_counter() - start

    timings["total_s"] = time.perf_counter() - job_start
    summary = {
        "config": config.to_dict(),
        "emg2pose": {
            "config": emg2pose_config.to_dict(),
            "report": frozen_report,
            "window_samples": window,
            "left_context": emg2pose_config.left_context,
        },
        "heldout_windows": int(evaluator.target.shape[0]),
        "rows": rows,
        "timings": timings,
        "devices": [str(d) for d in jax.devices()],
    }
    write_outputs(summary, out_dir)
    log(f"wrote {out_dir}/results.md, results.csv, adapter_benchmark.png ({timings['total_s']:.0f} s)")
    return summary


def _mean_pose(sessions: Sequence[SessionArrays]) -> np.ndarray:
    total = np.zeros(20)
    count = 0
    for s in sessions:
        total += (s.joint_angles * s.no_ik_failure[None]).sum(axis=1)
        count += int(s.no_ik_failure.sum())
    return (total / max(count, 1)).astype(np.float32)


def _emg2pose_batch(batch: dict) -> dict:
    return {"emg_2k": batch["emg_2k"], "joint_angles": batch["joint_angles"], "no_ik_failure": batch["no_ik_failure"]}


def _train_direct(config: BenchmarkConfig, train, evaluator: _Evaluator, window: int, emg2pose_config, log) -> dict:
    """The direct Conv1D+LSTM reference, all seeds vmapped, same steps/batches/learning rate as the adapters."""
    import optax

    from emgjax.train.losses import angle_l1
    from emgjax.train.step import step_rng

    direct_cfg = DirectAnglesConfig(lstm_hidden=config.direct_hidden)
    model = DirectAnglesModel(direct_cfg)
    num_input = window // 4
    alignment = _direct_alignment(num_input, direct_cfg.time_stride, emg2pose_config.left_context, window)
    left, stop = emg2pose_config.left_context, window - emg2pose_config.right_context
    optimizer = make_optimizer(
        OptimConfig(
            learning_rate=config.learning_rate,
            schedule="warmup_cosine",
            warmup_steps=max(1, config.steps // 10),
            decay_steps=config.steps + 1,
            end_learning_rate=config.learning_rate * 0.1,
            grad_clip_norm=1.0,
        )
    )
    states = []
    for seed in config.seeds:
        key, dropout_key = jax.random.split(jax.random.key(seed))
        variables = model.init({"params": key}, jnp.zeros((1, 8, num_input)), train=False)
        states.append(create_train_state(variables["params"], optimizer, dropout_key, variables["batch_stats"]))
    states = stack_trees(states)

    def one_step(state, batch):
        rng = step_rng(state)

        def loss_of(params):
            pred, stats = _direct_predict(
                model,
                {"params": params, "batch_stats": state.batch_stats},
                batch["emg"],
                alignment,
                train=True,
                rng=rng,
            )
            return angle_l1(pred, batch["joint_angles"][..., left:stop], batch["no_ik_failure"][..., left:stop]), stats

        (loss, stats), grads = jax.value_and_grad(loss_of, has_aux=True)(state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        return state.replace(
            step=state.step + 1,
            params=optax.apply_updates(state.params, updates),
            batch_stats=stats,
            opt_state=opt_state,
        ), loss

    step = jax.jit(jax.vmap(one_step, in_axes=(0, None)))
    rng = np.random.default_rng(1234)
    for _ in range(config.steps + config.phase2_steps):
        states, _loss = step(states, sample_batch(train, rng, config.batch_size, window))
    forward = jax.jit(lambda v, emg: _direct_predict(model, v, emg, alignment)[0])
    per_seed = []
    for i in range(len(config.seeds)):
        variables = {"params": unstack_tree(states.params, i), "batch_stats": unstack_tree(states.batch_stats, i)}
        angles = np.concatenate([np.asarray(forward(variables, b["emg"])) for b in evaluator.batches])
        metrics = evaluator.pose_metrics(angles)
        first = evaluator.batches[0]["emg"]
        metrics["windows_per_s"] = _throughput(functools.partial(forward, variables, first), first.shape[0])
        per_seed.append(metrics)
    row = _aggregate(
        "direct", "Conv1D+LSTM on 8 ch / 500 Hz", "pose", "yes", per_seed, _count(unstack_tree(states.params, 0)), None
    )
    log(f"direct model: MAE {row['angle_mae_deg'][0]:.2f} deg")
    return row


# ----------------------------------------------------------------------------- outputs


def _fmt(value, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, tuple):
        mean, std = value
        if not math.isfinite(mean):
            return "—"
        return f"{mean:.{digits}f} ± {std:.{digits}f}"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def write_outputs(summary: dict, out_dir) -> None:
    """results.csv (mean and std columns), results.md (mean ± std), adapter_benchmark.png, summary.json."""
    import csv

    out_dir = pathlib.Path(out_dir)
    rows = summary["rows"]
    with open(out_dir / "results.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        header = []
        for column in CSV_COLUMNS:
            header.extend([column, f"{column}_std"] if column in _METRICS else [column])
        writer.writerow(header)
        for row in rows:
            line = []
            for column in CSV_COLUMNS:
                value = row.get(column)
                if column in _METRICS:
                    line.extend(["", ""] if value is None else [f"{value[0]:.6g}", f"{value[1]:.6g}"])
                else:
                    line.append("" if value is None else (f"{value:.1f}" if isinstance(value, float) else value))
            writer.writerow(line)
    titles = {
        "row": "row",
        "variant": "variant",
        "objective": "objective",
        "trained": "trained",
        "seeds": "seeds",
        "params": "adapter params",
        "snr_db": "SNR dB",
        "snr_0_250_db": "SNR 0–250 Hz",
        "snr_250_1000_db": "SNR 250–1000 Hz",
        "corr_measured": "r measured",
        "corr_synthesised": "r synthesised",
        "angle_mae_deg": "angle MAE °",
        "landmark_mm": "landmark mm",
        "windows_per_s": "windows/s",
        "train_s": "train s",
    }
    lines = ["| " + " | ".join(titles[c] for c in CSV_COLUMNS) + " |", "|" + "---|" * len(CSV_COLUMNS)]
    for row in rows:
        cells = []
        for column in CSV_COLUMNS:
            value = row.get(column)
            digits = 0 if column == "windows_per_s" else (3 if column.startswith("corr") else 2)
            cells.append(_fmt(value, digits) if column != "train_s" else _fmt(value, 0))
        lines.append("| " + " | ".join(cells) + " |")
    report = summary["emg2pose"]["report"]
    notes = [
        (
            f"Held-out windows: {summary['heldout_windows']} (whole held-out sessions, never seen in training); "
            f"window {summary['emg2pose']['window_samples']} samples at 2 kHz, emg2pose left context "
            f"{summary['emg2pose']['left_context']}. Mean ± std over seeds."
        )
    ]
    if "mae_deg" in report:
        notes.append(
            f"Frozen emg2pose (trained here): held-out MAE {report['mae_deg']:.2f}° vs predict-the-mean "
            f"{report['mean_baseline_mae_deg']:.2f}°."
        )
    notes.append(f"Total wall time {summary['timings']['total_s']:.0f} s on {', '.join(summary['devices'])}.")
    (out_dir / "results.md").write_text("\n".join(lines) + "\n\n" + "\n".join(notes) + "\n")
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    _plot(rows, out_dir / "adapter_benchmark.png")


def _plot(rows: list[dict], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['row']}: {r['variant']}" + (f" [{r['objective']}]" if r["objective"] != "-" else "") for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(18, max(4, 0.35 * len(rows) + 1.5)), sharey=True)
    y = np.arange(len(rows))
    colours = {
        "mean pose": "grey",
        "ceiling": "tab:green",
        "floor": "tab:red",
        "fixed": "tab:orange",
        "trained": "tab:blue",
        "direct": "tab:purple",
    }
    for ax, key, title in (
        (axes[0], "angle_mae_deg", "angle MAE (deg, lower is better)"),
        (axes[1], "landmark_mm", "landmark distance (mm, lower is better)"),
    ):
        values = [r[key] if r[key] is not None else (np.nan, 0.0) for r in rows]
        ax.barh(y, [v[0] for v in values], xerr=[v[1] for v in values], color=[colours[r["row"]] for r in rows])
        ax.set_title(title)
    low = [r["snr_0_250_db"][0] if r["snr_0_250_db"] else np.nan for r in rows]
    high = [r["snr_250_1000_db"][0] if r["snr_250_1000_db"] else np.nan for r in rows]
    axes[2].barh(y - 0.2, low, height=0.4, label="0–250 Hz (measured band)")
    axes[2].barh(y + 0.2, high, height=0.4, label="250–1000 Hz (invented band)")
    axes[2].axvline(0.0, color="k", lw=0.8)
    axes[2].set_title("reconstruction SNR (dB, higher is better)")
    axes[2].legend(loc="lower right", fontsize=8)
    axes[0].set_yticks(y, labels, fontsize=8)
    axes[0].invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
