"""Whole emg2pose-format sessions held in memory, with a random-window sampler.

For jobs whose data fits in memory (benchmarks, quick experiments): every
session is read once, normalised once and degraded once to the MindRove view
(``simulate_mindrove_view`` over the whole session, so the decimation filter
never sees a window edge); batches are then cut from the arrays directly.
The file-backed, resumable alternative for full datasets is
``emgjax.data.windows.Emg2PoseWindows`` with ``emgjax.data.loader.Loader``.

Arrays are channel-first: ``emg_2k`` (16, N) at 2 kHz, ``joint_angles``
(20, N) radians, ``no_ik_failure`` (N,) bool, ``emg_500`` (8, N // 4).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from emgjax.data.synthetic import SyntheticConfig

__all__ = [
    "SessionArrays",
    "synthetic_sessions",
    "load_emg2pose_sessions",
    "split_heldout",
    "prepare_sessions",
    "sample_batch",
    "heldout_batches",
    "mean_pose",
]

_FACTOR = 4  # 2 kHz samples per 500 Hz sample


@dataclasses.dataclass
class SessionArrays:
    """One session, channel-first. emg_2k (16, N) [normalised], joint_angles (20, N), no_ik_failure (N,) bool,
    emg_500 (8, N // 4): the simulated MindRove view of emg_2k (``prepare_sessions``).

    ``user`` and ``stage`` say who recorded it and in which emg2pose stage ("" when unknown): what
    ``split_heldout`` holds out."""

    emg_2k: np.ndarray
    joint_angles: np.ndarray
    no_ik_failure: np.ndarray
    emg_500: np.ndarray | None = None
    name: str = ""
    user: str = ""
    stage: str = ""


def synthetic_sessions(
    n: int, seconds: float, first_seed: int, *, user: int = 0, config: SyntheticConfig | None = None
) -> list[SessionArrays]:
    """``n`` synthetic emg2pose-format sessions of one simulated user, ``seconds`` each.

    Seeds first_seed, first_seed + 1, ...; ``user`` as in ``generate_session`` (0: the base physiology);
    ``config`` (default ``SyntheticConfig()``) sets everything else, its ``duration_s`` replaced by ``seconds``.
    Names are ``synthetic-u{user}-{seed}``, ``user`` is ``"user{user}"`` and ``stage`` is ``"stage0"`` (as in
    the files ``write_synthetic_dataset`` writes).
    """
    from emgjax.data.synthetic import SyntheticConfig, generate_session

    config = SyntheticConfig() if config is None else config
    if not isinstance(config, SyntheticConfig):
        raise ValueError(f"config must be a SyntheticConfig, found {type(config).__name__}")
    config = config.replace(duration_s=seconds)
    sessions = []
    for seed in range(first_seed, first_seed + n):
        s = generate_session(config, seed=seed, user=user)
        sessions.append(
            SessionArrays(
                np.ascontiguousarray(s.emg_2k.T),
                np.ascontiguousarray(s.angles_2k.T),
                np.asarray(s.no_ik_failure_2k),
                name=f"synthetic-u{user}-{seed}",
                user=f"user{user}",
                stage="stage0",
            )
        )
    return sessions


def _metadata_by_file(directory: pathlib.Path) -> dict[str, dict[str, str]]:
    """emg2pose ``metadata.csv`` rows (in ``directory`` or its parent, as ``emgjax synth`` writes it) keyed by
    the resolved path of the file each describes, and by the bare file name where that is unique."""
    from emgjax.data.emg2pose import METADATA_FILE, read_metadata

    for folder in (directory, directory.parent):
        if (folder / METADATA_FILE).is_file():
            break
    else:
        return {}
    rows = read_metadata(folder / METADATA_FILE)
    by_file: dict[str, dict[str, str]] = {}
    names: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        # emg2pose's filename has no suffix (and no folder); ours may name a folder (emg2pose/session000).
        name = row["filename"] if row["filename"].endswith(".hdf5") else row["filename"] + ".hdf5"
        by_file[str((folder / name).resolve())] = row
        names.setdefault(pathlib.Path(name).name, []).append(row)
    for name, matches in names.items():
        if len(matches) == 1:
            by_file.setdefault(name, matches[0])
    return by_file


def load_emg2pose_sessions(directory: str | os.PathLike, max_sessions: int | None = None) -> list[SessionArrays]:
    """Every ``*.hdf5`` emg2pose session in ``directory`` (sorted by name, at most ``max_sessions``), read whole.

    ``user`` and ``stage`` come from emg2pose's ``metadata.csv`` when there is one in ``directory`` or its
    parent (a row matches a file by its path, else by its unique file name), else from the file's HDF5
    attributes (emg2pose stores both), else "".
    """
    from emgjax.data.emg2pose import Emg2PoseSession

    folder = pathlib.Path(directory)
    paths = sorted(folder.glob("*.hdf5"))
    if not paths:
        raise FileNotFoundError(f"{directory}: expected emg2pose session files (*.hdf5), found none")
    metadata = _metadata_by_file(folder)
    sessions = []
    for path in paths[:max_sessions]:
        with Emg2PoseSession(path) as session:
            data = session.read()
            attrs = session.metadata
        row = metadata.get(str(path.resolve())) or metadata.get(path.name)
        if row is not None:
            attrs = {"user": row["user"], "stage": row["stage"]}
        sessions.append(
            SessionArrays(
                data["emg"],
                data["joint_angles"],
                data["no_ik_failure"],
                name=path.name,
                user=str(attrs.get("user", "")),
                stage=str(attrs.get("stage", "")),
            )
        )
    return sessions


def _names(value: str | Sequence[str], what: str) -> tuple[str, ...]:
    names = (value,) if isinstance(value, str) else tuple(value)
    if not all(isinstance(v, str) and v for v in names):
        raise ValueError(f"{what}: expected non-empty strings, found {names!r}")
    return names


def split_heldout(
    sessions: Sequence[SessionArrays],
    *,
    heldout_users: str | Sequence[str] = (),
    heldout_stages: str | Sequence[str] = (),
) -> tuple[list[SessionArrays], list[SessionArrays]]:
    """Split sessions as emg2pose's held-out conditions do: (train, heldout), order kept.

    A session is held out when its user is in ``heldout_users`` or its stage in
    ``heldout_stages`` (held-out user, stage, or both: emg2pose's user, stage
    and user_stage generalization); the rest is train, so no held-out user or
    stage is ever trained on.

    Raises:
      ValueError: nothing asked to hold out; a user or stage that no session has
        (the known ones are listed); a session whose user (stage) is unknown ("")
        when users (stages) are held out; or an empty train or held-out side.
    """
    users = _names(heldout_users, "heldout_users")
    stages = _names(heldout_stages, "heldout_stages")
    if not users and not stages:
        raise ValueError("split_heldout: expected heldout_users or heldout_stages, found neither")
    for wanted, field in ((users, "user"), (stages, "stage")):
        if not wanted:
            continue
        unlabelled = [s.name for s in sessions if not getattr(s, field)]
        if unlabelled:
            raise ValueError(
                f"split_heldout: expected every session to name its {field} (metadata.csv or the HDF5 attributes), "
                f"found none for {unlabelled[:3]}{' ...' if len(unlabelled) > 3 else ''}"
            )
        known = sorted({getattr(s, field) for s in sessions})
        unknown = [w for w in wanted if w not in known]
        if unknown:
            raise ValueError(f"split_heldout: held-out {field}(s) {unknown} not found; the sessions have {known}")
    train: list[SessionArrays] = []
    heldout: list[SessionArrays] = []
    for s in sessions:
        (heldout if s.user in users or s.stage in stages else train).append(s)
    if not train or not heldout:
        raise ValueError(
            f"split_heldout: expected sessions on both sides, found {len(train)} train and {len(heldout)} held out "
            f"(of {len(sessions)})"
        )
    return train, heldout


def prepare_sessions(sessions: Sequence[SessionArrays], norm: Mapping | None) -> list[SessionArrays]:
    """Normalise (``norm`` = {"mean": (16,), "std": (16,)} or None), trim to a multiple of 4 samples
    and add the simulated MindRove view ``emg_500``."""
    from emgjax.data.signal import simulate_mindrove_view

    out = []
    for s in sessions:
        emg = s.emg_2k.astype(np.float32)
        if norm is not None:
            emg = (emg - np.asarray(norm["mean"], np.float32)[:, None]) / np.asarray(norm["std"], np.float32)[:, None]
        n = (emg.shape[1] // _FACTOR) * _FACTOR
        emg = np.ascontiguousarray(emg[:, :n])
        out.append(
            dataclasses.replace(
                s,
                emg_2k=emg,
                joint_angles=s.joint_angles[:, :n],
                no_ik_failure=s.no_ik_failure[:n],
                emg_500=simulate_mindrove_view(emg).astype(np.float32),
            )
        )
    return out


def _prepared(sessions: Sequence[SessionArrays]) -> None:
    if not sessions:
        raise ValueError("expected at least one session, found none")
    for s in sessions:
        if s.emg_500 is None:
            raise ValueError(f"session {s.name!r}: expected its MindRove view (prepare_sessions), found none")


def _window(s: SessionArrays, start: int, window: int) -> dict[str, np.ndarray]:
    assert s.emg_500 is not None  # checked by _prepared
    return {
        "emg": s.emg_500[:, start // _FACTOR : (start + window) // _FACTOR],
        "emg_2k": s.emg_2k[:, start : start + window],
        "joint_angles": s.joint_angles[:, start : start + window],
        "no_ik_failure": s.no_ik_failure[start : start + window],
    }


def _check_window(sessions: Sequence[SessionArrays], window: int) -> None:
    if window < _FACTOR or window % _FACTOR:
        raise ValueError(f"window: expected a positive multiple of {_FACTOR} samples, found {window}")
    shortest = min(s.emg_2k.shape[1] for s in sessions)
    if shortest < window:
        raise ValueError(f"window: expected at most the shortest session's {shortest} samples, found {window}")


def sample_batch(
    sessions: Sequence[SessionArrays], rng: np.random.Generator, batch: int, window: int
) -> dict[str, np.ndarray]:
    """Random windows (``window`` samples at 2 kHz, a multiple of 4, starting on a multiple of 4).

    Each row draws a session, then a start, from ``rng`` (so a seeded
    generator gives the same batches in every run).
    Returns {"emg" (B, 8, window/4), "emg_2k" (B, 16, window), "joint_angles" (B, 20, window),
    "no_ik_failure" (B, window)}.
    """
    _prepared(sessions)
    _check_window(sessions, window)
    rows = []
    for _ in range(batch):
        s = sessions[int(rng.integers(len(sessions)))]
        start = _FACTOR * rng.integers((s.emg_2k.shape[1] - window) // _FACTOR + 1)
        rows.append(_window(s, start, window))
    return {k: np.stack([r[k] for r in rows]) for k in rows[0]}


def heldout_batches(
    sessions: Sequence[SessionArrays], window: int, batch: int, max_windows: int
) -> list[dict[str, np.ndarray]]:
    """Non-overlapping windows, in order, at most ``max_windows``, in batches of ``batch`` (the last may be
    smaller); entries as ``sample_batch``."""
    _prepared(sessions)
    rows = []
    for s in sessions:
        for start in range(0, s.emg_2k.shape[1] - window + 1, window):
            rows.append(_window(s, start, window))
    rows = rows[:max_windows]
    if not rows:
        raise ValueError(f"held-out sessions are shorter than one window of {window} samples")
    return [{k: np.stack([r[k] for r in rows[i : i + batch]]) for k in rows[0]} for i in range(0, len(rows), batch)]


def mean_pose(sessions: Sequence[SessionArrays]) -> np.ndarray:
    """The mean joint angles (20,) float32 over every valid (no IK failure) sample of ``sessions``."""
    total = np.zeros(sessions[0].joint_angles.shape[0] if sessions else 20)
    count = 0
    for s in sessions:
        total += (s.joint_angles * s.no_ik_failure[None]).sum(axis=1)
        count += int(s.no_ik_failure.sum())
    return (total / max(count, 1)).astype(np.float32)
