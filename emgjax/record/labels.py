"""Hand labels from camera frames: MediaPipe Hands in a worker thread that never blocks EMG acquisition.

`MediaPipeLabeller` runs MediaPipe's bundled hand models (``mediapipe==0.10.14``, the legacy
``mp.solutions.hands.Hands``, fully offline) on one RGB frame and returns a `HandLabel`: 21 image landmarks
(x, y in [0, 1] of the frame, z relative depth), 21 world landmarks in **millimetres** (MediaPipe gives
metres, origin near the hand's centre), handedness and a confidence (MediaPipe's handedness score).
A frame without a hand is kept: zeros, confidence 0, ``found=False`` (the session format holds no NaN;
its readers mask frames with confidence <= 0.5).

`LabelWorker` labels frames in a thread behind a bounded queue: `LabelWorker.submit` never waits; when
the labeller falls behind, the frame is dropped and counted (``dropped``), never the EMG.

IK pseudo-labels: `joint_angles_from_landmarks` is the one hook from landmarks to emg2pose's 20 joint
angles and a per-frame fit error, through ``emgjax.kinematics.fit_angles``.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from emgjax.data.mindrove import NUM_LANDMARKS
from emgjax.record.camera import Frame, MissingExtraError

__all__ = [
    "HandLabel",
    "Labeller",
    "MediaPipeLabeller",
    "LabelWorker",
    "LabelRows",
    "stack_labels",
    "require_mediapipe",
    "joint_angles_from_landmarks",
    "MIN_CONFIDENCE",
]

logger = logging.getLogger(__name__)

MIN_CONFIDENCE = 0.5  # the original project's rule (and MindRoveSession's default): frames at or below are masked


@dataclasses.dataclass(frozen=True)
class HandLabel:
    """The hand found in one frame (or its absence).

    Attributes:
      timestamp: the frame's time (seconds, ``time.monotonic``).
      image_landmarks: (21, 3) float32, x and y in [0, 1] of the frame width/height, z relative depth.
      world_landmarks: (21, 3) float32 millimetres, MediaPipe order.
      handedness: +1 right, -1 left, 0 no hand.
      confidence: detector score in [0, 1] (0 without a hand).
      found: a hand was detected.
    """

    timestamp: float
    image_landmarks: np.ndarray
    world_landmarks: np.ndarray
    handedness: float
    confidence: float
    found: bool

    @classmethod
    def missing(cls, timestamp: float) -> HandLabel:
        zeros = np.zeros((NUM_LANDMARKS, 3), np.float32)
        return cls(float(timestamp), zeros, zeros, 0.0, 0.0, False)


class Labeller(Protocol):
    """Labels one frame: ``labeller(image (H, W, 3) uint8 RGB, timestamp) -> HandLabel``."""

    name: str

    def __call__(self, image: np.ndarray, timestamp: float) -> HandLabel: ...

    def close(self) -> None: ...


def require_mediapipe() -> Any:
    """The ``mediapipe`` module with its legacy Hands solution, or `MissingExtraError` saying how to install it."""
    try:
        import mediapipe as mp
    except ImportError:
        raise MissingExtraError(
            "hand labels need MediaPipe, which is not installed: pip install 'emgjax[record]' "
            "(mediapipe==0.10.14, the last release that ships its hand models); or record with --labels none"
        ) from None
    if not hasattr(getattr(mp, "solutions", None), "hands"):
        raise MissingExtraError(
            f"hand labels need MediaPipe 0.10.14 (legacy mp.solutions.hands with bundled models), found mediapipe "
            f"{getattr(mp, '__version__', '?')} without it: pip install 'emgjax[record]'"
        )
    return mp


class MediaPipeLabeller:
    """MediaPipe Hands (legacy solution API, bundled models, offline) on one hand per frame.

    Args:
      static_image_mode: detect in every frame (True) or track between frames (False, faster on video).
      model_complexity: 0 (lite) or 1 (full).
      min_detection_confidence, min_tracking_confidence: MediaPipe's thresholds.
    """

    name = "mediapipe"

    def __init__(
        self,
        *,
        static_image_mode: bool = False,
        model_complexity: int = 1,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
    ):
        mp = require_mediapipe()
        self.version = str(getattr(mp, "__version__", "?"))
        self._hands = mp.solutions.hands.Hands(
            static_image_mode=static_image_mode,
            max_num_hands=1,
            model_complexity=model_complexity,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence,
        )

    def __call__(self, image: np.ndarray, timestamp: float) -> HandLabel:
        result = self._hands.process(np.ascontiguousarray(image, np.uint8))
        if not result.multi_hand_landmarks or not result.multi_hand_world_landmarks:
            return HandLabel.missing(timestamp)
        image_lm = np.array([(p.x, p.y, p.z) for p in result.multi_hand_landmarks[0].landmark], np.float32)
        world_lm = np.array([(p.x, p.y, p.z) for p in result.multi_hand_world_landmarks[0].landmark], np.float32)
        handedness, score = 0.0, 1.0
        if result.multi_handedness:
            best = result.multi_handedness[0].classification[0]
            handedness = 1.0 if best.label.lower() == "right" else -1.0
            score = float(best.score)
        return HandLabel(float(timestamp), image_lm, world_lm * 1000.0, handedness, score, True)

    def close(self) -> None:
        self._hands.close()


class LabelWorker:
    """Labels frames in a background thread behind a bounded queue.

    `submit` never blocks: a full queue drops the frame (counted in ``dropped``). `drain` returns the labels
    finished so far, in frame order. `close` stops the thread after the queued frames (or at once with
    ``wait=False``).

    Args:
      labeller: a `Labeller` (e.g. `MediaPipeLabeller`); built in the worker thread when given as a factory
        (MediaPipe graphs are best used from the thread that made them).
      max_queue: frames waiting at most.
    """

    def __init__(self, labeller: Callable[[], Labeller], *, max_queue: int = 4):
        self._queue: queue.Queue[Frame | None] = queue.Queue(maxsize=max(1, int(max_queue)))
        self._results: queue.Queue[HandLabel] = queue.Queue()
        self._factory = labeller
        self.submitted = 0
        self.dropped = 0
        self.labelled = 0
        self.error: BaseException | None = None
        self.seconds_per_frame = 0.0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="emgjax-labeller", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            labeller = self._factory()
        except BaseException as err:
            self.error = err
            self._ready.set()
            return
        self._ready.set()
        try:
            while (frame := self._queue.get()) is not None:
                start = time.perf_counter()
                self._results.put(labeller(frame.image, frame.timestamp))
                spent = time.perf_counter() - start
                self.labelled += 1
                self.seconds_per_frame += (spent - self.seconds_per_frame) / self.labelled
        except BaseException as err:  # reported by drain(): the recording stops with this error
            self.error = err
        finally:
            labeller.close()

    def submit(self, frame: Frame) -> bool:
        """Queue a frame for labelling; False (and counted) when the labeller is behind and it was dropped."""
        self.submitted += 1
        try:
            self._queue.put_nowait(frame)
        except queue.Full:
            self.dropped += 1
            return False
        return True

    def drain(self) -> list[HandLabel]:
        """The labels finished since the last call; raises the worker's error if it failed."""
        if self.error is not None:
            raise self.error
        out: list[HandLabel] = []
        while True:
            try:
                out.append(self._results.get_nowait())
            except queue.Empty:
                return out

    def close(self, *, wait: bool = True, timeout_s: float = 10.0) -> None:
        if not wait:
            while True:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
        try:
            self._queue.put(None, timeout=timeout_s)
        except queue.Full:
            return
        self._thread.join(timeout_s)


@dataclasses.dataclass(frozen=True)
class LabelRows:
    """Stacked `HandLabel`s, ready for the session's label streams.

    Attributes:
      timestamps: (M,) float64.
      image_landmarks, world_landmarks: (M, 21, 3) float32 (world in mm).
      handedness, confidence, found: (M,) float32.
    """

    timestamps: np.ndarray
    image_landmarks: np.ndarray
    world_landmarks: np.ndarray
    handedness: np.ndarray
    confidence: np.ndarray
    found: np.ndarray

    def __len__(self) -> int:
        return int(self.timestamps.shape[0])


def stack_labels(labels: list[HandLabel]) -> LabelRows:
    """`LabelRows` of a list of labels (in their order)."""
    m = len(labels)
    if m == 0:
        empty = np.zeros((0, NUM_LANDMARKS, 3), np.float32)
        return LabelRows(np.zeros(0), empty, empty, np.zeros(0, np.float32), np.zeros(0, np.float32), np.zeros(0))
    return LabelRows(
        timestamps=np.array([x.timestamp for x in labels], np.float64),
        image_landmarks=np.stack([x.image_landmarks for x in labels]).astype(np.float32),
        world_landmarks=np.stack([x.world_landmarks for x in labels]).astype(np.float32),
        handedness=np.array([x.handedness for x in labels], np.float32),
        confidence=np.array([x.confidence for x in labels], np.float32),
        found=np.array([x.found for x in labels], np.float32),
    )


def joint_angles_from_landmarks(
    landmarks_mm: np.ndarray, hand: str = "right", *, batch: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """IK pseudo-labels: MediaPipe world landmarks → emg2pose's 20 joint angles and per-frame fit error.

    The one hook from landmarks to angles (recorder and ``emgjax label``): `emgjax.kinematics.fit_angles`
    against the hand model (``EMGJAX_HAND_MODEL`` if set, else the synthetic hand), with a per-session
    scale. A left hand is mirrored (x → −x) into the right hand model's frame first.

    Args:
      landmarks_mm: (F, 21, 3) millimetres, MediaPipe order, confident frames only.
      hand: "left" or "right".
      batch: fit the hand frames in calls of exactly ``batch`` frames (the last padded with missing frames,
        which take no part in the fit), so every call has the one shape compiled (the live recorder); None:
        all in one call (one scale for all frames).
    Returns:
      (angles (F, 20) radians, fit_error_mm (F,)); frames the fit could not explain get NaN.
    """
    import os

    from emgjax.kinematics import HAND_MODEL_ENV, fit_angles, load_hand_model, synthetic_hand_model

    hand_model = load_hand_model() if os.environ.get(HAND_MODEL_ENV) else synthetic_hand_model()
    landmarks = np.asarray(landmarks_mm, np.float32)
    if hand == "left":
        landmarks = landmarks * np.array([-1.0, 1.0, 1.0], np.float32)
    # Frames without a hand are stored as zeros (the format refuses NaN): they get NaN, not a fit.
    has_hand = np.isfinite(landmarks).all(axis=(-2, -1)) & (np.abs(landmarks).max(axis=(-2, -1)) > 0)
    angles = np.full((*landmarks.shape[:-2], 20), np.nan, np.float32)
    error = np.full(landmarks.shape[:-2], np.nan, np.float32)
    index = np.flatnonzero(has_hand.reshape(-1))
    flat_lm = landmarks.reshape(-1, *landmarks.shape[-2:])
    flat_angles, flat_error = angles.reshape(-1, 20), error.reshape(-1)
    size = index.size if batch is None else batch
    for start in range(0, index.size, max(size, 1)):
        part = index[start : start + size]
        frames = np.full((size, *flat_lm.shape[1:]), np.nan, np.float32)
        frames[: part.size] = flat_lm[part]
        try:
            fitted, fit_error = fit_angles(frames, hand_model, units="mm")
        except ValueError as err:  # landmarks no hand could make (e.g. a degenerate detection): no labels
            logger.warning("IK skipped %d frame(s): %s", part.size, err)
        else:
            flat_angles[part] = np.asarray(fitted)[: part.size]
            flat_error[part] = np.asarray(fit_error)[: part.size]
    return flat_angles.reshape(angles.shape), flat_error.reshape(error.shape)
