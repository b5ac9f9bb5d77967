"""``emgjax record``: record EMG, camera frames, hand labels and gesture prompts into a session file.

    emgjax record --source mindrove --camera 0 --out s.hdf5 --prompts
    emgjax record --source synthetic --camera video:hand.mp4 --seconds 10 --out s.hdf5 --no-view
    emgjax record --source synthetic --labels synthetic --seconds 10 --out data/s1.hdf5 --metadata data/metadata.csv
    emgjax record --source synthetic --channels 16 --sample-rate 2000 --labels synthetic --seconds 10 --out s16.hdf5

``--labels`` defaults to ``mediapipe`` with a camera (MediaPipe Hands on every frame it can keep up with) and
``none`` without one; ``synthetic`` stores the synthetic EMG generator's ground-truth landmarks and joint
angles (for trying the chain without a hand in view). The session stores the source's channels (the
armband's 8; ``--channels``/``--sample-rate`` set the synthetic source's, e.g. 16 at 2 kHz like emg2pose's
band) and its IMU when it has one (the MindRove boards). ``--metadata CSV --split NAME`` adds the session to a
dataset's ``metadata.csv`` (created if needed), which ``experiments/train_direct.py --data_dir`` reads.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from emgjax.record.inputs import LABELS, RECORD_SOURCES, choose_labels, open_inputs
from emgjax.record.recorder import DEFAULT_GESTURES, PromptSchedule

__all__ = ["main", "add_to_metadata"]

PROG = "emgjax record"
METADATA_COLUMNS = ("split", "mindrove_file")


def add_to_metadata(metadata: str | Path, session: str | Path, split: str) -> Path:
    """Append ``session`` under ``split`` to a dataset's ``metadata.csv`` (columns split, mindrove_file;
    the path is stored relative to the CSV's folder), creating the file when absent."""
    metadata, session = Path(metadata), Path(session)
    if metadata.exists():
        with open(metadata, newline="") as handle:
            header = next(csv.reader(handle), [])
        if not set(METADATA_COLUMNS) <= set(header):
            raise ValueError(f"{metadata}: expected columns {list(METADATA_COLUMNS)}, found {header}")
    else:
        metadata.parent.mkdir(parents=True, exist_ok=True)
        header = list(METADATA_COLUMNS)
        with open(metadata, "w", newline="") as handle:
            csv.writer(handle).writerow(header)
    row = {"split": split, "mindrove_file": os.path.relpath(session.resolve(), metadata.parent.resolve())}
    with open(metadata, "a", newline="") as handle:
        csv.DictWriter(handle, fieldnames=header, restval="").writerow(row)
    return metadata


def _check_writable(out: Path, overwrite: bool) -> None:
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out}: already exists (pass --overwrite to replace it)")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(f"{out}: cannot create the output folder {out.parent}: {err.strerror or err}") from None
    if not os.access(out.parent, os.W_OK):
        raise OSError(f"{out}: the output folder {out.parent} is not writable")


def main(argv: Sequence[str] | None = None) -> int:
    from emgjax.errors import run_command

    parser = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--source", choices=RECORD_SOURCES, required=True, help="EMG source")
    parser.add_argument("--camera", default="none", help="0 (webcam index), video:PATH, images:DIR, synthetic, none")
    parser.add_argument("--labels", choices=LABELS, default=None, help="hand labels")
    parser.add_argument("--channels", type=int, default=None, help="--source synthetic: EMG channels (default 8)")
    parser.add_argument("--sample-rate", type=float, default=None, help="--source synthetic: EMG rate (500 Hz)")
    parser.add_argument("--out", required=True, help="the session file to write (.hdf5)")
    parser.add_argument("--seconds", type=float, default=None, help="EMG seconds to record (default: until Ctrl-C)")
    parser.add_argument("--prompts", action="store_true", help="show a sequence of gestures in the terminal")
    parser.add_argument("--prompt-seconds", type=float, default=4.0, help="seconds per gesture prompt (default 4)")
    parser.add_argument("--gestures", default=",".join(DEFAULT_GESTURES), help="comma-separated gestures to prompt")
    parser.add_argument("--no-view", action="store_true", help="no live preview window (headless)")
    parser.add_argument("--save-video", default=None, help="also save the camera's frames (MJPG .avi) for emgjax label")
    parser.add_argument("--hand", choices=("right", "left"), default="right", help="the recorded hand")
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate of images:DIR and the synthetic camera")
    parser.add_argument("--chunk-samples", type=int, default=20, help="EMG samples per read (default 20)")
    parser.add_argument("--flush-seconds", type=float, default=0.5, help="longest time between flushes (default 0.5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic source")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    parser.add_argument("--metadata", default=None, help="add the session to this metadata.csv (for training)")
    parser.add_argument("--split", default="train", help="the session's split in --metadata (default train)")
    args = parser.parse_args(argv)

    def body() -> int:
        logging.basicConfig(level=logging.WARNING, format=f"{PROG}: %(message)s")
        out = Path(args.out)
        if not (0 < args.flush_seconds <= 1.0):
            raise ValueError(f"--flush-seconds: expected a number in (0, 1], found {args.flush_seconds!r}")
        if args.source != "synthetic" and (args.channels, args.sample_rate) != (None, None):
            raise ValueError(
                f"--channels/--sample-rate: expected with --source synthetic (a board has its own), found "
                f"--source {args.source}"
            )
        labels = choose_labels(args.labels, source=args.source, camera=args.camera)
        _check_writable(out, args.overwrite)
        prompts = None
        if args.prompts:
            gestures = [g.strip() for g in args.gestures.split(",") if g.strip()]
            prompts = PromptSchedule(gestures, seconds_each=args.prompt_seconds)
        inputs = open_inputs(
            args.source,
            args.camera,
            labels,
            view=not args.no_view,
            chunk_samples=args.chunk_samples,
            channels=8 if args.channels is None else args.channels,
            sample_rate=500.0 if args.sample_rate is None else args.sample_rate,
            seed=args.seed,
            fps=args.fps,
        )
        stats = inputs.record(
            out,
            seconds=args.seconds,
            prompts=prompts,
            video_path=args.save_video,
            flush_every_s=args.flush_seconds,
            overwrite=args.overwrite,
            hand=args.hand,
        )
        print(f"{out}: {stats.summary()}")
        if args.metadata:
            print(f"added to {add_to_metadata(args.metadata, out, args.split)} (split {args.split})")
        return 0

    return run_command(PROG, body)
