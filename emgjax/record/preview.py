"""The live preview while recording: the camera frame with its landmarks and a strip chart of the EMG.

`open_preview` returns None (with the reason logged) where no window can open — a headless machine, a
non-interactive matplotlib backend — so recording goes on without it (``--no-view`` skips it outright).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

import numpy as np

from emgjax.record.camera import Frame
from emgjax.record.labels import HandLabel

__all__ = ["LivePreview", "open_preview", "display_available"]

logger = logging.getLogger(__name__)

_NON_INTERACTIVE = {"agg", "pdf", "ps", "svg", "pgf", "cairo", "template", "module://matplotlib_inline.backend_inline"}


def display_available() -> tuple[bool, str]:
    """(True, "") where a preview window can open, else (False, why)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False, "no display (DISPLAY/WAYLAND_DISPLAY unset)"
    import matplotlib

    backend = str(matplotlib.get_backend()).lower()
    if backend in _NON_INTERACTIVE:
        return False, f"matplotlib backend {backend!r} cannot open windows"
    return True, ""


class LivePreview:
    """A matplotlib window: the latest camera frame with its landmarks, and the last ``seconds`` of EMG.

    Args:
      sample_rate, channels: of the EMG shown.
      seconds: width of the strip chart.
      every_s: redraw at most this often (drawing must not hold up acquisition).
    """

    def __init__(self, sample_rate: float, channels: int, *, seconds: float = 3.0, every_s: float = 0.1):
        import matplotlib.pyplot as plt

        self._plt = plt
        plt.ion()
        self.fig, (self.ax_img, self.ax_emg) = plt.subplots(1, 2, figsize=(10, 4))
        self.ax_img.set_axis_off()
        self._image: Any = None
        (self._points,) = self.ax_img.plot([], [], "o", color="lime", markersize=3)
        n = max(2, round(seconds * sample_rate))
        self._ring = np.zeros((channels, n), np.float32)
        x = np.arange(n) / sample_rate - seconds
        self._lines = [self.ax_emg.plot(x, self._ring[c] + 200.0 * c, linewidth=0.6)[0] for c in range(channels)]
        self.ax_emg.set_xlabel("seconds")
        self.ax_emg.set_yticks([])
        self.ax_emg.set_ylim(-200.0, 200.0 * channels)
        self.every_s = float(every_s)
        self._last = 0.0
        self._label: HandLabel | None = None

    def update(self, frame: Frame | None, labels: list[HandLabel], emg: np.ndarray) -> None:
        """Add an EMG chunk (channels, n) and the latest frame/labels; redraws at most every ``every_s``."""
        n = min(emg.shape[1], self._ring.shape[1])
        self._ring = np.roll(self._ring, -n, axis=1)
        self._ring[:, -n:] = emg[: self._ring.shape[0], -n:]
        if labels:
            self._label = labels[-1]
        now = time.monotonic()
        if now - self._last < self.every_s:
            return
        self._last = now
        for c, line in enumerate(self._lines):
            line.set_ydata(self._ring[c] - self._ring[c].mean() + 200.0 * c)
        if frame is not None:
            if self._image is None:
                self._image = self.ax_img.imshow(frame.image)
            else:
                self._image.set_data(frame.image)
            height, width = frame.image.shape[:2]
            if self._label is not None and self._label.found:
                self._points.set_data(
                    self._label.image_landmarks[:, 0] * width, self._label.image_landmarks[:, 1] * height
                )
            else:
                self._points.set_data([], [])
        self.fig.canvas.draw_idle()
        self._plt.pause(0.001)

    def close(self) -> None:
        self._plt.close(self.fig)


def open_preview(sample_rate: float, channels: int) -> LivePreview | None:
    """A `LivePreview`, or None (logged) where no window can open."""
    ok, why = display_available()
    if not ok:
        logger.warning("no live preview: %s; recording without it (pass --no-view to skip this check)", why)
        return None
    try:
        return LivePreview(sample_rate, channels)
    except Exception as err:  # a GUI toolkit that fails to start must not stop the recording
        logger.warning("no live preview: the window could not open (%s); recording without it", err)
        return None
