"""Batch benchmark of the hardware adapters: how far each variant gets, and where the ceiling is.

One job trains and evaluates a grid of rows (``bench_config.BenchmarkConfig``);
this module is its orchestration, in steps:

1. Data (``draws.py``): the frozen model's own pool of users, and per data seed
   a draw of new users for the adapters' training and held-out sets
   (synthetic users by default, or emg2pose files split by user and stage from
   their ``metadata.csv``). Every session's 16 ch / 2 kHz EMG is normalised
   with the pool's statistics and degraded to an 8 ch / 500 Hz MindRove view.
2. A frozen emg2pose: a converted checkpoint (``emg2pose_dir``), or the
   emg2pose port trained here on its pool until its validation error (other
   users) stops improving, cached in ``OUT/frozen_emg2pose`` (``frozen.py``);
   its learning curve goes to ``OUT/frozen_curve.csv`` / ``.png``.
3. Trained rows (adapter variants per objective, the calibrated ceiling, the
   direct model, the target-space baseline): each row family first picks its
   learning rate from ``learning_rates`` on a validation draw (one init seed),
   then trains one model per (data seed, init seed, objective) with the same
   step budget, all at once (``stack.py``), the same batches per data seed in
   every family (paired runs).
4. Held-out evaluation of every model on its data seed's held-out users
   (``evaluation.py``), and the reference rows per data seed: emg2pose on the
   true input (ceiling), naive zero-fill / duplicate inputs (floor),
   parameter-free interpolation (fixed), predicting the mean pose.
5. Statistics (``stats.py``, ``report.py``): mean and 95 % interval per row,
   paired comparisons against the floor and the ceilings.

Outputs in ``out_dir``: ``results.csv``, ``results.md``, ``adapter_benchmark.png``,
``summary.json``, ``frozen_curve.csv`` / ``.png`` (and the cached frozen model);
``run_knob`` adds ``knob.csv`` / ``knob.png``.
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

from emgjax.data.sessions import SessionArrays, heldout_batches, mean_pose, prepare_sessions, sample_batch
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
    target_space_config,
    validate_benchmark,
    window_samples,
)
from emgjax.recipes.adapter.draws import DataSource, data_source
from emgjax.recipes.adapter.evaluation import Evaluator, count_params, evaluate_pipeline, pipeline_forward
from emgjax.recipes.adapter.frozen import frozen_emg2pose
from emgjax.recipes.adapter.phases import init_states, make_adapter_loss_fn, make_phase_optimizer, objective_batch
from emgjax.recipes.adapter.report import write_knob, write_outputs
from emgjax.recipes.adapter.stack import StackModel, train_stack, with_learning_rates
from emgjax.train.state import TrainState, create_train_state
from emgjax.train.step import unstack_tree

__all__ = ["run_benchmark", "run_knob", "Family"]

Log = Callable[[str], None]
Variables = dict[str, Any]


@dataclasses.dataclass
class _Setup:
    """What every row shares: the frozen emg2pose, the draws and their held-out evaluators."""

    emg2pose_config: PoseModelConfig
    emg2pose_vars: dict[str, Any]
    window: int
    train: dict[int, list[SessionArrays]]  # data seed (test draws and the sweep draw) -> prepared train sessions
    evaluators: dict[int, Evaluator]  # data seed -> its held-out users' windows
    mean_poses: dict[int, np.ndarray]  # data seed -> the train sessions' mean pose (20,)
    users: dict[int, dict[str, list[str]]]
    frozen_report: dict[str, Any]
    frozen_dir: pathlib.Path  # the frozen emg2pose's bundle, which saved adapter bundles reference
    norm: dict[str, list[float]] | None  # the 16-channel z-score of the 2 kHz EMG
    models_dir: pathlib.Path  # OUT/models: one adapter bundle per trained (variant, objective)


@dataclasses.dataclass
class Family:
    """One kind of trained row: every (data seed, init seed, objective) model of it trains in one vmapped job.

    init(seed) -> a fresh TrainState (optimizer from ``with_learning_rates``); evaluate(variables_list,
    evaluator, timed) -> metrics per model; save(objective, variables, metrics): keep a model (optional).
    """

    row: str
    name: str
    objectives: tuple[str, ...]
    loss_fn: Callable
    optimizer: Any
    init: Callable[[int], TrainState]
    evaluate: Callable[[list[Variables], Evaluator, list[bool]], list[dict[str, Any]]]
    params: Callable[[Variables], int]
    input_key: str = "emg"
    trained: str = "yes"
    phase2: tuple[Any, int] | None = None
    save: Callable[[str, Variables, Mapping[str, Any]], Any] | None = None
    # Compiled steps reused by the learning-rate sweep and the test runs (same stack size: one compile).
    step_cache: dict[int, Callable] = dataclasses.field(default_factory=dict)

    def per_model(self, models: Sequence[StackModel]) -> dict[str, Any]:
        if self.objectives == ("pose",) and self.row in ("direct", "target"):
            return {}
        return objective_batch([obj.objective_weights(m.objective) for m in models])


def run_benchmark(
    config: BenchmarkConfig,
    out_dir: str | os.PathLike,
    *,
    log: Log = print,
    learning_rates: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Run the whole benchmark; writes results.csv / results.md / adapter_benchmark.png / summary.json.

    learning_rates: {row label: learning rate} to use instead of sweeping (``run_knob`` reuses the first
    knob value's choice). Returns the summary dict (rows with their runs, frozen-model report, timings).
    """
    job_start = time.perf_counter()
    out_dir = pathlib.Path(out_dir)
    # Everything is validated on the host before any data is generated or anything compiles.
    emg2pose_config = read_pretrained_config(config.emg2pose_dir) if config.emg2pose_dir else None
    emg2pose_config = emg2pose_config or emg2pose_config_for(config)
    validate_benchmark(config, emg2pose_config)
    if config.target_space:
        target_space_config(config, emg2pose_config)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"out_dir: expected a directory, found a file at {out_dir}")
    timings: dict[str, float] = {}
    setup = _set_up(config, emg2pose_config, data_source(config), out_dir, timings, log)

    start = time.perf_counter()
    rows = _reference_rows(config, setup)
    rows += _fixed_rows(config, setup, log)
    timings["reference_rows_s"] = time.perf_counter() - start
    chosen: dict[str, float] = {}
    for family in _families(config, setup):
        start = time.perf_counter()
        rows += _run_family(config, family, setup, chosen, learning_rates, log)
        timings[f"{family.row}:{family.name}_s"] = time.perf_counter() - start

    timings["total_s"] = time.perf_counter() - job_start
    summary = {
        "config": config.to_dict(),
        "emg2pose": {
            "config": emg2pose_config.to_dict(),
            "report": setup.frozen_report,
            "window_samples": setup.window,
            "left_context": emg2pose_config.left_context,
        },
        "users": {str(d): users for d, users in setup.users.items()},
        "heldout_windows": {str(d): int(e.target.shape[0]) for d, e in setup.evaluators.items()},
        "learning_rates": chosen,
        "rows": rows,
        "timings": timings,
        "devices": [str(d) for d in jax.devices()],
    }
    write_outputs(summary, out_dir)
    log(f"wrote {out_dir}/results.md, results.csv, adapter_benchmark.png ({timings['total_s']:.0f} s)")
    return summary


def run_knob(config: BenchmarkConfig, out_dir: str | os.PathLike, *, log: Log = print) -> dict[str, Any]:
    """The known-answer check: a reduced grid at every ``config.knob_values`` share of high-band pose information.

    Per knob value (OUT/knob_<value>/): the frozen model is retrained on that data, then the ceilings, the
    floors, the first variant trained on ``pose`` and the target-space baseline run with the same statistics
    (no direct model: the knob grid must fit the quick budget); the learning rates are swept at the first
    value and reused. Writes OUT/knob.csv and OUT/knob.png (angle MAE vs knob, 95 % intervals).
    """
    out_dir = pathlib.Path(out_dir)
    if config.data_dir is not None:
        raise ValueError("--knob: expected synthetic data (the knob is a generator setting), found --data")
    start = time.perf_counter()
    # The frozen model's gain check is reported, not enforced: at high knob values the point is to see how much
    # of the pose a full-band model still gets (knob.csv has its ceiling row) -- a failed check would hide that.
    reduced = dataclasses.replace(
        config, variants=config.variants[:1], objectives=("pose",), direct=False, emg2pose_min_gain=None
    )
    summaries, chosen = [], None
    for value in config.knob_values:
        log(f"knob: high_band_info = {value}")
        knob_config = dataclasses.replace(reduced, high_band_info=value)
        summary = run_benchmark(knob_config, out_dir / f"knob_{value:g}", log=log, learning_rates=chosen)
        chosen = chosen or summary["learning_rates"]
        summaries.append((value, summary))
    result = write_knob(summaries, out_dir)
    log(f"wrote {out_dir}/knob.csv, knob.png ({time.perf_counter() - start:.0f} s)")
    return result


def _set_up(
    config: BenchmarkConfig,
    emg2pose_config: PoseModelConfig,
    source: DataSource,
    out_dir: pathlib.Path,
    timings: dict,
    log: Log,
) -> _Setup:
    """Steps 1 and 2: read or generate the sessions, normalise them, and load or train the frozen emg2pose."""
    start = time.perf_counter()
    draws = {d: source.draw(d) for d in (*config.data_seeds, config.sweep_data_seed)}
    pool_train, pool_val = ([], []) if config.emg2pose_dir else source.frozen_pool()
    timings["data_s"] = time.perf_counter() - start
    log(
        f"data: frozen pool {len(pool_train)} + {len(pool_val)} validation sessions; per data seed "
        f"{[len(d.train) for d in draws.values()]} train / {[len(d.heldout) for d in draws.values()]} held-out "
        f"sessions ({timings['data_s']:.1f} s)"
    )
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

        stats = compute_norm_stats(s.emg_2k for s in pool_train)
        norm = {"mean": [float(x) for x in stats.mean], "std": [float(x) for x in stats.std]}
    if model is None:
        pool = prepare_sessions(pool_train, norm)
        val_batches = heldout_batches(
            prepare_sessions(pool_val, norm), window, config.eval_batch_size, config.max_heldout_windows
        )
        fingerprint = {
            "emg2pose": emg2pose_config.to_dict(),
            "steps": config.emg2pose_steps,
            "eval_every": config.emg2pose_eval_every,
            "patience": config.emg2pose_patience,
            "batch": config.emg2pose_batch_size,
            "window": window,
            "data": config.data_dir,
            "sessions": [s.name for s in pool_train] + [s.name for s in pool_val],
            "users": sorted({s.user for s in pool_train}) + sorted({s.user for s in pool_val}),
            "seconds": config.frozen_session_seconds,
            "high_band_info": config.high_band_info,
        }
        model, frozen_report = frozen_emg2pose(
            out_dir / "frozen_emg2pose",
            emg2pose_config,
            lambda rng: _emg2pose_batch(sample_batch(pool, rng, config.emg2pose_batch_size, window)),
            val_batches,
            mean_pose(pool),
            fingerprint=fingerprint,
            log=log,
            steps=config.emg2pose_steps,
            eval_every=config.emg2pose_eval_every,
            patience=config.emg2pose_patience,
            min_gain=config.emg2pose_min_gain,
            extra_metadata={"emg_norm": norm},
        )
    timings["emg2pose_s"] = time.perf_counter() - start
    log(f"frozen emg2pose: {json.dumps({k: v for k, v in frozen_report.items() if k != 'curve'})}")

    train, evaluators, poses = {}, {}, {}
    for d, draw in draws.items():
        train[d] = prepare_sessions(draw.train, norm)
        batches = heldout_batches(
            prepare_sessions(draw.heldout, norm), window, config.eval_batch_size, config.max_heldout_windows
        )
        evaluators[d] = Evaluator(batches, emg2pose_config)
        poses[d] = mean_pose(train[d])
    frozen_dir = pathlib.Path(config.emg2pose_dir) if config.emg2pose_dir else out_dir / "frozen_emg2pose"
    return _Setup(
        emg2pose_config,
        model.params,
        window,
        train,
        evaluators,
        poses,
        {d: draw.users for d, draw in draws.items()},
        frozen_report,
        frozen_dir,
        norm,
        out_dir / "models",
    )


def _emg2pose_batch(batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"emg_2k": batch["emg_2k"], "joint_angles": batch["joint_angles"], "no_ik_failure": batch["no_ik_failure"]}


def _row(
    row: str,
    variant: str,
    objective: str,
    trained: str,
    runs: list[dict[str, Any]],
    params: int,
    *,
    learning_rate: float | None = None,
    train_s: float | None = None,
) -> dict[str, Any]:
    """One table row: its labels and its runs (one metrics dict per data seed x init seed; report.py aggregates)."""
    return {
        "row": row,
        "variant": variant,
        "objective": objective,
        "trained": trained,
        "params": params,
        "learning_rate": learning_rate,
        "train_s": train_s,
        "runs": runs,
    }


def _reference_rows(config: BenchmarkConfig, setup: _Setup) -> list[dict[str, Any]]:
    """Predicting the train set's mean pose, and the frozen emg2pose on the true 16 ch / 2 kHz input."""
    ceiling = AdapterPipeline(variant_config("interpolation+sinc"), setup.emg2pose_config)
    ceiling_vars = {
        "params": {"emg2pose": setup.emg2pose_vars["params"]},
        "batch_stats": {"emg2pose": setup.emg2pose_vars.get("batch_stats", {})},
    }
    forward = jax.jit(ceiling.pose)
    mean_runs, ceiling_runs = [], []
    for i, d in enumerate(config.data_seeds):
        evaluator = setup.evaluators[d]
        mean_angles = np.broadcast_to(setup.mean_poses[d][None, :, None], evaluator.target.shape)
        mean_runs.append({"data_seed": d, "seed": None, **evaluator.pose_metrics(mean_angles.astype(np.float32))})
        metrics = evaluator.forward_metrics(forward, ceiling_vars, "emg_2k", timed=i == 0)
        ceiling_runs.append({"data_seed": d, "seed": None, **metrics})
    return [
        _row("mean pose", "-", "-", "no", mean_runs, 0),
        _row("ceiling", "true 16 ch / 2 kHz", "-", "no", ceiling_runs, 0),
    ]


def _fixed_rows(config: BenchmarkConfig, setup: _Setup, log: Log) -> list[dict[str, Any]]:
    """The floors and fixed interpolation rows: parameter-free front ends, evaluated untrained."""
    rows = []
    for kind, names in (("floor", FLOOR_VARIANTS), ("fixed", FIXED_VARIANTS)):
        for name in names:
            pipeline = AdapterPipeline(benchmark_variant(name), setup.emg2pose_config)
            variables = pipeline.init(jax.random.key(0), setup.emg2pose_vars, num_samples=setup.window // 4)
            forward = pipeline_forward(pipeline)
            runs = []
            for i, d in enumerate(config.data_seeds):
                evaluator = setup.evaluators[d]
                metrics = evaluate_pipeline(pipeline, [variables], evaluator, timed=[i == 0], forward=forward)[0]
                runs.append({"data_seed": d, "seed": None, **metrics})
            rows.append(_row(kind, name, "-", "no", runs, runs[0]["params"]))
            mae = np.mean([r["angle_mae_deg"] for r in runs])
            log(f"{kind} {name}: MAE {mae:.2f} deg over {len(runs)} data seeds")
    return rows


def _families(config: BenchmarkConfig, setup: _Setup) -> list[Family]:
    """Every trained row family, in table order: adapters, calibrated ceiling, direct, target-space."""
    families = [_pipeline_family(config, benchmark_variant(name), config.objectives, setup) for name in config.variants]
    # The calibrated ceiling: the same trainable input stage (a learned 16x16 channel matrix), pose-trained with
    # the same budget and batches, but fed the true 16 ch / 2 kHz input: "adapter vs calibrated ceiling" compares
    # information, not training.
    if config.calibrated_ceiling:
        families.append(_pipeline_family(config, CALIBRATED_CEILING, ("pose",), setup, input_key="emg_2k"))
    if config.direct:
        families.append(_direct_family(config, setup))
    if config.target_space:
        families.append(_target_family(config, setup))
    return families


def _pipeline_family(
    config: BenchmarkConfig,
    pipeline_config: PipelineConfig,
    objectives: Sequence[str],
    setup: _Setup,
    *,
    input_key: str = "emg",
) -> Family:
    """An adapter variant (input "emg") or the calibrated ceiling (input "emg_2k") in front of the frozen emg2pose."""
    pipeline = AdapterPipeline(pipeline_config, setup.emg2pose_config)
    num_inputs = setup.window // 4 if input_key == "emg" else setup.window
    template = pipeline.init(jax.random.key(0), setup.emg2pose_vars, num_samples=num_inputs)
    optimizer = with_learning_rates(make_phase_optimizer(1, optim_config(config), template["params"], pipeline))
    phase2 = None
    if config.phase2_steps:
        optim2 = dataclasses.replace(optim_config(config), decay_steps=config.phase2_steps + 1, warmup_steps=1)
        phase2 = (
            with_learning_rates(make_phase_optimizer(2, optim2, template["params"], pipeline)),
            config.phase2_steps,
        )

    def init(seed: int) -> TrainState:
        return init_states(pipeline, setup.emg2pose_vars, optimizer, [seed], num_samples=num_inputs)[0]

    forward = pipeline_forward(pipeline)

    def evaluate(variables: list[Variables], evaluator: Evaluator, timed: list[bool]) -> list[dict[str, Any]]:
        return evaluate_pipeline(pipeline, variables, evaluator, input_key, timed, forward)

    def params(variables: Variables) -> int:
        return count_params(variables["params"]["adapter"]) + count_params(variables["params"].get("mano_head", {}))

    def save(objective: str, variables: Variables, metrics: Mapping[str, Any]) -> Any:
        return _save_adapter(setup, pipeline_config, objective, variables, metrics)

    is_adapter = input_key == "emg"
    return Family(
        row="trained" if is_adapter else "ceiling",
        name=pipeline_config.name if is_adapter else f"{pipeline_config.adapter.kind} 16x16 on true 16 ch / 2 kHz",
        objectives=tuple(objectives),
        loss_fn=make_adapter_loss_fn(pipeline, ("emg", "emg_2k", "joint_angles", "no_ik_failure")),
        optimizer=optimizer,
        init=init,
        evaluate=evaluate,
        params=params,
        input_key=input_key,
        trained="phase 1" if not config.phase2_steps else "phase 1+2",
        phase2=phase2,
        save=save if is_adapter else None,
    )


def _direct_family(config: BenchmarkConfig, setup: _Setup) -> Family:
    """The original project's Conv1D+LSTM on the 8 ch / 500 Hz view (``direct_row``)."""
    from emgjax.recipes.adapter.direct_row import direct_family_parts, direct_predict

    model, alignment, loss_fn = direct_family_parts(config, setup.window, setup.emg2pose_config)
    optimizer = with_learning_rates(_plain_optimizer(config))

    def init(seed: int) -> TrainState:
        key, dropout_key = jax.random.split(jax.random.key(seed))
        variables = model.init_variables(key, num_samples=setup.window // 4)
        return create_train_state(variables["params"], optimizer, dropout_key, variables["batch_stats"])

    forward = jax.jit(lambda v, emg: direct_predict(model, v, emg, alignment)[0])
    return Family(
        "direct",
        "Conv1D+LSTM on 8 ch / 500 Hz",
        ("pose",),
        loss_fn,
        optimizer,
        init,
        lambda vs, ev, timed: [ev.forward_metrics(forward, v, "emg", t) for v, t in zip(vs, timed, strict=True)],
        lambda v: count_params(v["params"]),
    )


def _target_family(config: BenchmarkConfig, setup: _Setup) -> Family:
    """The emg2pose architecture trained from scratch on the 8 ch / 500 Hz view (``target_row``)."""
    from emgjax.models import pose_modules
    from emgjax.recipes.adapter.target_row import make_target_loss_fn, target_alignment, target_predict

    target = target_space_config(config, setup.emg2pose_config)
    left, stop = setup.emg2pose_config.left_context, setup.window - setup.emg2pose_config.right_context
    alignment = target_alignment(target, setup.window // 4, left, stop)
    optimizer = with_learning_rates(_plain_optimizer(config))

    def init(seed: int) -> TrainState:
        key, dropout_key = jax.random.split(jax.random.key(seed))
        variables = pose_modules.init_variables(target, key)
        return create_train_state(variables["params"], optimizer, dropout_key)

    forward = jax.jit(lambda v, emg: target_predict(target, v, emg, alignment))
    return Family(
        "target",
        "emg2pose architecture on 8 ch / 500 Hz",
        ("pose",),
        make_target_loss_fn(target, alignment, left, stop),
        optimizer,
        init,
        lambda vs, ev, timed: [ev.forward_metrics(forward, v, "emg", t) for v, t in zip(vs, timed, strict=True)],
        lambda v: count_params(v["params"]),
    )


def _plain_optimizer(config: BenchmarkConfig) -> Any:
    from emgjax.train.optim import make_optimizer

    return make_optimizer(optim_config(config))


def _run_family(
    config: BenchmarkConfig,
    family: Family,
    setup: _Setup,
    chosen: dict[str, float],
    given: Mapping[str, float] | None,
    log: Log,
) -> list[dict[str, Any]]:
    """Sweep the family's learning rate per objective (unless given), train every test model, one row per objective."""
    labels = {o: f"{family.row}: {family.name} [{o}]" for o in family.objectives}
    start = time.perf_counter()
    rates = {}
    for objective in family.objectives:
        if given is not None and labels[objective] in given:
            rates[objective] = given[labels[objective]]
    todo = [o for o in family.objectives if o not in rates]
    if todo and len(config.learning_rates) == 1:
        rates.update(dict.fromkeys(todo, config.learning_rates[0]))
    elif todo:
        sweep = [
            StackModel(config.sweep_data_seed, config.seeds[0], o, lr) for o in todo for lr in config.learning_rates
        ]
        variables = _train(config, family, setup, sweep)
        validation = family.evaluate(variables, setup.evaluators[config.sweep_data_seed], [False] * len(sweep))
        for objective in todo:
            scores = [
                (r["angle_mae_deg"], m.learning_rate)
                for m, r in zip(sweep, validation, strict=True)
                if m.objective == objective
            ]
            rates[objective] = min(scores)[1]
            log(
                f"  {family.name} [{objective}]: learning rate {rates[objective]:g} (validation MAE "
                + ", ".join(f"{lr:g}: {mae:.2f}" for mae, lr in scores)
                + ")"
            )
    sweep_s = time.perf_counter() - start
    chosen.update({labels[o]: rates[o] for o in family.objectives})

    start = time.perf_counter()
    models = [StackModel(d, s, o, rates[o]) for o in family.objectives for d in config.data_seeds for s in config.seeds]
    variables = _train(config, family, setup, models)
    train_s = time.perf_counter() - start
    log(
        f"trained {family.name}: {len(models)} models vmapped, {config.steps}+{config.phase2_steps} "
        f"steps, {train_s:.1f} s (learning-rate sweep {sweep_s:.1f} s)"
    )
    results: list[dict[str, Any] | None] = [None] * len(models)
    for d in config.data_seeds:
        index = [i for i, m in enumerate(models) if m.data_seed == d]
        timed = [i == index[0] and d == config.data_seeds[0] for i in index]
        for i, metrics in zip(
            index, family.evaluate([variables[i] for i in index], setup.evaluators[d], timed), strict=True
        ):
            results[i] = {"data_seed": d, "seed": models[i].seed, **metrics}
    rows = []
    for objective in family.objectives:
        index = [i for i, m in enumerate(models) if m.objective == objective]
        runs = [results[i] for i in index]
        if family.save is not None:  # a MindRove-input model: keep its first run as a bundle (emgjax.load_model)
            family.save(objective, variables[index[0]], runs[0])
        rows.append(
            _row(
                family.row,
                family.name,
                objective,
                family.trained,
                runs,
                family.params(variables[index[0]]),
                learning_rate=rates[objective],
                train_s=(train_s + sweep_s) / len(family.objectives),
            )
        )
        log(f"  {family.name} / {objective}: MAE {np.mean([r['angle_mae_deg'] for r in runs]):.2f} deg")
    return rows


def _train(config: BenchmarkConfig, family: Family, setup: _Setup, models: Sequence[StackModel]) -> list[Variables]:
    """Train ``models`` of one family at once; returns each model's variables."""
    states, _ = train_stack(
        family.loss_fn,
        family.optimizer,
        [family.init(m.seed) for m in models],
        models,
        {d: setup.train[d] for d in {m.data_seed for m in models}},
        steps=config.steps,
        batch_size=config.batch_size,
        window=setup.window,
        per_model=family.per_model(models),
        input_key=family.input_key,
        phase2=family.phase2,
        step_cache=family.step_cache,
    )
    return [
        {"params": unstack_tree(states.params, i), "batch_stats": unstack_tree(states.batch_stats, i)}
        for i in range(len(models))
    ]


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
