"""Camera sources for recording: a webcam, a video file, a folder of images, or a synthetic camera.

Every source yields `Frame`s: an RGB image ``(H, W, 3)`` uint8 and a timestamp in seconds on
``time.monotonic`` (system-wide on Linux, so other processes and the EMG recorder share it):

* a **webcam** (``"0"``, ``"1"``, ...) through OpenCV: the time the frame was read;
* a **video file** (``"video:PATH"``) or an **image folder** (``"images:DIR"``, sorted by name): the time the
  source was opened plus ``index / fps``; with ``realtime=True`` (recording) a frame is delivered when the
  clock reaches its timestamp, otherwise as fast as it is read;
* the **synthetic** camera (``"synthetic"``): a disc moving on a grey background at ``fps`` (tests, no OpenCV).

`open_camera` parses these specs. Bad input raises `CameraError` (a ``ValueError``): no camera at that index,
an unreadable video, an empty folder. OpenCV is needed for webcams and videos only; it comes with the
``record`` extra (MediaPipe's ``opencv-contrib-python``): ``pip install 'emgjax[record]'``.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

__all__ = [
    "Frame",
    "CameraError",
    "MissingExtraError",
    "CameraSource",
    "WebcamSource",
    "VideoFileSource",
    "ImageFolderSource",
    "SyntheticCamera",
    "open_camera",
    "require_cv2",
    "IMAGE_SUFFIXES",
]

Clock = Callable[[], float]
Sleep = Callable[[float], None]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


class CameraError(ValueError):
    """A camera source cannot deliver frames: no camera at that index, an unreadable video, an empty folder."""


class MissingExtraError(ModuleNotFoundError, ValueError):
    """An optional dependency of recording (OpenCV, MediaPipe) is not installed."""


def require_cv2(purpose: str) -> Any:
    """The ``cv2`` module, or `MissingExtraError` saying how to install it."""
    try:
        import cv2
    except ImportError:
        raise MissingExtraError(
            f"{purpose} needs OpenCV (cv2), which is not installed: pip install 'emgjax[record]'"
        ) from None
    return cv2


@dataclasses.dataclass(frozen=True)
class Frame:
    """One camera frame.

    Attributes:
      image: (H, W, 3) uint8 RGB.
      timestamp: seconds on ``time.monotonic`` (the recorder's clock).
      index: 0, 1, ... in the order the source delivered frames.
    """

    image: np.ndarray
    timestamp: float
    index: int


class CameraSource(abc.ABC):
    """Base of the camera sources: ``with source: for frame in source: ...``; `read` returns None at the end."""

    name: str = "camera"
    fps: float = 30.0

    def __init__(self, *, clock: Clock = time.monotonic, sleep: Sleep = time.sleep):
        self._clock, self._sleep = clock, sleep
        self._opened = False
        self._closed = False
        self._index = 0

    @abc.abstractmethod
    def _open(self) -> None:
        """Open the device or file; raise `CameraError` when it cannot deliver frames."""

    @abc.abstractmethod
    def _read(self) -> tuple[np.ndarray, float] | None:
        """The next (RGB image, timestamp), or None at the end."""

    def _close(self) -> None:  # noqa: B027 - sources without resources need no close
        """Release the device or file (called once)."""

    def info(self) -> dict[str, Any]:
        """What the frames come from, for the recording's metadata."""
        return {"name": self.name, "fps": self.fps}

    def open(self) -> None:
        if self._closed:
            raise CameraError(f"{self.name}: the source is closed; create a new one")
        if not self._opened:
            self._opened = True
            self._open()

    def read(self) -> Frame | None:
        self.open()
        got = self._read()
        if got is None:
            return None
        image, timestamp = got
        frame = Frame(image, float(timestamp), self._index)
        self._index += 1
        return frame

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._opened:
                self._close()

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.read()) is not None:
            yield frame

    def __enter__(self) -> CameraSource:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _positive_fps(value: float) -> float:
    fps = float(value)
    if not (math.isfinite(fps) and fps > 0):
        raise CameraError(f"fps: expected a positive frame rate, found {value!r}")
    return fps


class _TimedSource(CameraSource):
    """Frames at ``start + index / fps`` (the start is the clock at open); paced when ``realtime``."""

    def __init__(self, *, fps: float, realtime: bool, clock: Clock, sleep: Sleep):
        super().__init__(clock=clock, sleep=sleep)
        self.fps = _positive_fps(fps)
        self.realtime = bool(realtime)
        self._start: float | None = None

    def _stamp(self, index: int) -> float:
        if self._start is None:
            self._start = self._clock()
        when = self._start + index / self.fps
        if self.realtime:
            delay = when - self._clock()
            if delay > 0:
                self._sleep(delay)
        return when


class WebcamSource(CameraSource):
    """A webcam by index through OpenCV (frames stamped when read)."""

    def __init__(self, index: int = 0, *, clock: Clock = time.monotonic, sleep: Sleep = time.sleep):
        super().__init__(clock=clock, sleep=sleep)
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise CameraError(f"camera index: expected a non-negative integer, found {index!r}")
        self.index = index
        self.name = f"webcam {index}"
        self._capture: Any = None

    def _open(self) -> None:
        cv2 = require_cv2("a webcam")
        capture = cv2.VideoCapture(self.index)
        if not capture.isOpened():
            capture.release()
            raise CameraError(
                f"camera {self.index}: expected a camera at index {self.index}, found none (is one connected, and "
                "not in use by another program?); use --camera video:PATH, images:DIR or none"
            )
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if math.isfinite(fps) and fps > 0 else 30.0
        self._capture = capture

    def _read(self) -> tuple[np.ndarray, float] | None:
        ok, bgr = self._capture.read()
        stamp = self._clock()
        if not ok or bgr is None:
            return None
        return np.ascontiguousarray(bgr[:, :, ::-1]), stamp

    def _close(self) -> None:
        if self._capture is not None:
            self._capture.release()


class VideoFileSource(_TimedSource):
    """Frames of a video file (OpenCV) at the video's frame rate (or ``fps`` when the file has none)."""

    def __init__(
        self,
        path: str | Path,
        *,
        realtime: bool = False,
        fps: float | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ):
        super().__init__(fps=fps or 30.0, realtime=realtime, clock=clock, sleep=sleep)
        self.path = Path(path)
        self.name = f"video {self.path.name}"
        self._fps_given = fps is not None
        self._capture: Any = None
        self.frame_count = 0
        if not self.path.is_file():
            raise CameraError(f"{self.path}: video file does not exist")

    def _open(self) -> None:
        cv2 = require_cv2("reading a video file")
        capture = cv2.VideoCapture(str(self.path))
        ok, first = capture.read() if capture.isOpened() else (False, None)
        if not ok or first is None:
            capture.release()
            raise CameraError(f"{self.path}: expected a video OpenCV can read, found no readable frame")
        capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        if not self._fps_given and math.isfinite(fps) and fps > 0:
            self.fps = fps
        self.frame_count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self._capture = capture

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "fps": self.fps, "frames": self.frame_count}

    def _read(self) -> tuple[np.ndarray, float] | None:
        ok, bgr = self._capture.read()
        if not ok or bgr is None:
            return None
        return np.ascontiguousarray(bgr[:, :, ::-1]), self._stamp(self._index)

    def _close(self) -> None:
        if self._capture is not None:
            self._capture.release()


class ImageFolderSource(_TimedSource):
    """The images of a folder (png/jpg/bmp, sorted by name) as frames at ``fps``; read with Pillow."""

    def __init__(
        self,
        folder: str | Path,
        *,
        fps: float = 30.0,
        realtime: bool = False,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ):
        super().__init__(fps=fps, realtime=realtime, clock=clock, sleep=sleep)
        self.folder = Path(folder)
        self.name = f"images {self.folder.name}"
        if not self.folder.is_dir():
            raise CameraError(f"{self.folder}: expected a folder of images, found no such folder")
        self.files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise CameraError(
                f"{self.folder}: expected images ({', '.join(IMAGE_SUFFIXES)}), found none among "
                f"{sum(1 for _ in self.folder.iterdir())} entries"
            )

    def _open(self) -> None:
        pass

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.folder), "fps": self.fps, "frames": len(self.files)}

    def _read(self) -> tuple[np.ndarray, float] | None:
        if self._index >= len(self.files):
            return None
        from PIL import Image, UnidentifiedImageError  # Pillow comes with matplotlib

        path = self.files[self._index]
        try:
            with Image.open(path) as image:
                rgb = np.asarray(image.convert("RGB"), np.uint8)
        except (OSError, UnidentifiedImageError) as err:
            raise CameraError(f"{path}: expected an image Pillow can read: {err}") from None
        return rgb, self._stamp(self._index)


class SyntheticCamera(_TimedSource):
    """A disc circling on a grey background, ``width`` x ``height`` at ``fps`` (None ``seconds``: endless)."""

    def __init__(
        self,
        *,
        width: int = 160,
        height: int = 120,
        fps: float = 30.0,
        seconds: float | None = None,
        realtime: bool = False,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ):
        super().__init__(fps=fps, realtime=realtime, clock=clock, sleep=sleep)
        if width < 8 or height < 8:
            raise CameraError(f"synthetic camera: expected at least 8 x 8 pixels, found {width} x {height}")
        self.width, self.height = int(width), int(height)
        self.frames = None if seconds is None else max(1, round(float(seconds) * self.fps))
        self.name = "synthetic camera"
        yy, xx = np.mgrid[0:height, 0:width]
        self._yy, self._xx = yy.astype(np.float32), xx.astype(np.float32)

    def _open(self) -> None:
        pass

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "fps": self.fps, "width": self.width, "height": self.height}

    def render(self, index: int) -> np.ndarray:
        """(height, width, 3) uint8 of frame ``index``."""
        phase = 2.0 * math.pi * index / (2.0 * self.fps)  # one turn every 2 s
        cx = self.width * (0.5 + 0.3 * math.cos(phase))
        cy = self.height * (0.5 + 0.3 * math.sin(phase))
        radius = 0.12 * min(self.width, self.height)
        inside = (self._xx - cx) ** 2 + (self._yy - cy) ** 2 <= radius**2
        image = np.full((self.height, self.width, 3), 96, np.uint8)
        image[inside] = (224, 176, 144)
        return image

    def _read(self) -> tuple[np.ndarray, float] | None:
        if self.frames is not None and self._index >= self.frames:
            return None
        return self.render(self._index), self._stamp(self._index)


def open_camera(
    spec: str, *, realtime: bool = True, fps: float = 30.0, seconds: float | None = None
) -> CameraSource | None:
    """A camera source from a command-line spec: ``"0"`` (webcam index), ``"video:PATH"``, ``"images:DIR"``,
    ``"synthetic"`` or ``"none"`` (returns None). ``fps`` applies to image folders and the synthetic camera."""
    spec = str(spec).strip()
    if spec == "none":
        return None
    if spec == "synthetic":
        return SyntheticCamera(fps=fps, seconds=seconds, realtime=realtime)
    if spec.startswith("video:"):
        return VideoFileSource(spec[len("video:") :], realtime=realtime)
    if spec.startswith("images:"):
        return ImageFolderSource(spec[len("images:") :], fps=fps, realtime=realtime)
    if spec.isdigit():
        return WebcamSource(int(spec))
    raise CameraError(
        f"camera: expected a webcam index (0, 1, ...), video:PATH, images:DIR, synthetic or none, found {spec!r}"
    )
