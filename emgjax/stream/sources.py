"""Live EMG sources: the `Source` interface, fixed-size timestamped chunks, and the file and synthetic sources.

A source delivers EMG in chunks of a fixed ``chunk_samples`` (the model streams fixed shapes):

* ``Chunk.emg`` (channels, chunk_samples) float32 in the source's ``units`` (µV for every source here);
* ``Chunk.timestamps`` (chunk_samples,) float64 seconds on the source's clock;
* ``Chunk.gap`` (chunk_samples,) bool: samples were lost right before this sample. Lost samples are
  never stitched over: the timestamps jump by the lost time and the gap is counted in `SourceStats`;
* ``Chunk.filled`` (chunk_samples,) bool: NaN/Inf values from the device were replaced (by the
  channel's last finite value, or by 0 with ``nan_fill="zero"``), counted as bursts in `SourceStats`;
* ``Chunk.imu`` (6, chunk_samples) float32 or None: accelerometer xyz and gyroscope xyz sampled with the
  EMG (same timestamps), from sources with ``imu=True`` (the MindRove boards); passed on as the device
  sends them (NaN included).

Sources are context managers (``with source: for chunk in source: ...``); `Source.read_chunk` returns
None at the end of a finite stream. A tail shorter than one chunk at the end is dropped and counted
(``SourceStats.tail_dropped_samples``). Device errors are ``ConnectionError`` (an ``OSError``), shape and
configuration errors ``ValueError``: ``emgjax.cli.run_command`` prints both as one line.

The MindRove board source lives in `emgjax.stream.mindrove_board`; filtering, spec checks and
resampling in `emgjax.stream.preprocess`; the recorder in `emgjax.stream.recorder`.
"""

from __future__ import annotations

import abc
import dataclasses
import logging
import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

import h5py
import numpy as np

from emgjax.data.emg2pose import EMG2POSE_GROUP, Emg2PoseSession, SessionFormatError
from emgjax.data.mindrove import SCHEMA_NAME, MindRoveSession
from emgjax.data.signal import ring_resample_matrix
from emgjax.data.synthetic import SyntheticConfig, generate_session

__all__ = [
    "Chunk",
    "IMU_CHANNELS",
    "SourceStats",
    "Source",
    "Block",
    "BlockSource",
    "ArraySource",
    "FileSource",
    "SyntheticSource",
    "SyntheticTruthSource",
    "DeviceNotFoundError",
    "DeviceLostError",
    "lost_from_timestamps",
    "lost_from_package_numbers",
    "ring_resample_matrix",
]

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
IMU_CHANNELS = 6  # accelerometer xyz, gyroscope xyz
Sleep = Callable[[float], None]
NanFill = Literal["hold", "zero"]


class DeviceNotFoundError(ConnectionError):
    """No sample arrived from a device within the start-up timeout (e.g. the armband is off or out of range)."""


class DeviceLostError(ConnectionError):
    """A device stopped sending mid-stream and every reconnection attempt failed."""


@dataclasses.dataclass(frozen=True)
class Chunk:
    """One fixed-size chunk of a stream.

    Attributes:
      emg: (channels, n) float32, in the source's units (µV).
      timestamps: (n,) float64 seconds; they jump over lost samples.
      gap: (n,) bool, True where samples were lost right before this sample.
      filled: (n,) bool, True where NaN/Inf values of any channel were replaced.
      lost_samples: samples lost inside or right before this chunk (sum over its gaps).
      index: 0 for the first chunk of the stream, then 1, 2, ...
      imu: (6, n) float32 accelerometer xyz, gyroscope xyz at the EMG's timestamps, or None (no IMU).
    """

    emg: np.ndarray
    timestamps: np.ndarray
    gap: np.ndarray
    filled: np.ndarray
    lost_samples: int
    index: int
    imu: np.ndarray | None = None

    def head(self, n: int) -> Chunk:
        """The first ``n`` samples of this chunk (e.g. the part a recording of fixed length still needs); its
        ``lost_samples`` are the chunk's when the head holds a gap (per-gap counts are not kept), else 0."""
        return dataclasses.replace(
            self,
            emg=self.emg[:, :n],
            timestamps=self.timestamps[:n],
            gap=self.gap[:n],
            filled=self.filled[:n],
            lost_samples=self.lost_samples if bool(self.gap[:n].any()) else 0,
            imu=None if self.imu is None else self.imu[:, :n],
        )

    @property
    def has_gap(self) -> bool:
        return bool(self.gap.any())

    @property
    def samples(self) -> int:
        return int(self.emg.shape[1])


@dataclasses.dataclass
class SourceStats:
    """What a source saw so far (updated as chunks are read).

    Attributes:
      chunks: chunks delivered.
      samples: samples delivered (chunks × chunk_samples).
      gaps: places where samples were lost.
      lost_samples: samples lost in all gaps.
      filled_samples: samples with NaN/Inf values replaced.
      nan_bursts: runs of consecutive filled samples.
      stalls: times the device went silent mid-stream (board sources).
      reconnect_attempts: reconnections tried; reconnects: those that brought data back.
      tail_dropped_samples: samples at the end of a finite stream that did not fill a chunk.
    """

    chunks: int = 0
    samples: int = 0
    gaps: int = 0
    lost_samples: int = 0
    filled_samples: int = 0
    nan_bursts: int = 0
    stalls: int = 0
    reconnect_attempts: int = 0
    reconnects: int = 0
    tail_dropped_samples: int = 0

    def summary(self) -> str:
        """One line for a report, e.g. ``250 chunks, 5000 samples, 1 gap (120 lost), 2 NaN bursts (7 samples)``."""
        text = (
            f"{self.chunks} chunks, {self.samples} samples, {self.gaps} gap(s) ({self.lost_samples} samples lost), "
            f"{self.nan_bursts} NaN burst(s) ({self.filled_samples} samples filled)"
        )
        if self.stalls or self.reconnect_attempts:
            text += f", {self.stalls} stall(s), {self.reconnects}/{self.reconnect_attempts} reconnection(s) succeeded"
        return text


@runtime_checkable
class Source(Protocol):
    """What the streaming loop needs from a source of EMG.

    ``channels``, ``sample_rate`` (Hz), ``units`` (e.g. "uV") and ``chunk_samples`` are known before the
    stream starts (so a model's input spec can be checked first); `read_chunk` starts the stream when
    needed and blocks until a whole chunk is there.
    """

    name: str
    channels: int
    sample_rate: float
    units: str
    chunk_samples: int
    stats: SourceStats

    def start(self) -> None: ...

    def read_chunk(self) -> Chunk | None: ...

    def close(self) -> None: ...

    def info(self) -> dict[str, Any]: ...

    def __iter__(self) -> Iterator[Chunk]: ...

    def __enter__(self) -> Source: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class Block(NamedTuple):
    """A variable-size block as a concrete source reads it (before NaN filling and re-chunking).

    Attributes:
      emg: (channels, k) float, may hold NaN/Inf.
      timestamps: (k,) float64 seconds, strictly increasing.
      lost_before: (k,) int64, samples lost right before each sample (0: contiguous).
      filled: (k,) bool or None; samples already filled upstream (e.g. by a wrapped source).
      imu: (6, k) accelerometer xyz, gyroscope xyz at the same times, or None (a source without IMU).
    """

    emg: np.ndarray
    timestamps: np.ndarray
    lost_before: np.ndarray
    filled: np.ndarray | None = None
    imu: np.ndarray | None = None


def _positive_int(name: str, value: Any) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, found {value!r}")
    return int(value)


def _positive_float(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a positive number, found {value!r}") from None
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name}: expected a positive finite number, found {value!r}")
    return number


def lost_from_timestamps(
    timestamps: np.ndarray, sample_rate: float, previous: float | None = None, *, tolerance: float = 0.5
) -> np.ndarray:
    """Samples lost before each sample, from the clock: a step of ``d`` periods means ``round(d) - 1`` lost.

    A step counts as a gap only when it exceeds one period by more than ``tolerance`` periods, so clock
    jitter is not mistaken for loss.

    Args:
      timestamps: (k,) seconds.
      previous: the timestamp of the sample before ``timestamps[0]`` (None at the start of a stream).
    Returns:
      (k,) int64.
    """
    times = np.asarray(timestamps, np.float64)
    before = np.concatenate(([times[0] if previous is None else previous], times[:-1])) if times.size else times
    periods = (times - before) * float(sample_rate)
    lost = np.where(periods > 1.0 + tolerance, np.rint(periods) - 1.0, 0.0)
    return lost.astype(np.int64)


def lost_from_package_numbers(
    packages: np.ndarray, previous: float | None, modulus: int, lost_by_clock: np.ndarray | None = None
) -> np.ndarray:
    """Samples lost before each sample, from the device's package counter (wrapping at ``modulus``).

    The counter alone cannot tell a loss of ``j`` from ``j + modulus`` samples; where the clock says more
    than ``modulus - 1`` were lost (``lost_by_clock``), the count is the one of those candidates nearest
    to the clock's estimate.

    Args:
      packages: (k,) package numbers (floats as the SDK returns them).
      previous: the package number before ``packages[0]``, or None (then the first sample has no loss).
      lost_by_clock: (k,) int64 estimate from `lost_from_timestamps`, or None.
    Returns:
      (k,) int64.
    """
    numbers = np.rint(np.asarray(packages, np.float64)).astype(np.int64)
    if numbers.size == 0:
        return np.zeros(0, np.int64)
    before = np.concatenate(([numbers[0] - 1 if previous is None else round(previous)], numbers[:-1]))
    lost = (numbers - before - 1) % modulus
    lost[lost == modulus - 1] = 0  # a repeated number (a resent package), not a full wrap of losses
    if lost_by_clock is not None:
        clock = np.asarray(lost_by_clock, np.int64)
        far = clock >= modulus - 1
        lost[far] += modulus * np.rint((clock[far] - lost[far]) / modulus).astype(np.int64)
    return lost


class BlockSource(abc.ABC):
    """Base of every source: turns variable blocks (`Block`) into fixed `Chunk`s, fills NaN, counts.

    Subclasses implement `_start`, `_read_block` (a `Block`, or None at the end of the stream) and
    `_stop`; they set ``name``. A source constructed with ``imu=True`` delivers every block's ``imu`` rows
    in `Chunk.imu`. The lifecycle: `start` (or entering ``with``, or the first `read_chunk`),
    then `close` (idempotent; also on ``__exit__``, KeyboardInterrupt included).
    """

    name: str = "source"

    def __init__(
        self,
        *,
        channels: int,
        sample_rate: float,
        chunk_samples: int,
        units: str = "uV",
        nan_fill: NanFill = "hold",
        imu: bool = False,
    ):
        self.channels = _positive_int("channels", channels)
        self.has_imu = bool(imu)
        self.sample_rate = _positive_float("sample_rate", sample_rate)
        self.chunk_samples = _positive_int("chunk_samples", chunk_samples)
        if nan_fill not in ("hold", "zero"):
            raise ValueError(f"nan_fill: expected 'hold' or 'zero', found {nan_fill!r}")
        self.units = str(units)
        self.nan_fill: NanFill = nan_fill
        self.stats = SourceStats()
        self._started = False
        self._closed = False
        self._ended = False
        self._pending: list[Block] = []
        self._pending_samples = 0
        self._last_value = np.zeros(self.channels, np.float64)  # for nan_fill="hold"
        self._in_burst = False
        self._warned_nan = False

    # -- to implement -----------------------------------------------------

    @abc.abstractmethod
    def _start(self) -> None:
        """Open the device or file."""

    @abc.abstractmethod
    def _read_block(self) -> Block | None:
        """The next block (at least one sample), or None when the stream has ended. May block."""

    def _stop(self) -> None:  # noqa: B027 - sources without resources need no stop
        """Release the device or file (called once)."""

    def info(self) -> dict[str, Any]:
        """Where the data comes from, for a recording's ``board`` attribute."""
        return {"name": self.name}

    # -- lifecycle --------------------------------------------------------

    def start(self) -> None:
        if self._closed:
            raise ValueError(f"{self.name}: the source is closed; create a new one to stream again")
        if not self._started:
            self._started = True
            self._start()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._started:
                self._stop()

    def __enter__(self) -> BlockSource:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[Chunk]:
        while (chunk := self.read_chunk()) is not None:
            yield chunk

    # -- chunking ---------------------------------------------------------

    def read_chunk(self) -> Chunk | None:
        """The next chunk of exactly ``chunk_samples`` samples, or None at the end of the stream."""
        self.start()
        while self._pending_samples < self.chunk_samples:
            if self._ended:
                return None
            block = self._read_block()
            if block is None:
                self._ended = True
                self.stats.tail_dropped_samples += self._pending_samples
                self._pending, self._pending_samples = [], 0
                return None
            self._push(block)
        return self._pop()

    def _push(self, block: Block) -> None:
        emg = np.asarray(block.emg, np.float64)
        times = np.asarray(block.timestamps, np.float64)
        k = times.shape[0]
        if emg.shape != (self.channels, k):
            raise ValueError(
                f"{self.name}: expected a block of shape ({self.channels}, {k}) (channels, samples), found {emg.shape}"
            )
        if k == 0:
            return
        bad = ~np.isfinite(emg)
        bad_sample = np.asarray(bad.any(axis=0), bool)
        filled: np.ndarray = bad_sample if block.filled is None else bad_sample | np.asarray(block.filled, bool)
        if bad_sample.any():
            emg = self._fill(emg, bad)
            starts = bad_sample & ~np.concatenate((np.array([self._in_burst]), bad_sample[:-1]))
            self.stats.nan_bursts += int(starts.sum())
            self.stats.filled_samples += int(bad_sample.sum())
            if not self._warned_nan:
                self._warned_nan = True
                logger.warning(
                    "%s: NaN/Inf values from the device at t=%.3f s; replaced (%s) and marked in Chunk.filled",
                    self.name,
                    float(times[int(np.argmax(bad_sample))]),
                    "last value" if self.nan_fill == "hold" else "zeros",
                )
        elif block.filled is not None:
            self.stats.filled_samples += int(filled.sum())
        self._in_burst = bool(bad_sample[-1])
        self._last_value = emg[:, -1].copy()
        lost = np.asarray(block.lost_before, np.int64)
        self.stats.gaps += int(np.count_nonzero(lost))
        self.stats.lost_samples += int(lost.sum())
        imu = None
        if self.has_imu:
            imu = np.asarray(block.imu if block.imu is not None else np.full((IMU_CHANNELS, k), np.nan), np.float64)
            if imu.shape != (IMU_CHANNELS, k):
                raise ValueError(f"{self.name}: expected IMU rows of shape ({IMU_CHANNELS}, {k}), found {imu.shape}")
        self._pending.append(Block(emg, times, lost, filled, imu))
        self._pending_samples += k

    def _fill(self, emg: np.ndarray, bad: np.ndarray) -> np.ndarray:
        if self.nan_fill == "zero":
            return np.where(bad, 0.0, emg)
        # Forward fill along time per channel: the index of the last finite sample at or before each sample.
        k = emg.shape[1]
        index = np.where(bad, -1, np.arange(k)[None, :])
        index = np.maximum.accumulate(index, axis=1)
        held = np.take_along_axis(emg, np.maximum(index, 0), axis=1)
        return np.where(index < 0, self._last_value[:, None], held)

    def _pop(self) -> Chunk:
        emg = np.concatenate([b.emg for b in self._pending], axis=1)
        times = np.concatenate([b.timestamps for b in self._pending])
        lost = np.concatenate([b.lost_before for b in self._pending])
        filled = np.concatenate([np.asarray(b.filled, bool) for b in self._pending])
        imu = np.concatenate([b.imu for b in self._pending], axis=1) if self.has_imu else None
        n = self.chunk_samples
        rest = emg.shape[1] - n
        self._pending = (
            [Block(emg[:, n:], times[n:], lost[n:], filled[n:], None if imu is None else imu[:, n:])] if rest else []
        )
        self._pending_samples = rest
        chunk = Chunk(
            emg=np.ascontiguousarray(emg[:, :n], np.float32),
            timestamps=times[:n].copy(),
            gap=lost[:n] > 0,
            filled=filled[:n].copy(),
            lost_samples=int(lost[:n].sum()),
            index=self.stats.chunks,
            imu=None if imu is None else np.ascontiguousarray(imu[:, :n], np.float32),
        )
        self.stats.chunks += 1
        self.stats.samples += n
        return chunk


class _Pacer:
    """Holds data back until the wall clock reaches its timestamps (real-speed replay)."""

    def __init__(self, clock: Clock, sleep: Sleep):
        self._clock, self._sleep = clock, sleep
        self._origin: tuple[float, float] | None = None  # (wall time, stream time) of the first sample

    def wait_until(self, stream_time: float, first_time: float) -> None:
        if self._origin is None:
            self._origin = (self._clock(), first_time)
        wall0, stream0 = self._origin
        delay = wall0 + (stream_time - stream0) - self._clock()
        if delay > 0:
            self._sleep(delay)


class ArraySource(BlockSource):
    """An in-memory recording streamed as chunks (e.g. a held-out session for a streaming check).

    Args:
      emg: (channels, T) samples, NaN allowed (filled and marked like a device's).
      sample_rate: Hz.
      chunk_samples: samples per chunk.
      timestamps: (T,) seconds, strictly increasing (jumps are reported as gaps); default ``arange(T) / rate``.
      read_samples: samples handed over per block (the chunking must not depend on it).
    """

    def __init__(
        self,
        emg: np.ndarray,
        sample_rate: float,
        *,
        chunk_samples: int,
        timestamps: np.ndarray | None = None,
        read_samples: int = 4096,
        nan_fill: NanFill = "hold",
    ):
        emg = np.asarray(emg)
        if emg.ndim != 2 or emg.dtype.kind not in "fiu":
            raise ValueError(f"emg: expected a real (channels, T) array, found shape {emg.shape} dtype {emg.dtype}")
        super().__init__(channels=emg.shape[0], sample_rate=sample_rate, chunk_samples=chunk_samples, nan_fill=nan_fill)
        times = np.arange(emg.shape[1]) / self.sample_rate if timestamps is None else np.asarray(timestamps, np.float64)
        if times.shape != (emg.shape[1],) or not np.all(np.isfinite(times)) or np.any(np.diff(times) <= 0):
            raise ValueError(
                f"timestamps: expected {emg.shape[1]} finite, strictly increasing seconds, found shape {times.shape}"
            )
        self.name = "array"
        self._emg, self._times = emg, times
        self._read_samples = _positive_int("read_samples", read_samples)
        self._position = 0

    def _start(self) -> None:
        pass

    def _read_block(self) -> Block | None:
        start, stop = self._position, min(self._position + self._read_samples, self._times.size)
        if stop <= start:
            return None
        self._position = stop
        previous = float(self._times[start - 1]) if start else None
        times = self._times[start:stop]
        return Block(self._emg[:, start:stop], times, lost_from_timestamps(times, self.sample_rate, previous))


class FileSource(BlockSource):
    """Replay a recorded session: our MindRove format (`emgjax.data.mindrove`) or emg2pose HDF5.

    The format is recognised from the file (the ``emgjax_schema`` attribute or the ``emg2pose`` group).
    Gaps in the recording's timestamps are reported as gaps. ``realtime=True`` paces chunks by their
    timestamps (a chunk is delivered when the clock reaches its last sample); otherwise as fast as possible.

    Args:
      path: the ``.h5``/``.hdf5`` session.
      chunk_samples: samples per chunk.
      realtime: replay at the recording's speed.
      clock, sleep: injectable time functions (tests pass a fake clock).
      read_samples: samples read from the file per block when not real time.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        chunk_samples: int,
        realtime: bool = False,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        read_samples: int = 8192,
        nan_fill: NanFill = "hold",
    ):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: session file does not exist")
        try:
            with h5py.File(self.path, "r") as f:
                schema = f.attrs.get("emgjax_schema")
                is_emg2pose = EMG2POSE_GROUP in f
        except OSError as err:
            raise SessionFormatError(self.path, f"not a readable HDF5 session file: {err}") from None
        if isinstance(schema, bytes):
            schema = schema.decode()
        self.format: Literal["mindrove", "emg2pose"]
        session: MindRoveSession | Emg2PoseSession
        if schema == SCHEMA_NAME:
            self.format = "mindrove"
            session = MindRoveSession(self.path)
            channels = session.num_channels
        elif is_emg2pose:
            self.format = "emg2pose"
            session = Emg2PoseSession(self.path, expected_sample_rate=None, expected_num_channels=None)
            channels = session.num_channels
        else:
            raise SessionFormatError(
                self.path,
                f"expected a MindRove session (attr emgjax_schema={SCHEMA_NAME!r}) or an emg2pose session "
                f"(group '{EMG2POSE_GROUP}'), found neither",
            )
        self._session = session
        super().__init__(
            channels=channels, sample_rate=session.sample_rate, chunk_samples=chunk_samples, nan_fill=nan_fill
        )
        self.name = f"file {self.path.name}"
        self.realtime = bool(realtime)
        self._read_samples = self.chunk_samples if realtime else _positive_int("read_samples", read_samples)
        self._pacer = _Pacer(clock, sleep)
        self._position = 0
        self._last_time: float | None = None
        self._first_time: float | None = None

    def __len__(self) -> int:
        return len(self._session)

    def info(self) -> dict[str, Any]:
        board: dict[str, Any] = {"name": f"replay of {self.path.name}", "format": self.format}
        if isinstance(self._session, MindRoveSession):
            board["recorded_board"] = self._session.board
        return board

    def _start(self) -> None:
        pass

    def _read_block(self) -> Block | None:
        start = self._position
        stop = min(start + self._read_samples, len(self._session))
        if stop <= start:
            return None
        if isinstance(self._session, MindRoveSession):
            emg = self._session.read_emg(start, stop)
            times = self._session.timestamps[start:stop]
        else:
            record = self._session.read(start, stop)
            emg, times = record["emg"], record["time"]
        self._position = stop
        lost = lost_from_timestamps(times, self.sample_rate, self._last_time)
        if self._first_time is None:
            self._first_time = float(times[0])
        self._last_time = float(times[-1])
        if self.realtime:
            self._pacer.wait_until(float(times[-1]), self._first_time)
        return Block(emg, times, lost)

    def _stop(self) -> None:
        self._session.close()


class SyntheticSource(BlockSource):
    """Our synthetic generator (`emgjax.data.synthetic`) streamed at any channel count and rate.

    The generator simulates a 16-electrode ring at ≥ 1 kHz and an 8-electrode band decimated from it.
    At ``sample_rate`` ≥ 1000 Hz the 16-electrode view is generated at that rate; below, the 8-electrode
    view (anti-aliased decimation). Other channel counts are interpolated around the ring
    (`ring_resample_matrix`; 8 of 16 picks every other electrode exactly). Sessions of ``block_seconds``
    with seeds ``seed, seed + 1, ...`` are generated as needed and joined (the movement restarts at each
    join; the clock runs on without a gap). Powerline hum is left out when it would exceed Nyquist.

    Args:
      channels, sample_rate: the spec to generate (e.g. a model's input spec).
      chunk_samples: samples per chunk.
      seconds: stream length (None: endless).
      seed: first session seed.
      realtime: deliver chunks at the speed of the clock.
      start_time: timestamp of the first sample (seconds).
      config: base `SyntheticConfig` (duration and rates are set here).
    """

    def __init__(
        self,
        channels: int,
        sample_rate: float,
        *,
        chunk_samples: int,
        seconds: float | None = None,
        seed: int = 0,
        realtime: bool = False,
        start_time: float = 0.0,
        block_seconds: float = 10.0,
        config: SyntheticConfig | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ):
        super().__init__(channels=channels, sample_rate=sample_rate, chunk_samples=chunk_samples)
        self.name = f"synthetic {self.channels} ch at {self.sample_rate:g} Hz"
        self.total_samples = None if seconds is None else round(_positive_float("seconds", seconds) * self.sample_rate)
        if self.total_samples is not None and self.total_samples < 1:
            raise ValueError(f"seconds: expected at least one sample at {self.sample_rate:g} Hz, found {seconds!r}")
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed: expected a non-negative integer, found {seed!r}")
        self.seed = int(seed)
        self.realtime = bool(realtime)
        self.start_time = float(start_time)
        self.block_seconds = _positive_float("block_seconds", block_seconds)
        base = SyntheticConfig() if config is None else config
        if not isinstance(base, SyntheticConfig):
            raise ValueError(f"config: expected a SyntheticConfig, found {type(base).__name__}")
        rate = self.sample_rate
        if rate >= 1000.0:
            ratio = max(2, round(rate / 500.0))
            self._config = base.replace(emg_rate_hz=rate, mindrove_rate_hz=rate / ratio)
            self._view, view_channels = "emg_2k", 16
        else:
            self._config = base.replace(emg_rate_hz=rate * math.ceil(1000.0 / rate), mindrove_rate_hz=rate)
            self._view, view_channels = "emg_500", 8
        if self._config.hum_hz is not None and self._config.hum_hz >= self._config.mindrove_rate_hz / 2:
            self._config = self._config.replace(hum_hz=None)
        self._mix = None if view_channels == self.channels else ring_resample_matrix(view_channels, self.channels)
        self._produced = 0
        self._block_index = 0
        self._buffer = np.zeros((self.channels, 0))
        self._pacer = _Pacer(clock, sleep)

    def info(self) -> dict[str, Any]:
        return {"name": "emgjax synthetic generator", "seed": self.seed, "view": self._view}

    def _start(self) -> None:
        pass

    def _read_block(self) -> Block | None:
        remaining = None if self.total_samples is None else self.total_samples - self._produced
        if remaining is not None and remaining <= 0:
            return None
        if self._buffer.shape[1] == 0:
            self._buffer = self._next_session()
        k = self.chunk_samples if self.realtime else self._buffer.shape[1]
        k = k if remaining is None else min(k, remaining)
        while self._buffer.shape[1] < k:
            self._buffer = np.concatenate([self._buffer, self._next_session()], axis=1)
        emg, self._buffer = self._buffer[:, :k], self._buffer[:, k:]
        times = self.start_time + (self._produced + np.arange(k)) / self.sample_rate
        self._produced += k
        if self.realtime:
            self._pacer.wait_until(float(times[-1]), self.start_time)
        return Block(emg, times, np.zeros(k, np.int64))

    def _next_session(self) -> np.ndarray:
        """(channels, k) float64 µV of the next generated session."""
        config = self._config.replace(duration_s=self.block_seconds)
        session = generate_session(config, seed=self.seed + self._block_index)
        self._block_index += 1
        view = np.asarray(getattr(session, self._view), np.float64).T  # (view channels, k)
        view = view if self._mix is None else self._mix @ view
        self.on_block(session, view)
        return view

    def on_block(self, session: Any, view: np.ndarray) -> None:
        """Called with each generated session and its (channels, k) view before it streams.

        Does nothing here; a subclass keeps what it needs, e.g. the session's ground-truth labels.
        """


class SyntheticTruthSource(SyntheticSource):
    """`SyntheticSource` that also keeps each generated block's ground truth: camera-frame landmarks (mm),
    joint angles and detector confidence, on the source's clock (``truth``: a deque of
    ``(times (F,), landmarks (F, 21, 3), angles (F, 20), confidence (F,))``; whoever reads it pops it, so it
    stays small)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.truth: deque[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = deque()
        self._generated = 0

    def on_block(self, session: Any, view: np.ndarray) -> None:
        first = session.time_500[0] if self._view == "emg_500" else session.time_2k[0]
        offset = self.start_time + self._generated / self.sample_rate - float(first)
        self._generated += view.shape[1]
        self.truth.append(
            (session.frame_times + offset, session.landmarks_frames, session.angles_frames, session.confidence)
        )
