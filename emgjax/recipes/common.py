"""What the recipes share: where the sessions come from (`SessionsConfig`,
`resolve_sessions`: always split by session file, never by window), the
training-loop settings (`LoopConfig`), the run directory (config saved as JSON,
refused if a rerun changes it) and `run_fit`, the glue from a loss function and
datasets to `emgjax.train.fit` with Orbax checkpoints, so a run killed at any
point resumes when it is started again with the same output directory.

Run directory layout (every recipe)::

    OUT/config.json        the experiment config (JSON of the frozen dataclass)
    OUT/checkpoints/       Orbax checkpoints of the training state (resume)
    OUT/metrics.jsonl      one JSON record per epoch / evaluation
    OUT/curves.png         training curves
    OUT/statistics.json    the training-set statistics (normalisation, targets),
                           computed once and reused when a run resumes
    OUT/model/             the exported model: an `emgjax.bundle` (bundle.json +
                           Orbax variables/), read with `emgjax.load_model`
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import functools
import json
import math
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from emgjax.errors import read_json_object as read_json

__all__ = [
    "SessionsConfig",
    "LoopConfig",
    "resolve_sessions",
    "prepare_run_dir",
    "clear_dir",
    "write_json",
    "read_json",
    "run_fit",
    "run_length",
    "check_batch_size",
    "experiment_parser",
    "join_distributed",
]


# -- where the sessions are ------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SessionsConfig:
    """Session files and their split (by session file, never by window).

    Give one of:
    - ``data_dir``: a folder with ``metadata.csv``, either the one
      ``emgjax synth`` writes (columns ``split`` and ``mindrove_file`` /
      ``emg2pose_file``) or emg2pose's own (``filename``, ``split``, ...);
    - ``splits_file``: a JSON ``{"train": [...], "val": [...], "test": [...]}``
      (paths relative to the file) or an emg2pose-style CSV;
    - explicit ``train`` / ``val`` / ``test`` tuples of files (override the above).
    """

    data_dir: str = ""
    splits_file: str = ""
    train: tuple[str, ...] = ()
    val: tuple[str, ...] = ()
    test: tuple[str, ...] = ()


def _synth_metadata_splits(metadata: Path, column: str) -> dict[str, list[Path]]:
    splits: dict[str, list[Path]] = {}
    with open(metadata, newline="") as handle:
        reader = csv.DictReader(handle)
        if column not in (reader.fieldnames or ()) or "split" not in (reader.fieldnames or ()):
            raise ValueError(f"{metadata}: expected columns 'split' and {column!r}, found {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            if not row[column]:
                continue  # that format was not written for this session
            if not row["split"]:
                raise ValueError(f"{metadata}:{line}: expected a split name, found an empty 'split'")
            splits.setdefault(row["split"], []).append(metadata.parent / row[column])
    if not splits:
        raise ValueError(f"{metadata}: expected at least one session with a {column!r} file, found none")
    return splits


def resolve_sessions(config: SessionsConfig, kind: str) -> dict[str, list[Path]]:
    """``{"train": [...], "val": [...], "test": [...]}`` of existing session files.

    ``kind`` is "mindrove" or "emg2pose" (which column of a synthetic
    ``metadata.csv`` to read). Splits are checked to be disjoint by session;
    every listed file must exist (FileNotFoundError naming it).
    """
    from emgjax.data.windows import check_disjoint_splits, load_splits

    if kind not in ("mindrove", "emg2pose"):
        raise ValueError(f"resolve_sessions kind: expected 'mindrove' or 'emg2pose', found {kind!r}")
    explicit = {name: [Path(p) for p in getattr(config, name)] for name in ("train", "val", "test")}
    if any(explicit.values()):
        splits = explicit
    elif config.splits_file:
        splits = load_splits(config.splits_file)
    elif config.data_dir:
        metadata = Path(config.data_dir) / "metadata.csv"
        if not metadata.is_file():
            raise FileNotFoundError(
                f"{metadata}: expected a metadata.csv listing the sessions and their split, found none"
            )
        with open(metadata, newline="") as handle:
            header = next(csv.reader(handle), [])
        column = f"{kind}_file"
        splits = _synth_metadata_splits(metadata, column) if column in header else load_splits(metadata)
    else:
        raise ValueError("sessions: expected data_dir, splits_file or explicit train/val/test files, found none set")
    splits = {name: [Path(p) for p in splits.get(name, [])] for name in ("train", "val", "test")}
    check_disjoint_splits(splits)
    for paths in splits.values():
        for path in paths:
            if not path.is_file():
                raise FileNotFoundError(f"{path}: session file listed in the splits does not exist")
    return splits


# -- the training loop -----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    """Training-loop settings shared by the recipes.

    ``max_steps`` (None = no limit) ends training early, mid-epoch if need be.
    ``early_stopping_patience`` counts epochs without a better validation
    loss (0 = off; needs a val split). ``checkpoint_every_steps`` adds
    mid-epoch checkpoints to the one at every epoch end. ``overwrite``
    (``--overwrite`` on the command line) deletes everything in ``out_dir``
    and starts a fresh run; without it a run refuses a non-empty ``out_dir``
    that is not an earlier run of the same experiment (see `prepare_run_dir`).
    """

    batch_size: int = 64
    num_epochs: int = 100
    max_steps: int | None = None
    eval_every_steps: int | None = None
    checkpoint_every_steps: int | None = 500
    early_stopping_patience: int = 0
    seed: int = 0
    num_workers: int = 1
    progress: bool = True
    overwrite: bool = False

    def __post_init__(self):
        for name in ("batch_size", "num_epochs", "num_workers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"LoopConfig.{name}: expected a positive integer, found {value!r}")
        for name in ("max_steps", "eval_every_steps", "checkpoint_every_steps"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"LoopConfig.{name}: expected None or a positive integer, found {value!r}")
        if self.early_stopping_patience < 0 or self.seed < 0:
            raise ValueError(
                f"LoopConfig: expected early_stopping_patience >= 0 and seed >= 0, found "
                f"{self.early_stopping_patience} and {self.seed}"
            )


# Fields a rerun may change without starting over: how long to train and how to show it.
_RESUMABLE_CHANGES = (
    "loop.num_epochs",
    "loop.max_steps",
    "loop.progress",
    "loop.num_workers",
    "loop.eval_every_steps",
    "loop.overwrite",
)


def is_main_process() -> bool:
    """Whether this is process 0 of a (possibly multi-process) run: the one that writes the run's files."""
    import jax

    return jax.process_index() == 0


def sync_processes(name: str) -> None:
    """Wait until every process of a multi-process run reaches the barrier ``name`` (no-op in one process)."""
    import jax

    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write JSON atomically (temporary file + rename). In a multi-process run only process 0 writes
    (every process holds the same data; the others return the path unwritten)."""
    path = Path(path)
    if not is_main_process():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
    os.replace(tmp, path)
    return path


def _saved_run_config(out: Path, config: Any) -> Any | None:
    """The config of an earlier run of ``type(config)`` saved in ``out``, or None if ``out`` holds no such run."""
    from emgjax.config import ConfigError, config_from_dict

    path = out / "config.json"
    if not path.is_file():
        return None
    try:
        return config_from_dict(type(config), read_json(path, "run config"))
    except (ConfigError, ValueError):
        return None  # another experiment's run, a converted model's config.json, unreadable JSON ...


def clear_dir(out: Path) -> None:
    """Delete everything inside ``out`` (not ``out`` itself); refuses the working folder, its parents and home."""
    resolved = out.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents or resolved == Path.home().resolve():
        raise ValueError(
            f"--overwrite deletes the folder's contents; expected a dedicated folder, found {out} "
            "(the working folder, one of its parents or the home folder)"
        )
    for child in out.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def prepare_run_dir(out_dir: str | os.PathLike, config: Any) -> Path:
    """Create ``out_dir`` and save ``config.json``; on a rerun, check the config is the same.

    In a multi-process run (``--distributed``) process 0 does this while the others wait; they then
    check that they see its ``config.json``: ``out_dir`` must be on storage every process shares.
    """
    import jax

    if is_main_process():
        out = _prepare_run_dir(out_dir, config)
        sync_processes("emgjax: run folder ready")
        return out
    sync_processes("emgjax: run folder ready")
    from emgjax.errors import check_output_path

    out = check_output_path("out_dir", out_dir)
    if not (out / "config.json").is_file():
        raise ValueError(
            f"{out}: process {jax.process_index()} does not see the config.json that process 0 wrote there; "
            "expected out_dir on a file system every process mounts at the same path"
        )
    return out


def _prepare_run_dir(out_dir: str | os.PathLike, config: Any) -> Path:
    """Create ``out_dir`` and save ``config.json``; on a rerun, check the config is the same.

    ``out_dir`` must be missing, empty, or an earlier run of the same
    experiment type (its ``config.json`` reads as ``type(config)``): a run
    never writes into a folder holding anything else (a converted model, data,
    another experiment's run), since its ``statistics.json``, ``model/``,
    ``config.json`` ... would replace that folder's own files. With
    ``config.loop.overwrite`` (``--overwrite``) the folder's contents are
    deleted first and a fresh run starts (the working folder and home are
    refused).

    A rerun resumes from the checkpoints, so it must train the same thing:
    only the loop length and display (``loop.num_epochs``, ``loop.max_steps``,
    ...) may change; anything else raises ValueError listing the differences.
    """
    from emgjax.config import config_diff, config_to_dict
    from emgjax.errors import check_output_path

    out = check_output_path("out_dir", out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir: expected a directory, found a file at {out}")
    overwrite = bool(getattr(getattr(config, "loop", None), "overwrite", False))
    saved = None
    if out.is_dir() and any(out.iterdir()):
        saved = _saved_run_config(out, config)
        if overwrite:
            clear_dir(out)
            saved = None
        elif saved is None:
            found = sorted(child.name for child in out.iterdir())
            shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
            raise ValueError(
                f"{out}: expected an empty or new out_dir, or an earlier {type(config).__name__} run to resume; found "
                f"other files ({shown}). Use another out_dir, or --overwrite to delete its contents and start afresh"
            )
    out.mkdir(parents=True, exist_ok=True)
    path = out / "config.json"
    if saved is not None and (out / "checkpoints").is_dir():
        changed = {
            k: v for k, v in config_diff(saved, config).items() if k not in _RESUMABLE_CHANGES and k != "out_dir"
        }
        if changed:
            lines = "\n  ".join(f"{k}: saved {a!r}, now {b!r}" for k, (a, b) in changed.items())
            raise ValueError(
                f"{out}: this run directory holds checkpoints of a different config; resume with the same config, "
                f"use a new out_dir, or --overwrite to start afresh. Differences:\n  {lines}"
            )
    write_json(path, config_to_dict(config))
    return out


def check_batch_size(loop: LoopConfig, devices: int | None = None) -> None:
    """``loop.batch_size`` is per process (each process loads its own rows, see ``emgjax.data.loader``) and is
    split over this process's devices: it must be a multiple of their number (default ``jax.local_device_count()``).
    """
    if devices is None:
        import jax

        devices = jax.local_device_count()
    if loop.batch_size % devices:
        raise ValueError(
            f"loop.batch_size: expected a multiple of the {devices} local devices this process splits its batch "
            f"over, found {loop.batch_size}"
        )


def run_length(loop: LoopConfig, train_dataset, val_dataset=None) -> int:
    """Updates the run will make: ``num_epochs`` epochs of this process's training batches, capped by ``max_steps``.

    Checks up front (before any compilation or checkpoint) that the training
    set gives at least one batch and the val set at least one window, with a
    one-line ValueError saying what was found. Used as the horizon of a
    "warmup_cosine" schedule given no ``decay_steps``.
    """
    from emgjax.data.loader import Loader

    try:
        per_epoch = len(Loader(train_dataset, loop.batch_size, shuffle=True, seed=loop.seed))
    except ValueError as err:
        raise ValueError(f"train split: {err}") from None
    if val_dataset is not None and len(val_dataset) == 0:
        raise ValueError("val split: expected at least one window, found none")
    total = per_epoch * loop.num_epochs
    return total if loop.max_steps is None else min(total, loop.max_steps)


@functools.lru_cache(maxsize=8)
def _train_step(loss_fn, optimizer, mesh):
    """Jitted train step, cached per (loss_fn, optimizer, mesh): a rerun in the same process reuses its compilation."""
    from emgjax.train import make_train_step

    return make_train_step(loss_fn, optimizer, mesh)


@functools.lru_cache(maxsize=8)
def _eval_step(loss_fn, mesh):
    from emgjax.train import make_eval_step

    return make_eval_step(loss_fn, mesh)


def run_fit(
    out_dir: Path,
    *,
    state,
    loss_fn: Callable,
    optimizer,
    mesh,
    train_dataset,
    val_dataset,
    loop: LoopConfig,
    extra: Mapping[str, Any],
    verbose: bool = True,
):
    """Train with ``emgjax.train.fit``: checkpoints in ``out_dir/checkpoints``, logs in ``out_dir``.

    Resumes automatically from the latest complete checkpoint there. The
    training loader is seeded by ``loop.seed`` and resumable mid-epoch.
    Returns ``(FitResult, best_state)``: ``best_state`` is the state of the
    best validation checkpoint when there is a val split, else the final state.
    """
    import jax

    from emgjax.data.loader import Loader
    from emgjax.train import Checkpointer, EarlyStopping, evaluate, fit

    check_batch_size(loop, sum(d.process_index == jax.process_index() for d in mesh.devices.flat))
    seed = loop.seed

    def make_train_loader(epoch: int, position: dict | None):
        start = position if position is not None else {"epoch": epoch, "position": 0, "seed": seed}
        return Loader(train_dataset, loop.batch_size, shuffle=True, state=start, num_workers=loop.num_workers)

    eval_step = make_eval_loader = None
    if val_dataset is not None:
        eval_step = _eval_step(loss_fn, mesh)

        def make_eval_loader():
            return Loader(
                val_dataset, loop.batch_size, shuffle=False, drop_remainder=False, num_workers=loop.num_workers
            )

    early = None
    if loop.early_stopping_patience and val_dataset is not None:
        early = EarlyStopping(patience=loop.early_stopping_patience)
    train_step = _train_step(loss_fn, optimizer, mesh)
    with Checkpointer(
        out_dir / "checkpoints", max_to_keep=2, best_metric="val_loss" if val_dataset is not None else None
    ) as checkpointer:
        result = fit(
            state,
            train_step,
            make_train_loader,
            mesh=mesh,
            num_epochs=loop.num_epochs,
            eval_step=eval_step,
            make_eval_loader=make_eval_loader,
            eval_every_steps=loop.eval_every_steps if val_dataset is not None else None,
            checkpointer=checkpointer,
            checkpoint_every_steps=loop.checkpoint_every_steps,
            extra=dict(extra),
            early_stopping=early,
            log_dir=out_dir,
            max_steps=loop.max_steps,
            progress=loop.progress,
            verbose=verbose,
        )
        best_state = result.state
        if val_dataset is not None:
            # The best checkpoint is ranked at epoch ends; a run stopped by max_steps mid-epoch
            # ends unranked, so its final state is scored here before the two are compared.
            import jax

            final_step = int(jax.device_get(result.state.step))
            val_loss = {int(r["step"]): r.get("val_loss") for r in result.history if r.get("val_loss") is not None}
            if final_step not in val_loss:
                val_loss[final_step] = evaluate(result.state, eval_step, make_eval_loader, mesh)["loss"]
            best = checkpointer.best_step()
            if best is not None and best != final_step and val_loss.get(best, math.inf) < val_loss[final_step]:
                best_state, _ = checkpointer.restore(best, result.state)
    return result, best_state


def experiment_parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """The experiment scripts' parser (fields added by ``emgjax.config.parse_config``) with ``--distributed``.

    ``--distributed`` joins a multi-process run before anything touches JAX: call
    ``join_distributed(namespace)`` first thing in the script's body (see docs/scaling.md).
    """
    from emgjax.config import config_parser

    parser = config_parser(prog, description, extra_usage=" [--distributed]")
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="join a multi-process run first: JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID, "
        "or the cluster jax.distributed detects (SLURM, Open MPI); loop.batch_size is then per process",
    )
    return parser


def join_distributed(namespace: argparse.Namespace) -> None:
    """Join the multi-process run when the script was given ``--distributed``; otherwise nothing."""
    if getattr(namespace, "distributed", False):
        from emgjax.train import initialize_distributed_from_environment

        initialize_distributed_from_environment()
