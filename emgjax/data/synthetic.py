"""Realistic synthetic EMG -> hand-pose sessions (no download needed).

One underlying simulation yields two views of the same movement:

* **emg2pose view**: 16 ring electrodes at 2 kHz, 20 joint angles per sample
  (with optional injected IK-failure segments, all-zero rows, as in emg2pose).
* **MindRove view**: an 8-electrode band with its own placement on the same
  forearm, decimated to 500 Hz with an anti-alias filter, plus 30 fps camera
  frames: MediaPipe-ordered landmarks (mm) from forward kinematics of the
  angles, per-frame detector confidence, and the angles at frame times.

The simulation, in order (all vectorised NumPy/SciPy; see docs/synthetic_data.md):

1. **Joint angles** (20, emg2pose order): a sequence of gestures (rest, fist,
   point, pinch, open, spread, random poses) joined by minimum-jerk
   transitions, DIP ~= 2/3 PIP coupling, neighbouring-finger coupling in
   random poses, 8-12 Hz physiological tremor, clipped to ``JOINT_LIMITS``.
2. **Muscle activations**: ``n_muscles`` muscles driven by angles and angular
   velocities through a fixed random 2-layer network (softplus output, with
   per-finger structure) plus co-contraction, then first-order activation
   dynamics (``activation_tau_s``). The network and the muscles' positions
   depend only on ``model_seed``: every session shares the same physiology.
3. **EMG**: each muscle's activation scales its own band-limited Gaussian
   noise (20-450 Hz; deeper muscles are broader in space and poorer in high
   frequencies); muscles sit at angles around the forearm and project onto
   ring electrodes with von Mises spatial weights. Per session: a random ring
   rotation of each band, electrode gains and offsets, sensor noise and
   powerline hum (fundamental + 3rd harmonic).

``model_seed`` fixes the physiology; the session ``seed`` fixes the movement,
band placement, gains and noise. ``user`` (0 = the physiology above, unchanged)
draws a simulated person from (model_seed, user): systematic band placement
(rotation) and along-the-forearm shift, muscle depth and position (the
muscle-to-electrode mixing), skin gain per electrode, a perturbed activation
map and a hand size (scales the landmarks), each scaled by
``user_variation``. Both views are bitwise deterministic per (config, seed, user).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as _dt
import functools
import math
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import scipy.signal

from emgjax.config import Config
from emgjax.data import signal as _signal
from emgjax.data.emg2pose import JOINT_NAMES  # the one definition of emg2pose's joint order
from emgjax.data.emg2pose import METADATA_COLUMNS as _EMG2POSE_COLUMNS

__all__ = [
    "JOINT_NAMES",
    "JOINT_LIMITS",
    "GESTURES",
    "SyntheticConfig",
    "SyntheticSession",
    "generate_session",
    "landmarks_from_angles",
    "session_diagnostics",
    "learnability_report",
    "session_splits",
    "heldout_user_count",
    "write_synthetic_dataset",
    "METADATA_COLUMNS",
    "main",
]


# Plausible ranges of motion (radians) the generator stays within; each lies
# inside the synthetic hand model's own limits. Sign conventions follow
# emgjax.kinematics.synthetic_hand_model: FE > 0 curls toward the palm; AA > 0
# spreads a finger away from the middle finger (index/middle toward the thumb);
# thumb CMC_FE > 0 sweeps across the palm, CMC_AA > 0 lifts off the palm.
_THUMB_LIMITS = ((-0.30, 0.85), (-0.15, 0.95), (-0.15, 0.95), (-0.25, 1.30))
_FINGER_LIMITS = ((-0.30, 0.33), (-0.30, 1.55), (0.0, 1.70), (-0.05, 1.15))  # MCP_AA, MCP_FE, PIP_FE, DIP_FE
JOINT_LIMITS: np.ndarray = np.array(_THUMB_LIMITS + _FINGER_LIMITS * 4, dtype=np.float64)
JOINT_LIMITS.setflags(write=False)

_THUMB = slice(0, 4)
_AA = np.array([4, 8, 12, 16])
_MCP = np.array([5, 9, 13, 17])
_PIP = np.array([6, 10, 14, 18])
_DIP = np.array([7, 11, 15, 19])
_FE_JOINTS = np.array([0, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15, 17, 18, 19])
_DIP_PER_PIP = 2.0 / 3.0  # DIP/PIP coupling of the long fingers

# Gestures as (thumb CMC_FE, CMC_AA, MCP_FE, IP_FE), MCP_AA, MCP_FE, PIP_FE
# per long finger (index, middle, ring, pinky). DIP follows PIP.
GESTURES: dict[str, tuple[tuple[float, ...], ...]] = {
    "rest": ((0.25, 0.35, 0.20, 0.25), (0.05, 0.02, 0.03, 0.08), (0.30, 0.35, 0.40, 0.45), (0.40, 0.45, 0.50, 0.55)),
    "open": ((0.00, 0.15, 0.05, 0.05), (0.05, 0.02, 0.03, 0.06), (0.05, 0.04, 0.06, 0.08), (0.08, 0.06, 0.08, 0.10)),
    "spread": ((-0.20, 0.50, 0.00, 0.00), (0.26, 0.06, 0.15, 0.28), (0.00, 0.00, 0.03, 0.05), (0.05, 0.04, 0.05, 0.06)),
    "fist": ((0.60, 0.30, 0.70, 0.80), (-0.05, 0.00, -0.05, -0.10), (1.40, 1.45, 1.48, 1.48), (1.55, 1.60, 1.60, 1.55)),
    "point": ((0.50, 0.30, 0.60, 0.70), (0.02, 0.00, -0.05, -0.10), (0.05, 1.40, 1.45, 1.48), (0.08, 1.55, 1.60, 1.55)),
    # Pinch: thumb and index fingertips ~3 mm apart with the synthetic hand model.
    "pinch": ((0.27, 0.58, 0.12, 0.14), (0.00, 0.00, 0.03, 0.06), (1.00, 0.40, 0.45, 0.50), (0.70, 0.50, 0.55, 0.60)),
}
# How often each gesture is chosen after a rest or another gesture.
_GESTURE_CHOICES = ("fist", "point", "pinch", "open", "spread", "random")
_GESTURE_WEIGHTS = np.array([0.18, 0.14, 0.16, 0.14, 0.12, 0.26])

# Independent random streams (SeedSequence spawn keys), so changing one part
# of the simulation never reshuffles another.
_STREAM_TRAJECTORY, _STREAM_TREMOR, _STREAM_NOISE, _STREAM_PLACEMENT = 1, 2, 3, 4
_STREAM_SENSOR16, _STREAM_SENSOR8, _STREAM_IK, _STREAM_CAMERA = 5, 6, 7, 8
_STREAM_DECOY_TRAJECTORY, _STREAM_DECOY_TREMOR, _STREAM_HIGH_BAND = 9, 10, 11
_HIGH_BAND_KEY = 3  # SeedSequence([model_seed, _PHYSIOLOGY_KEY, _HIGH_BAND_KEY, user]): the high-band spectra
# The high band of the knob, split in two sub-bands (Hz; the top edge is capped at 0.475 x the EMG rate).
_HIGH_BANDS = ((250.0, 500.0), (500.0, 1000.0))
# RMS of the high-band content at full activation and h = 1, relative to emg_amplitude_uv: strong enough that
# the full view keeps its pose information (learnability R2 flat in h) although only 8 electrodes carry it.
_HIGH_BAND_GAIN = 2.0
# Electrodes the MindRove view drops (simulate_mindrove_view keeps MINDROVE_KEEP_CHANNELS): where the knob puts
# the high-band content.
_DROPPED_CHANNELS = np.array([c for c in range(16) if c not in _signal.MINDROVE_KEEP_CHANNELS])
_PHYSIOLOGY_KEY = 7919
_USER_KEY = 2  # SeedSequence([model_seed, _PHYSIOLOGY_KEY, _USER_KEY, user]): user k's deviations


# --------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SyntheticConfig(Config):
    """Everything that shapes a synthetic session (units in the names).

    Attributes:
      duration_s: session length.
      emg_rate_hz: emg2pose-view rate (emg2pose: 2000).
      mindrove_rate_hz: MindRove-view rate; emg_rate_hz / mindrove_rate_hz must be an integer.
      camera_fps, camera_jitter_s: camera frame rate and timestamp jitter (std).
      n_muscles, hidden_units: size of the fixed physiology network.
      activation_tau_s: activation dynamics time constant (first-order low-pass).
      emg_amplitude_uv: source amplitude (RMS at full activation, directly over a superficial muscle).
      sensor_noise_uv, mindrove_noise_uv: white sensor noise RMS of each band.
      hum_hz: powerline frequency (60 or 50), or None for no hum; hum_uv its mean amplitude.
      electrode_gain_sigma: log-normal sigma of per-session electrode gains.
      electrode_offset_uv: std of per-session DC offsets.
      ring_rotation_max_deg, mindrove_rotation_max_deg: each band's placement
        varies uniformly within +- this many degrees between sessions.
      tremor_rad: RMS of the 8-12 Hz physiological tremor per joint.
      ik_failure_fraction: fraction of emg2pose-view samples whose labels are
        set to all-zero IK-failure rows (segments of 50-500 ms).
      low_confidence_fraction: fraction of camera frames in low-confidence bursts.
      landmark_noise_mm: landmark noise std on good frames (8x on low-confidence ones).
      model_seed: seeds the physiology shared by all sessions.
      high_band_info: the known-answer knob, h in [0, 1]. A share h of the pose information moves into
        250-1000 Hz motor-unit-like content on the electrodes the MindRove view drops (the odd ones of
        the 16): the 20-450 Hz sources are driven by (1 - h) x the true activations + h x the
        activations of an unrelated movement, and every muscle adds 250-500 / 500-1000 Hz content with
        power proportional to h x its true activation squared, seen only by the dropped electrodes. h = 0 is the data
        without the knob, bit for bit; h = 1 leaves no pose information in the 8 ch / 500 Hz view.
      user_variation: scale of how much simulated users (``generate_session(user=k)``, k >= 1) differ from
        each other (0: every user has user 0's body and placement habits; 1: the spreads in
        docs/synthetic_data.md, e.g. +-20 deg systematic band rotation, ~7 % hand size).
      start_time_unix: clock of session seed 0 (session k starts k hours later).
    """

    duration_s: float = 60.0
    emg_rate_hz: float = 2000.0
    mindrove_rate_hz: float = 500.0
    camera_fps: float = 30.0
    camera_jitter_s: float = 0.002
    n_muscles: int = 12
    hidden_units: int = 40
    activation_tau_s: float = 0.04
    emg_amplitude_uv: float = 150.0
    sensor_noise_uv: float = 2.5
    mindrove_noise_uv: float = 4.0
    hum_hz: float | None = 60.0
    hum_uv: float = 5.0
    electrode_gain_sigma: float = 0.15
    electrode_offset_uv: float = 10.0
    ring_rotation_max_deg: float = 22.5
    mindrove_rotation_max_deg: float = 22.5
    tremor_rad: float = 0.006
    ik_failure_fraction: float = 0.02
    low_confidence_fraction: float = 0.03
    landmark_noise_mm: float = 1.0
    model_seed: int = 0
    high_band_info: float = 0.0
    user_variation: float = 1.0
    start_time_unix: float = 1_700_000_000.0

    def __post_init__(self):
        def positive(name):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0):
                raise ValueError(f"SyntheticConfig.{name} must be a positive finite number, found {v!r}")

        def non_negative(name):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0):
                raise ValueError(f"SyntheticConfig.{name} must be a finite number >= 0, found {v!r}")

        for name in (
            "duration_s",
            "emg_rate_hz",
            "mindrove_rate_hz",
            "camera_fps",
            "activation_tau_s",
            "emg_amplitude_uv",
        ):
            positive(name)
        for name in (
            "camera_jitter_s",
            "sensor_noise_uv",
            "mindrove_noise_uv",
            "hum_uv",
            "electrode_gain_sigma",
            "electrode_offset_uv",
            "ring_rotation_max_deg",
            "mindrove_rotation_max_deg",
            "tremor_rad",
            "ik_failure_fraction",
            "low_confidence_fraction",
            "landmark_noise_mm",
            "user_variation",
            "start_time_unix",
        ):
            non_negative(name)
        for name in ("n_muscles", "hidden_units", "model_seed"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < (0 if name == "model_seed" else 1):
                raise ValueError(
                    f"SyntheticConfig.{name} must be a {'non-negative' if name == 'model_seed' else 'positive'} "
                    f"integer, found {v!r}"
                )
        ratio = self.emg_rate_hz / self.mindrove_rate_hz
        if not math.isfinite(ratio) or abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
            raise ValueError(
                f"SyntheticConfig: emg_rate_hz / mindrove_rate_hz must be a whole number, found "
                f"{self.emg_rate_hz:g} / {self.mindrove_rate_hz:g} = {ratio:g}"
            )
        if self.emg_rate_hz < 1000.0:
            raise ValueError(
                f"SyntheticConfig.emg_rate_hz must be >= 1000 Hz to hold 20-450 Hz EMG, found {self.emg_rate_hz:g}"
            )
        if self.hum_hz is not None:
            positive("hum_hz")
            if self.hum_hz >= self.mindrove_rate_hz / 2:
                raise ValueError(
                    f"SyntheticConfig.hum_hz must be below {self.mindrove_rate_hz / 2:g} Hz, found {self.hum_hz:g}"
                )
        if not (
            isinstance(self.high_band_info, (int, float))
            and not isinstance(self.high_band_info, bool)
            and 0.0 <= self.high_band_info <= 1.0
        ):
            raise ValueError(
                f"SyntheticConfig.high_band_info must be a number in [0, 1], found {self.high_band_info!r}"
            )
        if self.ik_failure_fraction > 0.5 or self.low_confidence_fraction > 0.5:
            raise ValueError(
                "SyntheticConfig.ik_failure_fraction and low_confidence_fraction must be <= 0.5, found "
                f"{self.ik_failure_fraction:g} and {self.low_confidence_fraction:g}"
            )
        if self.duration_s * self.camera_fps < 2:
            raise ValueError(f"SyntheticConfig.duration_s={self.duration_s:g} gives fewer than 2 camera frames")
        if self.camera_jitter_s * self.camera_fps > 0.1:
            raise ValueError("SyntheticConfig.camera_jitter_s must be under a tenth of a frame period")

    @property
    def decimation(self) -> int:
        return round(self.emg_rate_hz / self.mindrove_rate_hz)

    def replace(self, **changes) -> SyntheticConfig:
        return dataclasses.replace(self, **changes)


class SyntheticSession(NamedTuple):
    """One generated session: both views of the same movement (time-first, as in the files).

    Attributes:
      emg_2k: (N, 16) float32 µV, emg2pose view.
      angles_2k: (N, 20) float32 rad labels; all-zero rows where IK failures were injected.
      no_ik_failure_2k: (N,) bool, False on injected IK failures.
      time_2k: (N,) float64 unix seconds.
      emg_500: (M, 8) float32 µV, MindRove view, M = N // 4.
      angles_500: (M, 20) float32 rad, true angles at the MindRove samples.
      time_500: (M,) float64, equal to `time_2k[::4][:M]`.
      landmarks_frames: (F, 21, 3) float32 mm, MediaPipe order (camera frames, with noise).
      angles_frames: (F, 20) float32 rad, true angles at the frame times.
      frame_times: (F,) float64, ~30 fps with jitter.
      confidence: (F,) float32 detector confidence; low in occasional bursts.
      activations: (N, n_muscles) float32 muscle activations (0 .. ~1).
      angles_true_2k: (N, 20) float32 rad, the motion without IK failures.
      info: per-session parameters (seed, user, band rotations in degrees, hand scale, ...).
      user: the simulated user (0 = the base physiology of ``model_seed``).
    """

    emg_2k: np.ndarray
    angles_2k: np.ndarray
    no_ik_failure_2k: np.ndarray
    time_2k: np.ndarray
    emg_500: np.ndarray
    angles_500: np.ndarray
    time_500: np.ndarray
    landmarks_frames: np.ndarray
    angles_frames: np.ndarray
    frame_times: np.ndarray
    confidence: np.ndarray
    activations: np.ndarray
    angles_true_2k: np.ndarray
    info: dict
    user: int = 0


def _check_seed(seed) -> int:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, found {seed!r}")
    return int(seed)


def _check_user(user) -> int:
    if not isinstance(user, (int, np.integer)) or isinstance(user, bool) or user < 0:
        raise ValueError(f"user must be a non-negative integer, found {user!r}")
    return int(user)


def _rng(seed: int, stream: int, user: int = 0) -> np.random.Generator:
    # User 0 keeps the original two-number key (its sessions predate users); user k's sessions are their own
    # draws, so two users never perform the very same movement under the same session seed.
    return np.random.default_rng(np.random.SeedSequence([seed, stream] if user == 0 else [seed, stream, user]))


# --------------------------------------------------------------------------
# 1. joint-angle trajectories
# --------------------------------------------------------------------------
def _gesture_pose(thumb, aa, mcp, pip) -> np.ndarray:
    pose = np.empty(20)
    pose[_THUMB] = thumb
    pose[_AA], pose[_MCP], pose[_PIP] = aa, mcp, pip
    pose[_DIP] = _DIP_PER_PIP * np.asarray(pip)
    return pose


def _clip_to_limits(pose: np.ndarray, margin: float = 0.0) -> np.ndarray:
    return np.clip(pose, JOINT_LIMITS[:, 0] + margin, JOINT_LIMITS[:, 1] - margin)


def _random_pose(rng: np.random.Generator) -> np.ndarray:
    # One latent flexion per long finger, blended with its neighbours:
    # fingers share tendons and muscles, so they rarely move independently.
    u = rng.beta(1.2, 1.2, size=4)
    padded = np.concatenate([u[:1], u, u[-1:]])
    coupled = 0.7 * u + 0.15 * (padded[:-2] + padded[2:])
    thumb = (rng.uniform(-0.1, 0.75), rng.uniform(0.0, 0.85), rng.uniform(0.0, 0.85), rng.uniform(0.0, 1.1))
    aa = rng.normal(0.03, 0.08, size=4) * (1.2 - coupled)  # a curled finger cannot spread much
    mcp = coupled * 1.45 + rng.normal(0.0, 0.08, size=4)
    pip = coupled * 1.55 + rng.normal(0.0, 0.12, size=4)
    return _gesture_pose(thumb, aa, mcp, pip)


def _jittered(name: str, rng: np.random.Generator) -> np.ndarray:
    if name == "random":
        pose = _random_pose(rng)
    else:
        thumb, aa, mcp, pip = (np.asarray(v) for v in GESTURES[name])
        pose = _gesture_pose(
            thumb + rng.normal(0, 0.05, 4),
            aa + rng.normal(0, 0.03, 4),
            mcp + rng.normal(0, 0.05, 4),
            pip + rng.normal(0, 0.05, 4),
        )
    pose[_DIP] += rng.normal(0.0, 0.03, size=4)  # DIP follows PIP only approximately
    return _clip_to_limits(pose, margin=0.02)


def _keyframes(duration_s: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Knot times (K,) and poses (K, 20): segment k moves poses[k] -> poses[k+1]."""
    rest = _jittered("rest", rng)
    times = [0.0, rng.uniform(0.3, 1.2)]
    poses = [rest, rest]
    while times[-1] < duration_s:
        name = _GESTURE_CHOICES[rng.choice(len(_GESTURE_CHOICES), p=_GESTURE_WEIGHTS)]
        pose = _jittered(name, rng)
        # Bigger moves take a little longer (minimum-jerk reaches ~1-3 rad/s peaks).
        distance = np.max(np.abs(pose - poses[-1]))
        times.append(times[-1] + rng.uniform(0.3, 0.6) + 0.25 * distance)
        poses.append(pose)
        times.append(times[-1] + rng.uniform(0.3, 1.2))  # hold
        poses.append(pose)
        if rng.random() < 0.55:  # back to a (fresh) rest posture
            rest = _jittered("rest", rng)
            times.append(times[-1] + rng.uniform(0.35, 0.7))
            poses.append(rest)
            times.append(times[-1] + rng.uniform(0.3, 1.5))
            poses.append(rest)
    return np.asarray(times), np.asarray(poses)


def _minimum_jerk(knot_times: np.ndarray, knot_poses: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Piecewise minimum-jerk interpolation (zero velocity and acceleration at knots). (N, 20)."""
    seg = np.clip(np.searchsorted(knot_times, t, side="right") - 1, 0, len(knot_times) - 2)
    t0, t1 = knot_times[seg], knot_times[seg + 1]
    tau = np.clip((t - t0) / (t1 - t0), 0.0, 1.0)
    s = tau**3 * (10.0 + tau * (-15.0 + 6.0 * tau))
    p0 = knot_poses[seg]
    return p0 + (knot_poses[seg + 1] - p0) * s[:, None]


@functools.lru_cache(maxsize=256)
def _band_filter(low_hz: float, high_hz: float, fs: float) -> tuple[np.ndarray, float]:
    """Order-2 Butterworth band-pass SOS and its white-noise RMS gain (so output can be scaled to unit RMS)."""
    sos = scipy.signal.butter(2, [low_hz, high_hz], btype="bandpass", fs=fs, output="sos")
    _, h = scipy.signal.sosfreqz(sos, worN=4096)
    return sos, math.sqrt(np.mean(np.abs(h) ** 2))


def _unit_rms_noise(rng: np.random.Generator, n: int, channels: int, band: tuple[float, float, float]) -> np.ndarray:
    """Band-limited Gaussian noise (n, channels), unit RMS; band = (low_hz, high_hz, fs)."""
    sos, gain = _band_filter(*band)
    return scipy.signal.sosfilt(sos, rng.standard_normal((n, channels)), axis=0) / gain


def _upsample_linear(values: np.ndarray, step: int, n: int) -> np.ndarray:
    """Linear interpolation of control-rate rows (Nc, D) onto n samples, `step` samples apart."""
    pos = np.arange(n) / step
    i0 = np.minimum(pos.astype(np.int64), values.shape[0] - 2)
    frac = (pos - i0)[:, None]
    return values[i0] * (1.0 - frac) + values[i0 + 1] * frac


def _trajectory(
    config: SyntheticConfig,
    seed: int,
    t: np.ndarray,
    user: int = 0,
    streams: tuple[int, int] = (_STREAM_TRAJECTORY, _STREAM_TREMOR),
) -> np.ndarray:
    """True joint angles (N, 20) float64 at times t (seconds from the session start); ``streams``: the
    random streams of the gestures and of the tremor."""
    knot_times, knot_poses = _keyframes(float(t[-1]) + 1e-9, _rng(seed, streams[0], user))
    angles = _minimum_jerk(knot_times, knot_poses, t)
    if config.tremor_rad > 0:
        # Tremor (8-12 Hz) is smooth at the 200 Hz control rate; interpolating
        # it up is 10x cheaper than filtering 20 channels at 2 kHz.
        step = _control_step(config.emg_rate_hz)
        n_ctrl = t.shape[0] // step + 2
        band = (8.0, 12.0, config.emg_rate_hz / step)
        tremor = _unit_rms_noise(_rng(seed, streams[1], user), n_ctrl, 20, band)
        angles += config.tremor_rad * _upsample_linear(tremor, step, t.shape[0])
    angles = _clip_to_limits(angles)
    # A row of all ~0 angles is emg2pose's IK-failure marker: never produce one by accident.
    accidental = np.all(np.isclose(angles, 0.0), axis=1)
    angles[accidental, _MCP[1]] = 1e-3
    return angles


_CONTROL_RATE_HZ = 200.0  # rate of the slow parts: tremor, muscle drive, activation dynamics


def _control_step(fs: float) -> int:
    return max(1, round(fs / _CONTROL_RATE_HZ))


def _segments_mask(n: int, fraction: float, min_len: int, max_len: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) bool with random non-overlapping True segments covering round(fraction * n) samples."""
    mask = np.zeros(n, dtype=bool)
    target = round(fraction * n)
    if target == 0:
        return mask
    lengths = []
    while sum(lengths) < target:
        lengths.append(int(rng.integers(min_len, max_len + 1)))
    lengths[-1] -= sum(lengths) - target
    lengths = [length for length in lengths if length > 0]
    free = n - target
    gaps = np.floor(rng.dirichlet(np.ones(len(lengths) + 1)) * free).astype(int)
    pos = 0
    # len(gaps) == len(lengths) + 1: the last gap is the free space after the final run, never placed.
    for gap, length in zip(gaps, lengths, strict=False):
        pos += gap
        mask[pos : pos + length] = True
        pos += length
    return mask


# --------------------------------------------------------------------------
# 2. physiology (shared by all sessions of a model_seed)
# --------------------------------------------------------------------------
class _Physiology(NamedTuple):
    w1: np.ndarray  # (40, H)
    b1: np.ndarray  # (H,)
    w2: np.ndarray  # (H, M)
    b2: np.ndarray  # (M,)
    cocontraction: np.ndarray  # (M,)
    muscle_angle: np.ndarray  # (M,) radians around the forearm
    kappa: np.ndarray  # (M,) von Mises concentration (spatial focus)
    amplitude: np.ndarray  # (M,) relative source amplitude
    band: np.ndarray  # (M, 2) spectral band of each muscle's source, Hz


_ANGLE_MID = JOINT_LIMITS.mean(axis=1)
_ANGLE_HALF = 0.5 * (JOINT_LIMITS[:, 1] - JOINT_LIMITS[:, 0])
_VELOCITY_SCALE = 3.0  # rad/s: a brisk finger movement
_MAX_ACTIVATION = 1.25


def _net_inputs(angles: np.ndarray, velocity: np.ndarray) -> np.ndarray:
    return np.concatenate([(angles - _ANGLE_MID) / _ANGLE_HALF, np.clip(velocity / _VELOCITY_SCALE, -3.0, 3.0)], axis=1)


def _effort(angles: np.ndarray, velocity: np.ndarray) -> np.ndarray:
    # Co-contraction grows with how far the hand is from a relaxed posture and how fast it moves.
    rest = _gesture_pose(*GESTURES["rest"])
    posture = np.mean(np.abs(angles[:, _FE_JOINTS] - rest[_FE_JOINTS]) / _ANGLE_HALF[_FE_JOINTS], axis=1)
    speed = np.mean(np.abs(velocity), axis=1) / _VELOCITY_SCALE
    return posture + 0.5 * speed


def _drive(phys: _Physiology, angles: np.ndarray, velocity: np.ndarray) -> np.ndarray:
    hidden = np.tanh(_net_inputs(angles, velocity) @ phys.w1 + phys.b1)
    z = hidden @ phys.w2 + phys.b2
    drive = np.logaddexp(0.0, z)  # softplus: >= 0, smooth
    drive = drive + _effort(angles, velocity)[:, None] * phys.cocontraction + 0.02  # + tonic activity
    # Smooth saturation: recruitment cannot grow without bound (max 1.25).
    return _MAX_ACTIVATION * np.tanh(drive / _MAX_ACTIVATION)


def _finger_of_joint() -> np.ndarray:
    return np.repeat(np.arange(5), 4)


class _UserModel(NamedTuple):
    """How simulated user k differs from user 0 of the same ``model_seed`` (identity for user 0)."""

    w1_factor: np.ndarray  # (40, H) activation map: multiplies the network's input weights
    w2_factor: np.ndarray  # (H, M) ... and its output weights (elementwise: survives the per-muscle calibration)
    rest_shift: np.ndarray  # (M,) added to each muscle's resting drive
    cocontraction_factor: np.ndarray  # (M,)
    angle_shift: np.ndarray  # (M,) radians: where each muscle lies around the forearm
    depth_shift: np.ndarray  # (M,) muscle depth (0 superficial .. 1 deep): spatial spread, amplitude, spectrum
    axial_factor: np.ndarray  # (M,) amplitude at the skin from where the bands sit along the forearm
    rotation16: float  # radians, systematic rotation of the 16-electrode band (on top of per-session jitter)
    rotation8: float  # radians, the same for the MindRove band
    gain16: np.ndarray  # (16,) skin impedance / contact gain per electrode
    gain8: np.ndarray  # (8,)
    hand_scale: float  # hand size relative to the synthetic hand model (scales the landmarks)


@functools.lru_cache(maxsize=64)
def _user_model(model_seed: int, n_muscles: int, hidden_units: int, user: int, variation: float) -> _UserModel:
    """User ``user``'s deviations, drawn from (model_seed, user) and scaled by ``variation``."""
    if user == 0:
        return _UserModel(
            np.ones((40, hidden_units)),
            np.ones((hidden_units, n_muscles)),
            np.zeros(n_muscles),
            np.ones(n_muscles),
            np.zeros(n_muscles),
            np.zeros(n_muscles),
            np.ones(n_muscles),
            0.0,
            0.0,
            np.ones(16),
            np.ones(8),
            1.0,
        )
    rng = np.random.default_rng(np.random.SeedSequence([model_seed, _PHYSIOLOGY_KEY, _USER_KEY, user]))
    v = variation
    w1_factor = np.exp(v * 0.25 * rng.standard_normal((40, hidden_units)))
    w2_factor = np.exp(v * 0.3 * rng.standard_normal((hidden_units, n_muscles)))
    rest_shift = v * 0.2 * rng.standard_normal(n_muscles)
    cocontraction_factor = np.exp(v * 0.3 * rng.standard_normal(n_muscles))
    angle_shift = v * 0.15 * rng.standard_normal(n_muscles)
    depth_shift = v * 0.15 * rng.standard_normal(n_muscles)
    # A band worn ~2 cm more proximal or distal sees some muscles more and others less.
    axial_factor = np.exp(v * rng.uniform(-1.0, 1.0) * rng.normal(0.0, 0.35, n_muscles))
    rotation16, rotation8 = v * math.radians(20.0) * rng.uniform(-1.0, 1.0, 2)
    gain16 = np.exp(v * 0.25 * rng.standard_normal(16))
    gain8 = np.exp(v * 0.25 * rng.standard_normal(8))
    hand_scale = float(np.clip(np.exp(v * 0.07 * rng.standard_normal()), 0.8, 1.25))
    return _UserModel(
        w1_factor,
        w2_factor,
        rest_shift,
        cocontraction_factor,
        angle_shift,
        depth_shift,
        axial_factor,
        float(rotation16),
        float(rotation8),
        gain16,
        gain8,
        hand_scale,
    )


@functools.lru_cache(maxsize=64)
def _physiology(
    model_seed: int, n_muscles: int, hidden_units: int, emg_rate_hz: float, user: int = 0, variation: float = 1.0
) -> _Physiology:
    rng = np.random.default_rng(np.random.SeedSequence([model_seed, _PHYSIOLOGY_KEY]))
    # User k's deviations are applied to the base draws (whose order never changes) before the calibration.
    dev = _user_model(model_seed, n_muscles, hidden_units, user, variation)
    finger = _finger_of_joint()
    # Per-finger structure: hidden unit k mostly sees finger k % 5 (angles and
    # velocities), muscle m mostly listens to units of finger m % 5 -- like the
    # finger compartments of the long flexors and extensors.
    unit_finger = np.arange(hidden_units) % 5
    focus = np.where(finger[:, None] == unit_finger[None, :], 1.0, 0.2)  # (20, H)
    w1 = rng.standard_normal((40, hidden_units)) * np.concatenate([focus, 0.7 * focus]) / 2.0
    b1 = rng.normal(0.0, 0.5, hidden_units)
    muscle_finger = np.arange(n_muscles) % 5
    listen = np.where(unit_finger[:, None] == muscle_finger[None, :], 1.0, 0.3)  # (H, M)
    w2 = rng.standard_normal((hidden_units, n_muscles)) * listen * 2.0 / math.sqrt(max(hidden_units / 5, 1))
    rest_level = rng.uniform(-3.0, -2.0, n_muscles)  # softplus(-3..-2) ~ 0.05-0.13: nearly silent at rest
    cocontraction = rng.uniform(0.1, 0.4, n_muscles)
    # Muscles spread around the forearm (jittered even spacing); deeper ones
    # are weaker at the skin, spatially broader and lose high frequencies.
    muscle_angle = (2 * np.pi * (np.arange(n_muscles) + rng.uniform(-0.35, 0.35, n_muscles)) / n_muscles) % (2 * np.pi)
    muscle_angle = rng.permutation(muscle_angle)
    depth = rng.uniform(0.0, 1.0, n_muscles)
    if user:
        w1 = w1 * dev.w1_factor
        w2 = w2 * dev.w2_factor
        rest_level = np.clip(rest_level + dev.rest_shift, -3.5, -1.5)
        cocontraction = cocontraction * dev.cocontraction_factor
        muscle_angle = (muscle_angle + dev.angle_shift) % (2 * np.pi)
        depth = np.clip(depth + dev.depth_shift, 0.0, 1.0)
    kappa = 1.5 + 8.0 * (1.0 - depth)
    amplitude = np.exp(-1.2 * depth) * dev.axial_factor
    band = np.stack([rng.uniform(20.0, 40.0, n_muscles), 450.0 - 220.0 * depth], axis=1)
    band[:, 1] = np.minimum(band[:, 1], 0.45 * emg_rate_hz)

    # Calibrate so that each muscle sits at rest_level in the relaxed rest
    # posture and reaches activation 1 (softplus(0.5413) = 1) at the 95th
    # percentile of random postures and velocities, i.e. it is recruited as
    # the hand moves toward its preferred postures.
    cal = np.random.default_rng(np.random.SeedSequence([model_seed, _PHYSIOLOGY_KEY, 1]))
    poses = np.stack([_random_pose(cal) for _ in range(512)] + [_gesture_pose(*g) for g in GESTURES.values()])
    poses = _clip_to_limits(poses)
    velocity = cal.normal(0.0, 1.0, poses.shape)
    rest_hidden = np.tanh(_net_inputs(_gesture_pose(*GESTURES["rest"])[None], np.zeros((1, 20))) @ w1 + b1)
    hidden = np.tanh(_net_inputs(poses, velocity) @ w1 + b1)
    recruitment = (hidden - rest_hidden) @ w2  # (P, M), 0 at rest
    u95 = np.percentile(recruitment, 95, axis=0)
    # A muscle that the random map barely recruits uses |recruitment| instead, so none stays silent.
    u95 = np.where(u95 > 1e-3, u95, np.percentile(np.abs(recruitment), 95, axis=0) + 1e-3)
    w2 = w2 * ((0.5413 - rest_level) / u95)[None, :]
    b2 = rest_level - (rest_hidden @ w2)[0]
    for array in (w1, b1, w2, b2, cocontraction, muscle_angle, kappa, amplitude, band):
        array.setflags(write=False)
    return _Physiology(w1, b1, w2, b2, cocontraction, muscle_angle, kappa, amplitude, band)


# --------------------------------------------------------------------------
# 3. EMG
# --------------------------------------------------------------------------
def _ring_weights(phys: _Physiology, electrode_angle: np.ndarray) -> np.ndarray:
    """(E, M) von Mises spatial weights: 1 directly over a superficial muscle, decaying around the ring."""
    delta = electrode_angle[:, None] - phys.muscle_angle[None, :]
    return phys.amplitude[None, :] * np.exp(phys.kappa[None, :] * (np.cos(delta) - 1.0))


def _hum(t: np.ndarray, hum_hz: float | None, amplitude_uv: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """(len(t), E) powerline hum: fundamental plus a weaker 3rd harmonic below Nyquist."""
    if hum_hz is None:
        return np.zeros((t.shape[0], amplitude_uv.shape[0]))
    # A sin(wt + p) = A cos(p) sin(wt) + A sin(p) cos(wt): 4 sines of (N,)
    # and a matmul instead of 2 * N * E sines.
    w = 2 * np.pi * hum_hz * t
    basis = np.stack([np.sin(w), np.cos(w), np.sin(3 * w), np.cos(3 * w)], axis=1)  # (N, 4)
    third = 3 * phase + 0.7
    coef = amplitude_uv[None, :] * np.stack([np.cos(phase), np.sin(phase), 0.3 * np.cos(third), 0.3 * np.sin(third)])
    return basis @ coef


def _band_noise(phys: _Physiology, rng: np.random.Generator, n: int, fs: float) -> np.ndarray:
    """(n, M) unit-RMS Gaussian noise, each muscle in its own band."""
    white = rng.standard_normal((n, phys.band.shape[0]))
    out = np.empty_like(white)
    for m, (low, high) in enumerate(phys.band):
        sos, gain = _band_filter(float(low), float(high), fs)
        out[:, m] = scipy.signal.sosfilt(sos, white[:, m]) / gain
    return out


def _activations(config: SyntheticConfig, phys: _Physiology, angles: np.ndarray) -> np.ndarray:
    """Muscle activations (N, M) of the motion ``angles`` (N, 20)."""
    fs, n = config.emg_rate_hz, angles.shape[0]
    # Muscle drive and activation dynamics (tau ~40 ms) are slow: compute them
    # at the 200 Hz control rate and interpolate the activations up.
    step = _control_step(fs)
    ctrl_angles = np.concatenate([angles[::step], angles[-1:]])
    ctrl_velocity = np.gradient(ctrl_angles, step / fs, axis=0)
    drive = _drive(phys, ctrl_angles, ctrl_velocity)
    # First-order activation dynamics, started at steady state.
    alpha = math.exp(-step / (config.activation_tau_s * fs))
    b, a = [1.0 - alpha], [1.0, -alpha]
    ctrl_act = scipy.signal.lfilter(b, a, drive, axis=0, zi=scipy.signal.lfilter_zi(b, a)[:, None] * drive[:1])[0]
    return _upsample_linear(ctrl_act, step, n)


@functools.lru_cache(maxsize=64)
def _high_band_spectra(model_seed: int, n_muscles: int, user: int) -> np.ndarray:
    """(2, M) RMS of each muscle's content in each high sub-band (unit norm per muscle): muscles differ in
    motor-unit size and conduction velocity, so the two sub-bands see two different mixtures of the muscles."""
    rng = np.random.default_rng(np.random.SeedSequence([model_seed, _PHYSIOLOGY_KEY, _HIGH_BAND_KEY, user]))
    # Cubed: most muscles sit mainly in one sub-band, so the two mixtures differ clearly.
    spectra = rng.uniform(0.1, 1.0, (2, n_muscles)) ** 3
    spectra /= np.linalg.norm(spectra, axis=0, keepdims=True)
    spectra.setflags(write=False)
    return spectra


def _high_band(
    config: SyntheticConfig,
    phys: _Physiology,
    activations: np.ndarray,
    electrode_angle: np.ndarray,
    rng: np.random.Generator,
    user: int,
) -> np.ndarray:
    """(N, len(electrode_angle)) µV: the knob's 250-1000 Hz content, power ~ h x activation**2 per muscle."""
    fs, n = config.emg_rate_hz, activations.shape[0]
    spectra = _high_band_spectra(config.model_seed, config.n_muscles, user)
    spatial = _ring_weights(phys, electrode_angle)  # (E, M), the same spatial spread as the 20-450 Hz content
    out = np.zeros((n, electrode_angle.shape[0]))
    for b, (low, high) in enumerate(_HIGH_BANDS):
        noise = _unit_rms_noise(rng, n, config.n_muscles, (low, min(high, 0.475 * fs), fs))
        out += (activations * noise * spectra[b]) @ spatial.T
    return _HIGH_BAND_GAIN * math.sqrt(config.high_band_info) * config.emg_amplitude_uv * out


def _simulate(config: SyntheticConfig, seed: int, user: int = 0) -> dict[str, Any]:
    """Every array of a session, including the separate EMG components (float64)."""
    fs = config.emg_rate_hz
    factor = config.decimation
    n = round(config.duration_s * fs)
    n = max(n - n % factor, factor)  # whole MindRove periods: both views cover the same span
    t = np.arange(n) / fs
    start = config.start_time_unix + 3600.0 * (seed % 100_000)
    phys = _physiology(config.model_seed, config.n_muscles, config.hidden_units, fs, user, config.user_variation)
    person = _user_model(config.model_seed, config.n_muscles, config.hidden_units, user, config.user_variation)

    angles = _trajectory(config, seed, t, user)
    activations = _activations(config, phys, angles)
    h = config.high_band_info
    low_band_drive = activations
    if h > 0:
        # The knob: the 20-450 Hz sources follow an unrelated movement (same statistics, no information about
        # this one) for a share h, and the true activations for the rest.
        decoy = _trajectory(config, seed, t, user, (_STREAM_DECOY_TRAJECTORY, _STREAM_DECOY_TREMOR))
        low_band_drive = (1.0 - h) * activations + h * _activations(config, phys, decoy)
    sources = config.emg_amplitude_uv * low_band_drive * _band_noise(phys, _rng(seed, _STREAM_NOISE, user), n, fs)

    placement = _rng(seed, _STREAM_PLACEMENT, user)
    # Each band's placement: the user's habit plus this session's jitter; gains: the user's skin times this session's.
    rot16 = person.rotation16 + math.radians(config.ring_rotation_max_deg) * placement.uniform(-1.0, 1.0)
    rot8 = person.rotation8 + math.radians(config.mindrove_rotation_max_deg) * placement.uniform(-1.0, 1.0)
    gain16 = person.gain16 * np.exp(config.electrode_gain_sigma * placement.standard_normal(16))
    gain8 = person.gain8 * np.exp(config.electrode_gain_sigma * placement.standard_normal(8))
    offset16 = config.electrode_offset_uv * placement.standard_normal(16)
    offset8 = config.electrode_offset_uv * placement.standard_normal(8)
    hum_phase = placement.uniform(0, 2 * np.pi)
    hum16 = (config.hum_uv * placement.uniform(0.5, 1.5, 16), hum_phase + placement.normal(0, 0.2, 16))
    hum8 = (config.hum_uv * placement.uniform(0.5, 1.5, 8), hum_phase + placement.normal(0, 0.2, 8))

    # emg2pose band: 16 electrodes, evenly spaced, rotated by rot16.
    w16 = _ring_weights(phys, 2 * np.pi * np.arange(16) / 16 + rot16) * gain16[:, None]
    muscle16 = sources @ w16.T
    if h > 0:
        angle16 = 2 * np.pi * np.arange(16) / 16 + rot16
        high = _high_band(
            config, phys, activations, angle16[_DROPPED_CHANNELS], _rng(seed, _STREAM_HIGH_BAND, user), user
        )
        muscle16[:, _DROPPED_CHANNELS] += high * gain16[_DROPPED_CHANNELS]
    noise16 = config.sensor_noise_uv * _rng(seed, _STREAM_SENSOR16, user).standard_normal((n, 16))
    interference16 = _hum(t, config.hum_hz, *hum16)
    emg16 = muscle16 + interference16 + noise16 + offset16

    # MindRove band: its own 8 evenly spaced electrodes (rotated by rot8) on the
    # same forearm, sensed at 2 kHz, decimated with the anti-alias filter of
    # simulate_mindrove_view; its ADC noise and hum are added at 500 Hz.
    w8 = _ring_weights(phys, 2 * np.pi * np.arange(8) / 8 + rot8) * gain8[:, None]
    muscle8 = _signal.decimate_channels(w8 @ sources.T, factor, axis=-1).T  # channel-first is faster
    m = muscle8.shape[0]
    t500 = t[::factor][:m]
    noise8 = config.mindrove_noise_uv * _rng(seed, _STREAM_SENSOR8, user).standard_normal((m, 8))
    interference8 = _hum(t500, config.hum_hz, *hum8)
    emg8 = muscle8 + interference8 + noise8 + offset8

    labels = angles.copy()
    ik_rng = _rng(seed, _STREAM_IK, user)
    ik_failure = _segments_mask(n, config.ik_failure_fraction, int(0.05 * fs), int(0.5 * fs), ik_rng)
    labels[ik_failure] = 0.0

    frames = _camera(config, seed, t, angles, user, person.hand_scale)
    return {
        "t": t,
        "start": start,
        "angles": angles,
        "labels": labels,
        "ik_failure": ik_failure,
        "activations": activations,
        "sources": sources,
        "muscle16": muscle16,
        "noise16": noise16,
        "interference16": interference16,
        "emg16": emg16,
        "muscle8": muscle8,
        "noise8": noise8,
        "interference8": interference8,
        "emg8": emg8,
        "t500": t500,
        "w16": w16,
        "w8": w8,
        "rot16": rot16,
        "rot8": rot8,
        "hand_scale": person.hand_scale,
        **frames,
    }


# --------------------------------------------------------------------------
# camera frames: landmarks via forward kinematics
# --------------------------------------------------------------------------
_FK_BLOCK = 256  # frames per jitted FK call: one fixed shape, compiled once per process


@functools.lru_cache(maxsize=1)
def _fk_mediapipe():
    # Lazy: importing JAX costs ~1 s, and only the camera view needs it.
    import jax

    from emgjax.kinematics import forward_kinematics, synthetic_hand_model
    from emgjax.kinematics.mediapipe import hand_model_to_mediapipe

    hand = synthetic_hand_model()
    fn = jax.jit(lambda angles, hand: hand_model_to_mediapipe(forward_kinematics(angles, hand)))
    return fn, hand


def landmarks_from_angles(angles: np.ndarray) -> np.ndarray:
    """MediaPipe-ordered landmarks (F, 21, 3) float32 mm of the synthetic hand for angles (F, 20)."""
    angles = np.asarray(angles, dtype=np.float32)
    if angles.ndim != 2 or angles.shape[1] != 20:
        raise ValueError(f"angles must have shape (F, 20), found {angles.shape}")
    fn, hand = _fk_mediapipe()
    f = angles.shape[0]
    padded = np.zeros((-(-f // _FK_BLOCK) * _FK_BLOCK, 20), dtype=np.float32)
    padded[:f] = angles
    blocks = [np.asarray(fn(block, hand)) for block in padded.reshape(-1, _FK_BLOCK, 20)]
    return np.concatenate(blocks, axis=0)[:f].astype(np.float32) if blocks else np.zeros((0, 21, 3), np.float32)


def _camera(
    config: SyntheticConfig, seed: int, t: np.ndarray, angles: np.ndarray, user: int = 0, hand_scale: float = 1.0
) -> dict[str, np.ndarray]:
    rng = _rng(seed, _STREAM_CAMERA, user)
    period = 1.0 / config.camera_fps
    n_frames = math.floor(t[-1] * config.camera_fps) + 1
    jitter = np.clip(rng.normal(0.0, config.camera_jitter_s, n_frames), -0.4 * period, 0.4 * period)
    frame_t = np.clip(np.arange(n_frames) * period + jitter, t[0], t[-1])
    frame_t = np.unique(frame_t)  # sorted, strictly increasing even where clipping met an edge
    angles_frames = _signal.interpolate_to_times(angles, t, frame_t, axis=0).astype(np.float64)
    landmarks = landmarks_from_angles(angles_frames).astype(np.float64)
    if hand_scale != 1.0:
        landmarks *= hand_scale  # a bigger hand: every bone longer by the same factor, about the wrist
    low = _segments_mask(frame_t.shape[0], config.low_confidence_fraction, 2, 8, rng)
    confidence = np.where(low, rng.uniform(0.15, 0.5, frame_t.shape[0]), rng.uniform(0.85, 0.99, frame_t.shape[0]))
    # A hand detector is noisier exactly when it is unsure.
    noise_mm = config.landmark_noise_mm * np.where(low, 8.0, 1.0)
    landmarks += noise_mm[:, None, None] * rng.standard_normal(landmarks.shape)
    return {"frame_t": frame_t, "angles_frames": angles_frames, "landmarks": landmarks, "confidence": confidence}


# --------------------------------------------------------------------------
# public generator
# --------------------------------------------------------------------------
def generate_session(config: SyntheticConfig | None = None, seed: int = 0, user: int = 0) -> SyntheticSession:
    """Generate one session (both views). Deterministic per (config, seed, user).

    Args:
      config: SyntheticConfig (default: 60 s, 2 kHz / 500 Hz, 60 Hz hum).
      seed: session seed (movement, band placement, gains, noise); the
        physiology comes from ``config.model_seed``.
      user: simulated user, a non-negative integer. 0 is the physiology of
        ``config.model_seed`` as it is (the sessions from before users existed,
        bit for bit); user k >= 1 is a person drawn from (model_seed, k) --
        systematic band rotation and axial shift, muscle depth and position,
        skin gain per electrode, activation map, hand size -- scaled by
        ``config.user_variation``. Each user has their own session draws: the
        same ``seed`` under two users is two different movements.
    Returns:
      SyntheticSession (N = duration_s * 2000 rounded down to a multiple of 4).
    """
    config = SyntheticConfig() if config is None else config
    if not isinstance(config, SyntheticConfig):
        raise ValueError(f"config must be a SyntheticConfig, found {type(config).__name__}")
    seed = _check_seed(seed)
    user = _check_user(user)
    s = _simulate(config, seed, user)
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    angles32 = f32(s["angles"])
    info = {
        "seed": seed,
        "user": user,
        "model_seed": config.model_seed,
        "ring_rotation_deg": math.degrees(s["rot16"]),
        "mindrove_rotation_deg": math.degrees(s["rot8"]),
        "ik_failure_fraction": float(np.mean(s["ik_failure"])),
        "hum_hz": config.hum_hz,
        "hand_scale": s["hand_scale"],
    }
    factor = config.decimation
    m = s["emg8"].shape[0]
    return SyntheticSession(
        emg_2k=f32(s["emg16"]),
        angles_2k=f32(s["labels"]),
        no_ik_failure_2k=~s["ik_failure"],
        time_2k=s["start"] + s["t"],
        emg_500=f32(s["emg8"]),
        angles_500=np.ascontiguousarray(angles32[::factor][:m]),
        time_500=s["start"] + s["t500"],
        landmarks_frames=f32(s["landmarks"]),
        angles_frames=f32(s["angles_frames"]),
        frame_times=s["start"] + s["frame_t"],
        confidence=f32(s["confidence"]),
        activations=f32(s["activations"]),
        angles_true_2k=angles32,
        info=info,
        user=user,
    )


# --------------------------------------------------------------------------
# diagnostics: SNR, information lost by the MindRove view, learnability
# --------------------------------------------------------------------------
def _db(signal_power: float, noise_power: float) -> float:
    return 10.0 * math.log10(signal_power / noise_power)


def session_diagnostics(config: SyntheticConfig | None = None, seed: int = 0, user: int = 0) -> dict[str, float]:
    """Physics of one session, for docs and sanity checks.

    Returns a dict with:
      snr_db_2k / snr_db_500: power of the muscle part of the EMG over the
        power of sensor noise + hum (offsets excluded), averaged over
        channels, for the 16 ch @ 2 kHz and 8 ch @ 500 Hz views.
      hf_power_fraction_2k: fraction of the 16-ch muscle power above 250 Hz
        (what a 500 Hz view cannot carry).
      band_power_fraction_2k: fraction of the muscle power within 20-450 Hz.
      mixing_rank_16 / mixing_rank_8: number of singular values of the
        (electrodes x muscles) mixing matrix above 1 % of the largest: how
        many muscle directions each band can tell apart.
    """
    config = SyntheticConfig() if config is None else config
    s = _simulate(config, _check_seed(seed), _check_user(user))
    fs = config.emg_rate_hz
    noise16 = s["noise16"] + s["interference16"]
    noise8 = s["noise8"] + s["interference8"]
    freqs, psd = scipy.signal.welch(s["muscle16"], fs=fs, nperseg=1024, axis=0)
    total = psd.sum()

    def rank(w):
        sv = np.linalg.svd(w, compute_uv=False)
        return int(np.sum(sv > 0.01 * sv[0]))

    return {
        "snr_db_2k": _db(np.mean(s["muscle16"] ** 2), np.mean(noise16**2)),
        "snr_db_500": _db(np.mean(s["muscle8"] ** 2), np.mean(noise8**2)),
        "hf_power_fraction_2k": float(psd[freqs > fs / config.decimation / 2].sum() / total),
        "band_power_fraction_2k": float(psd[(freqs >= 20.0) & (freqs <= 450.0)].sum() / total),
        "mixing_rank_16": rank(s["w16"]),
        "mixing_rank_8": rank(s["w8"]),
        "n_muscles": config.n_muscles,
    }


def _rms_features(emg: np.ndarray, fs: float, window_s: float, times: np.ndarray, band, hum_hz) -> np.ndarray:
    """log RMS over the window ending at each of `times` (seconds from start): (len(times), C)."""
    sos = _signal.design_emg_filter(fs, notch_hz=hum_hz, band=band, order=2)
    power = _signal.filter_offline(emg.T.astype(np.float64), sos) ** 2  # (C, N)
    cumulative = np.concatenate([np.zeros((power.shape[0], 1)), np.cumsum(power, axis=1)], axis=1)
    win = round(window_s * fs)
    end = np.clip(np.round(times * fs).astype(int), win, power.shape[1])
    mean_power = (cumulative[:, end] - cumulative[:, end - win]) / win
    return np.log(np.sqrt(mean_power) + 1e-3).T


def _lagged(features: np.ndarray, lags: int) -> np.ndarray:
    # Stack the current and `lags` previous windows: a little temporal context.
    parts = [np.roll(features, k, axis=0) for k in range(lags + 1)]
    return np.concatenate(parts, axis=1)[lags:]


def learnability_report(
    config: SyntheticConfig | None = None,
    *,
    train_seeds: Sequence[int] = (0, 1, 2, 3),
    test_seeds: Sequence[int] = (4, 5),
    train_user: int = 0,
    test_user: int = 0,
    window_s: float = 0.2,
    stride_s: float = 0.05,
    lags: int = 2,
    ridge_grid: Sequence[float] = (1e-3, 1e-2, 1e-1, 1.0),
) -> dict[str, dict[str, float]]:
    """Ridge regression from windowed log-RMS features to the 20 angles, on held-out sessions.

    Views compared (same windows, same targets = true angles at window ends):
      "16ch_2k": the emg2pose view, band 20-450 Hz;
      "16ch_2k_lowband": the same electrodes, band 20-200 Hz (temporal loss only);
      "16ch_2k_bands": the same electrodes, log RMS in three bands per channel (20-250, 250-500 and
        500-950 Hz): what the full view carries, ``high_band_info`` content included;
      "8of16_500": simulate_mindrove_view of the emg2pose view (8 of its 16
        electrodes at 500 Hz; spatial + temporal loss);
      "mindrove_500": the MindRove view itself (own band placement, own noise).
    Features: per channel log RMS over ``window_s`` (after the notch and band
    filter), every ``stride_s``, stacked with ``lags`` previous windows.
    The ridge strength (times the number of windows) is picked from
    ``ridge_grid`` on the last training session, then the model is refit on
    all training sessions and scored on the test sessions (other seeds, hence
    other band placements, gains and movements). ``train_user`` / ``test_user``
    pick the simulated users of the training and test sessions (another test
    user: a cross-user check).
    Each entry: r2 (mean over joints, against the held-out sessions' variance),
    mae_deg, mean_baseline_mae_deg (predicting the training mean) and ridge.
    """
    config = SyntheticConfig() if config is None else config
    views = ("16ch_2k", "16ch_2k_lowband", "16ch_2k_bands", "8of16_500", "mindrove_500")
    fs, fs500 = config.emg_rate_hz, config.mindrove_rate_hz

    def featurize(seed, user):
        sess = generate_session(config, seed, user)
        t = sess.time_2k - sess.time_2k[0]
        times = np.arange(window_s + lags * stride_s, t[-1], stride_s)
        target = _signal.interpolate_to_times(sess.angles_true_2k, t, times, axis=0).astype(np.float64)
        feats = {
            "16ch_2k": _rms_features(sess.emg_2k, fs, window_s, times, (20.0, 450.0), config.hum_hz),
            "16ch_2k_lowband": _rms_features(sess.emg_2k, fs, window_s, times, (20.0, 200.0), config.hum_hz),
            "16ch_2k_bands": np.concatenate(
                [
                    _rms_features(sess.emg_2k, fs, window_s, times, band, config.hum_hz)
                    for band in ((20.0, 250.0), (250.0, 500.0), (500.0, min(950.0, 0.475 * fs)))
                ],
                axis=1,
            ),
            "8of16_500": _rms_features(
                _signal.simulate_mindrove_view(sess.emg_2k, axis=0, factor=config.decimation),
                fs500,
                window_s,
                times,
                (20.0, 200.0),
                config.hum_hz,
            ),
            "mindrove_500": _rms_features(sess.emg_500, fs500, window_s, times, (20.0, 200.0), config.hum_hz),
        }
        # Lagged features drop the first `lags` windows; targets follow.
        return {k: _lagged(v, lags) for k, v in feats.items()}, target[lags:]

    if len(train_seeds) < 2 or len(test_seeds) < 1:
        raise ValueError(
            f"learnability_report needs >= 2 train seeds (the last one picks the ridge strength) and >= 1 test "
            f"seed, found {len(train_seeds)} and {len(test_seeds)}"
        )
    train = [featurize(s, train_user) for s in train_seeds]
    test = [featurize(s, test_user) for s in test_seeds]
    y_train = np.concatenate([y for _, y in train])
    y_test = np.concatenate([y for _, y in test])
    baseline_mae = float(np.degrees(np.mean(np.abs(y_test - y_train.mean(axis=0)))))

    def fit(x, y, strength):
        mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-9
        a = np.c_[(x - mu) / sd, np.ones(len(x))]
        reg = strength * np.eye(a.shape[1])
        reg[-1, -1] = 0.0  # no penalty on the intercept
        coef = np.linalg.solve(a.T @ a + reg, a.T @ y)
        return lambda z: np.c_[(z - mu) / sd, np.ones(len(z))] @ coef

    report = {}
    for view in views:
        x_train = [f[view] for f, _ in train]
        # Ridge strength (per training window) chosen on the last training
        # session, held out from a first fit: the test sessions stay unseen.
        x_fit, y_fit = np.concatenate(x_train[:-1]), np.concatenate([y for _, y in train[:-1]])
        scores = {
            lam: np.mean(np.abs(fit(x_fit, y_fit, lam * len(x_fit))(x_train[-1]) - train[-1][1])) for lam in ridge_grid
        }
        best = min(scores, key=scores.get)
        predict = fit(np.concatenate(x_train), y_train, best * len(y_train))
        pred = predict(np.concatenate([f[view] for f, _ in test]))
        r2 = 1.0 - np.sum((y_test - pred) ** 2, axis=0) / np.sum((y_test - y_test.mean(axis=0)) ** 2, axis=0)
        report[view] = {
            "r2": float(np.mean(r2)),
            "mae_deg": float(np.degrees(np.mean(np.abs(y_test - pred)))),
            "mean_baseline_mae_deg": baseline_mae,
            "ridge": float(best),
        }
    return report


# --------------------------------------------------------------------------
# writing datasets
# --------------------------------------------------------------------------
_FORMATS = ("emg2pose", "mindrove")
# emg2pose's metadata columns first (``filename, user, session, stage, side, moving_hand, held_out_user,
# held_out_stage, split, generalization``: what `emgjax.data.load_splits`, `load_emg2pose_sessions` and
# emg2pose's own tools read), then ours. ``filename`` is the session's emg2pose file without its suffix, as in
# emg2pose (the MindRove file when only that format is written); ``emg2pose_file`` / ``mindrove_file`` name
# each format's file (empty when not written).
METADATA_COLUMNS = (
    *_EMG2POSE_COLUMNS,
    "session_seed",
    "model_seed",
    "duration_s",
    "emg2pose_file",
    "mindrove_file",
    "n_samples_2k",
    "n_samples_500",
    "n_frames",
    "ik_failure_fraction",
    "ring_rotation_deg",
    "mindrove_rotation_deg",
    "hum_hz",
    "hand_scale",
    "high_band_info",
)

# Sane limits, checked before anything is generated: 10,000 sessions of up to 10 minutes. A 10-minute
# session takes ~1.5 GB of memory while it is simulated (one session at a time) and ~280 MB on disk.
MAX_SESSIONS = 10_000
MAX_DURATION_S = 600.0
MAX_SEED = 2**31 - 1
# Bytes written per second of session: emg2pose records (8 B time + 20 x 8 B angles + 16 x 4 B EMG) at
# 2 kHz; MindRove: 8 x 4 B EMG + 8 B time at 500 Hz, plus ~30 fps frames of landmarks etc. (rounded up).
_BYTES_PER_SECOND = {"emg2pose": 232 * 2000, "mindrove": 40 * 500 + 30 * 400}
_SESSION_FILE = re.compile(r"session\d+\.hdf5")


def _split_of(index: int, n_sessions: int) -> str:
    """``session_splits(n_sessions)[index]`` without building the list."""
    if n_sessions == 1:
        return "train"
    if n_sessions == 2:
        return ("train", "test")[index]
    k = max(1, round(0.15 * n_sessions))
    return "train" if index < n_sessions - 2 * k else "val" if index < n_sessions - k else "test"


def session_splits(n_sessions: int) -> list[str]:
    """Session-level split labels: the last sessions are test, the ones before val, the rest train.

    n = 1: train. n = 2: train, test. n >= 3: val and test each get
    max(1, round(0.15 n)) sessions (6 sessions: 4 train, 1 val, 1 test).
    Splitting whole sessions (never windows) keeps evaluation honest: no
    test window overlaps a training window.
    """
    if not isinstance(n_sessions, int) or isinstance(n_sessions, bool) or n_sessions < 1:
        raise ValueError(f"n_sessions must be a positive integer, found {n_sessions!r}")
    if n_sessions == 1:
        return ["train"]
    if n_sessions == 2:
        return ["train", "test"]
    return [_split_of(i, n_sessions) for i in range(n_sessions)]


def heldout_user_count(n_users: int) -> int:
    """How many of ``n_users`` simulated users a dataset holds out: none of 1, else max(1, round(n_users / 4))."""
    return 0 if n_users < 2 else max(1, round(n_users / 4))


def _check_count(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ValueError(f"{name}: expected an integer from {low} to {high:,}, found {value!r}")
    return int(value)


def _synth_entries(out: Path) -> tuple[list[Path], list[str]]:
    """(files an earlier ``emgjax synth`` wrote in ``out``, names of other entries found there)."""
    own, other = [], []
    for entry in sorted(out.iterdir()):
        if entry.name in ("metadata.csv", "metadata.csv.tmp") and entry.is_file():
            own.append(entry)
        elif entry.name in _FORMATS and entry.is_dir() and not entry.is_symlink():
            for child in sorted(entry.iterdir()):
                if _SESSION_FILE.fullmatch(child.name) and child.is_file():
                    own.append(child)
                else:
                    other.append(f"{entry.name}/{child.name}")
        else:
            other.append(entry.name)
    return own, other


def _prepare_output(out: Path, bytes_needed: int) -> None:
    """Check the output folder and the free disk space; remove an earlier synthetic dataset's files.

    ``out`` must be missing, empty, or an earlier ``emgjax synth`` output
    (only ``metadata.csv``, ``emg2pose/sessionNNN.hdf5`` and
    ``mindrove/sessionNNN.hdf5``): its files are deleted first, so the new
    ``metadata.csv`` lists every session file in the folder. Anything else
    is refused (OSError/ValueError with one line).
    """
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out: expected a folder, found a file at {out}")
    own: list[Path] = []
    if out.is_dir():
        own, other = _synth_entries(out)
        if other:
            shown = ", ".join(other[:5]) + (f" and {len(other) - 5} more" if len(other) > 5 else "")
            raise ValueError(
                f"--out {out}: expected a new or empty folder, or an earlier emgjax synth output (replaced); found "
                f"other files ({shown}). Choose another --out"
            )
    try:
        out.mkdir(parents=True, exist_ok=True)  # read-only, /proc, permission: fail before any work
    except OSError as err:
        raise OSError(f"--out {out}: expected a folder that can be created, found: {err.strerror or err}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise PermissionError(f"--out {out}: expected a writable folder, found no write permission")
    free = shutil.disk_usage(out).free
    freed = sum(f.stat().st_size for f in own)
    if bytes_needed > free + freed:
        raise ValueError(
            f"--out {out}: expected room for about {bytes_needed / 1e9:.2f} GB of sessions, found "
            f"{(free + freed) / 1e9:.2f} GB free on that disk; write fewer or shorter sessions"
        )
    for path in own:
        path.unlink()
    for name in _FORMATS:
        folder = out / name
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def write_synthetic_dataset(
    out_dir,
    *,
    n_sessions: int = 6,
    duration_s: float | None = 60.0,
    seed: int = 0,
    formats: Sequence[str] = _FORMATS,
    config: SyntheticConfig | None = None,
    n_users: int = 1,
) -> dict[str, Any]:
    """Generate ``n_sessions`` sessions for each of ``n_users`` simulated users and write them as HDF5 files.

    Layout: ``out_dir/emg2pose/sessionNNN.hdf5`` (emg2pose format, 16 ch, 2 kHz,
    angles per sample), ``out_dir/mindrove/sessionNNN.hdf5`` (our MindRove
    schema: 8 ch, 500 Hz, 30 fps landmarks + confidence + angles) and
    ``out_dir/metadata.csv`` (one row per session in emg2pose's metadata
    format -- ``filename, user, session, stage, side, moving_hand, held_out_user,
    held_out_stage, split, generalization`` -- plus our columns, see
    ``METADATA_COLUMNS``). ``load_splits(out_dir / "metadata.csv")`` and
    ``load_emg2pose_sessions(out_dir / "emg2pose")`` read it.
    User u's session i is file ``session{u * n_sessions + i:03d}`` with seed
    ``seed * 10000 + i`` (``generate_session(config, seed, user=u)``), user id
    ``user{u}`` and stage ``stage0``. Splits: the last ``heldout_user_count(n_users)``
    users are held out (``held_out_user`` True, split ``test``, generalization
    ``user``); every other user's sessions are split by session (``session_splits``:
    train, then val and test, generalization ``session``, our label for a seen
    user's unseen session). With one user this is the single-user dataset as before.
    ``duration_s`` (seconds per session) overrides ``config.duration_s``; pass
    None to keep the config's.

    Checked before anything is generated: 1 <= n_sessions <= MAX_SESSIONS,
    1 <= n_users, n_users * n_sessions <= MAX_SESSIONS,
    0 < duration <= MAX_DURATION_S, 0 <= seed <= MAX_SEED, room on the disk,
    and ``out_dir`` new, empty or an earlier synthetic dataset, whose files
    are deleted first (anything else in it is refused). Sessions are
    generated and written one at a time, so memory does not grow with
    ``n_sessions``; ``metadata.csv`` is written last (atomically).

    Returns:
      {"emg2pose": [Path, ...], "mindrove": [Path, ...], "metadata": Path,
          "splits": [str, ...], "users": [str, ...]} (one entry per session, in
          file order; a format not asked for has an empty list).
    """
    config = SyntheticConfig() if config is None else config
    if not isinstance(config, SyntheticConfig):
        raise ValueError(f"config must be a SyntheticConfig, found {type(config).__name__}")
    n_sessions = _check_count("sessions", n_sessions, 1, MAX_SESSIONS)
    n_users = _check_count("users", n_users, 1, MAX_SESSIONS)
    if n_users * n_sessions > MAX_SESSIONS:
        raise ValueError(
            f"users x sessions: expected at most {MAX_SESSIONS:,} sessions in all, found {n_users} x {n_sessions} = "
            f"{n_users * n_sessions:,}"
        )
    duration = config.duration_s if duration_s is None else duration_s
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not 0 < duration <= MAX_DURATION_S:
        raise ValueError(f"duration: expected seconds in (0, {MAX_DURATION_S:g}], found {duration!r}")
    config = config.replace(duration_s=duration)
    seed = _check_count("seed", seed, 0, MAX_SEED)
    if isinstance(formats, str):
        formats = (formats,)
    unknown = [f for f in formats if f not in _FORMATS]
    if unknown or not formats:
        raise ValueError(f"formats must be a non-empty subset of {_FORMATS}, found {tuple(formats)!r}")
    from emgjax.errors import check_output_path

    out = check_output_path("out_dir", out_dir)
    bytes_needed = int(n_users * n_sessions * config.duration_s * sum(_BYTES_PER_SECOND[f] for f in formats) * 1.1)
    _prepare_output(out, bytes_needed)
    if "emg2pose" in formats:
        from emgjax.data.emg2pose import write_emg2pose_session
    if "mindrove" in formats:
        from emgjax.data.mindrove import write_mindrove_session

    result: dict[str, Any] = {"emg2pose": [], "mindrove": [], "splits": [], "users": []}
    rows = []
    first_heldout = n_users - heldout_user_count(n_users)
    for user, i in ((u, i) for u in range(n_users) for i in range(n_sessions)):
        session_seed = seed * 10_000 + i
        name = f"session{user * n_sessions + i:03d}"
        heldout_user = user >= first_heldout
        split = "test" if heldout_user else _split_of(i, n_sessions)
        result["splits"].append(split)
        result["users"].append(f"user{user}")
        sess = generate_session(config, session_seed, user)
        row = {
            "filename": f"{'emg2pose' if 'emg2pose' in formats else 'mindrove'}/{name}",
            "stage": "stage0",
            "side": "right",
            "session": name,
            "user": f"user{user}",
            "moving_hand": True,
            "held_out_user": heldout_user,
            "held_out_stage": False,
            "split": split,
            "generalization": "user" if heldout_user else "" if split == "train" else "session",
            "session_seed": session_seed,
            "model_seed": config.model_seed,
            "duration_s": config.duration_s,
            "emg2pose_file": "",
            "mindrove_file": "",
            "n_samples_2k": sess.emg_2k.shape[0],
            "n_samples_500": sess.emg_500.shape[0],
            "n_frames": sess.frame_times.shape[0],
            "ik_failure_fraction": f"{sess.info['ik_failure_fraction']:.6f}",
            "ring_rotation_deg": f"{sess.info['ring_rotation_deg']:.3f}",
            "mindrove_rotation_deg": f"{sess.info['mindrove_rotation_deg']:.3f}",
            "hum_hz": "" if config.hum_hz is None else config.hum_hz,
            "hand_scale": f"{sess.info['hand_scale']:.4f}",
            "high_band_info": config.high_band_info,
        }
        if "emg2pose" in formats:
            path = write_emg2pose_session(
                out / "emg2pose" / f"{name}.hdf5",
                emg=sess.emg_2k,
                joint_angles=sess.angles_2k,
                time=sess.time_2k,
                user=row["user"],
                session=name,
                stage="stage0",
                side="right",
                sample_rate=config.emg_rate_hz,
            )
            result["emg2pose"].append(path)
            row["emg2pose_file"] = f"emg2pose/{name}.hdf5"
        if "mindrove" in formats:
            path = write_mindrove_session(
                out / "mindrove" / f"{name}.hdf5",
                emg=sess.emg_500,
                emg_timestamps=sess.time_500,
                sample_rate=config.mindrove_rate_hz,
                board={"name": "emgjax synthetic MindRove view", "board_id": None, "gain": None, "sdk_version": None},
                landmarks=sess.landmarks_frames,
                landmark_confidence=sess.confidence,
                landmark_timestamps=sess.frame_times,
                joint_angles=sess.angles_frames,
                joint_angle_timestamps=sess.frame_times,
                subject_id=row["user"],
                session_id=name,
                hand="right",
                date=_dt.datetime.fromtimestamp(float(sess.time_2k[0]), _dt.UTC).isoformat(),
            )
            result["mindrove"].append(path)
            row["mindrove_file"] = f"mindrove/{name}.hdf5"
        rows.append(row)
        del sess  # one session in memory at a time
    metadata = out / "metadata.csv"
    tmp = metadata.with_name(metadata.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=METADATA_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, metadata)
    result["metadata"] = metadata
    return result


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """``emgjax synth --out DIR [--sessions N --users U --duration S --seed K ...]``.

    Also ``python -m emgjax.data.synthetic``.
    """
    from emgjax.errors import run_command

    parser = argparse.ArgumentParser(
        prog="emgjax synth",
        description="Write a synthetic EMG -> hand-pose dataset (emg2pose and MindRove formats) with no download. "
        "--out must be new, empty, or an earlier emgjax synth output: rerunning into the same folder replaces the "
        "previous dataset (its session files and metadata.csv are deleted first); a folder holding anything else "
        "is refused.",
    )
    parser.add_argument("--out", required=True, help="output folder (new, empty, or an earlier synth output: replaced)")
    parser.add_argument(
        "--sessions", type=int, default=6, help=f"sessions per user, 1 to {MAX_SESSIONS:,} in all (default 6)"
    )
    parser.add_argument(
        "--users",
        type=int,
        default=1,
        help="simulated users (default 1); with 2 or more, the last quarter (at least one) are held out as test",
    )
    parser.add_argument(
        "--duration", type=float, default=60.0, help=f"seconds per session, up to {MAX_DURATION_S:g} (default 60)"
    )
    parser.add_argument("--seed", type=int, default=0, help=f"dataset seed, 0 to {MAX_SEED} (default 0)")
    parser.add_argument("--model-seed", type=int, default=0, help="physiology seed shared by all sessions (default 0)")
    parser.add_argument("--formats", nargs="+", default=list(_FORMATS), choices=_FORMATS, help="formats to write")
    parser.add_argument("--hum-hz", type=float, default=60.0, help="powerline frequency, 0 for none (default 60)")
    parser.add_argument(
        "--ik-failure-fraction",
        type=float,
        default=SyntheticConfig.ik_failure_fraction,
        help="fraction of emg2pose samples with injected IK failures (default 0.02)",
    )
    parser.add_argument(
        "--user-variation",
        type=float,
        default=SyntheticConfig.user_variation,
        help="how much the simulated users differ, 0 = not at all (default 1)",
    )
    parser.add_argument(
        "--high-band-info",
        type=float,
        default=SyntheticConfig.high_band_info,
        help="known-answer knob in [0, 1]: share of the pose information moved to 250-1000 Hz on the electrodes "
        "the MindRove view drops (default 0)",
    )
    args = parser.parse_args(argv)

    def body() -> int:
        # The duration is passed (and checked) below; the config keeps its default until then.
        config = SyntheticConfig(
            model_seed=args.model_seed,
            hum_hz=args.hum_hz or None,
            ik_failure_fraction=args.ik_failure_fraction,
            user_variation=args.user_variation,
            high_band_info=args.high_band_info,
        )
        result = write_synthetic_dataset(
            args.out,
            n_sessions=args.sessions,
            duration_s=args.duration,
            seed=args.seed,
            formats=tuple(args.formats),
            config=config,
            n_users=args.users,
        )
        counts = ", ".join(f"{len(result[f])} {f}" for f in _FORMATS if result[f])
        users = f" from {args.users} users" if args.users > 1 else ""
        print(f"wrote {counts} session(s){users} of {args.duration:g} s to {args.out} (splits in {result['metadata']})")
        return 0

    return run_command("emgjax synth", body)


if __name__ == "__main__":
    raise SystemExit(main())
