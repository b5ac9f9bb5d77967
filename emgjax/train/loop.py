"""``fit``: epochs, periodic evaluation, checkpoints, crash-resume, logs. A plain function.

The data side is a *loader factory*:

    make_train_loader(epoch: int, position: dict | None) -> loader

where ``loader`` iterates over this process's batches of the epoch (dicts of
numpy arrays, local batch size a multiple of the local device count) and has
``loader.state() -> dict`` (JSON-able): the position *after the batches
consumed so far*. ``position`` is None at the start of an epoch, or a
``state()`` saved in a checkpoint, from which the loader must continue with
exactly the batch that would have come next. The epoch's shuffle is the
loader's business (e.g. seeded by ``epoch``).

Resume: if the checkpointer holds a checkpoint, ``fit`` restores the state
(into the structure/shardings of the ``state`` it was given), the epoch, the
loader position, the running sums of the epoch's training metrics and the
early-stopping counters, and continues -- the sequence of batches, dropout
keys and updates is the same as in an uninterrupted run, so the final
parameters match it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh
from tqdm.auto import tqdm

from emgjax.train.checkpoint import Checkpointer, EarlyStopping
from emgjax.train.logging import MetricsLog, plot_curves
from emgjax.train.mesh import pad_batch, shard_batch
from emgjax.train.state import TrainState

__all__ = ["fit", "FitResult", "evaluate"]


@dataclasses.dataclass
class FitResult:
    """What ``fit`` returns.

    ``state``: final train state. ``history``: the epoch records (as logged).
    ``stopped_early``: early stopping fired. ``resumed_from_step``: the step
    restored from a checkpoint (None for a fresh start). ``extra``: the user
    extras stored with the checkpoints.
    """

    state: TrainState
    history: list[dict]
    stopped_early: bool
    resumed_from_step: int | None
    extra: dict


def _to_float(x) -> float:
    # Replicated global arrays may span other processes: read the local copy.
    if isinstance(x, jax.Array):
        x = x.addressable_data(0)
    return float(np.asarray(x))


class _RunningMeans:
    """Sums of per-step metrics as Python floats, fetched lazily from devices.

    Pending device values are added in step order, so the sums do not depend
    on when they are fetched (and survive a checkpoint round-trip exactly).
    """

    def __init__(self, sums: Mapping[str, float] | None = None, count: int = 0):
        self.sums = dict(sums or {})
        self.count = int(count)
        self._pending: list[Mapping[str, jax.Array]] = []

    def add(self, metrics: Mapping[str, jax.Array]) -> None:
        self._pending.append(metrics)

    def flush(self) -> None:
        for metrics in jax.device_get(self._pending):
            for key, value in metrics.items():
                self.sums[key] = self.sums.get(key, 0.0) + _to_float(value)
            self.count += 1
        self._pending = []

    def means(self) -> dict[str, float]:
        self.flush()
        return {k: v / self.count for k, v in self.sums.items()} if self.count else {}


def evaluate(state: TrainState, eval_step, make_eval_loader: Callable[[], Iterable], mesh: Mesh) -> dict[str, float]:
    """Mean of ``eval_step`` metrics over the eval loader, weighted by batch rows.

    A final partial batch is padded (``pad_batch``: masks False on padded rows)
    to a multiple of the local device count.
    """
    local_devices = len(mesh.local_devices)
    sums: dict[str, float] = {}
    rows_total = 0
    for batch in make_eval_loader():
        padded, rows = pad_batch(batch, local_devices)
        metrics = jax.device_get(eval_step(state, shard_batch(padded, mesh)))
        for key, value in metrics.items():
            sums[key] = sums.get(key, 0.0) + _to_float(value) * rows
        rows_total += rows
    if rows_total == 0:
        raise ValueError("evaluate: expected the eval loader to yield at least one batch, found none")
    return {k: v / rows_total for k, v in sums.items()}


def _prefixed(prefix: str, metrics: Mapping[str, float]) -> dict[str, float]:
    return {f"{prefix}_{k}": float(v) for k, v in metrics.items()}


def _check_fit_args(
    num_epochs, eval_every_steps, checkpoint_every_steps, max_steps, eval_step, make_eval_loader, early_stopping
) -> None:
    if num_epochs < 1:
        raise ValueError(f"fit num_epochs: expected >= 1, found {num_epochs}")
    for name, value in (
        ("eval_every_steps", eval_every_steps),
        ("checkpoint_every_steps", checkpoint_every_steps),
        ("max_steps", max_steps),
    ):
        if value is not None and value < 1:
            raise ValueError(f"fit {name}: expected None or >= 1, found {value}")
    if (eval_step is None) != (make_eval_loader is None):
        raise ValueError("fit: expected eval_step and make_eval_loader together, found only one of them")
    if early_stopping is not None and eval_step is None:
        raise ValueError("fit: early_stopping needs evaluation, found no eval_step/make_eval_loader")


@dataclasses.dataclass
class _Run:
    """One ``fit`` call: its settings (read-only) and its progress (what a checkpoint holds)."""

    state: TrainState
    mesh: Mesh
    num_epochs: int
    checkpointer: Checkpointer | None
    early_stopping: EarlyStopping | None
    user_extra: dict
    verbose: bool
    on_checkpoint: Callable[[int], None] | None
    # progress
    epoch: int = 0
    position: dict | None = None
    resumed_from: int | None = None
    running: _RunningMeans = dataclasses.field(default_factory=_RunningMeans)
    step: int = 0
    last_saved: int | None = None
    stopped_early: bool = False
    log: MetricsLog | None = None
    is_main: bool = True

    def say(self, text: str) -> None:
        if self.verbose and self.is_main:
            tqdm.write(text, file=sys.stdout)
            sys.stdout.flush()

    def resume(self) -> None:
        """Restore state, epoch, loader position, running sums and early stopping from the latest checkpoint."""
        checkpointer = self.checkpointer
        if checkpointer is not None and checkpointer.latest_step() is not None:
            self.state, saved = checkpointer.restore_latest(self.state)
            progress_info = saved.get("fit")
            if not isinstance(progress_info, dict):
                raise ValueError(
                    f"fit: expected the checkpoint in {checkpointer.directory} to hold fit progress ('fit' in its "
                    f"extras), found extras with keys {sorted(saved)}"
                )
            self.resumed_from = int(_to_float(self.state.step))
            self.epoch = int(progress_info["epoch"])
            self.position = progress_info.get("loader_state")
            self.running = _RunningMeans(progress_info.get("train_sums"), progress_info.get("train_count", 0))
            if self.early_stopping is not None and progress_info.get("early_stopping"):
                self.early_stopping.load_state_dict(progress_info["early_stopping"])
            self.user_extra = {**saved.get("user", {}), **self.user_extra}
            where = "start" if self.position is None else "mid-epoch"
            self.say(f"resumed from step {self.resumed_from} (epoch {self.epoch + 1}, {where})")
        self.step = int(_to_float(self.state.step))
        self.last_saved = self.resumed_from
        self.stopped_early = self.early_stopping is not None and self.early_stopping.should_stop

    def open_log(self, log_dir: str | os.PathLike | None) -> None:
        """metrics.jsonl in ``log_dir`` (process 0), without what was logged after the restored checkpoint."""
        if log_dir is None or not self.is_main:
            return
        restored_step, restored_epoch = self.resumed_from, self.epoch

        def keep(record: dict) -> bool:
            if record.get("step", 0) > restored_step:
                return False
            return not (record.get("kind") == "epoch" and record.get("epoch", 0) > restored_epoch)

        self.log = MetricsLog(
            os.path.join(os.fspath(log_dir), "metrics.jsonl"), keep=keep if self.resumed_from is not None else None
        )

    def save(self, loader_state: dict | None, epoch_value: int, metrics: dict | None = None) -> None:
        assert self.checkpointer is not None
        self.running.flush()
        fit_info = {
            "epoch": epoch_value,
            "loader_state": loader_state,
            "train_sums": self.running.sums,
            "train_count": self.running.count,
            "early_stopping": self.early_stopping.state_dict() if self.early_stopping is not None else None,
        }
        self.checkpointer.save(
            self.step,
            self.state,
            extra={"fit": fit_info, "user": self.user_extra},
            metrics=metrics,
            overwrite=(self.last_saved == self.step),
        )
        self.last_saved = self.step
        if self.on_checkpoint is not None:
            self.checkpointer.wait_until_finished()
            self.on_checkpoint(self.step)

    def epoch_end_checkpoint(self, record: dict) -> None:
        """Save at an epoch end, ranked by the epoch's finite metrics when the checkpointer ranks."""
        if self.checkpointer is None:
            return
        ranked: dict | None = {
            k: v for k, v in record.items() if k.startswith(("train_", "val_")) and v is not None and math.isfinite(v)
        }
        if self.checkpointer.best_metric is not None and self.checkpointer.best_metric not in (ranked or {}):
            ranked = None  # cannot rank this one (e.g. no evaluation): keep it as a "latest" only
        self.save(None, self.epoch, ranked)


def fit(
    state: TrainState,
    train_step: Callable,
    make_train_loader: Callable[[int, dict | None], Iterable],
    *,
    mesh: Mesh,
    num_epochs: int,
    eval_step: Callable | None = None,
    make_eval_loader: Callable[[], Iterable] | None = None,
    eval_every_steps: int | None = None,
    checkpointer: Checkpointer | None = None,
    checkpoint_every_steps: int | None = None,
    extra: Mapping[str, Any] | None = None,
    early_stopping: EarlyStopping | None = None,
    monitor: str = "val_loss",
    log_dir: str | os.PathLike | None = None,
    max_steps: int | None = None,
    progress: bool = True,
    verbose: bool = True,
    on_step: Callable[[int, Mapping[str, jax.Array]], None] | None = None,
    on_checkpoint: Callable[[int], None] | None = None,
) -> FitResult:
    """Train for ``num_epochs`` epochs (or ``max_steps`` updates), resuming if a checkpoint exists.

    - ``state``: initial ``TrainState``, replicated over ``mesh`` (also the
      restore template). ``train_step``/``eval_step``: from ``make_train_step``
      / ``make_eval_step`` over the same ``mesh``.
    - ``make_train_loader(epoch, position)``: see the module docstring.
      ``make_eval_loader()``: iterable of eval batches (whole set).
    - Evaluation runs at each epoch end and every ``eval_every_steps``.
      Validation metrics are named ``val_<metric>``, training ones
      ``train_<metric>`` (epoch means). ``early_stopping`` watches
      ``monitor`` at each epoch end.
    - ``checkpointer``: saves every ``checkpoint_every_steps`` and at every
      epoch end (with the epoch's metrics, for best-checkpoint ranking), and
      at the end. ``extra`` (JSON-able: config, normalisation statistics ...)
      is stored with every checkpoint.
    - ``log_dir``: writes ``metrics.jsonl`` and ``curves.png`` there (process 0).
    - ``on_step(step, metrics)`` after every update; ``on_checkpoint(step)``
      after a checkpoint is fully written.
    """
    _check_fit_args(
        num_epochs, eval_every_steps, checkpoint_every_steps, max_steps, eval_step, make_eval_loader, early_stopping
    )
    run = _Run(state, mesh, num_epochs, checkpointer, early_stopping, dict(extra or {}), verbose, on_checkpoint)
    run.is_main = jax.process_index() == 0
    run.resume()
    run.open_log(log_dir)
    history = [r for r in (run.log.records if run.log else []) if r.get("kind") == "epoch"]

    def run_eval() -> dict[str, float]:
        assert eval_step is not None and make_eval_loader is not None
        return _prefixed("val", evaluate(run.state, eval_step, make_eval_loader, mesh))

    done = run.stopped_early or (max_steps is not None and run.step >= max_steps)
    while run.epoch < num_epochs and not done:
        started = time.perf_counter()
        loader = make_train_loader(run.epoch, run.position)
        if not hasattr(loader, "state"):
            raise ValueError(f"fit: expected the train loader to have a state() method, found {type(loader).__name__}")
        total = len(loader) if hasattr(loader, "__len__") else None
        bar = tqdm(
            loader,
            total=total,
            desc=f"epoch {run.epoch + 1}/{num_epochs}",
            disable=not (progress and run.is_main),
            leave=False,
        )
        for batch in bar:
            run.state, metrics = train_step(run.state, shard_batch(batch, mesh))
            run.step += 1
            run.running.add(metrics)
            if on_step is not None:
                on_step(run.step, metrics)
            if run.step % 20 == 0 and progress and run.is_main:
                bar.set_postfix(loss=f"{run.running.means().get('loss', float('nan')):.4g}")
            if eval_every_steps is not None and run.step % eval_every_steps == 0:
                record = {"kind": "eval", "step": run.step, "epoch": run.epoch, **run_eval()}
                if run.log:
                    run.log.log(record)
            if (
                checkpointer is not None
                and checkpoint_every_steps is not None
                and run.step % checkpoint_every_steps == 0
            ):
                run.save(loader.state(), run.epoch)
            if max_steps is not None and run.step >= max_steps:
                done = True
                break
        bar.close()
        if done:  # max_steps reached mid-epoch: keep the position, no epoch record
            if checkpointer is not None and run.last_saved != run.step:
                run.save(loader.state(), run.epoch)
            break
        # ---- epoch end ----------------------------------------------------------
        record = {"kind": "epoch", "epoch": run.epoch + 1, "step": run.step, **_prefixed("train", run.running.means())}
        if eval_step is not None:
            record.update(run_eval())
        record["time_s"] = round(time.perf_counter() - started, 3)
        history.append(record)
        if run.log:
            run.log.log(record)
            plot_curves(run.log.records, os.path.join(os.fspath(log_dir), "curves.png"))
        shown = " ".join(
            f"{k} {v:.5g}" for k, v in record.items() if k.startswith(("train_", "val_")) and v is not None
        )
        run.say(f"epoch {run.epoch + 1}/{num_epochs} step {run.step} {shown} ({record['time_s']:.1f} s)")
        if early_stopping is not None:
            value = record.get(monitor)
            if value is None:
                raise ValueError(f"fit monitor: expected {monitor!r} among the epoch metrics, found {sorted(record)}")
            run.stopped_early = early_stopping.update(value)
        run.epoch += 1
        run.position = None
        run.running = _RunningMeans()
        run.epoch_end_checkpoint(record)
        if run.stopped_early:
            assert early_stopping is not None
            run.say(f"early stopping: {monitor} did not improve for {early_stopping.patience} evaluations")
            break
    if checkpointer is not None:
        checkpointer.wait_until_finished()
    return FitResult(
        state=run.state,
        history=history,
        stopped_early=run.stopped_early,
        resumed_from_step=run.resumed_from,
        extra=run.user_extra,
    )
