"""What a recording reads from, chosen and checked once for ``emgjax record`` and ``emgjax calibrate``.

`choose_labels` settles ``--labels`` (MediaPipe with a camera, none without, or the synthetic source's
ground truth) and checks it against the source and camera, MediaPipe included, before anything is opened;
`open_inputs` then opens the EMG source (`emgjax.stream.open_source`), the camera, the labeller factory and
the live preview, and `RecordingInputs.record` runs `record_session` on them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emgjax.record.camera import CameraSource, open_camera
from emgjax.record.labels import Labeller, MediaPipeLabeller, require_mediapipe
from emgjax.record.recorder import RecordingStats, record_session
from emgjax.stream.factory import open_source
from emgjax.stream.sources import BlockSource

__all__ = ["RECORD_SOURCES", "LABELS", "RecordingInputs", "choose_labels", "open_inputs"]

# The live sources a recording can read (a file is replayed with `emgjax stream`, not recorded again).
RECORD_SOURCES = ("mindrove", "synthetic-board", "synthetic")
LABELS = ("mediapipe", "synthetic", "none")


def choose_labels(labels: str | None, *, source: str, camera: str) -> str:
    """The hand labels to record: ``labels``, or (None) ``mediapipe`` with a camera and ``none`` without.

    Raises ValueError for an unknown source or labels, synthetic labels from another source than
    ``synthetic``, MediaPipe labels without a camera; `emgjax.record.MissingExtraError` when MediaPipe
    labels are chosen and MediaPipe is not installed (a one-line install hint).
    """
    if source not in RECORD_SOURCES:
        raise ValueError(f"--source: expected one of {RECORD_SOURCES}, found {source!r}")
    chosen = labels or ("mediapipe" if camera != "none" else "none")
    if chosen not in LABELS:
        raise ValueError(f"--labels: expected one of {LABELS}, found {chosen!r}")
    if chosen == "synthetic" and source != "synthetic":
        raise ValueError(f"--labels synthetic: expected --source synthetic (its ground truth), found {source}")
    if chosen == "mediapipe":
        if camera == "none":
            raise ValueError("--labels mediapipe: expected a --camera, found none")
        require_mediapipe()  # before opening anything: a missing extra is a one-line error
    return chosen


def _mediapipe_video() -> Labeller:
    return MediaPipeLabeller(static_image_mode=False)  # tracking between frames of one video stream


@dataclasses.dataclass
class RecordingInputs:
    """The opened inputs of a recording.

    Attributes:
      source: the EMG source (not started); camera: the camera (None: none);
      labeller: the factory of the camera's labeller (None: no camera labels);
      synthetic_labels: store the synthetic source's ground truth; preview: the live view (None: headless).
    """

    source: BlockSource
    camera: CameraSource | None
    labeller: Callable[[], Labeller] | None
    synthetic_labels: bool
    preview: Any = None

    def record(self, out: str | Path, **kwargs: Any) -> RecordingStats:
        """`record_session` into ``out`` from these inputs (``kwargs``: its other arguments); the preview is
        closed at the end, the source and camera by `record_session`."""
        try:
            return record_session(
                out,
                self.source,
                camera=self.camera,
                labeller=self.labeller,
                synthetic_labels=self.synthetic_labels,
                preview=self.preview,
                **kwargs,
            )
        finally:
            if self.preview is not None:
                self.preview.close()


def open_inputs(
    source: str,
    camera: str,
    labels: str,
    *,
    view: bool = False,
    chunk_samples: int = 20,
    channels: int = 8,
    sample_rate: float = 500.0,
    seed: int = 0,
    realtime: bool = True,
    fps: float = 30.0,
) -> RecordingInputs:
    """Open the inputs of a recording: ``labels`` as `choose_labels` returned it, ``camera`` as
    `emgjax.record.open_camera` reads it (``fps``: of an image folder or the synthetic camera), the source
    by name (``channels`` and ``sample_rate``: the synthetic source's; ``realtime=False``: it generates as
    fast as possible), ``view``: the live preview window."""
    camera_source = open_camera(camera, realtime=True, fps=fps)
    emg = open_source(
        source,
        chunk_samples=chunk_samples,
        channels=channels,
        sample_rate=sample_rate,
        seed=seed,
        realtime=realtime,
        truth=labels == "synthetic",
    )
    preview = None
    if view:
        from emgjax.record.preview import open_preview

        preview = open_preview(emg.sample_rate, min(emg.channels, 8))
    return RecordingInputs(
        source=emg,
        camera=camera_source,
        labeller=_mediapipe_video if labels == "mediapipe" else None,
        synthetic_labels=labels == "synthetic",
        preview=preview,
    )
