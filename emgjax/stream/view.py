"""Live views of a pose stream: a terminal status line, a matplotlib window and a Rerun recording/viewer.

The streaming loop (`emgjax.stream.runner.run_stream`) hands every chunk to the view with `View.push`
(cheap: it keeps the newest pose and appends the EMG to a short ring buffer) and asks it to draw with
`View.render` only when a `Throttle` says so (at most ``max_hz`` times a second, and never more than
a quarter of the time: a slow draw pushes the next one further out), so drawing drops frames rather
than holding back acquisition.

What is drawn depends on the model's ``output_spec.what``:

* ``"joint_angles"`` (20 emg2pose angles, rad): landmarks by forward kinematics with
  `emgjax.kinematics.synthetic_hand_model` (our made-up hand), reordered into MediaPipe's layout;
* ``"joints"`` (21 × 3 MediaPipe landmarks, mm): drawn as they are;
* ``"mano_theta"`` (45 axis-angle values): no skeleton (that needs a MANO model); per-finger bend only.

`make_view` picks a view from the command line's choice and falls back to the terminal view (and says
why) when there is no display.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TextIO

import numpy as np

from emgjax.kinematics import FINGER_NAMES

__all__ = [
    "MEDIAPIPE_STRIPS",
    "Frame",
    "Throttle",
    "View",
    "ViewSetup",
    "PoseDisplay",
    "TerminalView",
    "MatplotlibView",
    "RerunView",
    "RerunMissingError",
    "VIEWS",
    "display_available",
    "make_view",
]

# MediaPipe's 21-landmark layout as polylines (wrist 0; thumb 1-4; index 5-8; middle 9-12; ring 13-16;
# pinky 17-20), the last one across the knuckles.
MEDIAPIPE_STRIPS: tuple[tuple[int, ...], ...] = (
    (0, 1, 2, 3, 4),
    (0, 5, 6, 7, 8),
    (9, 10, 11, 12),
    (13, 14, 15, 16),
    (0, 17, 18, 19, 20),
    (5, 9, 13, 17),
)
_MEDIAPIPE_TIPS = (4, 8, 12, 16, 20)
# MANO's 15 joints are ordered index, middle, pinky, ring, thumb (3 each); FINGER_NAMES is thumb..pinky.
_MANO_FINGER_JOINTS = {"thumb": (12, 13, 14), "index": (0, 1, 2), "middle": (3, 4, 5), "ring": (9, 10, 11)}
_MANO_FINGER_JOINTS["pinky"] = (6, 7, 8)


@dataclasses.dataclass(frozen=True)
class ViewSetup:
    """What a view needs to know before the stream starts.

    Attributes:
      what, shape: the model's ``output_spec.what`` and one pose's shape.
      channels, sample_rate: the EMG stream's.
      source: the source's name (for titles).
    """

    what: str
    shape: tuple[int, ...]
    channels: int
    sample_rate: float
    source: str


@dataclasses.dataclass(frozen=True)
class Frame:
    """One chunk as the view sees it.

    Attributes:
      time_s: stream time of the chunk's last sample (seconds since the first sample).
      emg: (channels, n) float32 raw EMG of the chunk.
      pose: the newest pose completed so far (``output_spec.shape``), or None before the first.
      poses: poses completed so far; chunks: chunks so far.
      latency_ms: this chunk's step time; fps: poses per wall second so far.
      gaps, nan_bursts: the source's counts so far.
    """

    time_s: float
    emg: np.ndarray
    pose: np.ndarray | None
    poses: int
    chunks: int
    latency_ms: float
    fps: float
    gaps: int
    nan_bursts: int


class View(Protocol):
    """A live view: `open` before streaming, `push` every chunk (cheap), `render` when throttled, `close`."""

    name: str

    def open(self, setup: ViewSetup) -> None: ...

    def push(self, frame: Frame) -> None: ...

    def render(self) -> None: ...

    def close(self) -> None: ...


class Throttle:
    """Decides when to draw: at most ``max_hz`` times a second, and at most ``budget`` of the wall time.

    `due` is True when the next draw may start; `done` records how long a draw took (a draw of d seconds
    moves the next one to at least d / budget later), so a slow view drops frames instead of slowing
    the stream down.
    """

    def __init__(self, max_hz: float = 20.0, *, budget: float = 0.25, clock: Callable[[], float] = time.perf_counter):
        if not (math.isfinite(max_hz) and max_hz > 0):
            raise ValueError(f"view rate: expected a positive number of Hz, found {max_hz!r}")
        self.interval = 1.0 / float(max_hz)
        self.budget = float(budget)
        self._clock = clock
        self._next = -math.inf
        self.rendered = 0
        self.dropped = 0
        self.render_s = 0.0

    def due(self) -> bool:
        if self._clock() >= self._next:
            return True
        self.dropped += 1
        return False

    def done(self, started: float) -> None:
        now = self._clock()
        took = max(now - started, 0.0)
        self.rendered += 1
        self.render_s += took
        self._next = started + max(self.interval, took / self.budget)

    def render(self, view: View) -> None:
        """Draw ``view`` now and record the time it took."""
        started = self._clock()
        view.render()
        self.done(started)


class PoseDisplay:
    """Turns one pose of any output kind into MediaPipe landmarks (mm) and a per-finger bend in [0, 1]."""

    def __init__(self, what: str, shape: tuple[int, ...]):
        self.what, self.shape = what, tuple(shape)
        expected = {"joint_angles": (20,), "joints": (21, 3), "mano_theta": (45,)}
        if what not in expected:
            raise ValueError(f"view: expected a model output of {sorted(expected)}, found {what!r}")
        if self.shape != expected[what]:
            raise ValueError(f"view: expected {what} poses of shape {expected[what]}, found {self.shape}")
        self._hand: Any = None
        if what in ("joint_angles", "joints"):
            from emgjax.kinematics import synthetic_hand_model

            self._hand = synthetic_hand_model()
            rest = self._fk(np.zeros(20, np.float32))  # also compiles FK before the stream starts
            self._rest_reach = np.linalg.norm(rest[list(_MEDIAPIPE_TIPS)] - rest[0], axis=-1)

    def _fk(self, angles: np.ndarray) -> np.ndarray:
        import jax.numpy as jnp

        from emgjax.kinematics import forward_kinematics
        from emgjax.kinematics.mediapipe import hand_model_to_mediapipe

        return np.asarray(hand_model_to_mediapipe(forward_kinematics(jnp.asarray(angles), self._hand), self._hand))

    @property
    def has_skeleton(self) -> bool:
        return self._hand is not None

    def landmarks(self, pose: np.ndarray) -> np.ndarray | None:
        """(21, 3) mm in MediaPipe order, or None for MANO theta."""
        if self.what == "joint_angles":
            return self._fk(np.asarray(pose, np.float32))
        if self.what == "joints":
            return np.asarray(pose, np.float32)
        return None

    def bend(self, pose: np.ndarray, landmarks: np.ndarray | None = None) -> dict[str, float]:
        """Per finger (thumb..pinky) 0 = straight, 1 = curled: fingertip reach from the wrist against the
        rest pose's (half the rest reach counts as fully curled); MANO: mean joint rotation / 90°."""
        if self.what == "mano_theta":
            theta = np.asarray(pose, np.float64).reshape(15, 3)
            norms = np.linalg.norm(theta, axis=-1)
            mean = {f: norms[list(_MANO_FINGER_JOINTS[f])].mean() for f in FINGER_NAMES}
            return {f: float(np.clip(m / (math.pi / 2), 0.0, 1.0)) for f, m in mean.items()}
        points = self.landmarks(pose) if landmarks is None else landmarks
        assert points is not None
        reach = np.linalg.norm(points[list(_MEDIAPIPE_TIPS)] - points[0], axis=-1)
        bend = np.clip((self._rest_reach - reach) / (0.5 * self._rest_reach), 0.0, 1.0)
        return dict(zip(FINGER_NAMES, (float(b) for b in bend), strict=True))


def _bar(value: float, width: int = 5) -> str:
    filled = round(value * width)
    return "#" * filled + "." * (width - filled)


class TerminalView:
    """One refreshing status line: stream time, poses, pose FPS, this chunk's latency, a bend bar per finger.

    On a terminal the line is redrawn in place (``\\r``); into a pipe or file a line is written at most
    once a second.
    """

    name = "terminal"

    def __init__(self, stream: TextIO | None = None):
        self.stream = sys.stderr if stream is None else stream
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._frame: Frame | None = None
        self._display: PoseDisplay | None = None
        self._last_line_time = -math.inf
        self._width = 0
        self.lines: list[str] = []  # every line drawn (the last one is the current status)

    def open(self, setup: ViewSetup) -> None:
        self._display = PoseDisplay(setup.what, setup.shape)

    def push(self, frame: Frame) -> None:
        self._frame = frame

    def status(self) -> str:
        frame = self._frame
        if frame is None:
            return "waiting for data"
        text = (
            f"t {frame.time_s:7.2f} s | {frame.poses} poses | {frame.fps:7.1f} poses/s | "
            f"latency {frame.latency_ms:6.2f} ms | gaps {frame.gaps} | NaN bursts {frame.nan_bursts}"
        )
        if frame.pose is not None and self._display is not None:
            bend = self._display.bend(frame.pose)
            text += " | " + " ".join(f"{f} {_bar(v)}" for f, v in bend.items())
        return text

    def render(self) -> None:
        line = self.status()
        self.lines.append(line)
        if self._tty:
            self.stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
            self.stream.flush()
        elif time.monotonic() - self._last_line_time >= 1.0:
            self._last_line_time = time.monotonic()
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self._tty and self._width:
            self.stream.write("\n")
            self.stream.flush()


class _EmgRing:
    """The last ``seconds`` of EMG, (channels, n), appended chunk by chunk."""

    def __init__(self, channels: int, sample_rate: float, seconds: float):
        self.data = np.zeros((channels, max(1, round(seconds * sample_rate))), np.float32)
        self.new = 0  # samples appended since the last `take_new`
        self._pending: list[np.ndarray] = []

    def append(self, emg: np.ndarray) -> None:
        n = min(emg.shape[1], self.data.shape[1])
        self.data = np.roll(self.data, -n, axis=1)
        self.data[:, -n:] = emg[:, -n:]
        self.new = min(self.new + emg.shape[1], self.data.shape[1])

    def take_new(self) -> np.ndarray:
        """(channels, k) samples appended since the last call (at most the ring's length)."""
        out = self.data[:, self.data.shape[1] - self.new :]
        self.new = 0
        return out


class MatplotlibView:
    """A window with the 3D hand skeleton and an EMG strip chart of the last ``seconds`` (needs a display)."""

    name = "matplotlib"

    def __init__(self, seconds: float = 2.0):
        self.seconds = float(seconds)
        self._frame: Frame | None = None
        self._plt: Any = None

    def open(self, setup: ViewSetup) -> None:
        import matplotlib.pyplot as plt

        self._plt = plt
        self._display = PoseDisplay(setup.what, setup.shape)
        self._ring = _EmgRing(setup.channels, setup.sample_rate, self.seconds)
        plt.ion()
        self.figure = plt.figure(f"emgjax stream: {setup.source}", figsize=(11, 5))
        self._hand_ax = self.figure.add_subplot(1, 2, 1, projection="3d")
        self._emg_ax = self.figure.add_subplot(1, 2, 2)
        self._bones = [self._hand_ax.plot([], [], [], "o-", lw=2, ms=3)[0] for _ in MEDIAPIPE_STRIPS]
        for setter in (self._hand_ax.set_xlim, self._hand_ax.set_ylim, self._hand_ax.set_zlim):
            setter(-120, 120)
        self._hand_ax.set_title("hand (FK, synthetic hand)" if setup.what == "joint_angles" else f"hand ({setup.what})")
        if not self._display.has_skeleton:
            self._hand_ax.text2D(0.05, 0.5, "no skeleton for MANO theta", transform=self._hand_ax.transAxes)
        t = np.arange(self._ring.data.shape[1]) / setup.sample_rate - self.seconds
        self._lines = [self._emg_ax.plot(t, np.zeros_like(t), lw=0.6)[0] for _ in range(setup.channels)]
        self._emg_ax.set_xlim(t[0], 0)
        self._emg_ax.set_ylim(-1, setup.channels)
        self._emg_ax.set_yticks(range(setup.channels))
        self._emg_ax.set_xlabel("seconds")
        self._emg_ax.set_title("EMG (per-channel scaled)")
        self._status = self.figure.suptitle("")
        plt.show(block=False)

    def push(self, frame: Frame) -> None:
        self._frame = frame
        self._ring.append(frame.emg)

    def render(self) -> None:
        frame = self._frame
        if frame is None:
            return
        data = self._ring.data
        scale = 3.0 * (np.abs(data).max(axis=1, keepdims=True) + 1e-6)
        for c, line in enumerate(self._lines):
            line.set_ydata(c + data[c] / scale[c])
        if frame.pose is not None and self._display.has_skeleton:
            points = self._display.landmarks(frame.pose)
            assert points is not None
            points = points - points[0]
            for strip, line in zip(MEDIAPIPE_STRIPS, self._bones, strict=True):
                line.set_data_3d(*points[list(strip)].T)
        self._status.set_text(
            f"t {frame.time_s:.1f} s   {frame.poses} poses   {frame.fps:.0f} poses/s   "
            f"latency {frame.latency_ms:.2f} ms   gaps {frame.gaps}   NaN bursts {frame.nan_bursts}"
        )
        self.figure.canvas.draw_idle()
        self.figure.canvas.flush_events()

    def close(self) -> None:
        if self._plt is not None:
            self._plt.ioff()
            self._plt.close(self.figure)


class RerunMissingError(ModuleNotFoundError, ValueError):
    """The optional ``rerun-sdk`` is not installed (a ValueError too, so commands print one line)."""


def _require_rerun() -> Any:
    try:
        import rerun
    except ImportError as err:
        raise RerunMissingError(
            f"the Rerun view needs rerun-sdk ({err}); install it with: pip install 'emgjax[view]'", name="rerun"
        ) from None
    return rerun


class RerunView:
    """Logs the stream to Rerun: the skeleton (``hand/bones``, ``hand/landmarks``), per-finger bend
    (``bend/<finger>``) and the EMG (``emg``, at most ``emg_hz`` samples a second per channel), on the
    ``stream_time`` timeline. ``spawn`` opens the Rerun viewer; ``save`` writes an ``.rrd`` file to replay
    later (``rerun FILE.rrd``)."""

    name = "rerun"

    def __init__(self, *, spawn: bool = True, save: str | os.PathLike[str] | None = None, emg_hz: float = 250.0):
        self.rr = _require_rerun()
        if not spawn and save is None:
            raise ValueError("rerun view: expected a viewer to spawn or a file to save (--save-rrd), found neither")
        self.spawn = bool(spawn)
        self.save = None if save is None else Path(save)
        if self.save is not None and (not self.save.parent.is_dir() or not os.access(self.save.parent, os.W_OK)):
            raise ValueError(f"--save-rrd: expected a file in a writable folder, found {self.save}")
        self.emg_hz = float(emg_hz)
        self._frame: Frame | None = None
        self.recording: Any = None

    def open(self, setup: ViewSetup) -> None:
        rr = self.rr
        self._display = PoseDisplay(setup.what, setup.shape)
        self._ring = _EmgRing(setup.channels, setup.sample_rate, 1.0)
        self._step = max(1, round(setup.sample_rate / self.emg_hz))
        self._rate = setup.sample_rate
        self.recording = rr.RecordingStream("emgjax_stream")
        sinks = []
        if self.spawn:
            rr.spawn(connect=False, recording=self.recording)
            sinks.append(rr.GrpcSink())
        if self.save is not None:
            sinks.append(rr.FileSink(str(self.save)))
        self.recording.set_sinks(*sinks)

    def push(self, frame: Frame) -> None:
        self._frame = frame
        self._ring.append(frame.emg)

    def render(self) -> None:
        rr, rec, frame = self.rr, self.recording, self._frame
        if frame is None:
            return
        emg = self._ring.take_new()
        if emg.shape[1]:
            times = frame.time_s - (emg.shape[1] - 1 - np.arange(emg.shape[1])) / self._rate
            keep = slice(None, None, self._step)
            rr.send_columns(
                "emg",
                indexes=[rr.TimeColumn("stream_time", duration=times[keep])],
                columns=rr.Scalars.columns(scalars=emg[:, keep].T.astype(np.float64)),
                recording=rec,
            )
        rr.set_time("stream_time", duration=frame.time_s, recording=rec)
        if frame.pose is not None:
            points = self._display.landmarks(frame.pose)
            if points is not None:
                rr.log("hand/landmarks", rr.Points3D(points, radii=3.0), recording=rec)
                rr.log("hand/bones", rr.LineStrips3D([points[list(s)] for s in MEDIAPIPE_STRIPS]), recording=rec)
            for finger, value in self._display.bend(frame.pose, points).items():
                rr.log(f"bend/{finger}", rr.Scalars(value), recording=rec)
        rr.log("stats/latency_ms", rr.Scalars(frame.latency_ms), recording=rec)

    def close(self) -> None:
        if self.recording is not None:
            self.recording.flush()
            self.recording.disconnect()
            self.recording = None


VIEWS = ("terminal", "matplotlib", "rerun")
_NON_INTERACTIVE = ("agg", "pdf", "ps", "svg", "cairo", "template", "module://matplotlib_inline.backend_inline")


def display_available() -> tuple[bool, str]:
    """(True, "") when a GUI window can open here, else (False, why)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False, "no display ($DISPLAY and $WAYLAND_DISPLAY are unset)"
    backend = os.environ.get("MPLBACKEND", "")
    if backend.lower() in _NON_INTERACTIVE:
        return False, f"the matplotlib backend {backend!r} (MPLBACKEND) cannot open a window"
    return True, ""


def make_view(
    choice: str | None, *, save_rrd: str | os.PathLike[str] | None = None, stream: TextIO | None = None
) -> tuple[View | None, str | None]:
    """The view for the command line's ``--view`` (None: the default) and a note when it fell back.

    Default: a matplotlib window when there is a display, else the terminal view; with ``save_rrd`` and no
    ``--view``, a Rerun recording (and the viewer when there is a display). Without a display, ``matplotlib``
    and a Rerun viewer fall back to the terminal view (a Rerun ``--save-rrd`` file is still written).
    """
    if choice is not None and choice not in VIEWS:
        raise ValueError(f"--view: expected one of {list(VIEWS)}, found {choice!r}")
    if save_rrd is not None and choice not in (None, "rerun"):
        raise ValueError(f"--save-rrd: expected with the Rerun view, found --view {choice}")
    shown, why = display_available()
    if choice == "rerun" or (choice is None and save_rrd is not None):
        if not shown and save_rrd is None:
            note = f"{why}: the Rerun viewer cannot open; terminal view instead (--save-rrd FILE saves a recording)"
            return TerminalView(stream), note
        view = RerunView(spawn=shown, save=save_rrd)
        return view, None if shown else f"{why}: no Rerun viewer; saving the recording to {save_rrd}"
    if choice == "terminal":
        return TerminalView(stream), None
    if shown:
        import matplotlib.pyplot as plt

        backend = str(plt.get_backend())  # pyplot falls back to Agg when no GUI toolkit can start
        if backend.lower() in _NON_INTERACTIVE:
            shown, why = False, f"the matplotlib backend {backend!r} cannot open a window"
    if not shown:
        return TerminalView(stream), f"{why}: terminal view instead of the matplotlib window"
    return MatplotlibView(), None
