"""Orbax checkpoints of the training state, with JSON extras, keep-last-k + best, and early stopping.

A checkpoint at step ``s`` is a directory ``<dir>/<s>/`` holding two items:

- ``state``: the ``TrainState`` arrays (params, optimiser state, batch
  statistics, step, rng) via ``ocp.args.StandardSave``;
- ``extra``: a JSON document via ``ocp.args.JsonSave`` -- the data iterator's
  position (the loader's ``state()``), normalisation statistics, the
  experiment config, the epoch, early-stopping state, anything JSON-able.

Orbax writes each step into a temporary directory and renames it when
complete, so a process killed mid-save leaves the previous checkpoints intact
and the unfinished one invisible: ``restore_latest`` always finds the last
*complete* checkpoint. Retention keeps the ``max_to_keep`` most recent steps
plus the ``keep_best`` best by a validation metric (when ``best_metric`` is
set and ``save`` gets ``metrics``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from collections.abc import Mapping
from typing import Any

import jax
import orbax.checkpoint as ocp

__all__ = ["Checkpointer", "EarlyStopping", "abstract_like"]


class _DropUnrankedWarning(logging.Filter):
    """Orbax warns on every save without metrics when a best metric is tracked;
    periodic mid-epoch checkpoints legitimately have none."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "did not provide metrics" not in record.getMessage()


logging.getLogger("absl").addFilter(_DropUnrankedWarning())

_STATE = "state"
_EXTRA = "extra"


def abstract_like(tree: Any) -> Any:
    """Shape/dtype(/sharding) skeleton of a pytree, the target for a restore."""
    return jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, tree)


def _check_json(extra: Mapping[str, Any]) -> dict:
    if not isinstance(extra, Mapping):
        raise ValueError(f"checkpoint extra: expected a dict of JSON-able values, found {type(extra).__name__}")
    try:
        # Round trip so what we restore is exactly what JSON can represent.
        return json.loads(json.dumps(dict(extra), allow_nan=False))
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"checkpoint extra: expected JSON-able values (no arrays, NaN or objects), found: {err}"
        ) from None


class Checkpointer:
    """Save/restore ``TrainState`` + JSON extras with Orbax's ``CheckpointManager``.

    ``directory``: created if missing. ``max_to_keep``: most recent steps kept
    (None = all). ``best_metric``/``best_mode`` ("min" or "max"): rank
    checkpoints saved with ``metrics``; the ``keep_best`` best are kept in
    addition to the most recent ones. ``async_save``: Orbax writes in a
    background thread (call ``wait_until_finished`` before relying on it).
    Use as a context manager or call ``close()``.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        max_to_keep: int | None = 3,
        best_metric: str | None = None,
        best_mode: str = "min",
        keep_best: int = 1,
        async_save: bool = True,
    ):
        if best_mode not in ("min", "max"):
            raise ValueError(f"Checkpointer best_mode: expected 'min' or 'max', found {best_mode!r}")
        if max_to_keep is not None and max_to_keep < 1:
            raise ValueError(f"Checkpointer max_to_keep: expected None or >= 1, found {max_to_keep}")
        if keep_best < 0:
            raise ValueError(f"Checkpointer keep_best: expected >= 0, found {keep_best}")
        raw = os.fspath(directory)
        # Object-store URLs (gs://, s3://) go to Orbax unchanged: it writes them through etils.epath.
        is_url = "://" in str(raw)
        self.directory = str(raw) if is_url else os.path.abspath(raw)
        if not is_url and os.path.exists(self.directory) and not os.path.isdir(self.directory):
            raise ValueError(f"Checkpointer directory: expected a directory, found a file at {self.directory}")
        self.best_metric = best_metric
        self.best_mode = best_mode
        policies = [ocp.checkpoint_managers.LatestN(n=max_to_keep)]
        best_fn = None
        if best_metric is not None:
            best_fn = lambda metrics: float(metrics[best_metric])  # noqa: E731
            policies.append(
                ocp.checkpoint_managers.BestN(
                    get_metric_fn=best_fn,
                    reverse=(best_mode == "min"),  # BestN keeps the end of an ascending sort
                    n=keep_best,
                    keep_checkpoints_without_metrics=False,
                )
            )
        options = ocp.CheckpointManagerOptions(
            create=True,
            best_fn=best_fn,
            best_mode=best_mode,
            preservation_policy=ocp.checkpoint_managers.AnyPreservationPolicy(policies),
            enable_async_checkpointing=async_save,
            # Unfinished temporary step directories of a killed run are removed.
            cleanup_tmp_directories=True,
        )
        self._open_manager: ocp.CheckpointManager | None = ocp.CheckpointManager(self.directory, options=options)

    @property
    def _manager(self) -> ocp.CheckpointManager:
        if self._open_manager is None:
            raise ValueError(f"Checkpointer for {self.directory}: expected an open checkpointer, found it closed")
        return self._open_manager

    # -- queries -----------------------------------------------------------------
    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def best_step(self) -> int | None:
        """Best step by ``best_metric`` among checkpoints saved with metrics (None if none)."""
        if self.best_metric is None:
            raise ValueError("Checkpointer.best_step: expected a Checkpointer created with best_metric, found None")
        ranked = [s for s in self.all_steps() if self._manager.metrics(s) is not None]
        if not ranked:
            return None
        return self._manager.best_step()

    # -- save / restore -----------------------------------------------------------
    def save(
        self,
        step: int,
        state: Any,
        *,
        extra: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float] | None = None,
        overwrite: bool = False,
    ) -> bool:
        """Save ``state`` and ``extra`` at ``step``; returns True if a save started.

        ``metrics`` (finite floats) rank the checkpoint for ``best_metric``.
        An existing checkpoint at ``step`` is replaced only with
        ``overwrite=True`` (otherwise ValueError).
        """
        step = int(step)
        extra_json = _check_json(extra or {})
        metrics_json = None
        if metrics is not None:
            metrics_json = {k: float(v) for k, v in metrics.items()}
            bad = {k: v for k, v in metrics_json.items() if not math.isfinite(v)}
            if bad:
                raise ValueError(f"Checkpointer.save metrics: expected finite values, found {bad}")
            if self.best_metric is not None and self.best_metric not in metrics_json:
                raise ValueError(
                    f"Checkpointer.save metrics: expected the best metric {self.best_metric!r}, "
                    f"found {sorted(metrics_json)}"
                )
        if step in self._manager.all_steps():
            if not overwrite:
                raise ValueError(f"Checkpointer.save: a checkpoint for step {step} already exists in {self.directory}")
            self._manager.wait_until_finished()
            self._manager.delete(step)
        args = ocp.args.Composite(**{_STATE: ocp.args.StandardSave(state), _EXTRA: ocp.args.JsonSave(extra_json)})
        return bool(self._manager.save(step, args=args, metrics=metrics_json, force=True))

    def restore(self, step: int, abstract_state: Any) -> tuple[Any, dict]:
        """Restore ``(state, extra)`` at ``step``.

        ``abstract_state``: a state (or its ``abstract_like``) giving the
        structure, shapes, dtypes and shardings to restore into.
        """
        if step not in self._manager.all_steps():
            raise ValueError(
                f"Checkpointer.restore: expected one of the saved steps {self.all_steps()} in {self.directory}, "
                f"found {step}"
            )
        abstract = abstract_like(abstract_state)
        try:
            restored = self._manager.restore(
                step,
                args=ocp.args.Composite(**{_STATE: ocp.args.StandardRestore(abstract), _EXTRA: ocp.args.JsonRestore()}),
            )
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(
                f"Checkpointer.restore: the checkpoint at step {step} in {self.directory} does not match the expected "
                f"state structure: {err}"
            ) from err
        return restored[_STATE], dict(restored[_EXTRA] or {})

    def restore_latest(self, abstract_state: Any) -> tuple[Any, dict] | None:
        """``(state, extra)`` of the latest complete checkpoint, or None if there is none (crash-resume)."""
        step = self.latest_step()
        if step is None:
            return None
        return self.restore(step, abstract_state)

    def wait_until_finished(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        """Finish pending saves and stop Orbax's background work (idempotent; safe after an error).

        Orbax's ``CheckpointManager.close`` does not wait for the clean-up of
        temporary directories it starts on creation (only ``save`` does), so a
        run failing early (bad data, config error) would let that thread run
        into interpreter shutdown and print "cannot schedule new futures after
        interpreter shutdown" / "Event loop is closed" tracebacks after the
        user's one-line error. It is awaited here first.
        """
        manager = self._open_manager
        if manager is None:
            return
        self._open_manager = None
        try:
            await_cleanup = getattr(manager, "_maybe_await_cleanup_tmp_directory", None)
            if await_cleanup is not None:
                await_cleanup()
            manager.wait_until_finished()
        finally:
            manager.close()

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclasses.dataclass
class EarlyStopping:
    """Stop when the monitored value has not improved for ``patience`` evaluations.

    An improvement is a value better than the best so far by more than
    ``min_delta`` (lower for mode "min", higher for "max"). NaN never
    improves. ``state_dict``/``from_state_dict`` round-trip through the
    checkpoint's JSON extras so a resumed run keeps counting.
    """

    patience: int
    mode: str = "min"
    min_delta: float = 0.0
    best: float | None = None
    bad_evaluations: int = 0

    def __post_init__(self):
        if self.patience < 1:
            raise ValueError(f"EarlyStopping patience: expected >= 1, found {self.patience}")
        if self.mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping mode: expected 'min' or 'max', found {self.mode!r}")
        if self.min_delta < 0:
            raise ValueError(f"EarlyStopping min_delta: expected >= 0, found {self.min_delta}")

    def update(self, value: float) -> bool:
        """Record one evaluation; returns True when training should stop."""
        value = float(value)
        improved = math.isfinite(value) and (
            self.best is None
            or (value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta)
        )
        if improved:
            self.best = value
            self.bad_evaluations = 0
        else:
            self.bad_evaluations += 1
        return self.should_stop

    @property
    def should_stop(self) -> bool:
        return self.bad_evaluations >= self.patience

    def state_dict(self) -> dict:
        return {"best": self.best, "bad_evaluations": self.bad_evaluations}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best = None if state.get("best") is None else float(state["best"])
        self.bad_evaluations = int(state.get("bad_evaluations", 0))
