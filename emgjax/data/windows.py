"""Windowed datasets over session files (random access by integer index).

`Emg2PoseWindows` cuts emg2pose sessions into training/evaluation windows
with emg2pose's semantics (stride, context padding, jitter, IK-failure
skipping); `MindRoveWindows` cuts schema-v1 MindRove sessions into short
windows with targets interpolated from the label streams. Both return dicts
of numpy arrays, channel-first (``emg (C, T)``), and take an optional
``np.random.Generator`` per item so a loader can make every random choice
(jitter, augmentation) a function of (seed, epoch, index) and thus resumable.

Splits (`split_sessions`, `load_splits`) are always by session file: windows
of one session never land in two splits (the original project's random
split over overlapping windows leaked validation data into training).

Only a bounded number of files is open at a time (``max_open_files``, least
recently used closed first), so a dataset can span all 25k emg2pose files.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import operator
import os
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emgjax.data.emg2pose import SAMPLE_RATE as EMG2POSE_SAMPLE_RATE
from emgjax.data.emg2pose import Emg2PoseSession, SessionFormatError, read_metadata
from emgjax.data.mindrove import LABEL_KINDS, MindRoveSession, interpolate_labels

__all__ = [
    "SPLIT_NAMES",
    "Transform",
    "rotate_channels",
    "downsample_channels",
    "RandomChannelRotation",
    "ChannelDownsampling",
    "Emg2PoseWindows",
    "MindRoveWindows",
    "split_sessions",
    "load_splits",
    "check_disjoint_splits",
]

logger = logging.getLogger(__name__)

# A transform maps one window's EMG (C, T) and the window's Generator to new EMG.
Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]


# The split names of emg2pose's metadata.csv, and the only ones a split may have.
SPLIT_NAMES = ("train", "val", "test")


# -- augmentations ---------------------------------------------------------


def rotate_channels(emg: np.ndarray, rng: np.random.Generator, offsets: Sequence[int] = (-1, 0, 1)) -> np.ndarray:
    """Rotate electrodes around the band by a random offset.

    The electrodes sit on a ring around the forearm, so a band worn slightly
    rotated is a circular shift of the channel axis.

    Args:
      emg: (..., C, T).
      rng: source of the random offset.
      offsets: candidate shifts, drawn uniformly.
    Returns:
      (..., C, T) with channel c moved to (c + offset) mod C.
    """
    emg = np.asarray(emg)
    if emg.ndim < 2:
        raise ValueError(f"rotate_channels: expected emg of shape (..., C, T), found {emg.shape}")
    if len(offsets) == 0:
        raise ValueError("rotate_channels: expected at least one offset, found none")
    offset = int(offsets[int(rng.integers(len(offsets)))])
    return np.roll(emg, offset, axis=-2)


def downsample_channels(emg: np.ndarray, every: int = 2) -> np.ndarray:
    """Keep every ``every``-th electrode (emulates a band with fewer electrodes).

    Args:
      emg: (..., C, T).
    Returns:
      (..., ceil(C / every), T).
    """
    emg = np.asarray(emg)
    if emg.ndim < 2:
        raise ValueError(f"downsample_channels: expected emg of shape (..., C, T), found {emg.shape}")
    if not isinstance(every, (int, np.integer)) or not 1 <= every <= emg.shape[-2]:
        raise ValueError(f"downsample_channels: expected an integer 1 <= every <= {emg.shape[-2]}, found {every!r}")
    return np.ascontiguousarray(emg[..., ::every, :])


@dataclasses.dataclass(frozen=True)
class RandomChannelRotation:
    """`rotate_channels` as a dataset transform."""

    offsets: tuple[int, ...] = (-1, 0, 1)

    def __call__(self, emg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return rotate_channels(emg, rng, self.offsets)


@dataclasses.dataclass(frozen=True)
class ChannelDownsampling:
    """`downsample_channels` as a dataset transform (deterministic)."""

    every: int = 2

    def __call__(self, emg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return downsample_channels(emg, self.every)


# -- shared helpers --------------------------------------------------------


def _as_paths(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    result = [Path(p) for p in paths]
    if not result:
        raise ValueError("paths: expected at least one session file, found none")
    return result


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name}: expected a positive integer, found {value!r}")
    return int(value)


def _check_on_error(on_error: str) -> None:
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error: expected 'raise' or 'skip', found {on_error!r}")


def _check_transforms(transforms: Sequence[Transform]) -> tuple[Transform, ...]:
    transforms = tuple(transforms)
    for transform in transforms:
        if not callable(transform):
            raise ValueError(f"transforms: expected callables (emg, rng) -> emg, found {transform!r}")
    return transforms


class _OpenSessions:
    """Least-recently-used cache of open session readers (thread-safe).

    The lock is held during a read, so a reader is never closed under a
    thread that is using it (h5py serialises file access anyway).
    """

    def __init__(self, paths: Sequence[Path], opener: Callable[[Path], Any], max_open: int):
        self._paths = paths
        self._opener = opener
        self._max_open = _positive_int("max_open_files", max_open)
        self._open: collections.OrderedDict[int, Any] = collections.OrderedDict()
        self._lock = threading.Lock()

    def call(self, session_index: int, fn: Callable[[Any], Any]) -> Any:
        with self._lock:
            session = self._open.get(session_index)
            if session is None:
                while len(self._open) >= self._max_open:
                    _, oldest = self._open.popitem(last=False)
                    oldest.close()
                session = self._opener(self._paths[session_index])
                self._open[session_index] = session
            else:
                self._open.move_to_end(session_index)
            return fn(session)

    def close(self) -> None:
        with self._lock:
            while self._open:
                self._open.popitem()[1].close()


def _record_failure(path: Path, err: Exception, on_error: str, skipped: list) -> None:
    if on_error == "raise":
        raise err
    logger.warning("skipping session %s: %s", path, err)
    skipped.append((path, str(err)))


def _index(index: Any, length: int) -> int:
    try:
        index = operator.index(index)
    except TypeError:
        raise TypeError(f"window index must be an integer, found {type(index).__name__}") from None
    if index < 0:
        index += length
    if not 0 <= index < length:
        raise IndexError(f"window index out of range: expected 0 <= index < {length}")
    return index


class _WindowedBase:
    """Common bookkeeping: open-file cache, close, pickling without handles."""

    _sessions_cache: _OpenSessions

    def close(self) -> None:
        """Close every open file (reopened on demand)."""
        self._sessions_cache.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self) -> dict:
        # Open h5py handles cannot cross processes; the copy reopens on demand.
        state = self.__dict__.copy()
        state["_sessions_cache"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._sessions_cache = self._make_cache()

    def _make_cache(self) -> _OpenSessions:  # pragma: no cover - overridden
        raise NotImplementedError


# -- emg2pose --------------------------------------------------------------


class Emg2PoseWindows(_WindowedBase):
    """Windows over emg2pose sessions, emg2pose semantics.

    Each window is a *core* of ``window_length`` samples plus
    ``padding = (left, right)`` raw samples of context on either side
    (``T = left + window_length + right``). Core offsets advance by
    ``stride`` (default: ``window_length``). With ``jitter`` each core offset
    moves right by a random ``0 <= j < min(stride, leftover)`` where leftover
    is the room left after the window, so training sees every phase.

    Unlike emg2pose, which clips the context at a session's edges (and so
    yields shorter windows there), cores start only where the full context
    exists: every window has the same T and batches stack.

    With ``skip_ik_failures`` the cores come only from contiguous runs of
    samples without IK failure that are at least one window long (the
    padding may cover IK failures: it is EMG context, not a target).

    Sessions shorter than one window are skipped with a warning naming them.
    A corrupt or malformed file raises `SessionFormatError`; with
    ``on_error="skip"`` it is skipped with a logged warning naming it (see
    `skipped`).

    What is checked when the dataset is built: with ``on_error="raise"``
    only the layout (group, fields, shapes, sample rate) and the clock of the
    first 4096 samples, so building over the 431 GiB dataset stays cheap; bad
    samples (NaN/inf EMG or angles, non-monotonic time) raise when a window
    containing them is read. With ``on_error="skip"`` every sample of every
    session is also checked (`Emg2PoseSession.check_samples`: one pass over
    the file in ~15 MB blocks, vectorised), so a skipped session is dropped
    here and a `Loader` never meets a bad one mid-epoch; building then costs
    one read of the data.

    Args:
      paths: session files.
      window_length: core samples per window (e.g. 11,790 at 2 kHz).
      stride: samples between consecutive cores (default window_length).
      padding: (left, right) context samples.
      jitter: random core offset (training).
      skip_ik_failures: only windows free of IK failures.
      transforms: callables (emg (C, T), rng) -> emg, applied in order.
      on_error: "raise" or "skip" for unreadable or bad files (see above).
      expected_sample_rate: sample_rate every file must have (Hz), or None.
      max_open_files: bound on simultaneously open files.

    Items (``dataset[i]`` or ``dataset.__getitem__(i, rng=generator)``):
      ``emg (C, T)`` float32, ``joint_angles (20, T)`` float32,
      ``no_ik_failure (T,)`` bool.
    """

    def __init__(
        self,
        paths: str | os.PathLike | Iterable[str | os.PathLike],
        window_length: int,
        stride: int | None = None,
        padding: tuple[int, int] = (0, 0),
        jitter: bool = False,
        skip_ik_failures: bool = False,
        transforms: Sequence[Transform] = (),
        *,
        on_error: str = "raise",
        expected_sample_rate: float | None = EMG2POSE_SAMPLE_RATE,
        max_open_files: int = 32,
    ):
        self.window_length = _positive_int("window_length", window_length)
        self.stride = self.window_length if stride is None else _positive_int("stride", stride)
        if (
            not isinstance(padding, (tuple, list))
            or len(padding) != 2
            or any(isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 0 for p in padding)
        ):
            raise ValueError(f"padding: expected (left, right) non-negative integers, found {padding!r}")
        self.padding = (int(padding[0]), int(padding[1]))
        self.jitter = bool(jitter)
        self.skip_ik_failures = bool(skip_ik_failures)
        self.transforms = _check_transforms(transforms)
        _check_on_error(on_error)
        self.expected_sample_rate = expected_sample_rate
        self.max_open_files = max_open_files
        self.skipped: list[tuple[Path, str]] = []

        left, right = self.padding
        sessions: list[Path] = []
        seg_session, seg_start, seg_stop, seg_count = [], [], [], []
        for path in _as_paths(paths):
            try:
                with Emg2PoseSession(path, expected_sample_rate=expected_sample_rate) as session:
                    if on_error == "skip":
                        session.check_samples()
                    n = len(session)
                    runs = session.valid_runs() if self.skip_ik_failures else np.array([[0, n]], np.int64)
            except (SessionFormatError, FileNotFoundError) as err:
                _record_failure(path, err, on_error, self.skipped)
                continue
            segments = []
            for run_start, run_stop in runs:
                # Cores must leave room for the full context inside the session.
                start, stop = max(int(run_start), left), min(int(run_stop), n - right)
                if stop - start >= self.window_length:
                    segments.append((start, stop, (stop - start - self.window_length) // self.stride + 1))
            if not segments:
                reason = (
                    f"no run of {self.window_length} samples without IK failure"
                    if self.skip_ik_failures and n - left - right >= self.window_length
                    else f"{n} samples, shorter than one window ({left} + {self.window_length} + {right})"
                )
                warnings.warn(f"skipping emg2pose session {path}: {reason}", stacklevel=2)
                self.skipped.append((path, reason))
                continue
            for start, stop, count in segments:
                seg_session.append(len(sessions))
                seg_start.append(start)
                seg_stop.append(stop)
                seg_count.append(count)
            sessions.append(path)
        if not sessions:
            raise ValueError(f"no windows: every session was skipped ({len(self.skipped)} files; see warnings)")
        self.sessions = sessions
        self._seg_session = np.asarray(seg_session, np.int64)
        self._seg_start = np.asarray(seg_start, np.int64)
        self._seg_stop = np.asarray(seg_stop, np.int64)
        self._seg_end_index = np.cumsum(np.asarray(seg_count, np.int64))
        self._sessions_cache = self._make_cache()

    def _make_cache(self) -> _OpenSessions:
        rate = self.expected_sample_rate
        return _OpenSessions(
            self.sessions, lambda p: Emg2PoseSession(p, expected_sample_rate=rate), self.max_open_files
        )

    @property
    def needs_rng(self) -> bool:
        """Whether items are random (jitter or transforms): loaders skip the rng otherwise."""
        return self.jitter or bool(self.transforms)

    def __len__(self) -> int:
        return int(self._seg_end_index[-1])

    def window_bounds(self, index: int, rng: np.random.Generator | None = None) -> tuple[Path, int, int]:
        """(session path, first sample, stop sample) read for window ``index``, context included."""
        session_index, start, stop = self._bounds(_index(index, len(self)), rng)
        return self.sessions[session_index], start, stop

    def _bounds(self, index: int, rng: np.random.Generator | None) -> tuple[int, int, int]:
        segment = int(np.searchsorted(self._seg_end_index, index, side="right"))
        local = index - (int(self._seg_end_index[segment - 1]) if segment else 0)
        offset = int(self._seg_start[segment]) + local * self.stride
        leftover = int(self._seg_stop[segment]) - (offset + self.window_length)
        if self.jitter and leftover > 0:
            offset += int(rng.integers(0, min(self.stride, leftover)))
        left, right = self.padding
        return int(self._seg_session[segment]), offset - left, offset + self.window_length + right

    def __getitem__(self, index: int, rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
        index = _index(index, len(self))
        if rng is None and (self.jitter or self.transforms):
            rng = np.random.default_rng()
        session_index, start, stop = self._bounds(index, rng)
        data = self._sessions_cache.call(session_index, lambda s: s.read(start, stop))
        emg = data["emg"]
        for transform in self.transforms:
            emg = transform(emg, rng)
        return {"emg": emg, "joint_angles": data["joint_angles"], "no_ik_failure": data["no_ik_failure"]}


# -- MindRove --------------------------------------------------------------


class MindRoveWindows(_WindowedBase):
    """Short windows over MindRove (schema v1) sessions with interpolated targets.

    Windows of ``window_length`` EMG samples start every ``stride`` samples.
    Targets come from `MindRoveSession.labels_at` (linear interpolation to
    EMG time, masked by gaps, confidence and IK error):

    - ``mode="last"``: ``target`` is the label at the window's last sample,
      (21, 3) mm / (20,) rad / (45,); windows whose target is invalid are
      dropped, so ``valid`` is always True (kept for uniform batches).
    - ``mode="sequence"``: ``target`` (T, ...) per sample and ``valid`` (T,).

    Args:
      paths: session files.
      window_length, stride: in EMG samples (defaults: 100 ms / 50 ms at 500 Hz).
      target: "landmarks", "joint_angles" or "mano_theta".
      mode: "last" or "sequence".
      normalizer: callable emg (8, T) -> (8, T) applied to each window, e.g.
        a per-channel z-score with *training-set* statistics (statistics must
        travel with the model, never be recomputed per window).
      session_filter: callable (emg (8, N), sample_rate) -> (8, N) applied
        once to each whole session (e.g. the zero-phase filter of
        ``emgjax.data.signal``); filtering whole sessions avoids the edge
        effects of filtering 50-sample windows. Implies ``preload``.
      preload: keep each session's EMG in memory (4 min at 500 Hz is 4 MB;
        about 3x faster than reading 50-sample slices from HDF5). False
        reads windows lazily from the files.
      transforms: callables (emg, rng) -> emg after normalisation.
      max_gap_s, min_confidence, max_ik_error_mm: label validity rules.
      on_error: "raise" or "skip" for unreadable files or missing targets.

    Items: ``emg (8, T)`` float32, ``target``, ``valid``.
    """

    def __init__(
        self,
        paths: str | os.PathLike | Iterable[str | os.PathLike],
        window_length: int = 50,
        stride: int = 25,
        target: str = "landmarks",
        mode: str = "last",
        normalizer: Callable[[np.ndarray], np.ndarray] | None = None,
        *,
        session_filter: Callable[[np.ndarray, float], np.ndarray] | None = None,
        preload: bool = True,
        transforms: Sequence[Transform] = (),
        max_gap_s: float = 0.1,
        min_confidence: float = 0.5,
        max_ik_error_mm: float = 15.0,
        on_error: str = "raise",
        expected_sample_rate: float | None = None,
        max_open_files: int = 32,
    ):
        self.window_length = _positive_int("window_length", window_length)
        self.stride = _positive_int("stride", stride)
        if target not in LABEL_KINDS:
            raise ValueError(f"target: expected one of {LABEL_KINDS}, found {target!r}")
        if mode not in ("last", "sequence"):
            raise ValueError(f"mode: expected 'last' or 'sequence', found {mode!r}")
        if normalizer is not None and not callable(normalizer):
            raise ValueError(f"normalizer: expected a callable emg -> emg, found {normalizer!r}")
        _check_on_error(on_error)
        self.target, self.mode = target, mode
        self.normalizer = normalizer
        self.transforms = _check_transforms(transforms)
        self.max_gap_s = float(max_gap_s)
        self.expected_sample_rate = expected_sample_rate
        self.max_open_files = max_open_files
        self.skipped: list[tuple[Path, str]] = []

        sessions: list[Path] = []
        self._timestamps: list[np.ndarray] = []
        self._streams = []
        self._preloaded: list[np.ndarray | None] = []
        window_session, window_start, targets = [], [], []
        for path in _as_paths(paths):
            try:
                with MindRoveSession(path, expected_sample_rate=expected_sample_rate) as session:
                    n = len(session)
                    if n < self.window_length:
                        reason = f"{n} samples, shorter than one window ({self.window_length})"
                        warnings.warn(f"skipping MindRove session {path}: {reason}", stacklevel=2)
                        self.skipped.append((path, reason))
                        continue
                    if target not in session.label_kinds:
                        raise SessionFormatError(
                            path, f"no '{target}' labels to use as targets; present: {session.label_kinds}"
                        )
                    stream = session.label_stream(
                        target, max_gap_s=max_gap_s, min_confidence=min_confidence, max_ik_error_mm=max_ik_error_mm
                    )
                    timestamps = session.timestamps
                    emg = None
                    if preload or session_filter is not None:
                        emg = session.read_emg()
                    if session_filter is not None:
                        emg = np.asarray(session_filter(emg, session.sample_rate), np.float32)
                        if emg.shape != (session.num_channels, n):
                            raise ValueError(
                                f"session_filter must return shape ({session.num_channels}, {n}) for {path}, "
                                f"found {emg.shape}"
                            )
            except (SessionFormatError, FileNotFoundError) as err:
                _record_failure(path, err, on_error, self.skipped)
                continue
            starts = np.arange(0, n - self.window_length + 1, self.stride, dtype=np.int64)
            if mode == "last":
                values, valid = interpolate_labels(
                    stream.timestamps,
                    stream.values,
                    timestamps[starts + self.window_length - 1],
                    frame_ok=stream.frame_ok,
                    max_gap_s=self.max_gap_s,
                )
                starts, values = starts[valid], values[valid]
                if starts.size == 0:
                    reason = f"no window with a valid '{target}' target"
                    warnings.warn(f"skipping MindRove session {path}: {reason}", stacklevel=2)
                    self.skipped.append((path, reason))
                    continue
                targets.append(values)
            window_session.append(np.full(starts.shape, len(sessions), np.int64))
            window_start.append(starts)
            sessions.append(path)
            self._timestamps.append(timestamps)
            self._streams.append(stream)
            self._preloaded.append(emg)
        if not sessions:
            raise ValueError(f"no windows: every session was skipped ({len(self.skipped)} files; see warnings)")
        self.sessions = sessions
        self._window_session = np.concatenate(window_session)
        self._window_start = np.concatenate(window_start)
        self._targets = np.concatenate(targets) if mode == "last" else None
        self._sessions_cache = self._make_cache()

    def _make_cache(self) -> _OpenSessions:
        rate = self.expected_sample_rate
        return _OpenSessions(
            self.sessions, lambda p: MindRoveSession(p, expected_sample_rate=rate), self.max_open_files
        )

    @property
    def needs_rng(self) -> bool:
        """Whether items are random (transforms): loaders skip the rng otherwise."""
        return bool(self.transforms)

    def __len__(self) -> int:
        return int(self._window_start.shape[0])

    def window_bounds(self, index: int) -> tuple[Path, int, int]:
        """(session path, first sample, stop sample) of window ``index``."""
        index = _index(index, len(self))
        start = int(self._window_start[index])
        return self.sessions[int(self._window_session[index])], start, start + self.window_length

    def __getitem__(self, index: int, rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
        index = _index(index, len(self))
        session_index = int(self._window_session[index])
        start = int(self._window_start[index])
        stop = start + self.window_length
        preloaded = self._preloaded[session_index]
        if preloaded is not None:
            emg = preloaded[:, start:stop].copy()
        else:
            emg = self._sessions_cache.call(session_index, lambda s: s.read_emg(start, stop))
        if self.normalizer is not None:
            emg = np.asarray(self.normalizer(emg), np.float32)
        if self.transforms:
            rng = np.random.default_rng() if rng is None else rng
            for transform in self.transforms:
                emg = transform(emg, rng)
        if self.mode == "last":
            return {"emg": emg, "target": self._targets[index], "valid": np.bool_(True)}
        stream = self._streams[session_index]
        target, valid = interpolate_labels(
            stream.timestamps,
            stream.values,
            self._timestamps[session_index][start:stop],
            frame_ok=stream.frame_ok,
            max_gap_s=self.max_gap_s,
        )
        return {"emg": emg, "target": target, "valid": valid}


# -- splits ----------------------------------------------------------------


def check_disjoint_splits(splits: Mapping[str, Sequence[str | os.PathLike]]) -> None:
    """Raise ValueError if a session file appears in more than one split."""
    owner: dict[Path, str] = {}
    for name, paths in splits.items():
        for path in paths:
            key = Path(path)
            if key in owner and owner[key] != name:
                raise ValueError(
                    f"session {key} is in both split '{owner[key]}' and split '{name}': "
                    "splits must be disjoint by session"
                )
            owner[key] = name


def split_sessions(
    paths: Iterable[str | os.PathLike],
    val_fraction: float,
    test_fraction: float,
    seed: int,
    group_by: Callable[[Path], Any] | None = None,
) -> dict[str, list[Path]]:
    """Split session files (never windows) into train/val/test.

    Sessions are shuffled with ``seed`` (independently of the input order)
    and a non-zero fraction always gets at least one session.
    ``group_by(path) -> key`` keeps files with the same key together (e.g.
    all stages of one emg2pose recording session, or all sessions of one
    user for a held-out-user split).

    Returns:
      {"train": [...], "val": [...], "test": [...]} of Paths.
    """
    paths = [Path(p) for p in paths]
    if len(set(paths)) != len(paths):
        raise ValueError("paths: expected each session file once, found duplicates")
    for name, fraction in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not (isinstance(fraction, (int, float)) and 0 <= fraction < 1):
            raise ValueError(f"{name}: expected a number in [0, 1), found {fraction!r}")
    if val_fraction + test_fraction >= 1:
        raise ValueError(
            f"val_fraction + test_fraction must be < 1 to leave training data, found {val_fraction + test_fraction}"
        )
    groups: dict[str, list[Path]] = collections.defaultdict(list)
    for path in paths:
        groups[str(path if group_by is None else group_by(path))].append(path)
    keys = sorted(groups)
    n = len(keys)

    def count(fraction: float) -> int:
        return 0 if fraction == 0 else max(1, round(fraction * n))

    n_val, n_test = count(val_fraction), count(test_fraction)
    if n_val + n_test >= n:
        raise ValueError(
            f"cannot split {n} session groups with val_fraction={val_fraction}, test_fraction={test_fraction}: "
            f"that leaves {n - n_val - n_test} for training"
        )
    order = np.random.default_rng(seed).permutation(n)
    shuffled = [keys[i] for i in order]
    chosen = {"test": shuffled[:n_test], "val": shuffled[n_test : n_test + n_val], "train": shuffled[n_test + n_val :]}
    return {name: sorted(p for key in chosen[name] for p in groups[key]) for name in SPLIT_NAMES}


def load_splits(
    source: str | os.PathLike | Mapping[str, Sequence[str | os.PathLike]],
    data_dir: str | os.PathLike | None = None,
) -> dict[str, list[Path]]:
    """Read session splits from explicit lists, a JSON file, or an emg2pose CSV.

    Args:
      source: a mapping {split: [paths]}; a ``.json`` file holding such a
        mapping; or an emg2pose-style metadata CSV with columns filename,
        user, session, stage, side, split (filename without suffix gets
        ``.hdf5``).
      data_dir: folder that relative paths are relative to (default: the
        file's folder; the working directory for a mapping).
    Returns:
      {split: [Path, ...]}, checked to be disjoint by session.
    """
    if isinstance(source, Mapping):
        base = Path(data_dir) if data_dir is not None else Path()
        raw = {str(k): list(v) for k, v in source.items()}
    else:
        source = Path(source)
        if not source.exists():
            raise FileNotFoundError(f"{source}: split file does not exist")
        base = Path(data_dir) if data_dir is not None else source.parent
        if source.suffix.lower() == ".json":
            try:
                raw = json.loads(source.read_text())
            except (ValueError, UnicodeDecodeError) as err:
                raise ValueError(f"{source}: expected JSON {{split: [paths]}}: {err}") from None
            if not isinstance(raw, dict) or not all(isinstance(v, list) for v in raw.values()):
                raise ValueError(f"{source}: expected a JSON object mapping split names to lists of paths")
        else:
            raw = collections.defaultdict(list)
            rows = read_metadata(source, required=("filename", "user", "session", "stage", "side", "split"))
            for line, row in enumerate(rows, start=2):
                if not row["split"]:
                    raise ValueError(f"{source}:{line}: empty filename or split")
                name = row["filename"] if Path(row["filename"]).suffix else row["filename"] + ".hdf5"
                raw[row["split"]].append(name)
            raw = dict(raw)
    unknown = sorted(set(raw) - set(SPLIT_NAMES))
    if unknown:
        raise ValueError(f"splits: expected names among {list(SPLIT_NAMES)}, found {unknown}")
    splits = {name: [p if Path(p).is_absolute() else base / p for p in map(Path, paths)] for name, paths in raw.items()}
    for name, paths in splits.items():
        if len(set(paths)) != len(paths):
            raise ValueError(f"split '{name}' lists a session twice")
    check_disjoint_splits(splits)
    return splits
