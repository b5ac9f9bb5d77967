"""Fine-tune a trained direct model for a new user: frozen backbone, train the head on calibration data.

The first ``--calibration_seconds`` of each train-split session are the
calibration data; the test split (or, without one, the rest of the
calibration sessions) measures the model before and after.
``--train_last_lstm_layer true`` also trains the last LSTM layer. Every field
of `emgjax.recipes.direct.FinetuneExperiment` is an option; rerunning with
the same ``--out_dir`` resumes.

    emgjax synth --out data/new_user --sessions 3 --duration 240 --formats mindrove --model-seed 7
    python experiments/finetune_direct.py --pretrained_dir runs/direct --data_dir data/new_user \
        --out_dir runs/direct_new_user --calibration_seconds 120
"""

from __future__ import annotations

import sys

from emgjax.cli import run_command
from emgjax.config import parse_config
from emgjax.recipes.direct import FinetuneExperiment, finetune_direct, format_report


def main(argv=None) -> int:
    exp, _ = parse_config(FinetuneExperiment(), argv, prog="finetune_direct.py", description=__doc__)
    return run_command("finetune_direct.py", lambda: _run(exp))


def _run(exp: FinetuneExperiment) -> int:
    run, evaluations = finetune_direct(exp)
    print(f"fine-tuned {run.steps} steps in {run.train_seconds:.1f} s; model in {run.out_dir / 'model'}")
    print(format_report(evaluations["before"], title="before fine-tuning"))
    print(format_report(evaluations["after"], title="after fine-tuning"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
