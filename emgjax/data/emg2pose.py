"""emg2pose HDF5 sessions: lazy, validating reader and a writer for tests/synthetic data.

File layout (one hand, one ~1 minute "stage" per file, as released by emg2pose):

- group ``emg2pose`` with attrs ``filename, session, stage, user, side
  ('left'|'right'), sample_rate (2000.0), num_channels (16), start, end``
  (start/end in unix seconds);
- dataset ``emg2pose/timeseries`` of shape (N,), a compound dtype with fields
  ``time`` <f8 (seconds), ``joint_angles`` <f8 (20,) (radians, emg2pose joint
  order) and ``emg`` <f4 (16,).

The full dataset is 431 GiB, so `Emg2PoseSession` never loads a whole file:
opening reads the attributes and the first 4096 timestamps (to check the
clock); `Emg2PoseSession.read` reads and checks only the requested slice;
the IK-failure mask and the full time column are computed on first use, in
blocks. (The records interleave time, angles and EMG, so any column scan
reads the whole file from disk.)

Public arrays are channel-first: ``emg (C, T)``, ``joint_angles (20, T)``.

Next to the files, emg2pose ships ``metadata.csv``: one row per file with
``filename`` (the file's name without ``.hdf5``), ``user``, ``session``,
``stage``, ``side``, ``moving_hand``, ``held_out_user``, ``held_out_stage``,
``split`` (train / val / test) and ``generalization`` (user, stage or
user_stage: what a held-out row tests); `read_metadata` reads it.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

__all__ = [
    "EMG2POSE_GROUP",
    "TIMESERIES_DATASET",
    "NUM_CHANNELS",
    "NUM_JOINTS",
    "SAMPLE_RATE",
    "JOINT_NAMES",
    "SessionFormatError",
    "timeseries_dtype",
    "ik_failure_free",
    "contiguous_runs",
    "write_emg2pose_session",
    "Emg2PoseSession",
    "METADATA_FILE",
    "METADATA_COLUMNS",
    "read_metadata",
]

EMG2POSE_GROUP = "emg2pose"
TIMESERIES_DATASET = "timeseries"
NUM_CHANNELS = 16
NUM_JOINTS = 20
SAMPLE_RATE = 2000.0

# emg2pose joint order: thumb (CMC FE/AA, MCP FE, IP FE), then for each of
# index, middle, ring, pinky: MCP AA, MCP FE, PIP FE, DIP FE.
JOINT_NAMES = (
    "THUMB_CMC_FE",
    "THUMB_CMC_AA",
    "THUMB_MCP_FE",
    "THUMB_IP_FE",
    "INDEX_MCP_AA",
    "INDEX_MCP_FE",
    "INDEX_PIP_FE",
    "INDEX_DIP_FE",
    "MIDDLE_MCP_AA",
    "MIDDLE_MCP_FE",
    "MIDDLE_PIP_FE",
    "MIDDLE_DIP_FE",
    "RING_MCP_AA",
    "RING_MCP_FE",
    "RING_PIP_FE",
    "RING_DIP_FE",
    "PINKY_MCP_AA",
    "PINKY_MCP_FE",
    "PINKY_PIP_FE",
    "PINKY_DIP_FE",
)

# emg2pose's metadata.csv and its columns, in the order of emg2pose's README.
METADATA_FILE = "metadata.csv"
METADATA_COLUMNS = (
    "filename",
    "user",
    "session",
    "stage",
    "side",
    "moving_hand",
    "held_out_user",
    "held_out_stage",
    "split",
    "generalization",
)
# The columns a metadata file must have to say which user and stage each file holds.
_METADATA_REQUIRED = ("filename", "user", "stage")

# Relative tolerance between the sample_rate attribute and the rate implied by
# the median timestamp step; the median ignores occasional gaps.
_RATE_TOLERANCE = 0.05
# np.isclose's default absolute tolerance (see ik_failure_free).
_ISCLOSE_ATOL = 1e-8
# Samples whose clock is checked on open (2 s at 2 kHz).
_OPEN_CHECK_SAMPLES = 4096
# Rows per block when scanning a column of a long session (bounded memory).
_SCAN_BLOCK = 1 << 16


class SessionFormatError(ValueError):
    """A session file is unreadable or does not follow the expected layout.

    Attributes:
      path: the offending file.
    """

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def timeseries_dtype(num_channels: int = NUM_CHANNELS) -> np.dtype:
    """The compound dtype of ``emg2pose/timeseries``."""
    return np.dtype(
        [
            ("time", "<f8"),
            ("joint_angles", "<f8", (NUM_JOINTS,)),
            ("emg", "<f4", (num_channels,)),
        ]
    )


def ik_failure_free(joint_angles: np.ndarray, axis: int = -1) -> np.ndarray:
    """IK-failure mask: True where not all 20 angles are (np.isclose) zero.

    Args:
      joint_angles: (..., 20, ...) angles in radians; ``axis`` is the joint axis.
    Returns:
      bool mask with the joint axis removed.
    """
    # np.isclose(x, 0) with its defaults is |x| <= atol + rtol * 0 = 1e-8; the
    # direct comparison gives the same mask (NaN included) at half the cost.
    return ~np.all(np.abs(joint_angles) <= _ISCLOSE_ATOL, axis=axis)


def contiguous_runs(mask: np.ndarray) -> np.ndarray:
    """Half-open [start, stop) runs of True in a 1-D bool mask.

    Returns:
      (R, 2) int64 array of runs in increasing order.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 1:
        raise ValueError(f"contiguous_runs expects a 1-D mask, found shape {mask.shape}")
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return edges.reshape(-1, 2).astype(np.int64)


def _as_array(name: str, value: Any, dtype, shape_tail: tuple[int, ...]) -> np.ndarray:
    array = np.asarray(value)
    expected_ndim = 1 + len(shape_tail)
    if array.ndim != expected_ndim or tuple(array.shape[1:]) != shape_tail:
        expected = "(N" + "".join(f", {d}" for d in shape_tail) + ")"
        raise ValueError(f"{name}: expected shape {expected}, found {array.shape}")
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(f"{name}: expected real numbers, found dtype {array.dtype}")
    array = array.astype(dtype, copy=False)
    if not np.all(np.isfinite(array)):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise ValueError(f"{name}: expected finite values, found {bad} NaN/inf entries")
    return array


def _positive_rate(sample_rate: Any) -> float:
    """sample_rate as a float, or a ValueError saying what was found."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float, np.integer, np.floating)):
        raise ValueError(f"sample_rate: expected a positive finite number, found {sample_rate!r}")
    if not (math.isfinite(sample_rate) and sample_rate > 0):
        raise ValueError(f"sample_rate: expected a positive finite number, found {sample_rate!r}")
    return float(sample_rate)


def _check_strictly_increasing(name: str, times: np.ndarray) -> None:
    if times.size > 1:
        steps = np.diff(times)
        if not np.all(steps > 0):
            first = int(np.argmax(steps <= 0))
            raise ValueError(
                f"{name}: expected strictly increasing timestamps, found "
                f"t[{first + 1}]={times[first + 1]!r} <= t[{first}]={times[first]!r}"
            )


def _check_rate(name: str, times: np.ndarray, sample_rate: float) -> None:
    """Compare the attr rate with the median timestamp step (robust to gaps)."""
    if times.size < 2:
        return
    implied = 1.0 / float(np.median(np.diff(times)))
    if abs(implied - sample_rate) > _RATE_TOLERANCE * sample_rate:
        raise ValueError(
            f"{name}: timestamps imply {implied:.4g} Hz but sample_rate is "
            f"{sample_rate:.4g} Hz (expected within {_RATE_TOLERANCE:.0%})"
        )


def write_emg2pose_session(
    path: str | os.PathLike,
    *,
    emg: np.ndarray,
    joint_angles: np.ndarray,
    time: np.ndarray,
    user: str = "synthetic",
    session: str = "session0",
    stage: str = "stage0",
    side: str = "right",
    sample_rate: float = SAMPLE_RATE,
) -> Path:
    """Write one emg2pose-format session (overwrites ``path``).

    Args:
      path: destination ``.hdf5`` file.
      emg: (N, 16) EMG, stored as float32.
      joint_angles: (N, 20) radians, emg2pose joint order (all-zero rows mark IK
        failures, as in the released data).
      time: (N,) seconds (float64), strictly increasing, consistent with
        ``sample_rate`` within 5 %.
      user, session, stage: identifiers stored as attrs.
      side: 'left' or 'right'.
      sample_rate: Hz (emg2pose: 2000.0).
    Returns:
      the path written.
    Raises:
      ValueError: on wrong shapes, non-finite values, bad timestamps or attrs.
    """
    path = Path(path)
    emg = _as_array("emg", emg, np.float32, (NUM_CHANNELS,))
    joint_angles = _as_array("joint_angles", joint_angles, np.float64, (NUM_JOINTS,))
    time = _as_array("time", time, np.float64, ())
    n = emg.shape[0]
    if joint_angles.shape[0] != n or time.shape[0] != n:
        raise ValueError(
            "emg, joint_angles and time must have the same number of samples; found "
            f"{n}, {joint_angles.shape[0]}, {time.shape[0]}"
        )
    if side not in ("left", "right"):
        raise ValueError(f"side: expected 'left' or 'right', found {side!r}")
    sample_rate = _positive_rate(sample_rate)
    _check_strictly_increasing("time", time)
    _check_rate("time", time, sample_rate)

    records = np.empty(n, dtype=timeseries_dtype())
    records["time"] = time
    records["joint_angles"] = joint_angles
    records["emg"] = emg
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        group = f.create_group(EMG2POSE_GROUP)
        group.create_dataset(TIMESERIES_DATASET, data=records)
        group.attrs["filename"] = path.stem
        group.attrs["session"] = session
        group.attrs["stage"] = stage
        group.attrs["user"] = user
        group.attrs["side"] = side
        group.attrs["sample_rate"] = float(sample_rate)
        group.attrs["num_channels"] = NUM_CHANNELS
        group.attrs["start"] = float(time[0]) if n else 0.0
        group.attrs["end"] = float(time[-1]) if n else 0.0
    return path


def _attr_to_python(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


class Emg2PoseSession:
    """Lazy, validating reader of one emg2pose HDF5 session.

    Opening validates the layout (group, compound fields and their shapes,
    sample rate, strictly increasing time) and raises `SessionFormatError`
    naming the file otherwise; no EMG is read until `read`.

    Usage::

        with Emg2PoseSession(path) as session:
            window = session.read(0, 11_790)   # emg (16, T), joint_angles (20, T)

    Args:
      path: the ``.hdf5`` file.
      expected_sample_rate: required ``sample_rate`` attr (Hz); None accepts any.
      expected_num_channels: required EMG width; None accepts any.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        expected_sample_rate: float | None = SAMPLE_RATE,
        expected_num_channels: int | None = NUM_CHANNELS,
    ):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: emg2pose session file does not exist")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as err:
            raise SessionFormatError(
                self.path, f"not a readable HDF5 file (expected an emg2pose session): {err}"
            ) from None
        try:
            self._validate(expected_sample_rate, expected_num_channels)
        except BaseException:
            self._file.close()
            raise
        self._no_ik_failure: np.ndarray | None = None

    def _fail(self, problem: str) -> SessionFormatError:
        return SessionFormatError(self.path, problem)

    def _validate(self, expected_sample_rate, expected_num_channels) -> None:
        group = self._file.get(EMG2POSE_GROUP)
        if not isinstance(group, h5py.Group):
            raise self._fail(f"expected a group '{EMG2POSE_GROUP}', found top-level keys {sorted(self._file.keys())}")
        dataset = group.get(TIMESERIES_DATASET)
        if not isinstance(dataset, h5py.Dataset):
            raise self._fail(
                f"expected a dataset '{EMG2POSE_GROUP}/{TIMESERIES_DATASET}', found keys {sorted(group.keys())}"
            )
        if dataset.ndim != 1:
            raise self._fail(f"expected '{TIMESERIES_DATASET}' to be 1-D, found shape {dataset.shape}")
        fields = dataset.dtype.fields
        if fields is None:
            raise self._fail(
                f"expected a compound '{TIMESERIES_DATASET}' with fields time, joint_angles, emg; "
                f"found dtype {dataset.dtype}"
            )
        missing = [name for name in ("time", "joint_angles", "emg") if name not in fields]
        if missing:
            raise self._fail(f"'{TIMESERIES_DATASET}' lacks fields {missing}; found {list(fields)}")
        for name, field_dtype in (
            ("time", fields["time"][0]),
            ("joint_angles", fields["joint_angles"][0]),
            ("emg", fields["emg"][0]),
        ):
            if field_dtype.base.kind != "f":
                raise self._fail(f"field '{name}': expected floating point, found {field_dtype}")
        if fields["time"][0].shape != ():
            raise self._fail(f"field 'time': expected a scalar per sample, found shape {fields['time'][0].shape}")
        if fields["joint_angles"][0].shape != (NUM_JOINTS,):
            raise self._fail(
                f"field 'joint_angles': expected shape ({NUM_JOINTS},), found {fields['joint_angles'][0].shape}"
            )
        emg_shape = fields["emg"][0].shape
        if len(emg_shape) != 1:
            raise self._fail(f"field 'emg': expected shape (channels,), found {emg_shape}")
        if expected_num_channels is not None and emg_shape[0] != expected_num_channels:
            raise self._fail(f"field 'emg': expected {expected_num_channels} channels, found {emg_shape[0]}")
        attrs = group.attrs
        if "num_channels" in attrs and int(attrs["num_channels"]) != emg_shape[0]:
            raise self._fail(
                f"attr num_channels={int(attrs['num_channels'])} does not match the emg field width {emg_shape[0]}"
            )
        if "sample_rate" not in attrs:
            raise self._fail("missing group attr 'sample_rate'")
        sample_rate = float(attrs["sample_rate"])
        if not (math.isfinite(sample_rate) and sample_rate > 0):
            raise self._fail(f"sample_rate: expected a positive number, found {sample_rate!r}")
        if expected_sample_rate is not None and not math.isclose(sample_rate, expected_sample_rate, rel_tol=1e-9):
            raise self._fail(f"expected sample_rate {expected_sample_rate} Hz, found {sample_rate} Hz")

        self._dataset = dataset
        self._sample_rate = sample_rate
        self._num_channels = int(emg_shape[0])
        # The records interleave time with EMG and angles, so reading the time
        # column means reading the whole file: on open, check the clock on the
        # first samples only; `read` checks the clock of every slice it reads
        # and `time` checks the whole column.
        self._time: np.ndarray | None = None
        self._check_time(0, self._read_time(0, min(len(dataset), _OPEN_CHECK_SAMPLES)), check_rate=True)

    # -- properties -------------------------------------------------------

    @property
    def metadata(self) -> dict[str, Any]:
        """Group attrs as plain Python values (filename, user, side, ...)."""
        return {key: _attr_to_python(value) for key, value in self._file[EMG2POSE_GROUP].attrs.items()}

    @property
    def sample_rate(self) -> float:
        return self._sample_rate

    @property
    def num_channels(self) -> int:
        return self._num_channels

    @property
    def time(self) -> np.ndarray:
        """(N,) float64 seconds (reads the whole file once, in blocks, and checks it)."""
        if self._time is None:
            self._check_open()
            n = len(self)
            time = np.empty(n, np.float64)
            for begin in range(0, n, _SCAN_BLOCK):
                # Overlap blocks by one sample so the order check spans block edges.
                first = max(begin - 1, 0)
                block = self._read_time(first, min(begin + _SCAN_BLOCK, n))
                self._check_time(first, block)
                time[first : first + block.size] = block
            self._time = time
        return self._time

    def _read_time(self, start: int, stop: int) -> np.ndarray:
        try:
            return np.asarray(self._dataset.fields("time")[start:stop], dtype=np.float64)
        except (OSError, RuntimeError) as err:
            raise self._fail(f"cannot read time [{start}, {stop}) (truncated or corrupt?): {err}") from None

    def _check_time(self, start: int, time: np.ndarray, check_rate: bool = False) -> None:
        """Finite, strictly increasing (and, on open, consistent with sample_rate)."""
        if not np.all(np.isfinite(time)):
            bad = start + int(np.argmax(~np.isfinite(time)))
            raise self._fail(f"time: expected finite values, found NaN/inf at sample {bad}")
        if time.size > 1:
            steps = np.diff(time)
            if not np.all(steps > 0):
                i = int(np.argmax(steps <= 0))
                raise self._fail(
                    f"time: expected strictly increasing timestamps, found t[{start + i + 1}]={time[i + 1]!r} "
                    f"<= t[{start + i}]={time[i]!r}"
                )
        if check_rate:
            try:
                _check_rate("time", time, self._sample_rate)
            except ValueError as err:
                raise self._fail(str(err)) from None

    def __len__(self) -> int:
        return int(self._dataset.shape[0])

    # -- reading ----------------------------------------------------------

    def _check_open(self) -> None:
        if not self._file.id.valid:
            raise ValueError(f"{self.path}: session is closed")

    def _check_range(self, start: int, stop: int) -> tuple[int, int]:
        self._check_open()
        n = len(self)
        try:
            start, stop = int(start), int(stop)
        except (TypeError, ValueError):
            raise ValueError(f"start/stop: expected integers, found {start!r}, {stop!r}") from None
        if not 0 <= start <= stop <= n:
            raise ValueError(f"{self.path}: expected 0 <= start <= stop <= {n}, found start={start}, stop={stop}")
        return start, stop

    def read(self, start: int = 0, stop: int | None = None) -> dict[str, np.ndarray]:
        """Read samples [start, stop).

        Returns:
          dict with ``emg`` (C, T) float32, ``joint_angles`` (20, T) float32,
          ``no_ik_failure`` (T,) bool and ``time`` (T,) float64.
        Raises:
          SessionFormatError: unreadable (truncated) data or NaN/inf values.
        """
        start, stop = self._check_range(start, len(self) if stop is None else stop)
        records = np.empty(stop - start, self._dataset.dtype)
        try:
            if stop > start:
                self._dataset.read_direct(records, np.s_[start:stop])
        except (OSError, RuntimeError) as err:
            raise self._fail(f"cannot read samples [{start}, {stop}) (truncated or corrupt?): {err}") from None
        emg = np.ascontiguousarray(records["emg"].T, dtype=np.float32)
        angles64 = records["joint_angles"]
        self._check_time(start, records["time"])
        if not np.all(np.isfinite(emg)):
            raise self._fail(f"emg has NaN/inf values in samples [{start}, {stop})")
        if not np.all(np.isfinite(angles64)):
            raise self._fail(f"joint_angles has NaN/inf values in samples [{start}, {stop})")
        return {
            "emg": emg,
            "joint_angles": np.ascontiguousarray(angles64.T, dtype=np.float32),
            # The mask uses the stored float64 angles, as emg2pose does.
            "no_ik_failure": ik_failure_free(angles64, axis=-1),
            "time": np.array(records["time"], dtype=np.float64),
        }

    @property
    def no_ik_failure(self) -> np.ndarray:
        """(N,) bool IK-failure mask of the whole session (computed once, in blocks)."""
        if self._no_ik_failure is None:
            self._check_open()
            n = len(self)
            mask = np.empty(n, dtype=bool)
            column = self._dataset.fields("joint_angles")
            for begin in range(0, n, _SCAN_BLOCK):
                end = min(begin + _SCAN_BLOCK, n)
                try:
                    mask[begin:end] = ik_failure_free(column[begin:end], axis=-1)
                except (OSError, RuntimeError) as err:
                    raise self._fail(
                        f"cannot read joint_angles [{begin}, {end}) (truncated or corrupt?): {err}"
                    ) from None
            self._no_ik_failure = mask
        return self._no_ik_failure

    def check_samples(self) -> None:
        """Check every sample of the session, reading it once in blocks of ``_SCAN_BLOCK`` records.

        Checks: time finite and strictly increasing (across block edges too),
        EMG and joint angles finite. Raises `SessionFormatError` naming the
        first bad sample. Memory stays one block (~15 MB) whatever the file
        size; the IK-failure mask is computed on the way (cached for
        `no_ik_failure`). `Emg2PoseWindows(..., on_error="skip")` calls it so
        that a bad session is skipped when the dataset is built, never in the
        middle of an epoch.
        """
        self._check_open()
        n = len(self)
        mask = np.empty(n, dtype=bool)
        last_time = None
        for begin in range(0, n, _SCAN_BLOCK):
            end = min(begin + _SCAN_BLOCK, n)
            records = np.empty(end - begin, self._dataset.dtype)
            try:
                self._dataset.read_direct(records, np.s_[begin:end])
            except (OSError, RuntimeError) as err:
                raise self._fail(f"cannot read samples [{begin}, {end}) (truncated or corrupt?): {err}") from None
            time = np.asarray(records["time"], dtype=np.float64)
            if last_time is None:
                self._check_time(begin, time)
            else:  # include the previous block's last sample so the order check spans the edge
                self._check_time(begin - 1, np.concatenate(([last_time], time)))
            last_time = time[-1]
            for field in ("emg", "joint_angles"):
                finite = np.isfinite(records[field]).all(axis=-1)
                if not finite.all():
                    bad = begin + int(np.argmin(finite))
                    raise self._fail(f"{field}: expected finite values, found NaN/inf at sample {bad}")
            mask[begin:end] = ik_failure_free(records["joint_angles"], axis=-1)
        self._no_ik_failure = mask

    def valid_runs(self) -> np.ndarray:
        """(R, 2) int64 half-open [start, stop) runs of samples without IK failure."""
        return contiguous_runs(self.no_ik_failure)

    # -- lifetime ---------------------------------------------------------

    def close(self) -> None:
        file = getattr(self, "_file", None)
        if file is not None and file.id.valid:
            file.close()

    def __enter__(self) -> Emg2PoseSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Emg2PoseSession({str(self.path)!r}, samples={len(self) if self._file.id.valid else '?'})"


def read_metadata(path: str | os.PathLike, required: Sequence[str] = _METADATA_REQUIRED) -> list[dict[str, str]]:
    """The rows of an emg2pose ``metadata.csv`` as dicts of strings, in file order.

    Columns ``required`` (default ``filename``, ``user`` and ``stage``) must be present (the rest of
    ``METADATA_COLUMNS`` and any others are kept as found); every row needs a
    filename, and no filename may repeat.

    Raises:
      FileNotFoundError: no such file.
      ValueError: missing columns, an empty or repeated filename, or a file that is not CSV text.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: expected an emg2pose metadata.csv, found no such file")
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in required if c not in (reader.fieldnames or ())]
            if missing:
                raise ValueError(f"{path}: expected emg2pose metadata columns {list(required)}, missing {missing}")
            rows = []
            seen: set[str] = set()
            for line, row in enumerate(reader, start=2):
                name = (row.get("filename") or "").strip()
                if not name:
                    raise ValueError(f"{path}:{line}: expected a filename, found an empty one")
                if name in seen:
                    raise ValueError(f"{path}:{line}: expected each filename once, found {name!r} again")
                seen.add(name)
                rows.append({str(k): (v or "").strip() for k, v in row.items() if k is not None})
    except (UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"{path}: expected an emg2pose metadata CSV, found unreadable text ({err})") from None
    return rows
