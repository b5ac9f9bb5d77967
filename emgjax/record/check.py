"""``emgjax check SESSION.hdf5``: what a recorded session holds and how good it is.

Reports the duration, sample rate (stored and measured from the timestamps), EMG channels, the IMU stream
(samples, rate, coverage, value ranges) when recorded, gaps and dropped packets (from
the EMG timestamps: a step of d sample periods is a gap of round(d) - 1 lost samples), label coverage
(the fraction of label frames with a confident hand, the longest stretch without one), the IK error
distribution when IK pseudo-labels are present, the gesture prompts and the recorder's statistics.
A file that is not a session gets a one-line error; a recording from the original project is named as
such with the command that imports it.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from emgjax.data.emg2pose import SessionFormatError, _attr_to_python
from emgjax.data.mindrove import SCHEMA_NAME, MindRoveSession
from emgjax.record.labels import MIN_CONFIDENCE

__all__ = ["check_session", "format_check", "main", "GAP_PERIODS", "MAX_IK_ERROR_MM"]

GAP_PERIODS = 1.5  # a timestamp step above 1.5 sample periods is a gap (jitter below is not)
MAX_IK_ERROR_MM = 15.0  # the original project's rule: IK frames at or above are masked
PROG = "emgjax check"


def _original_layout(path: Path) -> bool:
    try:
        with h5py.File(path, "r") as f:
            return _attr_to_python(f.attrs.get("emgjax_schema")) != SCHEMA_NAME and ("pose" in f or "emg/filtered" in f)
    except OSError:
        return False


def _longest_run(mask: np.ndarray, times: np.ndarray) -> float:
    """Longest time span (seconds) covered by consecutive True entries of ``mask``."""
    best, start = 0.0, None
    for i, value in enumerate(mask):
        if value and start is None:
            start = i
        if (not value or i == mask.size - 1) and start is not None:
            stop = i if value else i - 1
            best = max(best, float(times[stop] - times[start]))
            start = None
    return best


def check_session(path: str | Path) -> dict[str, Any]:
    """A report (plain JSON-able dict) on one MindRove session; raises SessionFormatError on other files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: session file does not exist")
    if _original_layout(path):
        raise SessionFormatError(
            path,
            "a recording in the original project's layout, not an emgjax session: import it first with "
            f"python -c \"from emgjax.data import import_original_recording as i; i('{path}', 'imported.hdf5')\"",
        )
    with MindRoveSession(path) as session:
        times = session.timestamps
        rate = session.sample_rate
        report: dict[str, Any] = {
            "file": str(path),
            "samples": len(session),
            "sample_rate_hz": rate,
            "channels": session.num_channels,
        }
        report["board"] = session.board
        meta = session.metadata
        for key in ("recorder", "labels_source", "clock", "video_file"):
            if key in meta:
                report[key] = meta[key]
        for key in ("software", "camera", "recording_stats"):
            if key in meta:
                try:
                    report[key] = json.loads(meta[key])
                except (TypeError, ValueError):
                    report[key] = meta[key]
        report["duration_s"] = float(times[-1] - times[0]) + 1.0 / rate if times.size else 0.0
        if times.size >= 2:
            steps = np.diff(times) * rate
            report["measured_rate_hz"] = float(rate / np.median(steps))
            gaps = steps > GAP_PERIODS
            report["gaps"] = int(np.count_nonzero(gaps))
            report["lost_samples"] = int(np.sum(np.rint(steps[gaps]) - 1))
            report["longest_gap_s"] = float(steps[gaps].max() / rate) if gaps.any() else 0.0
        else:
            report.update(measured_rate_hz=float("nan"), gaps=0, lost_samples=0, longest_gap_s=0.0)
        report["streams"] = list(session.streams)
        imu = session.read_imu()
        if imu is not None:
            imu_times, imu_data = imu
            report["imu"] = {
                "samples": int(imu_times.size),
                "sample_rate_hz": meta.get("imu_sample_rate"),
                "measured_rate_hz": float(1.0 / np.median(np.diff(imu_times))) if imu_times.size >= 2 else None,
                "coverage": float(imu_times.size / len(session)) if len(session) else 0.0,
                "accel_range": [float(imu_data[:3].min()), float(imu_data[:3].max())] if imu_times.size else [],
                "gyro_range": [float(imu_data[3:].min()), float(imu_data[3:].max())] if imu_times.size else [],
            }
        if "landmarks" in session.streams:
            stream = session.label_stream("landmarks", min_confidence=MIN_CONFIDENCE)
            lm_times = stream.timestamps
            good = stream.frame_ok
            report["label_frames"] = int(lm_times.size)
            report["label_coverage"] = float(good.mean()) if good.size else 0.0
            report["longest_without_hand_s"] = _longest_run(~good, lm_times) if good.size else report["duration_s"]
            if lm_times.size >= 2:
                report["label_fps"] = float(1.0 / np.median(np.diff(lm_times)))
        if "joint_angles" in session.streams:
            report["joint_angle_frames"] = int(session.label_stream("joint_angles").timestamps.size)
        if "ik_error" in session.streams:
            _, errors = session.read_stream("ik_error")
            if errors.size:
                report["ik_error_mm"] = {
                    "median": float(np.median(errors)),
                    "p90": float(np.percentile(errors, 90)),
                    "max": float(errors.max()),
                    f"fraction_ge_{MAX_IK_ERROR_MM:g}mm": float(np.mean(errors >= MAX_IK_ERROR_MM)),
                }
        if "camera_frames" in session.streams:
            cam_times, _ = session.read_stream("camera_frames")
            report["camera_frames"] = int(cam_times.size)
            if cam_times.size >= 2:
                report["camera_fps"] = float(1.0 / np.median(np.diff(cam_times)))
        if "prompts" in session.streams:
            starts, gestures = session.read_stream("prompts")
            durations = session.read_extra("prompts", "duration")
            names = json.loads(meta.get("prompt_gestures", "[]"))
            report["prompts"] = [
                {
                    "gesture": names[int(g)] if 0 <= int(g) < len(names) else int(g),
                    "start_s": float(s - times[0]) if times.size else float(s),
                    "duration_s": float(d),
                }
                for g, s, d in zip(gestures, starts, durations, strict=True)
            ]
    return report


def format_check(report: dict[str, Any]) -> str:
    """The report as lines of text."""
    lines = [
        (
            f"{report['file']}: {report['duration_s']:.2f} s, {report['samples']} samples at "
            f"{report['sample_rate_hz']:g} Hz (measured {report['measured_rate_hz']:.4g} Hz), "
            f"{report['channels']} EMG channels"
        ),
        f"board: {report['board'].get('name', '?')}",
        f"gaps: {report['gaps']} ({report['lost_samples']} samples lost, longest {report['longest_gap_s']:.3f} s)",
        f"streams: {', '.join(report['streams'])}",
    ]
    if "imu" in report:
        imu = report["imu"]
        ranges = "".join(
            f", {name} {low:.3g} to {high:.3g}"
            for name, (low, high) in (("accel", imu["accel_range"] or (0, 0)), ("gyro", imu["gyro_range"] or (0, 0)))
        )
        lines.append(
            f"IMU: {imu['samples']} samples ({imu['coverage']:.1%} of the EMG samples) at "
            f"{imu['measured_rate_hz'] or float('nan'):.4g} Hz{ranges}"
        )
    if "label_frames" in report:
        lines.append(
            f"labels: {report['label_frames']} frames ({report.get('label_fps', float('nan')):.1f} fps), "
            f"{report['label_coverage']:.1%} with a confident hand (> {MIN_CONFIDENCE:g}); longest stretch without "
            f"a hand {report['longest_without_hand_s']:.1f} s"
        )
        if report["label_coverage"] == 0.0:
            lines.append("labels: WARNING no frame has a confident hand: this session has no usable labels")
    else:
        lines.append("labels: none (this session cannot train a pose model)")
    if "joint_angle_frames" in report:
        lines.append(f"joint angles: {report['joint_angle_frames']} frames")
    if "ik_error_mm" in report:
        ik = report["ik_error_mm"]
        lines.append(
            "IK error (mm): median {:.1f}, p90 {:.1f}, max {:.1f}; {:.1%} >= {:g} mm".format(
                ik["median"], ik["p90"], ik["max"], ik[f"fraction_ge_{MAX_IK_ERROR_MM:g}mm"], MAX_IK_ERROR_MM
            )
        )
    if "camera_frames" in report:
        lines.append(f"camera: {report['camera_frames']} frames ({report.get('camera_fps', float('nan')):.1f} fps)")
    stats = report.get("recording_stats")
    if isinstance(stats, dict):
        lines.append(
            f"recorder: {stats.get('dropped_frames', 0)} frames dropped by the labeller, "
            f"{stats.get('clock_jumps_emg', 0)} EMG and {stats.get('clock_jumps_camera', 0)} camera clock jump(s), "
            f"flushed every {stats.get('mean_flush_interval_s', float('nan')):.2f} s on average "
            f"(max {stats.get('max_flush_interval_s', float('nan')):.2f} s)"
        )
    if report.get("prompts"):
        counts: dict[str, int] = {}
        for prompt in report["prompts"]:
            counts[str(prompt["gesture"])] = counts.get(str(prompt["gesture"]), 0) + 1
        lines.append(f"prompts: {len(report['prompts'])} ({', '.join(f'{k} x{v}' for k, v in counts.items())})")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``emgjax check SESSION.hdf5 [--json]``."""
    from emgjax.errors import run_command

    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("sessions", nargs="+", help="MindRove session files (.hdf5)")
    parser.add_argument("--json", action="store_true", help="print the reports as JSON")
    args = parser.parse_args(argv)

    def body() -> int:
        reports = [check_session(p) for p in args.sessions]
        if args.json:
            print(json.dumps(reports if len(reports) > 1 else reports[0], indent=2, default=_json_default))
        else:
            print("\n\n".join(format_check(r) for r in reports))
        return 0

    return run_command(PROG, body)


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)
