"""Batch benchmark of the hardware adapters: how far each variant gets, and where the ceiling is.

One job trains and evaluates a grid of adapter x upsampler x objective x seed
(``bench_config.BenchmarkConfig``); this module is its orchestration, in steps:

1. Data (``emgjax.data.sessions``): emg2pose-format sessions (synthetic by
   default, or ``data_dir`` with emg2pose HDF5 files), split by session into
   train and held-out. Each session's 16 ch / 2 kHz EMG is normalised with
   train-set statistics (when the frozen model was trained that way) and
   degraded to an 8 ch / 500 Hz MindRove view (whole sessions, so the
   decimation filter sees no window edges).
2. A frozen emg2pose: a converted checkpoint (``emg2pose_dir``), or the
   emg2pose port trained here on the true 16 ch / 2 kHz train sessions until
   it clearly beats the predict-the-mean baseline, cached in ``OUT/frozen_emg2pose``
   in the ``emgjax convert`` format (``frozen.py``).
3. Per trainable variant, every (objective, seed) model is trained at once:
   ``emgjax.train``'s vmapped train step over stacked parameters, optimiser
   states and objective weights, all fed the same batches (``phases.py``).
4. Held-out evaluation of every model (``evaluation.py``): reconstruction SNR
   overall and per band (0-250 Hz measured by the armband, 250-1000 Hz
   invented), per-channel correlation of measured vs synthesised electrodes,
   angle MAE (deg) and landmark distance (mm, synthetic hand FK) through the
   frozen emg2pose, parameter count and throughput (windows/s of adapter +
   emg2pose forward).
5. Reference rows: emg2pose on the true input (ceiling), the same with a
   pose-trained 16x16 input stage and the adapters' step budget (calibrated
   ceiling: the fair bound for pose-trained adapters), naive zero-fill and
   duplicate inputs (floor), parameter-free interpolation rows (fixed,
   untrained), predicting the mean pose, and the direct Conv1D+LSTM
   ``DirectModel`` on the 8 ch / 500 Hz view trained with the same step
   budget (``direct_row.py``).

Outputs in ``out_dir`` (``report.py``): ``results.csv``, ``results.md``,
``adapter_benchmark.png``, ``summary.json`` (and the cached frozen model).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from emgjax.data.sessions import (
    SessionArrays,
    heldout_batches,
    load_emg2pose_sessions,
    mean_pose,
    prepare_sessions,
    sample_batch,
    synthetic_sessions,
)
from emgjax.models.adapter.pipeline import AdapterPipeline, PipelineConfig, variant_config
from emgjax.models.configs import PoseModelConfig
from emgjax.recipes.adapter import objectives as obj
from emgjax.recipes.adapter.bench_config import (
    CALIBRATED_CEILING,
    FIXED_VARIANTS,
    FLOOR_VARIANTS,
    MEASURED_CHANNELS,
    BenchmarkConfig,
    benchmark_variant,
    emg2pose_config_for,
    optim_config,
    read_pretrained_config,
    validate_benchmark,
    window_samples,
)
from emgjax.recipes.adapter.direct_row import train_direct_row
from emgjax.recipes.adapter.evaluation import Evaluator, evaluate_pipeline
from emgjax.recipes.adapter.frozen import frozen_emg2pose
from emgjax.recipes.adapter.phases import init_states, make_adapter_loss_fn, make_phase_optimizer, objective_batch
from emgjax.recipes.adapter.report import aggregate, write_outputs
from emgjax.train.step import make_vmapped_train_step, stack_trees, unstack_tree

__all__ = ["run_benchmark", "train_variant"]

Log = Callable[[str], None]


@dataclasses.dataclass
class _Setup:
    """What every row shares: the frozen emg2pose, the data and the held-out evaluator."""

    emg2pose_config: PoseModelConfig
    emg2pose_vars: dict[str, Any]
    window: int
    train: list[SessionArrays]
    evaluator: Evaluator
    mean_pose: np.ndarray
    frozen_report: dict[str, Any]
    frozen_dir: pathlib.Path  # the frozen emg2pose's bundle, which saved adapter bundles reference
    norm: dict[str, list[float]] | None  # the 16-channel z-score of the 2 kHz EMG
    models_dir: pathlib.Path  # OUT/models: one adapter bundle per trained (variant, objective)


def run_benchmark(config: BenchmarkConfig, out_dir: str | os.PathLike, *, log: Log = print) -> dict[str, Any]:
    """Run the whole benchmark; writes results.csv / results.md / adapter_benchmark.png / summary.json.

    Returns the summary dict (rows, frozen-model report, timings).
    """
    job_start = time.perf_counter()
    out_dir = pathlib.Path(out_dir)
    # Everything is validated on the host before any data is generated or anything compiles.
    emg2pose_config = read_pretrained_config(config.emg2pose_dir) if config.emg2pose_dir else None
    emg2pose_config = emg2pose_config or emg2pose_config_for(config)
    validate_benchmark(config, emg2pose_config)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"out_dir: expected a directory, found a file at {out_dir}")
    timings: dict[str, float] = {}
    setup = _set_up(config, emg2pose_config, out_dir, timings, log)

    rows = _reference_rows(setup)
    start = time.perf_counter()
    rows += _fixed_rows(setup, log)
    timings["fixed_rows_s"] = time.perf_counter() - start
    for name in config.variants:
        rows += train_variant(config, benchmark_variant(name), config.objectives, setup, log)
    # The calibrated ceiling: the same trainable input stage (a learned 16x16 channel matrix), pose-trained with
    # the same budget and batches, but fed the true 16 ch / 2 kHz input. A pose-trained adapter also calibrates
    # the input for the frozen model; this row gives the true input the same chance, so "adapter vs ceiling"
    # compares information, not training.
    if config.calibrated_ceiling:
        rows += train_variant(config, CALIBRATED_CEILING, ("pose",), setup, log, row="ceiling", input_key="emg_2k")
    if config.direct:  # the direct model on the degraded input, same step budget
        start = time.perf_counter()
        rows.append(train_direct_row(config, setup.train, setup.evaluator, setup.window, emg2pose_config, log))
        rows[-1]["train_s"] = time.perf_counter() - start

    timings["total_s"] = time.perf_counter() - job_start
    summary = {
        "config": config.to_dict(),
        "emg2pose": {
            "config": emg2pose_config.to_dict(),
            "report": setup.frozen_report,
            "window_samples": setup.window,
            "left_context": emg2pose_config.left_context,
        },
        "heldout_windows": int(setup.evaluator.target.shape[0]),
        "rows": rows,
        "timings": timings,
        "devices": [str(d) for d in jax.devices()],
    }
    write_outputs(summary, out_dir)
    log(f"wrote {out_dir}/results.md, results.csv, adapter_benchmark.png ({timings['total_s']:.0f} s)")
    return summary


def _set_up(
    config: BenchmarkConfig, emg2pose_config: PoseModelConfig, out_dir: pathlib.Path, timings: dict, log: Log
) -> _Setup:
    """Steps 1 and 2: read or generate the sessions, normalise them, and load or train the frozen emg2pose."""
    start = time.perf_counter()
    raw_train, raw_heldout = _sessions(config)
    timings["data_s"] = time.perf_counter() - start
    log(f"data: {len(raw_train)} train / {len(raw_heldout)} held-out sessions ({timings['data_s']:.1f} s)")
    # Created only once the data has been read, so a bad --data leaves no output folder behind.
    out_dir.mkdir(parents=True, exist_ok=True)
    window = window_samples(config, emg2pose_config)

    start = time.perf_counter()
    model = None
    if config.emg2pose_dir:
        from emgjax.bundle import load_pretrained

        model = load_pretrained(config.emg2pose_dir)
        norm = model.metadata.get("emg_norm")
        frozen_report: dict[str, Any] = {"source": str(config.emg2pose_dir), "cached": True}
    else:
        from emgjax.data.signal import compute_norm_stats

        stats = compute_norm_stats(s.emg_2k for s in raw_train)
        norm = {"mean": [float(x) for x in stats.mean], "std": [float(x) for x in stats.std]}
    train = prepare_sessions(raw_train, norm)
    eval_batches = heldout_batches(
        prepare_sessions(raw_heldout, norm), window, config.eval_batch_size, config.max_heldout_windows
    )
    pose = mean_pose(train)
    if model is None:
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
            pose,
            fingerprint=fingerprint,
            log=log,
            steps=config.emg2pose_steps,
            min_gain=config.emg2pose_min_gain,
            extra_metadata={"emg_norm": norm},
        )
    timings["emg2pose_s"] = time.perf_counter() - start
    log(f"frozen emg2pose: {json.dumps(frozen_report)}")
    evaluator = Evaluator(eval_batches, emg2pose_config)
    frozen_dir = pathlib.Path(config.emg2pose_dir) if config.emg2pose_dir else out_dir / "frozen_emg2pose"
    return _Setup(
        emg2pose_config,
        model.params,
        window,
        train,
        evaluator,
        pose,
        frozen_report,
        frozen_dir,
        norm,
        out_dir / "models",
    )


def _sessions(config: BenchmarkConfig) -> tuple[list[SessionArrays], list[SessionArrays]]:
    """(train, held-out) raw sessions: the last files of ``data_dir``, or synthetic seeds 0.. and 1000.."""
    if config.data_dir:
        raw = load_emg2pose_sessions(config.data_dir, config.n_train_sessions + config.n_heldout_sessions)
        if len(raw) < 2:
            raise ValueError(f"{config.data_dir}: expected at least 2 sessions (train + held-out), found {len(raw)}")
        n_heldout = min(config.n_heldout_sessions, max(1, len(raw) // 5))
        return raw[:-n_heldout], raw[-n_heldout:]
    return (
        synthetic_sessions(config.n_train_sessions, config.session_seconds, first_seed=0),
        synthetic_sessions(config.n_heldout_sessions, config.session_seconds, first_seed=1000),
    )


def _emg2pose_batch(batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"emg_2k": batch["emg_2k"], "joint_angles": batch["joint_angles"], "no_ik_failure": batch["no_ik_failure"]}


def _reference_rows(setup: _Setup) -> list[dict[str, Any]]:
    """Predicting the training-set mean pose, and the frozen emg2pose on the true 16 ch / 2 kHz input."""
    evaluator = setup.evaluator
    mean_angles = np.broadcast_to(setup.mean_pose[None, :, None], evaluator.target.shape).astype(np.float32)
    rows = [aggregate("mean pose", "-", "-", "no", [evaluator.pose_metrics(mean_angles)], 0, None)]
    ceiling = AdapterPipeline(variant_config("interpolation+sinc"), setup.emg2pose_config)
    ceiling_vars = {
        "params": {"emg2pose": setup.emg2pose_vars["params"]},
        "batch_stats": {"emg2pose": setup.emg2pose_vars.get("batch_stats", {})},
    }
    metrics = evaluator.forward_metrics(jax.jit(ceiling.pose), ceiling_vars, "emg_2k")
    rows.append(aggregate("ceiling", "true 16 ch / 2 kHz", "-", "no", [metrics], 0, None))
    return rows


def _fixed_rows(setup: _Setup, log: Log) -> list[dict[str, Any]]:
    """The floors and fixed interpolation rows: parameter-free front ends, evaluated untrained."""
    rows = []
    for kind, names in (("floor", FLOOR_VARIANTS), ("fixed", FIXED_VARIANTS)):
        for name in names:
            pipeline = AdapterPipeline(benchmark_variant(name), setup.emg2pose_config)
            variables = pipeline.init(jax.random.key(0), setup.emg2pose_vars, num_samples=setup.window // 4)
            result = evaluate_pipeline(pipeline, [variables], setup.evaluator)
            rows.append(aggregate(kind, name, "-", "no", result, result[0]["params"], None))
            log(f"{kind} {name}: MAE {result[0]['angle_mae_deg']:.2f} deg, SNR {result[0]['snr_db']:.2f} dB")
    return rows


def train_variant(
    config: BenchmarkConfig,
    pipeline_config: PipelineConfig,
    objectives: Sequence[str],
    setup: _Setup,
    log: Log,
    *,
    row: str = "trained",
    input_key: str = "emg",
) -> list[dict[str, Any]]:
    """Train every (objective, seed) model of one variant in one vmapped job; one table row per objective.

    input_key: the batch entry the pipeline is fed ("emg": the 8 ch / 500 Hz view; "emg_2k": the true input).
    """
    true_input = f"{pipeline_config.adapter.kind} 16x16 on true 16 ch / 2 kHz"
    name = pipeline_config.name if input_key == "emg" else true_input
    start = time.perf_counter()
    models = [(o, s) for o in objectives for s in config.seeds]
    pipeline = AdapterPipeline(pipeline_config, setup.emg2pose_config)
    states, metrics = _train_models(config, pipeline, models, setup, input_key)
    train_s = time.perf_counter() - start
    log(
        f"trained {name}: {len(models)} models vmapped, {config.steps}+{config.phase2_steps} steps, "
        f"{train_s:.1f} s; final losses {np.round(np.asarray(metrics['loss']), 4).tolist()}"
    )
    variables_list = [
        {"params": unstack_tree(states.params, i), "batch_stats": unstack_tree(states.batch_stats, i)}
        for i in range(len(models))
    ]
    results = evaluate_pipeline(pipeline, variables_list, setup.evaluator, input_key)
    rows = []
    phase = "phase 1" if not config.phase2_steps else "phase 1+2"
    for objective in objectives:
        per_seed = [r for (o, _), r in zip(models, results, strict=True) if o == objective]
        if input_key == "emg":  # a MindRove-input model: keep its first seed as a bundle (emgjax.load_model)
            first = next(i for i, (o, _) in enumerate(models) if o == objective)
            _save_adapter(setup, pipeline_config, objective, variables_list[first], per_seed[0])
        rows.append(aggregate(row, name, objective, phase, per_seed, per_seed[0]["params"], train_s / len(objectives)))
        log(f"  {name} / {objective}: MAE {rows[-1]['angle_mae_deg'][0]:.2f} deg, SNR {rows[-1]['snr_db'][0]:.2f} dB")
    return rows


def _save_adapter(
    setup: _Setup, pipeline_config: PipelineConfig, objective: str, variables: dict, metrics: Mapping[str, Any]
) -> pathlib.Path:
    """OUT/models/<variant>__<objective>: the adapter bundle, referencing the frozen emg2pose's bundle.

    Its input is the MindRove view of the z-scored 2 kHz EMG, i.e. the measured electrodes' statistics
    (decimation keeps the mean and scale), so ``load_model(dir).predict`` takes raw 8 ch / 500 Hz EMG.
    """
    from emgjax.bundle import save_adapter_pipeline

    norm = None
    if setup.norm is not None:
        norm = {key: [float(setup.norm[key][c]) for c in MEASURED_CHANNELS] for key in ("mean", "std")}
    name = f"{pipeline_config.name}__{objective}".replace("+", "_").replace(" ", "")
    host = jax.tree_util.tree_map(np.asarray, variables)
    return save_adapter_pipeline(
        setup.models_dir / name,
        pipeline_config,
        setup.emg2pose_config,
        host,
        emg2pose_ref=setup.frozen_dir,
        normalisation=norm,
        metadata={"trained_by": "emgjax.recipes.adapter.benchmark", "objective": objective, "heldout": dict(metrics)},
        overwrite=True,
    )


def _train_models(
    config: BenchmarkConfig,
    pipeline: AdapterPipeline,
    models: Sequence[tuple[str, int]],
    setup: _Setup,
    input_key: str,
) -> tuple[Any, dict[str, Any]]:
    """Phase 1 (and phase 2 when ``config.phase2_steps``) of every (objective, seed) model at once.

    Returns the stacked TrainState (leading axis: models) and the last step's metrics ((N,) each).
    """
    num_inputs = setup.window // 4 if input_key == "emg" else setup.window
    template = pipeline.init(jax.random.key(0), setup.emg2pose_vars, num_samples=num_inputs)
    optim = optim_config(config)
    optimizer = make_phase_optimizer(1, optim, template["params"], pipeline)
    seeds = [s for _, s in models]
    states = stack_trees(init_states(pipeline, setup.emg2pose_vars, optimizer, seeds, num_samples=num_inputs))
    weights = objective_batch([obj.objective_weights(o) for o, _ in models])
    loss_fn = make_adapter_loss_fn(pipeline, ("emg", "emg_2k", "joint_angles", "no_ik_failure"))

    def batches(rng: np.random.Generator) -> dict[str, np.ndarray]:
        batch = sample_batch(setup.train, rng, config.batch_size, setup.window)
        return batch if input_key == "emg" else dict(batch, emg=batch[input_key])

    rng = np.random.default_rng(1234)  # the same batches for every variant: a paired comparison
    step = make_vmapped_train_step(loss_fn, optimizer)
    for _ in range(config.steps):
        states, metrics = step(states, batches(rng), weights)
    if config.phase2_steps:
        phase2 = dataclasses.replace(optim, decay_steps=config.phase2_steps + 1, warmup_steps=1)
        optimizer2 = make_phase_optimizer(2, phase2, template["params"], pipeline)
        step = make_vmapped_train_step(loss_fn, optimizer2)
        states = states.replace(opt_state=jax.vmap(optimizer2.init)(states.params))
        for _ in range(config.phase2_steps):
            states, metrics = step(states, batches(rng), weights)
    jax.block_until_ready(states.params)
    return states, metrics
