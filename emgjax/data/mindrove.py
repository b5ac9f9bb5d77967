"""MindRove sessions: emgjax's versioned HDF5 schema, reader, writer, importer.

Schema ``mindrove-session`` version 1
-------------------------------------
Root attrs:

==================  ==========================================================
``emgjax_schema``   ``"mindrove-session"`` (identifies the file)
``schema_version``  ``1`` (readers refuse newer versions)
``sample_rate``     EMG rate in Hz (MindRove WiFi board: 500.0)
``emg_channels``    EMG channel count C (optional; the width of ``emg/raw``,
                    8 when absent: the MindRove armband)
``imu_sample_rate`` IMU rate in Hz (optional, with the ``imu`` stream)
``board``           JSON object: ``name``, ``board_id``, ``emg_channel_rows``,
                    ``gain``, ``sdk_version`` where known (free-form extras ok)
``hand``            ``"left"`` or ``"right"``
``subject_id``, ``session_id``, ``date`` (ISO 8601)
==================  ==========================================================

Streams. Every stream has its *own* strictly increasing float64 timestamps in
seconds on one shared clock, so EMG, camera and IMU need not be synchronous:

==============================  ===========  ===============================
dataset                         shape        meaning
==============================  ===========  ===============================
``emg/raw``                     (N, C) f4    EMG in µV as the SDK delivers it
                                             (C = attr ``emg_channels``,
                                             8 on the MindRove armband)
``emg/timestamps``              (N,) f8      seconds
``imu/data`` (optional)         (K, 6) f4    accel xyz, gyro xyz (the
                                             board's units: g, deg/s)
``imu/timestamps``              (K,) f8
``labels/landmarks``            (M, 21, 3)   **millimetres**, MediaPipe order:
                                             wrist; thumb CMC, MCP, IP, TIP;
                                             index MCP, PIP, DIP, TIP; middle;
                                             ring; pinky
``labels/landmark_confidence``  (M,) f4      detector score in [0, 1]
``labels/landmark_timestamps``  (M,) f8
``labels/joint_angles``         (M2, 20) f4  radians, emg2pose joint order
``labels/joint_angle_timestamps`` (M2,) f8
``labels/mano_theta`` (opt.)    (M3, 45) f4  MANO pose, 15 joints x axis-angle
``labels/mano_theta_timestamps``  (M3,) f8
``labels/ik_error_mm`` (opt.)   (M4,) f4     IK fit error per fit frame, mm
``labels/ik_error_timestamps``  (M4,) f8
``labels/gestures/*`` (opt.)    any          gesture annotations, kept as given
``labels/image_landmarks`` (o.) (M5, 21, 3)  MediaPipe image landmarks: x, y
                                             in [0, 1] of the frame width and
                                             height, z relative depth
``labels/handedness``           (M5,) f4     +1 right, -1 left, 0 no hand
``labels/hand_found``           (M5,) f4     1 when a hand was detected, else 0
``labels/image_landmark_timestamps`` (M5,)   seconds (the camera frames)
``prompts/gesture`` (optional)  (P,) f4      index into attr ``prompt_gestures``
``prompts/start_times``         (P,) f8      when the prompt was shown
``prompts/durations``           (P,) f4      seconds from ``start_times``
``camera/frame_index`` (opt.)   (V,) f4      frame number in the session's video
``camera/frame_timestamps``     (V,) f8      every camera frame received
==============================  ===========  ===============================

A recorder labelling camera frames keeps frames without a confident hand:
their ``labels/landmarks`` rows are zeros with confidence 0 (the format holds
no NaN), ``labels/hand_found`` says which they are, and `MindRoveSession`'s
confidence rule masks them.

Every stream dataset is chunked and resizable along its first axis
(``maxshape=(None, ...)``) so a recorder can append as data arrives and flush
often (`MindRoveSessionWriter`); a crash then loses only the unflushed tail
instead of the whole session, which the original project's buffer-then-write
recorder did. Label streams are optional: a session may carry any subset.

Labels are brought to EMG time by `MindRoveSession.labels_at` (linear
interpolation with validity masks). The importer `import_original_recording`
converts the original project's files (metres, shared pose clock) into this
schema.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from emgjax.data.emg2pose import SessionFormatError, _attr_to_python, _check_rate, _positive_rate

__all__ = [
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "NUM_CHANNELS",
    "SAMPLE_RATE",
    "NUM_LANDMARKS",
    "LANDMARK_NAMES",
    "LABEL_KINDS",
    "StreamSpec",
    "STREAMS",
    "MindRoveSessionWriter",
    "write_mindrove_session",
    "MindRoveSession",
    "LabelStream",
    "interpolate_labels",
    "import_original_recording",
]

logger = logging.getLogger(__name__)

SCHEMA_NAME = "mindrove-session"
SCHEMA_VERSION = 1
NUM_CHANNELS = 8
SAMPLE_RATE = 500.0
NUM_LANDMARKS = 21
LANDMARK_NAMES = (
    "WRIST",
    "THUMB_CMC",
    "THUMB_MCP",
    "THUMB_IP",
    "THUMB_TIP",
    "INDEX_MCP",
    "INDEX_PIP",
    "INDEX_DIP",
    "INDEX_TIP",
    "MIDDLE_MCP",
    "MIDDLE_PIP",
    "MIDDLE_DIP",
    "MIDDLE_TIP",
    "RING_MCP",
    "RING_PIP",
    "RING_DIP",
    "RING_TIP",
    "PINKY_MCP",
    "PINKY_PIP",
    "PINKY_DIP",
    "PINKY_TIP",
)
LABEL_KINDS = ("landmarks", "joint_angles", "mano_theta")

_RATE_TOLERANCE = 0.05


@dataclasses.dataclass(frozen=True)
class StreamSpec:
    """Where one timestamped stream lives in the file.

    Attributes:
      values: dataset path of the (rows, *shape) values.
      shape: per-row shape.
      timestamps: dataset path of the (rows,) float64 timestamps.
      extras: per-row scalar companions {name: dataset path} (same rows).
      chunk_rows: rows per HDF5 chunk (about 1-2 s of data).
    """

    values: str
    shape: tuple[int, ...]
    timestamps: str
    extras: tuple[tuple[str, str], ...] = ()
    chunk_rows: int = 256


STREAMS: dict[str, StreamSpec] = {
    "emg": StreamSpec("emg/raw", (NUM_CHANNELS,), "emg/timestamps", chunk_rows=1024),
    "imu": StreamSpec("imu/data", (6,), "imu/timestamps", chunk_rows=256),
    "landmarks": StreamSpec(
        "labels/landmarks",
        (NUM_LANDMARKS, 3),
        "labels/landmark_timestamps",
        extras=(("confidence", "labels/landmark_confidence"),),
        chunk_rows=64,
    ),
    "joint_angles": StreamSpec("labels/joint_angles", (20,), "labels/joint_angle_timestamps", chunk_rows=64),
    "mano_theta": StreamSpec("labels/mano_theta", (45,), "labels/mano_theta_timestamps", chunk_rows=64),
    "ik_error": StreamSpec("labels/ik_error_mm", (), "labels/ik_error_timestamps", chunk_rows=256),
    "image_landmarks": StreamSpec(
        "labels/image_landmarks",
        (NUM_LANDMARKS, 3),
        "labels/image_landmark_timestamps",
        extras=(("handedness", "labels/handedness"), ("hand_found", "labels/hand_found")),
        chunk_rows=64,
    ),
    # Gesture prompts: one row per prompt, appended when it ends (``duration`` in seconds).
    "prompts": StreamSpec("prompts/gesture", (), "prompts/start_times", extras=(("duration", "prompts/durations"),)),
    # Every camera frame the recorder received: its index in the recorded video (if any) and its time.
    "camera_frames": StreamSpec("camera/frame_index", (), "camera/frame_timestamps", chunk_rows=256),
}


def _finite_array(name: str, value: Any, dtype, shape_tail: tuple[int, ...]) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim != 1 + len(shape_tail) or tuple(array.shape[1:]) != shape_tail:
        expected = "(rows" + "".join(f", {d}" for d in shape_tail) + ")"
        raise ValueError(f"{name}: expected shape {expected}, found {array.shape}")
    if array.dtype.kind not in "fiu":
        raise ValueError(f"{name}: expected real numbers, found dtype {array.dtype}")
    array = array.astype(dtype, copy=False)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: expected finite values, found {int(np.count_nonzero(~np.isfinite(array)))} NaN/inf")
    return array


def _physical_memory_bytes() -> int | None:
    """This machine's RAM in bytes, or None where the OS does not say."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def _first_non_increasing(times: np.ndarray) -> int | None:
    if times.size < 2:
        return None
    bad = np.flatnonzero(np.diff(times) <= 0)
    return None if bad.size == 0 else int(bad[0])


def _normalise_board(board: Mapping[str, Any] | None) -> dict[str, Any]:
    if board is None:
        return {"name": "unknown"}
    if not isinstance(board, Mapping):
        raise ValueError(
            "board: expected a mapping (name, board_id, emg_channel_rows, gain, sdk_version), "
            f"found {type(board).__name__}"
        )
    try:
        # Round trip through JSON so what we store is exactly what we read back.
        return json.loads(json.dumps(dict(board), default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
    except (TypeError, ValueError) as err:
        raise ValueError(f"board: expected JSON-serialisable values: {err}") from None


class MindRoveSessionWriter:
    """Create a schema-v1 session and append to it incrementally.

    Streams are created on their first append (EMG at open), each chunked and
    resizable. `flush` pushes what was appended to disk, so a recorder that
    flushes every second loses at most that second on a crash.

    Usage::

        with MindRoveSessionWriter(path, sample_rate=500.0, board=info) as w:
            w.append("emg", samples, timestamps)            # (T, 8), (T,)
            w.append("landmarks", lm_mm, lm_t, confidence=score)
            w.flush()

    Args mirror `write_mindrove_session`; ``overwrite=False`` refuses to
    replace an existing file.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        sample_rate: float = SAMPLE_RATE,
        board: Mapping[str, Any] | None = None,
        subject_id: str = "synthetic",
        session_id: str = "session0",
        hand: str = "right",
        date: str | _dt.datetime | None = None,
        overwrite: bool = True,
        extra_attrs: Mapping[str, Any] | None = None,
        channels: int = NUM_CHANNELS,
    ):
        sample_rate = _positive_rate(sample_rate)
        if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or channels < 1:
            raise ValueError(f"channels: expected a positive number of EMG channels, found {channels!r}")
        if hand not in ("left", "right"):
            raise ValueError(f"hand: expected 'left' or 'right', found {hand!r}")
        if date is None:
            date = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        elif isinstance(date, _dt.datetime):
            date = date.isoformat()
        self.path = Path(path)
        self.sample_rate = float(sample_rate)
        self.channels = int(channels)
        if self.path.exists() and not overwrite:
            raise FileExistsError(f"{self.path}: already exists (pass overwrite=True to replace it)")
        board_dict = _normalise_board(board)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = h5py.File(self.path, "w")
        attrs = self._file.attrs
        attrs["emgjax_schema"] = SCHEMA_NAME
        attrs["schema_version"] = SCHEMA_VERSION
        attrs["sample_rate"] = self.sample_rate
        attrs["emg_channels"] = self.channels
        attrs["board"] = json.dumps(board_dict, sort_keys=True)
        attrs["hand"] = hand
        attrs["subject_id"] = str(subject_id)
        attrs["session_id"] = str(session_id)
        attrs["date"] = str(date)
        for key, value in (extra_attrs or {}).items():
            attrs[key] = value
        self._last_time: dict[str, float] = {}
        self._create("emg")

    def _shape(self, stream: str) -> tuple[int, ...]:
        """Per-row shape of ``stream`` in this file: the EMG's width is the writer's channel count."""
        return (self.channels,) if stream == "emg" else STREAMS[stream].shape

    def _create(self, stream: str) -> None:
        spec = STREAMS[stream]
        shape = self._shape(stream)
        self._file.create_dataset(
            spec.values,
            shape=(0, *shape),
            maxshape=(None, *shape),
            dtype=np.float32,
            chunks=(spec.chunk_rows, *shape),
        )
        self._file.create_dataset(
            spec.timestamps,
            shape=(0,),
            maxshape=(None,),
            dtype=np.float64,
            chunks=(max(spec.chunk_rows, 256),),
        )
        for _, extra_path in spec.extras:
            self._file.create_dataset(
                extra_path,
                shape=(0,),
                maxshape=(None,),
                dtype=np.float32,
                chunks=(max(spec.chunk_rows, 256),),
            )

    def append(self, stream: str, values: np.ndarray, timestamps: np.ndarray, **extras: np.ndarray) -> None:
        """Append rows to one stream.

        Args:
          stream: a key of `STREAMS` ("emg", "imu", "landmarks", "joint_angles",
            "mano_theta", "ik_error").
          values: (rows, *STREAMS[stream].shape); EMG (rows, channels).
          timestamps: (rows,) seconds, strictly increasing and after the last
            appended timestamp of this stream.
          extras: per-row companions, e.g. ``confidence=(rows,)`` for landmarks
            (defaults to 1.0 when omitted).
        """
        if stream not in STREAMS:
            raise ValueError(f"stream: expected one of {sorted(STREAMS)}, found {stream!r}")
        spec = STREAMS[stream]
        values = _finite_array(f"{stream} values", values, np.float32, self._shape(stream))
        timestamps = _finite_array(f"{stream} timestamps", timestamps, np.float64, ())
        rows = values.shape[0]
        if timestamps.shape[0] != rows:
            raise ValueError(f"{stream}: expected {rows} timestamps (one per row), found {timestamps.shape[0]}")
        bad = _first_non_increasing(timestamps)
        if bad is not None:
            raise ValueError(
                f"{stream} timestamps: expected strictly increasing, found t[{bad + 1}]={timestamps[bad + 1]!r} "
                f"<= t[{bad}]={timestamps[bad]!r}"
            )
        if rows and stream in self._last_time and timestamps[0] <= self._last_time[stream]:
            raise ValueError(
                f"{stream} timestamps: appended rows start at {timestamps[0]!r}, not after the last stored "
                f"timestamp {self._last_time[stream]!r}"
            )
        extra_names = {name for name, _ in spec.extras}
        unknown = set(extras) - extra_names
        if unknown:
            raise ValueError(f"{stream}: unexpected extras {sorted(unknown)}; accepted: {sorted(extra_names)}")
        extra_arrays = {}
        for name, _ in spec.extras:
            given = extras.get(name)
            if given is None:
                extra_arrays[name] = np.ones(rows, np.float32)
            else:
                extra_arrays[name] = _finite_array(f"{stream} {name}", given, np.float32, ())
                if extra_arrays[name].shape[0] != rows:
                    raise ValueError(f"{stream} {name}: expected {rows} rows, found {extra_arrays[name].shape[0]}")
        if spec.values not in self._file:
            self._create(stream)
        if rows == 0:
            return
        for path, array in [(spec.values, values), (spec.timestamps, timestamps)] + [
            (extra_path, extra_arrays[name]) for name, extra_path in spec.extras
        ]:
            dataset = self._file[path]
            old = dataset.shape[0]
            dataset.resize(old + rows, axis=0)
            dataset[old:] = array
        self._last_time[stream] = float(timestamps[-1])

    @classmethod
    def reopen(cls, path: str | os.PathLike) -> MindRoveSessionWriter:
        """Open an existing session to append to or replace streams (e.g. recomputed labels).

        Appends continue after each stream's last stored timestamp. The caller usually works on a copy and
        renames it over the original when done.
        """
        self = cls.__new__(cls)
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: MindRove session file does not exist")
        self._file = h5py.File(self.path, "a")
        if _attr_to_python(self._file.attrs.get("emgjax_schema")) != SCHEMA_NAME:
            self._file.close()
            raise SessionFormatError(self.path, f"expected attr emgjax_schema={SCHEMA_NAME!r}: not a MindRove session")
        self.sample_rate = float(self._file.attrs["sample_rate"])
        emg = self._file.get(STREAMS["emg"].values)
        self.channels = int(emg.shape[1]) if isinstance(emg, h5py.Dataset) and emg.ndim == 2 else NUM_CHANNELS
        self._last_time = {}
        for stream, spec in STREAMS.items():
            times = self._file.get(spec.timestamps)
            if isinstance(times, h5py.Dataset) and times.shape[0]:
                self._last_time[stream] = float(times[-1])
        return self

    def drop_stream(self, stream: str) -> None:
        """Delete a stream's datasets (no-op when absent); it can then be written afresh."""
        if stream == "emg" or stream not in STREAMS:
            raise ValueError(
                f"stream: expected one of the optional streams {sorted(set(STREAMS) - {'emg'})}, found {stream!r}"
            )
        spec = STREAMS[stream]
        for member in [spec.values, spec.timestamps] + [p for _, p in spec.extras]:
            if member in self._file:
                del self._file[member]
        self._last_time.pop(stream, None)

    def ensure_stream(self, stream: str) -> None:
        """Create a stream's (empty) datasets now: a recorder creates every stream it will write before
        recording, so the file's structure does not change mid-recording (crash safety)."""
        if stream not in STREAMS:
            raise ValueError(f"stream: expected one of {sorted(STREAMS)}, found {stream!r}")
        if STREAMS[stream].values not in self._file:
            self._create(stream)

    def set_attrs(self, attrs: Mapping[str, Any]) -> None:
        """Set (or replace) root attributes, e.g. software versions or counters updated while recording."""
        for key, value in attrs.items():
            self._file.attrs[key] = value

    def add_group_data(self, group: str, name: str, data: np.ndarray) -> None:
        """Store a free-form dataset (e.g. ``labels/gestures``) as given."""
        self._file.require_group(group).create_dataset(name, data=data)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if self._file.id.valid:
            self._file.close()

    def __enter__(self) -> MindRoveSessionWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _pair(name: str, values, timestamps_name: str, timestamps) -> None:
    if (values is None) != (timestamps is None):
        missing = timestamps_name if timestamps is None else name
        raise ValueError(f"{name} and {timestamps_name} go together; {missing} is missing")


def write_mindrove_session(
    path: str | os.PathLike,
    *,
    emg: np.ndarray,
    emg_timestamps: np.ndarray,
    sample_rate: float = SAMPLE_RATE,
    board: Mapping[str, Any] | None = None,
    landmarks: np.ndarray | None = None,
    landmark_confidence: np.ndarray | None = None,
    landmark_timestamps: np.ndarray | None = None,
    joint_angles: np.ndarray | None = None,
    joint_angle_timestamps: np.ndarray | None = None,
    mano_theta: np.ndarray | None = None,
    mano_theta_timestamps: np.ndarray | None = None,
    ik_error_mm: np.ndarray | None = None,
    imu: np.ndarray | None = None,
    imu_timestamps: np.ndarray | None = None,
    subject_id: str = "synthetic",
    session_id: str = "session0",
    hand: str = "right",
    date: str | _dt.datetime | None = None,
    ik_error_timestamps: np.ndarray | None = None,
    channels: int = NUM_CHANNELS,
) -> Path:
    """Write a whole schema-v1 MindRove session in one go (overwrites ``path``).

    Args:
      path: the session file to write (replaced if it exists).
      emg: (N, channels) µV.
      emg_timestamps: (N,) seconds, strictly increasing and within 5 % of
        ``sample_rate``.
      sample_rate: the nominal EMG rate in Hz.
      board: dict with name, board_id, emg_channel_rows, gain, sdk_version.
      landmarks: (M, 21, 3) millimetres, MediaPipe order.
      landmark_confidence: (M,) (default 1.0).
      landmark_timestamps: (M,) seconds.
      joint_angles: (M2, 20) radians.
      joint_angle_timestamps: (M2,) seconds.
      mano_theta: (M3, 45).
      mano_theta_timestamps: (M3,) seconds.
      ik_error_mm: (M4,) IK fit error per fit frame. Its timestamps are
        ``ik_error_timestamps`` if given, else those of ``mano_theta`` when the
        lengths match, else those of ``joint_angles``.
      imu: (K, 6).
      imu_timestamps: (K,) seconds.
      subject_id: the subject's id.
      session_id: the session's id.
      hand: 'left' or 'right'.
      date: ISO date or datetime (default now).
      ik_error_timestamps: (M4,) seconds; see ``ik_error_mm``.
      channels: the EMG channel count (8: the MindRove armband).

    Returns:
      the path written.

    Raises:
      ValueError: wrong shapes, NaN/inf, non-increasing timestamps, a rate
        mismatch, or values without timestamps.
    """
    sample_rate = _positive_rate(sample_rate)
    emg_timestamps_arr = _finite_array("emg_timestamps", emg_timestamps, np.float64, ())
    if _first_non_increasing(emg_timestamps_arr) is None:  # order errors come from the writer below
        _check_rate("emg_timestamps", emg_timestamps_arr, sample_rate)
    _pair("landmarks", landmarks, "landmark_timestamps", landmark_timestamps)
    _pair("joint_angles", joint_angles, "joint_angle_timestamps", joint_angle_timestamps)
    _pair("mano_theta", mano_theta, "mano_theta_timestamps", mano_theta_timestamps)
    _pair("imu", imu, "imu_timestamps", imu_timestamps)
    if landmark_confidence is not None and landmarks is None:
        raise ValueError("landmark_confidence given without landmarks")
    if ik_error_mm is not None and ik_error_timestamps is None:
        n_ik = np.shape(ik_error_mm)[0] if np.ndim(ik_error_mm) else -1
        if mano_theta_timestamps is not None and np.shape(mano_theta_timestamps)[0] == n_ik:
            ik_error_timestamps = mano_theta_timestamps
        elif joint_angle_timestamps is not None and np.shape(joint_angle_timestamps)[0] == n_ik:
            ik_error_timestamps = joint_angle_timestamps
        else:
            raise ValueError(
                f"ik_error_mm: expected one value per mano_theta or joint_angles frame "
                f"(or explicit ik_error_timestamps), found {n_ik} values"
            )
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    # Write next to the destination and rename: a failed write never leaves a
    # half-written file under the final name.
    try:
        with MindRoveSessionWriter(
            tmp,
            sample_rate=sample_rate,
            board=board,
            subject_id=subject_id,
            session_id=session_id,
            hand=hand,
            date=date,
            channels=channels,
        ) as writer:
            writer.append("emg", emg, emg_timestamps_arr)
            if imu is not None:
                writer.append("imu", imu, imu_timestamps)
            if landmarks is not None:
                extras = {} if landmark_confidence is None else {"confidence": landmark_confidence}
                writer.append("landmarks", landmarks, landmark_timestamps, **extras)
            if joint_angles is not None:
                writer.append("joint_angles", joint_angles, joint_angle_timestamps)
            if mano_theta is not None:
                writer.append("mano_theta", mano_theta, mano_theta_timestamps)
            if ik_error_mm is not None:
                writer.append("ik_error", ik_error_mm, ik_error_timestamps)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


@dataclasses.dataclass(frozen=True)
class LabelStream:
    """One label stream in memory.

    Attributes:
      timestamps: (M,) float64 seconds.
      values: (M, ...) float32.
      frame_ok: (M,) bool, False for low-confidence / high-IK-error frames.
    """

    timestamps: np.ndarray
    values: np.ndarray
    frame_ok: np.ndarray


def interpolate_labels(
    label_times: np.ndarray,
    label_values: np.ndarray,
    query_times: np.ndarray,
    *,
    frame_ok: np.ndarray | None = None,
    max_gap_s: float = 0.1,
) -> tuple[np.ndarray, np.ndarray]:
    """Linearly interpolate a label stream at query times, with a validity mask.

    A query time t is valid iff label frames exist at or before t and at or
    after t (inside the label span), both are within ``max_gap_s`` of t, and
    both are ``frame_ok``. Invalid samples still get finite values (the
    nearest frame) so masked losses stay finite.

    Args:
      label_times: (M,) strictly increasing seconds.
      label_values: (M, ...) values.
      query_times: (T,) seconds (e.g. EMG timestamps).
      frame_ok: (M,) bool quality of each frame (default all True).
      max_gap_s: largest allowed distance to a neighbouring label frame.
    Returns:
      values (T, ...) float32 and valid (T,) bool.
    """
    label_times = np.asarray(label_times, np.float64)
    label_values = np.asarray(label_values)
    query_times = np.asarray(query_times, np.float64)
    if label_times.ndim != 1 or label_values.shape[:1] != label_times.shape:
        raise ValueError(
            f"label_times (M,) and label_values (M, ...) must agree; found {label_times.shape} and {label_values.shape}"
        )
    if query_times.ndim != 1:
        raise ValueError(f"query_times: expected shape (T,), found {query_times.shape}")
    if not np.all(np.isfinite(query_times)):
        raise ValueError("query_times: expected finite values, found NaN/inf")
    if not (math.isfinite(max_gap_s) and max_gap_s >= 0):
        raise ValueError(f"max_gap_s: expected a non-negative number, found {max_gap_s!r}")
    m = label_times.shape[0]
    tail = label_values.shape[1:]
    if m == 0:
        return np.zeros((query_times.shape[0], *tail), np.float32), np.zeros(query_times.shape[0], bool)
    ok = np.ones(m, bool) if frame_ok is None else np.asarray(frame_ok, bool)
    if ok.shape != (m,):
        raise ValueError(f"frame_ok: expected shape ({m},), found {ok.shape}")
    before = np.searchsorted(label_times, query_times, side="right") - 1  # last frame <= t
    after = np.searchsorted(label_times, query_times, side="left")  # first frame >= t
    inside = (before >= 0) & (after < m)
    left = np.clip(before, 0, m - 1)
    right = np.clip(after, 0, m - 1)
    t_left, t_right = label_times[left], label_times[right]
    span = t_right - t_left
    weight = np.where(span > 0, (query_times - t_left) / np.where(span > 0, span, 1.0), 0.0)
    weight = np.clip(weight, 0.0, 1.0).reshape((-1,) + (1,) * len(tail))
    values = (1.0 - weight) * label_values[left] + weight * label_values[right]
    valid = inside & (query_times - t_left <= max_gap_s) & (t_right - query_times <= max_gap_s) & ok[left] & ok[right]
    return values.astype(np.float32), valid


def _nearest(
    times: np.ndarray, values: np.ndarray, query: np.ndarray, max_gap_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Value of the nearest frame of a scalar stream; found=False beyond max_gap_s."""
    if times.size == 0:
        return np.zeros(query.shape, values.dtype), np.zeros(query.shape, bool)
    right = np.clip(np.searchsorted(times, query), 0, times.size - 1)
    left = np.clip(right - 1, 0, times.size - 1)
    pick = np.where(np.abs(times[left] - query) <= np.abs(times[right] - query), left, right)
    return values[pick], np.abs(times[pick] - query) <= max_gap_s


class MindRoveSession:
    """Lazy, validating reader of one schema-v1 MindRove session.

    Opening checks the schema name/version, the EMG dataset (N, 8), the
    ``sample_rate`` attr against the timestamps (within 5 %), strictly
    increasing timestamps of every stream, and consistent stream lengths; any
    problem raises `SessionFormatError` naming the file. EMG is read only on
    `read_emg`; label streams (small: 25-30 fps) are read once and cached.

    Args:
      path: the ``.h5`` file.
      expected_sample_rate: required EMG rate in Hz, or None for any.
    """

    def __init__(self, path: str | os.PathLike, *, expected_sample_rate: float | None = None):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: MindRove session file does not exist")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as err:
            raise SessionFormatError(
                self.path, f"not a readable HDF5 file (expected a MindRove session): {err}"
            ) from None
        try:
            self._validate(expected_sample_rate)
        except BaseException:
            self._file.close()
            raise
        self._labels: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def _fail(self, problem: str) -> SessionFormatError:
        return SessionFormatError(self.path, problem)

    def _check_fits_in_memory(self, name: str, shape: tuple[int, ...], itemsize: int) -> None:
        """Refuse a read larger than this machine's memory (a damaged or hostile header declaring
        10^12 rows of never-written chunks) before allocating: numpy would fail, or swap, half-way."""
        need = math.prod(int(d) for d in shape) * int(itemsize)
        memory = _physical_memory_bytes()
        if memory is not None and need > memory:
            raise self._fail(
                f"'{name}': expected data that fits in this machine's memory ({memory / 2**30:.1f} GiB), found shape "
                f"{tuple(int(d) for d in shape)} ({need / 2**30:.1f} GiB): a damaged or hostile file?"
            )

    def _read_all(self, name: str) -> np.ndarray:
        dataset = self._file[name]
        self._check_fits_in_memory(name, dataset.shape, max(dataset.dtype.itemsize, 8))  # read as float64 at most
        try:
            return dataset[()]
        except (OSError, RuntimeError) as err:
            raise self._fail(f"cannot read '{name}' (truncated or corrupt?): {err}") from None

    def _read_times(self, name: str) -> np.ndarray:
        dataset = self._file[name]
        if dataset.ndim != 1:
            raise self._fail(f"'{name}': expected shape (rows,), found {dataset.shape}")
        times = np.asarray(self._read_all(name), np.float64)
        if not np.all(np.isfinite(times)):
            raise self._fail(f"'{name}': expected finite timestamps, found NaN/inf")
        bad = _first_non_increasing(times)
        if bad is not None:
            raise self._fail(
                f"'{name}': expected strictly increasing timestamps, found t[{bad + 1}]={times[bad + 1]!r} "
                f"<= t[{bad}]={times[bad]!r}"
            )
        return times

    def _validate(self, expected_sample_rate: float | None) -> None:
        attrs = self._file.attrs
        schema = _attr_to_python(attrs.get("emgjax_schema"))
        if schema != SCHEMA_NAME:
            hint = (
                " (an original-project recording? use import_original_recording)"
                if "pose" in self._file or "emg/filtered" in self._file
                else ""
            )
            raise self._fail(
                f"expected attr emgjax_schema={SCHEMA_NAME!r}, found {schema!r}: not a MindRove session{hint}"
            )
        version = _attr_to_python(attrs.get("schema_version"))
        if not isinstance(version, int) or version < 1:
            raise self._fail(f"expected an integer schema_version >= 1, found {version!r}")
        if version > SCHEMA_VERSION:
            raise self._fail(f"schema_version {version} is newer than this emgjax supports ({SCHEMA_VERSION})")
        if "sample_rate" not in attrs:
            raise self._fail("missing attr 'sample_rate'")
        sample_rate = float(attrs["sample_rate"])
        if not (math.isfinite(sample_rate) and sample_rate > 0):
            raise self._fail(f"sample_rate: expected a positive number, found {sample_rate!r}")
        if expected_sample_rate is not None and not math.isclose(sample_rate, expected_sample_rate, rel_tol=1e-9):
            raise self._fail(f"expected sample_rate {expected_sample_rate} Hz, found {sample_rate} Hz")
        self._sample_rate = sample_rate
        channels = _attr_to_python(attrs.get("emg_channels", NUM_CHANNELS))  # files before the attr: the armband's 8
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise self._fail(f"attr emg_channels: expected a positive integer, found {channels!r}")
        self._num_channels = channels

        self._streams: list[str] = []
        for stream, spec in STREAMS.items():
            members = [spec.values, spec.timestamps] + [p for _, p in spec.extras]
            present = [isinstance(self._file.get(m), h5py.Dataset) for m in members]
            if stream == "emg" and not all(present):
                missing = [m for m, p in zip(members, present, strict=True) if not p]
                raise self._fail(f"missing required datasets {missing}")
            if not any(present):
                continue
            if not all(present):
                missing = [m for m, p in zip(members, present, strict=True) if not p]
                raise self._fail(f"stream '{stream}' is incomplete: missing {missing}")
            values = self._file[spec.values]
            shape = (channels,) if stream == "emg" else spec.shape
            if values.shape[1:] != shape:
                expected = "(rows" + "".join(f", {d}" for d in shape) + ")"
                what = f"{channels} EMG channels, shape " if stream == "emg" else "shape "
                raise self._fail(f"'{spec.values}': expected {what}{expected}, found {values.shape}")
            if values.dtype.kind != "f":
                raise self._fail(f"'{spec.values}': expected floating point, found {values.dtype}")
            rows = values.shape[0]
            for member in members[1:]:
                if self._file[member].shape != (rows,):
                    raise self._fail(
                        f"'{member}': expected shape ({rows},) to match '{spec.values}', "
                        f"found {self._file[member].shape}"
                    )
            self._streams.append(stream)

        self._emg = self._file[STREAMS["emg"].values]
        # Every stream's clock is checked on open (label clocks are small:
        # 25-30 fps); the EMG clock is kept for label interpolation.
        self._times = {stream: self._read_times(STREAMS[stream].timestamps) for stream in self._streams}
        self._timestamps = self._times["emg"]
        if self._timestamps.size >= 2:
            implied = 1.0 / float(np.median(np.diff(self._timestamps)))
            if abs(implied - sample_rate) > _RATE_TOLERANCE * sample_rate:
                raise self._fail(
                    f"emg/timestamps imply {implied:.4g} Hz but attr sample_rate is {sample_rate:.4g} Hz "
                    f"(expected within {_RATE_TOLERANCE:.0%})"
                )
        try:
            self._board = json.loads(_attr_to_python(attrs.get("board", "{}")))
        except (TypeError, ValueError) as err:
            raise self._fail(f"attr 'board': expected a JSON object, found {attrs.get('board')!r} ({err})") from None

    # -- properties -------------------------------------------------------

    @property
    def metadata(self) -> dict[str, Any]:
        """Root attrs as plain Python values (board decoded from JSON)."""
        meta = {key: _attr_to_python(value) for key, value in self._file.attrs.items()}
        meta["board"] = dict(self._board)
        return meta

    @property
    def board(self) -> dict[str, Any]:
        return dict(self._board)

    @property
    def sample_rate(self) -> float:
        return self._sample_rate

    @property
    def num_channels(self) -> int:
        """EMG channels C (attr ``emg_channels``; 8 in files written before it)."""
        return self._num_channels

    @property
    def hand(self) -> str:
        return str(_attr_to_python(self._file.attrs.get("hand", "")))

    @property
    def timestamps(self) -> np.ndarray:
        """(N,) float64 EMG timestamps in seconds."""
        return self._timestamps

    @property
    def streams(self) -> tuple[str, ...]:
        """Streams present, e.g. ('emg', 'landmarks', 'joint_angles')."""
        return tuple(self._streams)

    @property
    def label_kinds(self) -> tuple[str, ...]:
        """Label kinds `labels_at` can serve."""
        return tuple(kind for kind in LABEL_KINDS if kind in self._streams)

    def __len__(self) -> int:
        return int(self._emg.shape[0])

    # -- reading ----------------------------------------------------------

    def read_emg(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """EMG samples [start, stop) as (C, T) float32 µV."""
        n = len(self)
        stop = n if stop is None else stop
        if not 0 <= int(start) <= int(stop) <= n:
            raise ValueError(f"{self.path}: expected 0 <= start <= stop <= {n}, found start={start}, stop={stop}")
        self._check_fits_in_memory(
            STREAMS["emg"].values, (int(stop) - int(start), self._num_channels), 8
        )  # read + float32 copy
        try:
            block = self._emg[int(start) : int(stop)]
        except (OSError, RuntimeError) as err:
            raise self._fail(f"cannot read emg/raw [{start}, {stop}) (truncated or corrupt?): {err}") from None
        bad = np.argwhere(~np.isfinite(block))
        if bad.size:
            raise self._fail(
                f"emg/raw has NaN/inf values in samples [{start}, {stop}): expected finite values, found "
                f"{len(bad)}, first at sample {int(start) + int(bad[0, 0])} channel {int(bad[0, 1])}"
            )
        return np.ascontiguousarray(block.T, dtype=np.float32)

    def read_imu(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(timestamps (K,), data (6, K)) or None when no IMU was recorded."""
        if "imu" not in self._streams:
            return None
        spec = STREAMS["imu"]
        data = np.ascontiguousarray(self._read_all(spec.values).T, np.float32)
        if not np.all(np.isfinite(data)):
            raise self._fail(f"'{spec.values}' has NaN/inf values")
        return self._times["imu"], data

    def _stream(self, stream: str) -> tuple[np.ndarray, np.ndarray]:
        """(timestamps, values) of a whole stream, checked and cached."""
        if stream not in self._labels:
            spec = STREAMS[stream]
            times = self._times[stream]
            values = np.asarray(self._read_all(spec.values), np.float32)
            if not np.all(np.isfinite(values)):
                raise self._fail(f"'{spec.values}' has NaN/inf values")
            self._labels[stream] = (times, values)
        return self._labels[stream]

    def _extra(self, stream: str, name: str) -> np.ndarray:
        key = f"{stream}/{name}"
        if key not in self._labels:
            path = dict(STREAMS[stream].extras)[name]
            values = np.asarray(self._read_all(path), np.float32)
            if not np.all(np.isfinite(values)):
                raise self._fail(f"'{path}' has NaN/inf values")
            self._labels[key] = (np.empty(0), values)
        return self._labels[key][1]

    def read_stream(self, stream: str) -> tuple[np.ndarray, np.ndarray]:
        """(timestamps (rows,), values (rows, *shape)) of any stream present except EMG (checked, cached)."""
        if stream not in self._streams or stream == "emg":
            raise ValueError(f"{self.path}: no '{stream}' stream in this session; present: {self.streams}")
        return self._stream(stream)

    def read_extra(self, stream: str, name: str) -> np.ndarray:
        """(rows,) float32 companion ``name`` of a stream present (e.g. ``("landmarks", "confidence")``)."""
        if stream not in self._streams or name not in dict(STREAMS[stream].extras):
            raise ValueError(f"{self.path}: no '{stream}' stream with extra {name!r} in this session")
        return self._extra(stream, name)

    def label_stream(
        self,
        kind: str,
        *,
        max_gap_s: float = 0.1,
        min_confidence: float = 0.5,
        max_ik_error_mm: float = 15.0,
    ) -> LabelStream:
        """A whole label stream with per-frame quality.

        Quality (the original project's rule): a frame is bad when the hand
        detector's confidence is <= ``min_confidence`` or the IK error is >=
        ``max_ik_error_mm``. Landmark frames use their own confidence.
        joint_angles / mano_theta frames (IK fits of the landmarks) use the
        IK error and landmark confidence of the nearest frame of those streams
        (when recorded); with no such frame within ``max_gap_s`` their
        quality is unknown and the frame counts as bad.
        """
        if kind not in LABEL_KINDS:
            raise ValueError(f"kind: expected one of {LABEL_KINDS}, found {kind!r}")
        if kind not in self._streams:
            raise ValueError(f"{self.path}: no '{kind}' labels in this session; present: {self.label_kinds}")
        times, values = self._stream(kind)
        ok = np.ones(times.shape[0], bool)
        if "landmarks" in self._streams:
            confidence = self._extra("landmarks", "confidence")
            if kind == "landmarks":
                ok &= confidence > min_confidence
            else:
                lm_times, _ = self._stream("landmarks")
                conf, found = _nearest(lm_times, confidence, times, max_gap_s)
                ok &= found & (conf > min_confidence)
        if kind != "landmarks" and "ik_error" in self._streams:
            ik_times, ik_values = self._stream("ik_error")
            err, found = _nearest(ik_times, ik_values, times, max_gap_s)
            ok &= found & (err < max_ik_error_mm)
        return LabelStream(times, values, ok)

    def labels_at(
        self,
        emg_times: np.ndarray,
        kind: str = "landmarks",
        max_gap_s: float = 0.1,
        min_confidence: float = 0.5,
        max_ik_error_mm: float = 15.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Labels at EMG times by linear interpolation, with a validity mask.

        Args:
          emg_times: (T,) seconds (usually a slice of `timestamps`).
          kind: "landmarks" (21, 3) mm, "joint_angles" (20,) rad or
            "mano_theta" (45,).
        Returns:
          values (T, ...) float32 and valid (T,) bool. A sample is invalid if
          it is outside the label span, further than ``max_gap_s`` from the
          label frame on either side, or either neighbouring frame is bad (see
          `label_stream`).
        """
        stream = self.label_stream(
            kind, max_gap_s=max_gap_s, min_confidence=min_confidence, max_ik_error_mm=max_ik_error_mm
        )
        return interpolate_labels(
            stream.timestamps, stream.values, emg_times, frame_ok=stream.frame_ok, max_gap_s=max_gap_s
        )

    def gestures(self) -> dict[str, np.ndarray]:
        """``labels/gestures/*`` datasets as arrays (empty dict when absent)."""
        group = self._file.get("labels/gestures")
        if not isinstance(group, h5py.Group):
            return {}
        return {name: self._read_all(f"labels/gestures/{name}") for name in group}

    # -- lifetime ---------------------------------------------------------

    def close(self) -> None:
        file = getattr(self, "_file", None)
        if file is not None and file.id.valid:
            file.close()

    def __enter__(self) -> MindRoveSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MindRoveSession({str(self.path)!r})"


def import_original_recording(src: str | os.PathLike, dst: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Convert a recording in the original project's layout to schema v1.

    Source layout: ``emg/raw`` (N, 8), ``emg/filtered`` (not copied: filtering
    is redone from raw by ``emgjax.data.signal``), ``emg/timestamps``;
    optional ``imu/data`` + ``imu/timestamps``; ``pose/joints_3d`` (M, 21, 3)
    **metres** (converted to mm), ``pose/mano_theta`` (M, 45),
    ``pose/timestamps``, ``pose/ik_error`` (mm), ``pose/mp_confidence``;
    ``gestures/*`` (kept as ``labels/gestures/*``); attrs subject_id,
    session_id, date, hand, emg_channels, emg_sampling_rate, camera_fps.

    Pose frames with any NaN/inf entry (no hand detected) are dropped, with a
    logged warning giving the count, so they read back as label gaps.

    Returns:
      ``dst``.
    Raises:
      FileNotFoundError, FileExistsError, SessionFormatError (naming ``src``).
    """
    src, dst = Path(src), Path(dst)
    if not src.exists():
        raise FileNotFoundError(f"{src}: original recording does not exist")
    if dst.exists() and not overwrite:
        raise FileExistsError(f"{dst}: already exists (pass overwrite=True to replace it)")
    try:
        f = h5py.File(src, "r")
    except OSError as err:
        raise SessionFormatError(
            src, f"not a readable HDF5 file (expected an original-project recording): {err}"
        ) from None
    with f:

        def read(name: str) -> np.ndarray:
            try:
                return f[name][()]
            except KeyError:
                raise SessionFormatError(
                    src, f"missing dataset '{name}'; found top-level keys {sorted(f.keys())}"
                ) from None
            except (OSError, RuntimeError) as err:
                raise SessionFormatError(src, f"cannot read '{name}' (truncated or corrupt?): {err}") from None

        attrs = {key: _attr_to_python(value) for key, value in f.attrs.items()}
        emg = read("emg/raw")
        emg_times = read("emg/timestamps")
        channels = attrs.get("emg_channels", NUM_CHANNELS)
        if int(channels) != NUM_CHANNELS or emg.ndim != 2 or emg.shape[1] != NUM_CHANNELS:
            raise SessionFormatError(
                src,
                f"expected {NUM_CHANNELS} EMG channels, "
                f"found attr emg_channels={channels} and emg/raw shape {emg.shape}",
            )
        if "emg_sampling_rate" not in attrs:
            raise SessionFormatError(src, "missing attr 'emg_sampling_rate'")
        kwargs: dict[str, Any] = {}
        if "imu" in f:
            kwargs["imu"], kwargs["imu_timestamps"] = read("imu/data"), read("imu/timestamps")
        if "pose" in f:
            pose_times = np.asarray(read("pose/timestamps"), np.float64)
            pose: dict[str, np.ndarray] = {}
            for name in ("joints_3d", "mano_theta", "ik_error", "mp_confidence"):
                if f"pose/{name}" in f:
                    pose[name] = np.asarray(read(f"pose/{name}"), np.float64)
                    if pose[name].shape[:1] != pose_times.shape:
                        raise SessionFormatError(
                            src,
                            f"'pose/{name}' has {pose[name].shape[0]} frames, "
                            f"pose/timestamps has {pose_times.shape[0]}",
                        )
            keep = np.isfinite(pose_times)
            for array in pose.values():
                keep &= np.all(np.isfinite(array.reshape(array.shape[0], -1)), axis=1)
            if not np.all(keep):
                logger.warning(
                    "%s: dropping %d of %d pose frames with NaN/inf values",
                    src,
                    int(np.count_nonzero(~keep)),
                    keep.size,
                )
            pose_times = pose_times[keep]
            pose = {name: array[keep] for name, array in pose.items()}
            if "joints_3d" in pose:
                kwargs["landmarks"] = pose["joints_3d"] * 1000.0  # metres -> millimetres
                kwargs["landmark_timestamps"] = pose_times
                if "mp_confidence" in pose:
                    kwargs["landmark_confidence"] = pose["mp_confidence"]
            if "mano_theta" in pose:
                kwargs["mano_theta"], kwargs["mano_theta_timestamps"] = pose["mano_theta"], pose_times
            if "ik_error" in pose:
                kwargs["ik_error_mm"], kwargs["ik_error_timestamps"] = pose["ik_error"], pose_times
        has_gestures = isinstance(f.get("gestures"), h5py.Group)
        try:
            write_mindrove_session(
                dst,
                emg=emg,
                emg_timestamps=emg_times,
                sample_rate=float(attrs["emg_sampling_rate"]),
                board={
                    "name": "MINDROVE_WIFI_BOARD",
                    "board_id": 0,
                    "note": f"imported from the original layout ({src.name})",
                },
                subject_id=str(attrs.get("subject_id", "unknown")),
                session_id=str(attrs.get("session_id", src.stem)),
                hand=str(attrs.get("hand", "right")),
                date=str(attrs.get("date", "")) or None,
                **kwargs,
            )
        except ValueError as err:
            raise SessionFormatError(src, f"cannot convert: {err}") from None
    with h5py.File(dst, "a") as out, h5py.File(src, "r") as f:
        if "camera_fps" in attrs:
            out.attrs["camera_fps"] = float(attrs["camera_fps"])
        out.attrs["imported_from"] = str(src)
        if has_gestures:
            # h5py's copy keeps dtypes (variable-length strings included) as stored.
            f.copy(f["gestures"], out.require_group("labels"), name="gestures")
    return dst
