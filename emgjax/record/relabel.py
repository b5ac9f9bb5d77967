"""``emgjax label SESSION --video V``: recompute a session's hand labels from its recorded video.

Every frame of the video is labelled (offline: none is dropped) and stamped with the time the recorder
logged for it (the session's ``camera/frame_timestamps``). The session's landmark, image-landmark, joint-angle
and IK-error streams are replaced; everything else is kept. The work happens on a copy that replaces the
file only when complete, so an interrupted run leaves the session as it was.
"""

from __future__ import annotations

import argparse
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from emgjax.data.emg2pose import SessionFormatError
from emgjax.data.mindrove import MindRoveSession, MindRoveSessionWriter
from emgjax.record.camera import VideoFileSource
from emgjax.record.labels import (
    MIN_CONFIDENCE,
    HandLabel,
    Labeller,
    MediaPipeLabeller,
    joint_angles_from_landmarks,
    stack_labels,
)
from emgjax.record.recorder import LABEL_STREAMS

__all__ = ["relabel_session", "main"]

PROG = "emgjax label"


def relabel_session(
    session_path: str | Path, video_path: str | Path, *, labeller: Callable[[], Labeller] | None = None
) -> dict[str, int]:
    """Replace the label streams of ``session_path`` with labels computed from every frame of ``video_path``.

    Args:
      labeller: a factory of the `Labeller` (default: MediaPipe, tracking between frames).
    Returns:
      {"frames": labelled frames, "hand_frames": frames with a confident hand, "ik_frames": frames with joint
      angles (0 without ``emgjax.kinematics.fit_angles``), "video_frames": frames in the video}.
    """
    session_path = Path(session_path)
    with MindRoveSession(session_path) as session:
        if "camera_frames" not in session.streams:
            raise SessionFormatError(
                session_path,
                "no camera frame times (camera/frame_timestamps): expected a session recorded by emgjax record "
                "with a camera",
            )
        frame_times, frame_index = session.read_stream("camera_frames")
        hand = session.hand
    make = labeller or (lambda: MediaPipeLabeller(static_image_mode=False))
    label = make()
    video = VideoFileSource(video_path)
    labels: list[HandLabel] = []
    count = 0
    by_index = dict(zip(np.rint(frame_index).astype(np.int64).tolist(), frame_times.tolist(), strict=True))
    try:
        with video:
            for frame in video:
                count += 1
                when = by_index.get(frame.index)
                if when is not None:
                    labels.append(label(frame.image, when))
    finally:
        label.close()
    if not labels:
        raise ValueError(
            f"{video_path}: expected frames matching the session's {frame_times.size} camera frames, found "
            f"{count} video frames and none matched"
        )
    rows = stack_labels(labels)
    keep = (rows.found > 0) & (rows.confidence > MIN_CONFIDENCE)
    fitted = joint_angles_from_landmarks(rows.world_landmarks[keep], hand) if keep.any() else None
    tmp = session_path.with_name(session_path.name + ".relabel")
    shutil.copyfile(session_path, tmp)
    try:
        writer = MindRoveSessionWriter.reopen(tmp)
        with writer:
            for stream in LABEL_STREAMS:
                writer.drop_stream(stream)
            writer.append("landmarks", rows.world_landmarks, rows.timestamps, confidence=rows.confidence)
            writer.append(
                "image_landmarks",
                rows.image_landmarks,
                rows.timestamps,
                handedness=rows.handedness,
                hand_found=rows.found,
            )
            if fitted is not None:
                ok = np.isfinite(fitted[1])  # frames the fit could not explain carry no angle label
                writer.append("joint_angles", fitted[0][ok], rows.timestamps[keep][ok])
                writer.append("ik_error", fitted[1][ok], rows.timestamps[keep][ok])
            writer.set_attrs({"labels_source": f"camera (recomputed from {Path(video_path).name})"})
        MindRoveSession(tmp).close()  # the result reads before it replaces the original
        os.replace(tmp, session_path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return {
        "frames": len(rows),
        "hand_frames": int(keep.sum()),
        "ik_frames": 0 if fitted is None else int(np.isfinite(fitted[1]).sum()),
        "video_frames": count,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``emgjax label SESSION --video V``."""
    from emgjax.errors import run_command

    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("session", help="a session recorded with a camera (.hdf5)")
    parser.add_argument("--video", required=True, help="the session's video (emgjax record --save-video)")
    args = parser.parse_args(argv)

    def body() -> int:
        result = relabel_session(args.session, args.video)
        print(
            f"{args.session}: {result['frames']} of {result['video_frames']} video frames labelled, "
            f"{result['hand_frames']} with a confident hand, {result['ik_frames']} with joint angles"
        )
        return 0

    return run_command(PROG, body)
