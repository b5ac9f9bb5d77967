"""``emgjax calibrate``: a personal model in one command. Record a few minutes with hand labels (and gesture
prompts), fine-tune a direct model's head on the first part of the recording, save the result as a bundle,
and report the error on the held-out last part before and after.

    emgjax calibrate --model runs/direct --source mindrove --camera 0 --minutes 3 --prompts --out runs/me
    emgjax calibrate --model runs/direct --source synthetic --labels synthetic --camera none --minutes 1 \\
        --out runs/me_synthetic --no-view --fast
    emgjax stream --model runs/me/model --source mindrove

``--out`` (a new or empty folder) receives ``calibration.hdf5`` (the session, as ``emgjax record`` writes
it), ``finetune/`` (the fine-tuning run of `emgjax.recipes.direct.finetune_direct`: config, statistics,
metrics, checkpoints, ``finetune_evaluation.json``) and ``model/`` (the calibrated bundle). The first
``1 - --heldout-fraction`` of the recording trains; the windows starting after it measure the model before
and after (MPJPE for joints models). Only direct models can be calibrated (the fine-tuning recipe is
theirs). ``--fast`` generates the synthetic source's EMG as fast as possible instead of in real time.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["CalibrationResult", "calibrate", "main", "MIN_LABEL_COVERAGE", "SESSION_FILE", "RUN_DIR", "MODEL_DIR"]

PROG = "emgjax calibrate"
SESSION_FILE = "calibration.hdf5"
RUN_DIR = "finetune"
MODEL_DIR = "model"
# Below this fraction of label frames with a confident hand, a few minutes hold too little to fine-tune on.
MIN_LABEL_COVERAGE = 0.3


@dataclasses.dataclass
class CalibrationResult:
    """What `calibrate` made and measured.

    Attributes:
      out_dir: the calibration folder; session: its recorded ``calibration.hdf5``; model_dir: the bundle.
      recording: the recorder's `emgjax.record.recorder.RecordingStats`.
      duration_s: seconds of EMG recorded; calibration_seconds: the first part, used for fine-tuning.
      label_coverage: fraction of the target's label frames that are valid (a confident hand).
      steps: fine-tuning steps; before, after: `emgjax.recipes.direct.DirectEvaluation` of the original and
        the calibrated model on the windows starting after ``calibration_seconds``.
    """

    out_dir: Path
    session: Path
    model_dir: Path
    recording: Any
    duration_s: float
    calibration_seconds: float
    label_coverage: float
    steps: int
    before: Any
    after: Any

    def metric(self) -> str:
        """The headline metric's key: MPJPE (mm) for joints models, the angle error (degrees) otherwise."""
        return "mpjpe_mm" if "mpjpe_mm" in self.before.model else "mae_deg"

    def report(self) -> str:
        """Lines of text: the data used and the held-out error before and after."""
        key = self.metric()
        before, after = self.before.model[key], self.after.model[key]
        change = f" ({(after - before) / before:+.0%})" if before else ""
        heldout_s = self.duration_s - self.calibration_seconds
        recorded = f"recorded {self.duration_s:.1f} s into {self.session}"
        coverage = f"{self.label_coverage:.0%} of label frames with a confident hand"
        tuned = f"fine-tuned {self.steps} steps on the first {self.calibration_seconds:.1f} s"
        lines = [
            f"{recorded} ({coverage})",
            f"{tuned}; calibrated model in {self.model_dir}",
            f"held-out error on the last {heldout_s:.1f} s ({self.after.frames} poses), {key}:",
            f"  before  {before:8.2f}",
            f"  after   {after:8.2f}{change}",
            f"  predict-the-mean baseline  {self.before.baseline[key]:8.2f}",
        ]
        return "\n".join(lines)


def _check_out_dir(out: Path) -> None:
    """``out`` must be a new or empty folder we can write into (checked before recording anything)."""
    from emgjax.errors import check_output_path

    check_output_path("out", out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: expected a folder for the calibration, found a file")
    if out.is_dir() and any(out.iterdir()):
        found = sorted(child.name for child in out.iterdir())[:5]
        raise ValueError(f"--out {out}: expected a new or empty folder, found one holding {found}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(f"--out {out}: cannot create the folder: {err.strerror or err}") from None
    if not os.access(out, os.W_OK):
        raise OSError(f"--out {out}: the folder is not writable")


def _load_direct_model(model: str | Path) -> tuple[Path, Any]:
    """(bundle directory, loaded `Model`) of ``model`` (a bundle or a run folder with ``model/``); other
    kinds are refused."""
    from emgjax.bundle import load_model, resolve_model_dir

    directory = resolve_model_dir(model)
    loaded = load_model(directory)
    if loaded.kind != "direct":
        raise ValueError(
            f"--model {model}: expected a direct model (the head fine-tuning recipe is for direct models), "
            f"found a {loaded.kind} model"
        )
    return directory, loaded


def _shortest_minutes(info: dict[str, Any], batch_size: int, stride: int, heldout_fraction: float) -> float:
    """Recording minutes below which the first part holds no training batch or the last part no window."""
    rate = float(info["sample_rate"])
    window = int(info["data"]["window_length"])
    train_s = (window + (batch_size - 1) * stride) / rate / (1.0 - heldout_fraction)
    heldout_s = window / rate / heldout_fraction
    return max(train_s, heldout_s) / 60.0


def _label_coverage(session: Path, kind: str, min_confidence: float) -> float:
    """Fraction of the ``kind`` label frames in ``session`` that are valid; ValueError when it has none."""
    from emgjax.data.mindrove import MindRoveSession

    with MindRoveSession(session) as opened:
        if kind not in opened.label_kinds:
            raise ValueError(
                f"{session}: expected '{kind}' hand labels to fine-tune on, found none (labels present: "
                f"{list(opened.label_kinds)}); record with a camera and MediaPipe labels, or --labels synthetic"
            )
        ok = opened.label_stream(kind, min_confidence=min_confidence).frame_ok
    return float(ok.mean()) if ok.size else 0.0


def calibrate(
    model: str | Path,
    out: str | Path,
    *,
    source: str = "synthetic",
    camera: str = "none",
    labels: str | None = None,
    minutes: float = 3.0,
    heldout_fraction: float = 0.2,
    prompts: bool = False,
    prompt_seconds: float = 4.0,
    view: bool = False,
    fast: bool = False,
    hand: str = "right",
    epochs: int = 20,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    train_last_lstm_layer: bool = False,
    seed: int = 0,
    min_label_coverage: float = MIN_LABEL_COVERAGE,
    verbose: bool = True,
    log: Callable[[str], None] = print,
) -> CalibrationResult:
    """Record ``minutes`` of calibration data into ``out``, fine-tune the direct ``model`` on its first part
    and evaluate the original and the calibrated model on the rest.

    Everything that can be checked is checked before recording: the model (a direct bundle), ``minutes``
    (positive and long enough for one training batch and one held-out window), ``heldout_fraction`` in
    (0, 1), the labels (a run without labels has nothing to train on), ``out`` (new or empty, writable).

    Args:
      model: a direct model bundle, or a training run's folder holding ``model/``.
      out: the calibration folder to create (see the module docstring for its contents).
      source, camera, labels: as ``emgjax record`` (``labels`` None: MediaPipe with a camera).
      minutes: recording length; heldout_fraction: the last part, kept out of training.
      prompts: show gesture prompts (stored in the session); view: the live preview window.
      fast: the synthetic source generates as fast as possible (tests and demos).
      epochs, batch_size, learning_rate, train_last_lstm_layer, seed: the fine-tuning's
        (`emgjax.recipes.direct.FinetuneExperiment`).
      min_label_coverage: the least fraction of valid label frames accepted.
    Returns:
      a `CalibrationResult`.
    Raises:
      ValueError: bad input, a model of another kind, or a recording with too few labels (the session stays
        in ``out`` for ``emgjax check``).
      OSError: ``out`` cannot be written.
    """
    from emgjax.recipes.common import LoopConfig, SessionsConfig
    from emgjax.recipes.direct import FinetuneExperiment, direct_info, finetune_direct
    from emgjax.record.inputs import choose_labels, open_inputs
    from emgjax.record.recorder import PromptSchedule
    from emgjax.train.optim import OptimConfig

    out = Path(out)
    if (
        isinstance(minutes, bool)
        or not isinstance(minutes, (int, float))
        or not (math.isfinite(minutes) and minutes > 0)
    ):
        raise ValueError(f"--minutes: expected a positive number of minutes, found {minutes!r}")
    if not (0.0 < heldout_fraction < 1.0):
        raise ValueError(f"--heldout-fraction: expected a fraction in (0, 1), found {heldout_fraction!r}")
    if (labels or ("mediapipe" if camera != "none" else "none")) == "none":
        raise ValueError(
            "labels: expected hand labels to fine-tune on (a --camera with MediaPipe, or --labels synthetic with "
            "--source synthetic), found none"
        )
    labels = choose_labels(labels, source=source, camera=camera)  # MediaPipe missing: a one-line error, now
    if fast and source != "synthetic":
        raise ValueError(f"--fast: expected --source synthetic (a board runs in real time), found {source}")
    model_dir, pretrained = _load_direct_model(model)
    info = direct_info(pretrained)
    exp = FinetuneExperiment(
        pretrained_dir=str(model_dir),
        out_dir=str(out / RUN_DIR),
        sessions=SessionsConfig(train=(str(out / SESSION_FILE),)),
        calibration_seconds=1.0,  # set from the recorded duration below
        train_last_lstm_layer=train_last_lstm_layer,
        optim=OptimConfig(learning_rate=learning_rate),
        loop=LoopConfig(batch_size=batch_size, num_epochs=epochs, seed=seed, progress=verbose),
    )
    shortest = _shortest_minutes(info, batch_size, exp.stride, heldout_fraction)
    if minutes < shortest:
        raise ValueError(
            f"--minutes: expected at least {shortest:.2f} min (one batch of {batch_size} windows in the first "
            f"{1 - heldout_fraction:.0%} and one window in the held-out rest), found {minutes:g}"
        )
    _check_out_dir(out)

    # 1. record, exactly as `emgjax record` does, at the model's channels and rate for the synthetic source
    session = out / SESSION_FILE
    inputs = open_inputs(
        source,
        camera,
        labels,
        view=view,
        channels=int(pretrained.input_spec.channels),
        sample_rate=float(info["sample_rate"]),
        seed=seed,
        realtime=not fast,
    )
    stats = inputs.record(
        session,
        seconds=minutes * 60.0,
        prompts=PromptSchedule(seconds_each=prompt_seconds, show=log) if prompts else None,
        hand=hand,
        log=log,
    )
    log(f"{session}: {stats.summary()}")

    # 2. enough labels?
    kind = info["target"]["kind"]
    coverage = _label_coverage(session, kind, float(info["data"]["min_confidence"]))
    if coverage < min_label_coverage:
        raise ValueError(
            f"{session}: label coverage too low to calibrate: expected at least {min_label_coverage:.0%} of "
            f"'{kind}' frames with a confident hand, found {coverage:.0%} (was the hand in view? `emgjax check "
            f"{session}` shows the longest stretch without one)"
        )

    # 3-5. fine-tune on the first part; finetune_direct exports a bundle and evaluates before/after on the rest
    rate = float(info["sample_rate"])
    duration = stats.emg_samples / rate
    exp = dataclasses.replace(exp, calibration_seconds=(1.0 - heldout_fraction) * duration)
    run, evaluations = finetune_direct(exp, verbose=verbose)
    model_out = out / MODEL_DIR
    shutil.copytree(run.out_dir / MODEL_DIR, model_out)  # the run keeps its own copy (it can be resumed)
    return CalibrationResult(
        out_dir=out,
        session=session,
        model_dir=model_out,
        recording=stats,
        duration_s=duration,
        calibration_seconds=exp.calibration_seconds,
        label_coverage=coverage,
        steps=run.steps,
        before=evaluations["before"],
        after=evaluations["after"],
    )


def main(argv: Sequence[str] | None = None) -> int:
    from emgjax.errors import run_command
    from emgjax.record.inputs import LABELS, RECORD_SOURCES

    parser = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, metavar="DIR", help="the direct model bundle (or its run folder)")
    parser.add_argument("--source", choices=RECORD_SOURCES, required=True, help="EMG source")
    parser.add_argument("--camera", default="none", help="0 (webcam index), video:PATH, images:DIR, synthetic, none")
    parser.add_argument("--labels", choices=LABELS, default=None, help="hand labels")
    parser.add_argument("--minutes", type=float, default=3.0, help="minutes to record (default 3)")
    parser.add_argument("--out", required=True, metavar="NEW_DIR", help="the calibration folder to create")
    parser.add_argument("--prompts", action="store_true", help="show a sequence of gestures in the terminal")
    parser.add_argument("--prompt-seconds", type=float, default=4.0, help="seconds per gesture prompt (default 4)")
    parser.add_argument("--no-view", action="store_true", help="no live preview window (headless)")
    parser.add_argument("--heldout-fraction", type=float, default=0.2, help="last part kept for evaluation (0.2)")
    parser.add_argument("--epochs", type=int, default=20, help="fine-tuning epochs (default 20)")
    parser.add_argument("--batch-size", type=int, default=64, help="fine-tuning batch size (default 64)")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="fine-tuning learning rate (1e-3)")
    parser.add_argument("--train-last-lstm-layer", action="store_true", help="also train the last LSTM layer")
    parser.add_argument("--hand", choices=("right", "left"), default="right", help="the recorded hand")
    parser.add_argument("--fast", action="store_true", help="--source synthetic: generate as fast as possible")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic source and the fine-tuning")
    parser.add_argument("--quiet", action="store_true", help="no training progress")
    args = parser.parse_args(argv)

    def body() -> int:
        result = calibrate(
            args.model,
            args.out,
            source=args.source,
            camera=args.camera,
            labels=args.labels,
            minutes=args.minutes,
            heldout_fraction=args.heldout_fraction,
            prompts=args.prompts,
            prompt_seconds=args.prompt_seconds,
            view=not args.no_view,
            fast=args.fast,
            hand=args.hand,
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            train_last_lstm_layer=args.train_last_lstm_layer,
            seed=args.seed,
            verbose=not args.quiet,
        )
        print(result.report())
        print("next, stream the calibrated model:")
        print(f"  emgjax stream --model {result.model_dir} --source {args.source}")
        return 0

    return run_command(PROG, body)
