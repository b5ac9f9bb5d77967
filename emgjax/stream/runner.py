"""Stream a source through a model bundle: `run_stream` and its `StreamReport`.

    model = emgjax.load_model(DIR)
    source = SyntheticSource(16, 2000.0, chunk_samples=model.default_chunk_samples)
    report = run_stream(model, source, seconds=10)
    print(report.format())

Before anything streams: the source is checked against ``model.input_spec`` (refused on a channel or rate
mismatch, resampled only with ``resample=True``), the recording file is created, and the model's step is
compiled on a chunk of zeros (that time is reported as ``compile_s``, not as a chunk's latency). Then every
chunk of raw EMG goes through ``model.stream_step`` (which filters and normalises it itself, with its
state carried), timed up to ``block_until_ready``. Ctrl-C (KeyboardInterrupt) stops the stream cleanly:
the source is closed, the recording flushed and closed, and the report covers what was streamed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, Protocol

import jax
import numpy as np

from emgjax.stream.preprocess import check_input_spec
from emgjax.stream.recorder import SessionRecorder
from emgjax.stream.sources import BlockSource, Chunk, SourceStats
from emgjax.stream.view import Frame, Throttle, View, ViewSetup

__all__ = ["StreamingModel", "StreamReport", "run_stream", "check_seconds", "open_recorder"]

StopReason = Literal["seconds", "end of source", "interrupted"]


class StreamingModel(Protocol):
    """What `run_stream` needs from a model (`emgjax.bundle.Model` has it)."""

    @property
    def kind(self) -> str: ...

    @property
    def input_spec(self) -> Any: ...  # .channels, .sample_rate, .units

    @property
    def output_spec(self) -> Any: ...  # .what, .shape

    @property
    def default_chunk_samples(self) -> int: ...

    @property
    def stream_rate(self) -> float: ...

    def init_stream(self, batch_size: int = 1, chunk_samples: int | None = None, initial_pose: Any = None) -> Any: ...

    def stream_step(self, state: Any, chunk: Any) -> tuple[Any, Any, Any]: ...


@dataclasses.dataclass
class StreamReport:
    """What a stream did.

    Attributes:
      source: the source's name; model_kind: the model's kind.
      sample_rate, chunk_samples: the stream's (after any resampling).
      chunks, poses: chunks streamed and valid poses they completed.
      compile_s: the first step on a chunk of zeros (compilation), before streaming.
      latencies_s: (chunks,) wall time of each chunk's step, up to block_until_ready.
      wall_s: wall time from the first chunk's arrival to the end of the last chunk's step (incl. waiting for data).
      stop: why the stream ended ("seconds", "end of source", "interrupted").
      stats: the source's `SourceStats` (gaps, NaN fills, stalls ...).
      recorded: the session file written (None: not recording); recorded_samples: its samples.
      view: the view's name (None: none); view_frames / view_dropped: frames drawn / skipped; view_s: drawing time.
      stream_rate: the model's poses per second of EMG.
    """

    source: str
    model_kind: str
    sample_rate: float
    chunk_samples: int
    chunks: int = 0
    poses: int = 0
    compile_s: float = 0.0
    latencies_s: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    wall_s: float = 0.0
    stop: StopReason = "end of source"
    stats: SourceStats = dataclasses.field(default_factory=SourceStats)
    recorded: Path | None = None
    recorded_samples: int = 0
    view: str | None = None
    view_frames: int = 0
    view_dropped: int = 0
    view_s: float = 0.0
    stream_rate: float = 0.0

    @property
    def emg_seconds(self) -> float:
        """Seconds of EMG streamed."""
        return self.chunks * self.chunk_samples / self.sample_rate

    @property
    def processing_s(self) -> float:
        return float(np.sum(self.latencies_s))

    @property
    def pose_fps(self) -> float:
        """Poses per wall second while streaming."""
        return self.poses / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def realtime_factor(self) -> float:
        """Seconds of EMG per second spent in the model's step (> 1: faster than real time)."""
        return self.emg_seconds / self.processing_s if self.processing_s > 0 else 0.0

    def latency_ms(self, q: float) -> float:
        """The ``q``-th percentile (0..100) of the per-chunk latency in ms (NaN before any chunk)."""
        return float(np.percentile(self.latencies_s, q) * 1e3) if self.latencies_s.size else math.nan

    def to_dict(self) -> dict[str, Any]:
        """The numbers, JSON-ready."""
        return {
            "source": self.source,
            "model_kind": self.model_kind,
            "sample_rate": self.sample_rate,
            "chunk_samples": self.chunk_samples,
            "chunks": self.chunks,
            "emg_seconds": self.emg_seconds,
            "poses": self.poses,
            "pose_fps": self.pose_fps,
            "latency_p50_ms": self.latency_ms(50),
            "latency_p99_ms": self.latency_ms(99),
            "latency_max_ms": self.latency_ms(100),
            "realtime_factor": self.realtime_factor,
            "compile_s": self.compile_s,
            "wall_s": self.wall_s,
            "stop": self.stop,
            "stats": dataclasses.asdict(self.stats),
            "recorded": None if self.recorded is None else str(self.recorded),
            "recorded_samples": self.recorded_samples,
            "view": self.view,
            "view_frames": self.view_frames,
            "view_dropped": self.view_dropped,
        }

    def format(self) -> str:
        """The report as printed by ``emgjax stream``."""
        stops = {"seconds": "--seconds reached", "end of source": "end of the source", "interrupted": "Ctrl-C"}
        chunk_ms = 1e3 * self.chunk_samples / self.sample_rate
        lines = [
            (
                f"streamed {self.emg_seconds:.2f} s of EMG from {self.source} through the {self.model_kind} model "
                f"({self.chunks} chunks of {self.chunk_samples} samples = {chunk_ms:.1f} ms; "
                f"stopped: {stops[self.stop]})"
            ),
            f"  poses          {self.poses} ({self.stream_rate:g} per second of EMG); pose FPS {self.pose_fps:.1f}",
            (
                f"  latency/chunk  p50 {self.latency_ms(50):.3f} ms, p99 {self.latency_ms(99):.3f} ms, "
                f"max {self.latency_ms(100):.3f} ms (compile before streaming: {self.compile_s:.2f} s)"
                if self.chunks
                else f"  latency/chunk  no chunk streamed (compile before streaming: {self.compile_s:.2f} s)"
            ),
            f"  real-time      {self.realtime_factor:.1f}x (EMG seconds per second of processing)",
            f"  source         {self.stats.gaps} gap(s) ({self.stats.lost_samples} samples lost), "
            f"{self.stats.nan_bursts} NaN burst(s) ({self.stats.filled_samples} samples filled)"
            + (
                f", {self.stats.stalls} stall(s), "
                f"{self.stats.reconnects}/{self.stats.reconnect_attempts} reconnection(s)"
                if self.stats.stalls or self.stats.reconnect_attempts
                else ""
            ),
        ]
        if self.recorded is not None:
            lines.append(f"  recorded       {self.recorded} ({self.recorded_samples} samples)")
        if self.view is not None:
            lines.append(
                f"  view           {self.view}: {self.view_frames} frames drawn, {self.view_dropped} skipped "
                f"({self.view_s:.2f} s drawing)"
            )
        return "\n".join(lines)


def check_seconds(seconds: Any) -> float | None:
    """None (stream until the source ends or Ctrl-C) or a positive finite number of seconds."""
    if seconds is None:
        return None
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        raise ValueError(f"seconds: expected a positive number of seconds, found {seconds!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"seconds: expected a positive number of seconds, found {seconds!r}")
    return value


def open_recorder(path: str | os.PathLike[str], source: BlockSource) -> SessionRecorder:
    """A `SessionRecorder` for ``source`` at ``path``, created now (so an unwritable path fails before streaming).

    Raises ValueError for an existing file or a path that cannot be created.
    """
    path = Path(path)
    if not str(path).strip() or path.is_dir():
        raise ValueError(f"record: expected a new .h5 file path, found {str(path)!r}")
    if path.exists():
        raise ValueError(f"record: expected a new file, found an existing {path} (remove it or choose another name)")
    try:
        return SessionRecorder.for_source(path, source)
    except OSError as err:
        raise ValueError(f"record: cannot create {path}: {err.strerror or err}") from None


@contextlib.contextmanager
def _interrupt_after() -> Iterator[None]:
    """Holds a Ctrl-C back until the block ends (then raises KeyboardInterrupt): interrupting JAX while it
    traces and compiles can leave the process to crash at exit."""
    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    asked: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: asked.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if asked:
        raise KeyboardInterrupt


def _spec_mapping(spec: Any) -> dict[str, Any]:
    return {"channels": int(spec.channels), "sample_rate": float(spec.sample_rate)}


def run_stream(
    model: StreamingModel,
    source: BlockSource,
    *,
    seconds: float | None = None,
    record: str | os.PathLike[str] | None = None,
    view: View | None = None,
    on_poses: Callable[[Chunk, np.ndarray], None] | None = None,
    resample: bool = False,
    view_hz: float = 20.0,
    clock: Callable[[], float] = time.perf_counter,
) -> StreamReport:
    """Stream ``source`` through ``model`` until ``seconds`` of EMG, the end of the source, or Ctrl-C.

    Args:
      model: a loaded bundle (`emgjax.load_model`) or anything with its streaming interface.
      source: a source made with ``chunk_samples=model.default_chunk_samples`` (any fixed size works).
      seconds: stop after the chunks that cover this much EMG (``ceil(seconds * rate / chunk_samples)``).
      record: save the raw EMG fed to the model (after any resampling) as a MindRove session file.
      view: a live view (`emgjax.stream.view`); drawn at most ``view_hz`` times a second.
      on_poses: called after each chunk that completed poses with the chunk and its (k, *pose_shape) poses.
      resample: resample a source whose rate differs from the model's (channel mismatches are always refused).
      clock: the timer (injectable for tests).

    Returns:
      a `StreamReport`. KeyboardInterrupt is caught (the report says ``stop="interrupted"``); source errors
      (e.g. `DeviceNotFoundError`, `DeviceLostError`) propagate after the source, recording and view are closed.
    """
    seconds = check_seconds(seconds)
    if not isinstance(source, BlockSource):
        raise ValueError(f"source: expected an emgjax.stream source, found {type(source).__name__}")
    try:
        source = check_input_spec(
            source, _spec_mapping(model.input_spec), resample=resample, chunk_samples=model.default_chunk_samples
        )
        recorder = None if record is None else open_recorder(record, source)
    except BaseException:
        source.close()
        raise
    n = source.chunk_samples
    max_chunks = None if seconds is None else max(1, math.ceil(seconds * source.sample_rate / n - 1e-9))
    report = StreamReport(
        source=source.name,
        model_kind=str(model.kind),
        sample_rate=source.sample_rate,
        chunk_samples=n,
        stats=source.stats,
        recorded=None if recorder is None else recorder.path,
        view=None if view is None else view.name,
        stream_rate=float(model.stream_rate),
    )
    latencies: list[float] = []
    throttle = Throttle(view_hz, clock=clock)
    view_opened = False
    try:
        # Compile on zeros with a throwaway state: the first real chunk then runs at steady-state speed.
        started = clock()
        with _interrupt_after():
            warm = model.init_stream(batch_size=1, chunk_samples=n)
            jax.block_until_ready(model.stream_step(warm, np.zeros((1, source.channels, n), np.float32)))
            report.compile_s = clock() - started
        state = model.init_stream(batch_size=1, chunk_samples=n)
        if view is not None:
            view.open(
                ViewSetup(
                    str(model.output_spec.what),
                    tuple(model.output_spec.shape),
                    source.channels,
                    source.sample_rate,
                    source.name,
                )
            )
            view_opened = True
        latest: np.ndarray | None = None
        drawn = False
        first_time: float | None = None
        stream_start: float | None = None
        report.stop = "end of source"
        while max_chunks is None or report.chunks < max_chunks:
            chunk = source.read_chunk()
            if chunk is None:
                break
            if stream_start is None:  # the wall clock starts with the first chunk, not the device's start-up
                stream_start = clock()
            if recorder is not None:
                recorder.append(chunk)
            started = clock()
            state, poses, valid = model.stream_step(state, chunk.emg[None])
            poses, valid = jax.block_until_ready((poses, valid))
            latencies.append(clock() - started)
            report.chunks += 1
            k = int(np.asarray(valid)[0].sum())
            if k:
                # (1, *shape, k_max) -> (k, *shape): the valid poses come first.
                new = np.moveaxis(np.asarray(poses)[0, ..., :k], -1, 0)
                report.poses += k
                latest = new[-1]
                if on_poses is not None:
                    on_poses(chunk, new)
            report.wall_s = clock() - stream_start
            if view is not None:
                first_time = float(chunk.timestamps[0]) if first_time is None else first_time
                view.push(
                    Frame(
                        time_s=float(chunk.timestamps[-1]) - first_time,
                        emg=chunk.emg,
                        pose=latest,
                        poses=report.poses,
                        chunks=report.chunks,
                        latency_ms=latencies[-1] * 1e3,
                        fps=report.pose_fps,
                        gaps=report.stats.gaps,
                        nan_bursts=report.stats.nan_bursts,
                    )
                )
                drawn = throttle.due()
                if drawn:
                    throttle.render(view)
        else:
            report.stop = "seconds"
        if view is not None and report.chunks and not drawn:
            throttle.render(view)  # the end of the stream is shown (and saved, for a Rerun recording)
    except KeyboardInterrupt:
        report.stop = "interrupted"
    finally:
        report.latencies_s = np.asarray(latencies)
        report.view_frames, report.view_dropped, report.view_s = throttle.rendered, throttle.dropped, throttle.render_s
        try:
            source.close()
        finally:
            if recorder is not None:
                recorder.close()
                report.recorded_samples = recorder.samples_written
            if view is not None and view_opened:
                view.close()
    return report
