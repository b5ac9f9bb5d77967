"""Record a training session: EMG from a source, camera frames, hand labels and gesture prompts, written
incrementally into our MindRove session format (`emgjax.data.mindrove`).

Threads: the EMG source is read in the calling thread, which is also the only one writing the file; the
camera runs in its own thread (frames stamped on ``time.monotonic``), hand labelling in a third
(`LabelWorker`, bounded queue: frames are dropped and counted when it falls behind, never EMG), and the IK
pseudo-labels (joint angles of the confident frames, fitted in batches at each flush) in a fourth: a fit
(the first of a batch size compiles for seconds) never holds up the EMG or the flushes.

Clock. Every stream is stored on ``time.monotonic`` seconds. EMG sources stamp their own sample clock
(the MindRove SDK's host time, the synthetic generator's from 0, a replayed file's); the recorder maps it
onto the monotonic clock with one offset taken when the first chunk arrives, so the EMG keeps its sample
spacing and gaps. A timestamp that goes backwards (a clock jump) is never written as is: an EMG chunk is
shifted to start one sample period after the last stored sample, a camera frame is skipped; both are
counted (``clock_jumps_emg``, ``clock_jumps_camera`` in the ``recording_stats`` attribute) and logged.

Crash safety. Every stream is created before recording starts (the file's structure does not change while
it grows) and the file is flushed every ``flush_every_s`` (default 0.5 s): a SIGKILL loses at most the
unflushed tail and the file opens and reads (tested). HDF5's SWMR mode was considered and not used: after a
crash a SWMR file opens only in SWMR-read mode (plain readers refuse it until ``h5clear``), and no dataset can
be created once SWMR writing has started. A failed write (disk full, a vanished drive) stops the recording
with an ``OSError`` naming the file; what was flushed before stays readable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import platform
import queue
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emgjax.record.camera import CameraSource, Frame, require_cv2
from emgjax.record.labels import (
    MIN_CONFIDENCE,
    HandLabel,
    Labeller,
    LabelRows,
    LabelWorker,
    joint_angles_from_landmarks,
    stack_labels,
)
from emgjax.stream.recorder import SessionRecorder
from emgjax.stream.sources import BlockSource, Chunk, SyntheticTruthSource

__all__ = [
    "DEFAULT_GESTURES",
    "PromptSchedule",
    "RecordingStats",
    "LiveRecorder",
    "SyntheticTruthSource",
    "record_session",
    "software_versions",
]

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
DEFAULT_GESTURES = ("rest", "fist", "open hand", "pinch", "point", "thumbs up", "spread fingers", "wrist flex")
LABEL_STREAMS = ("landmarks", "image_landmarks", "joint_angles", "ik_error")


def software_versions() -> dict[str, str]:
    """Versions of the software that made a recording (for its metadata)."""
    import h5py

    from emgjax._version import __version__

    versions = {
        "emgjax": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "h5py": h5py.version.version,
        "hdf5": h5py.version.hdf5_version,
    }
    from importlib import metadata

    for dist in ("mediapipe", "opencv-contrib-python", "opencv-python", "mindrove"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    return versions


@dataclasses.dataclass
class RecordingStats:
    """What a recording saw (stored as JSON in the ``recording_stats`` attribute at every flush).

    Attributes:
      emg_samples: EMG samples written.
      camera_frames: frames received from the camera (after clock-jump checks).
      labelled_frames: label rows written; hand_frames: those with a confident hand.
      dropped_frames: frames the labeller could not take (it was behind).
      clock_jumps_emg, clock_jumps_camera: timestamps that went backwards (EMG shifted, frames skipped).
      prompts: prompts completed.
      flushes: flushes so far; max_flush_interval_s / mean_flush_interval_s: measured between flushes.
      ik_frames: frames with IK pseudo-labels.
    """

    emg_samples: int = 0
    camera_frames: int = 0
    labelled_frames: int = 0
    hand_frames: int = 0
    dropped_frames: int = 0
    clock_jumps_emg: int = 0
    clock_jumps_camera: int = 0
    prompts: int = 0
    flushes: int = 0
    max_flush_interval_s: float = 0.0
    mean_flush_interval_s: float = 0.0
    ik_frames: int = 0

    def summary(self) -> str:
        coverage = f" ({self.hand_frames / self.labelled_frames:.0%} with a hand)" if self.labelled_frames else ""
        return (
            f"{self.emg_samples} EMG samples, {self.camera_frames} camera frames, {self.labelled_frames} labelled"
            f"{coverage}, {self.dropped_frames} dropped by the labeller, "
            f"{self.clock_jumps_emg + self.clock_jumps_camera} clock jump(s), {self.prompts} prompt(s), "
            f"flushed {self.flushes} times (max interval {self.max_flush_interval_s:.2f} s)"
        )


class LiveRecorder(SessionRecorder):
    """`SessionRecorder` that keeps a recording's `RecordingStats` in the file and measures flush intervals.

    Args:
      path, sample_rate, channels, board, streams, attrs, overwrite, hand: as `SessionRecorder`.
      flush_every_s: the longest time between flushes (`due` says when one is due).
      clock: measures flush intervals.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        sample_rate: float,
        channels: int,
        board: dict[str, Any],
        streams: Sequence[str] = (),
        attrs: dict[str, Any] | None = None,
        flush_every_s: float = 0.5,
        overwrite: bool = False,
        hand: str = "right",
        clock: Clock = time.monotonic,
    ):
        super().__init__(
            path,
            sample_rate=sample_rate,
            channels=channels,
            board=board,
            flush_every_s=flush_every_s,
            overwrite=overwrite,
            subject_id="recorded",
            session_id=Path(path).stem,
            hand=hand,
            streams=streams,
            attrs=attrs,
        )
        self.live = RecordingStats()
        self._clock = clock
        self._last_flush: float | None = None
        self.flush()

    def flush(self) -> None:
        """Store the statistics and flush to disk; measures the interval since the last flush."""
        if self.closed:
            return
        now = self._clock()
        if self._last_flush is not None:
            interval = now - self._last_flush
            stats = self.live
            stats.max_flush_interval_s = max(stats.max_flush_interval_s, interval)
            stats.mean_flush_interval_s += (interval - stats.mean_flush_interval_s) / (stats.flushes + 1)
            stats.flushes += 1
        self._last_flush = now
        self.set_attrs({"recording_stats": json.dumps(dataclasses.asdict(self.live))})
        super().flush()

    def restart_flush_clock(self) -> None:
        """Measure flush intervals from now (e.g. the first EMG chunk, after the source's start-up)."""
        self._last_flush = self._clock()

    def due(self) -> bool:
        """Whether ``flush_every_s`` has passed since the last flush."""
        return self._last_flush is None or self._clock() - self._last_flush >= self.flush_every_s


class PromptSchedule:
    """A terminal sequence of gestures, each shown for ``seconds_each``; completed prompts become rows."""

    def __init__(
        self,
        gestures: Sequence[str] = DEFAULT_GESTURES,
        *,
        seconds_each: float = 4.0,
        show: Callable[[str], None] = print,
    ):
        if not gestures:
            raise ValueError("prompts: expected at least one gesture, found none")
        if not (math.isfinite(seconds_each) and seconds_each > 0):
            raise ValueError(f"prompt seconds: expected a positive number, found {seconds_each!r}")
        self.gestures = tuple(str(g) for g in gestures)
        self.seconds_each = float(seconds_each)
        self._show = show
        self._current: tuple[int, float] | None = None  # (gesture index, start time)
        self._count = 0

    @property
    def current(self) -> str | None:
        return None if self._current is None else self.gestures[self._current[0]]

    def update(self, now: float) -> list[tuple[int, float, float]]:
        """Advance to ``now``; returns the prompts that ended: (gesture index, start, duration)."""
        done = []
        if self._current is not None and now - self._current[1] >= self.seconds_each:
            done.append((self._current[0], self._current[1], now - self._current[1]))
            self._current = None
        if self._current is None:
            index = self._count % len(self.gestures)
            self._count += 1
            self._current = (index, now)
            self._show(f"PROMPT {self._count}: {self.gestures[index]} ({self.seconds_each:g} s)")
        return done

    def finish(self, now: float) -> list[tuple[int, float, float]]:
        """End the current prompt (at the end of the recording)."""
        if self._current is None or now <= self._current[1]:
            return []
        index, start = self._current
        self._current = None
        return [(index, start, now - start)]


class _CameraThread:
    """Reads the camera in its own thread: checks each frame's clock, writes the video, feeds the labeller."""

    def __init__(self, camera: CameraSource, worker: LabelWorker | None, video_path: Path | None):
        self.camera = camera
        self.worker = worker
        self.video_path = video_path
        self.frames: queue.Queue[tuple[int, float]] = queue.Queue()  # (video frame index, timestamp)
        self.latest: Frame | None = None
        self.clock_jumps = 0
        self.error: BaseException | None = None
        self.ended = threading.Event()
        self._stop = threading.Event()
        self._writer: Any = None
        self._written = 0
        self._thread = threading.Thread(target=self._run, name="emgjax-camera", daemon=True)

    def open(self) -> None:
        self.camera.open()  # open errors (no camera, unreadable video) surface here, before recording

    def start(self) -> None:
        self._thread.start()

    def _video(self, frame: Frame) -> None:
        if self.video_path is None:
            return
        cv2 = require_cv2("recording the camera's video")
        if self._writer is None:
            height, width = frame.image.shape[:2]
            self._writer = cv2.VideoWriter(
                str(self.video_path), cv2.VideoWriter_fourcc(*"MJPG"), float(self.camera.fps), (width, height)
            )
            if not self._writer.isOpened():
                raise OSError(f"{self.video_path}: cannot write the video (OpenCV's MJPG writer refused the file)")
        self._writer.write(np.ascontiguousarray(frame.image[:, :, ::-1]))

    def _run(self) -> None:
        last = -math.inf
        try:
            while not self._stop.is_set():
                frame = self.camera.read()
                if frame is None:
                    break
                if not frame.timestamp > last:
                    self.clock_jumps += 1
                    logger.warning(
                        "%s: frame %d's timestamp %.6f is not after the previous %.6f (clock jump); frame skipped",
                        self.camera.name,
                        frame.index,
                        frame.timestamp,
                        last,
                    )
                    continue
                last = frame.timestamp
                self._video(frame)
                self.frames.put((self._written, frame.timestamp))
                self._written += 1
                self.latest = frame
                if self.worker is not None:
                    self.worker.submit(frame)
        except BaseException as err:
            self.error = err
        finally:
            self.ended.set()

    def drain(self) -> list[tuple[int, float]]:
        out = []
        while True:
            try:
                out.append(self.frames.get_nowait())
            except queue.Empty:
                return out

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5.0)
        self.camera.close()
        if self._writer is not None:
            self._writer.release()


def _write_labels(recorder: LiveRecorder, rows: LabelRows, *, ik_buffer: list[LabelRows] | None) -> None:
    """Append labelled frames: world landmarks (mm, confidence 0 without a hand) and image landmarks."""
    if not len(rows):
        return
    recorder.append_rows("landmarks", rows.world_landmarks, rows.timestamps, confidence=rows.confidence)
    recorder.append_rows(
        "image_landmarks", rows.image_landmarks, rows.timestamps, handedness=rows.handedness, hand_found=rows.found
    )
    stats = recorder.live
    stats.labelled_frames += len(rows)
    stats.hand_frames += int(np.count_nonzero((rows.found > 0) & (rows.confidence > MIN_CONFIDENCE)))
    if ik_buffer is not None:
        ik_buffer.append(rows)


class _IKWorker:
    """Fits joint angles to batches of confident label frames in its own thread (`joint_angles_from_landmarks`):
    the first fit of a batch size compiles for seconds, and the EMG loop must keep writing and flushing
    meanwhile, and compiling holds it up anyway (measured: 10-15 s without a flush on a loaded 2-core machine).
    So every fit has the one shape (`BATCH` frames), compiled here before the recording starts. Results come
    back in order, through `drain`; a failing fit stops the fitting (logged), the landmarks stay."""

    BATCH = 16  # confident frames per fit: a flush interval's worth at 30 fps

    def __init__(self, hand: str):
        self.hand = hand
        self.failed = False
        self._warm_up()
        self._todo: queue.Queue[tuple[np.ndarray, np.ndarray] | None] = queue.Queue()
        self._done: queue.Queue[tuple[np.ndarray, np.ndarray, np.ndarray]] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="emgjax-ik", daemon=True)
        self._thread.start()

    def submit(self, buffer: list[LabelRows]) -> None:
        """Queue the confident frames of the buffered label rows (and empty the buffer)."""
        times = [rows.timestamps[(rows.found > 0) & (rows.confidence > MIN_CONFIDENCE)] for rows in buffer]
        landmarks = [rows.world_landmarks[(rows.found > 0) & (rows.confidence > MIN_CONFIDENCE)] for rows in buffer]
        buffer.clear()
        if times and sum(t.size for t in times) and not self.failed:
            self._todo.put((np.concatenate(times), np.concatenate(landmarks)))

    def _warm_up(self) -> None:
        """Compile the fit for `BATCH` frames (on the mean pose of the synthetic hand, in mm)."""
        from emgjax.kinematics import synthetic_hand_model
        from emgjax.kinematics.ik import mean_pose, model_landmarks

        model = synthetic_hand_model()
        pose = np.asarray(model_landmarks(mean_pose(model), model), np.float32)
        joint_angles_from_landmarks(np.broadcast_to(pose, (self.BATCH, *pose.shape)), self.hand, batch=self.BATCH)

    def _run(self) -> None:
        while (batch := self._todo.get()) is not None:
            times, landmarks = batch
            try:
                angles, error = joint_angles_from_landmarks(landmarks, self.hand, batch=self.BATCH)
            except Exception as err:  # never stop the recording for a pseudo-label
                logger.warning("IK failed (%s): landmarks are stored, joint angles no longer fitted", err)
                self.failed = True
                return
            self._done.put((times, angles, error))

    def drain(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The fits finished so far: (times (F,), angles (F, 20), fit error (F,)) each, in order."""
        out = []
        while True:
            try:
                out.append(self._done.get_nowait())
            except queue.Empty:
                return out

    def close(self, timeout_s: float = 120.0) -> None:
        """Finish the queued fits (at most ``timeout_s``)."""
        self._todo.put(None)
        self._thread.join(timeout_s)


def _write_ik(recorder: LiveRecorder, fits: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
    """Append finished IK fits; frames the fit could not explain (NaN error) carry no angle label."""
    for times, angles, error in fits:
        fitted_ok = np.isfinite(error)
        recorder.append_rows("joint_angles", angles[fitted_ok], times[fitted_ok])
        recorder.append_rows("ik_error", error[fitted_ok], times[fitted_ok])
        recorder.live.ik_frames += int(fitted_ok.sum())


def record_session(
    out: str | Path,
    source: BlockSource,
    *,
    camera: CameraSource | None = None,
    labeller: Callable[[], Labeller] | None = None,
    synthetic_labels: bool = False,
    seconds: float | None = None,
    prompts: PromptSchedule | None = None,
    video_path: str | Path | None = None,
    preview: Any = None,
    flush_every_s: float = 0.5,
    overwrite: bool = False,
    hand: str = "right",
    max_label_queue: int = 4,
    clock: Clock = time.monotonic,
    stop: threading.Event | None = None,
    log: Callable[[str], None] = print,
) -> RecordingStats:
    """Record until ``seconds`` of EMG (or the source ends, ``stop`` is set, or Ctrl-C), writing as it goes.

    Args:
      out: the session file (``.hdf5``) to create.
      source: the EMG source (any channel count, stored as it comes; its IMU rows too), started here.
      camera: frames to label and/or save (None: no camera).
      labeller: a factory of the `Labeller` run on camera frames (e.g. `MediaPipeLabeller`); None: no labels
        from the camera.
      synthetic_labels: store the ground-truth landmarks and joint angles of a `SyntheticTruthSource`.
      seconds: EMG duration to record (None: until stopped).
      prompts: gesture prompts shown in the terminal and stored.
      video_path: save the camera's frames as an MJPG video (so labels can be recomputed with ``emgjax label``).
      preview: an object with ``update(frame, labels, emg)`` (the live view), or None.
      flush_every_s: the longest time between flushes to disk.
    Returns:
      the recording's `RecordingStats`.
    Raises:
      OSError: the file cannot be created or written (what was flushed stays readable).
    """
    out = Path(out)
    if synthetic_labels and not isinstance(source, SyntheticTruthSource):
        raise ValueError("labels synthetic: expected the synthetic EMG source (--source synthetic), found another")
    if synthetic_labels and labeller is not None:
        raise ValueError("labels: expected either synthetic labels or a camera labeller, found both")
    if labeller is not None and camera is None:
        raise ValueError("labels: a camera labeller needs a camera (--camera), found --camera none")
    if video_path is not None and camera is None:
        raise ValueError("video: saving the camera's video needs a camera (--camera), found --camera none")
    if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"seconds: expected a positive duration, found {seconds!r}")
    recording = _Recording(
        out,
        source,
        camera=camera,
        labeller=labeller,
        synthetic_labels=synthetic_labels,
        samples_target=None if seconds is None else round(seconds * source.sample_rate),
        prompts=prompts,
        video_path=None if video_path is None else Path(video_path),
        preview=preview,
        hand=hand,
        clock=clock,
        log=log,
    )
    return recording.run(flush_every_s=flush_every_s, overwrite=overwrite, max_label_queue=max_label_queue, stop=stop)


def _layout(
    source: BlockSource,
    *,
    camera: CameraSource | None,
    labeller: Callable[[], Labeller] | None,
    synthetic_labels: bool,
    prompts: PromptSchedule | None,
    video_path: Path | None,
    flush_every_s: float,
) -> tuple[list[str], dict[str, Any]]:
    """The streams a recording creates before it starts (the file's structure never changes while it grows:
    crash safety) and its root attributes (metadata)."""
    streams: list[str] = []
    if labeller is not None:
        streams += ["landmarks", "image_landmarks"]
    elif synthetic_labels:
        streams += ["landmarks", "joint_angles"]
    if camera is not None:
        streams.append("camera_frames")
    if prompts is not None:
        streams.append("prompts")
    if source.has_imu:
        streams.append("imu")
    attrs: dict[str, Any] = {
        "recorder": "emgjax record",
        "software": json.dumps(software_versions(), sort_keys=True),
        "clock": "time.monotonic seconds (EMG mapped onto it at the first chunk)",
        "emg_units": source.units,
        "flush_every_s": float(flush_every_s),
        "labels_source": "synthetic ground truth" if synthetic_labels else (labeller and "camera") or "none",
    }
    if source.has_imu:
        attrs["imu_sample_rate"] = source.sample_rate  # IMU rows come with every EMG sample
    if camera is not None:
        attrs["camera"] = json.dumps(camera.info(), sort_keys=True, default=str)
    if video_path is not None:
        attrs["video_file"] = str(video_path)
    if prompts is not None:
        attrs["prompt_gestures"] = json.dumps(list(prompts.gestures))
    return streams, attrs


class _Recording:
    """The state of one `record_session` run: the recorder, the camera thread, the label worker, the EMG
    clock mapping and the IK buffer; `run` opens them, loops over EMG chunks and closes them."""

    def __init__(
        self,
        out: Path,
        source: BlockSource,
        *,
        camera: CameraSource | None,
        labeller: Callable[[], Labeller] | None,
        synthetic_labels: bool,
        samples_target: int | None,
        prompts: PromptSchedule | None,
        video_path: Path | None,
        preview: Any,
        hand: str,
        clock: Clock,
        log: Callable[[str], None],
    ):
        self.out, self.source, self.camera, self.labeller = out, source, camera, labeller
        self.synthetic_labels, self.samples_target, self.prompts = synthetic_labels, samples_target, prompts
        self.video_path, self.preview, self.hand, self.clock, self.log = video_path, preview, hand, clock, log
        self.worker: LabelWorker | None = None
        self.cam_thread: _CameraThread | None = None
        self.recorder: LiveRecorder | None = None
        self.ik_buffer: list[LabelRows] | None = [] if labeller is not None else None
        self.ik: _IKWorker | None = None
        self.offset: float | None = None  # source clock -> monotonic clock, set at the first chunk
        self.last_t = -math.inf

    def run(
        self, *, flush_every_s: float, overwrite: bool, max_label_queue: int, stop: threading.Event | None
    ) -> RecordingStats:
        source = self.source
        try:
            recorder = self._open(flush_every_s, overwrite, max_label_queue)
            camera = f", {self.camera.name}" if self.camera else ""
            self.log(f"recording to {self.out} ({source.name}{camera}); Ctrl-C stops")
            try:
                while self.samples_target is None or recorder.samples_written < self.samples_target:
                    if stop is not None and stop.is_set():
                        break
                    chunk = source.read_chunk()
                    if chunk is None:
                        break
                    self._step(recorder, chunk)
            except KeyboardInterrupt:
                self.log("stopped (Ctrl-C); closing the file")
        except OSError as err:
            written = self.recorder.samples_written / source.sample_rate if self.recorder is not None else 0.0
            raise OSError(
                f"{self.out}: recording stopped, cannot write ({err}); {written:.1f} s of EMG were recorded and "
                "what was flushed before the failure stays readable"
            ) from None
        finally:
            self._close()
        return recorder.live

    def _open(self, flush_every_s: float, overwrite: bool, max_label_queue: int) -> LiveRecorder:
        """Start the source, the labeller and the camera (their errors surface before the file exists), then
        create the file with every stream it will hold."""
        source = self.source
        streams, attrs = _layout(
            source,
            camera=self.camera,
            labeller=self.labeller,
            synthetic_labels=self.synthetic_labels,
            prompts=self.prompts,
            video_path=self.video_path,
            flush_every_s=flush_every_s,
        )
        source.start()
        if self.labeller is not None:
            self.worker = LabelWorker(self.labeller, max_queue=max_label_queue)
            self.ik = _IKWorker(self.hand)
            attrs["labeller"] = str(getattr(self.worker, "name", "camera labeller"))
        if self.camera is not None:
            self.cam_thread = _CameraThread(self.camera, self.worker, self.video_path)
            self.cam_thread.open()
        board = dict(source.info())
        board.setdefault("name", source.name)
        self.recorder = LiveRecorder(
            self.out,
            sample_rate=source.sample_rate,
            channels=source.channels,
            board=board,
            streams=streams,
            attrs=attrs,
            flush_every_s=flush_every_s,
            overwrite=overwrite,
            hand=self.hand,
            clock=self.clock,
        )
        self.recorder.stats = source.stats
        return self.recorder

    def _step(self, recorder: LiveRecorder, chunk: Chunk) -> None:
        """One EMG chunk: write it, then whatever the camera, the labeller and the prompts have ready."""
        if self.offset is None:
            self.offset = self.clock() - float(chunk.timestamps[-1])
            recorder.restart_flush_clock()  # flush intervals are measured from the first EMG
            self.log("EMG is flowing")
            if self.cam_thread is not None:
                self.cam_thread.start()
        chunk = self._write_emg(recorder, chunk, self.offset)
        if self.synthetic_labels:
            _write_truth(recorder, self.source, self.offset, self.last_t)
        if self.cam_thread is not None:
            if self.cam_thread.error is not None:
                raise self.cam_thread.error
            self._write_camera_frames(recorder, self.cam_thread)
        labels: list[HandLabel] = []
        if self.worker is not None:
            labels = self.worker.drain()
            _write_labels(recorder, stack_labels(labels), ik_buffer=self.ik_buffer)
            recorder.live.dropped_frames = self.worker.dropped
        if self.prompts is not None:
            _write_prompts(recorder, self.prompts.update(self.clock()))
        if self.ik is not None:
            _write_ik(recorder, self.ik.drain())
            if recorder.due() and self.ik_buffer:
                self.ik.submit(self.ik_buffer)  # fitted in the IK thread, written when done
        if recorder.due():
            recorder.flush()
        if self.preview is not None:
            self.preview.update(None if self.cam_thread is None else self.cam_thread.latest, labels, chunk.emg)

    def _write_emg(self, recorder: LiveRecorder, chunk: Chunk, offset: float) -> Chunk:
        """Map the chunk onto the monotonic clock (a clock jump back shifts it to one sample period after the
        last sample), cut it at the target length and append it; returns the chunk as written."""
        times = chunk.timestamps + offset
        if times[0] <= self.last_t:
            recorder.live.clock_jumps_emg += 1
            shift = self.last_t + 1.0 / self.source.sample_rate - times[0]
            logger.warning("EMG clock went back by %.6f s at sample %d; chunk shifted", shift, recorder.samples_written)
            self.offset = offset + shift
            times = times + shift
        chunk = dataclasses.replace(chunk, timestamps=times)
        if self.samples_target is not None:
            chunk = chunk.head(min(chunk.samples, self.samples_target - recorder.samples_written))
        recorder.append(chunk)
        self.last_t = float(chunk.timestamps[-1])
        recorder.live.emg_samples = recorder.samples_written
        return chunk

    @staticmethod
    def _write_camera_frames(recorder: LiveRecorder, cam_thread: _CameraThread) -> None:
        frames = cam_thread.drain()
        if frames:
            index = np.array([f[0] for f in frames], np.float32)
            recorder.append_rows("camera_frames", index, np.array([f[1] for f in frames]))
            recorder.live.camera_frames += len(frames)
        recorder.live.clock_jumps_camera = cam_thread.clock_jumps

    def _close(self) -> None:
        """Stop the camera and the labeller, close the source, write what they still held, flush, close."""
        if self.cam_thread is not None:
            self.cam_thread.stop()
        if self.worker is not None:
            self.worker.close(wait=self.recorder is not None)
        self.source.close()
        recorder = self.recorder
        if recorder is None:
            if self.ik is not None:
                self.ik.close()
            return
        with contextlib.suppress(OSError):  # a failed disk: keep what was flushed, report the first error
            if self.worker is not None:
                _write_labels(recorder, stack_labels(self.worker.drain()), ik_buffer=self.ik_buffer)
            if self.cam_thread is not None:
                self._write_camera_frames(recorder, self.cam_thread)
            if self.prompts is not None:
                _write_prompts(recorder, self.prompts.finish(self.clock()))
            if self.ik is not None:
                if self.ik_buffer:
                    self.ik.submit(self.ik_buffer)
                self.ik.close()
                _write_ik(recorder, self.ik.drain())
            recorder.flush()
        with contextlib.suppress(OSError):
            recorder.close()


def _write_prompts(recorder: LiveRecorder, done: list[tuple[int, float, float]]) -> None:
    """Append the prompts that ended: (gesture index, start, duration) each."""
    for index, start, duration in done:
        recorder.append_rows("prompts", np.array([index], np.float32), np.array([start]), duration=np.array([duration]))
        recorder.live.prompts += 1


def _write_truth(recorder: LiveRecorder, source: BlockSource, offset: float, until: float) -> None:
    """Append the synthetic ground-truth label frames up to the last EMG time."""
    assert isinstance(source, SyntheticTruthSource)
    while source.truth:
        times, landmarks, angles, confidence = source.truth[0]
        mapped = times + offset
        n = int(np.searchsorted(mapped, until, side="right"))
        if n == 0:
            return
        recorder.append_rows("landmarks", landmarks[:n], mapped[:n], confidence=confidence[:n])
        recorder.append_rows("joint_angles", angles[:n], mapped[:n])
        recorder.live.labelled_frames += n
        recorder.live.hand_frames += int(np.count_nonzero(confidence[:n] > MIN_CONFIDENCE))
        if n == times.size:
            source.truth.popleft()
        else:
            source.truth[0] = (times[n:], landmarks[n:], angles[n:], confidence[n:])
            return
