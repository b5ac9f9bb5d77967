"""Train a direct MindRove model (Conv1D + LSTM, joints or MANO) and evaluate it on the test sessions.

Every field of `emgjax.recipes.direct.DirectExperiment` is an option
(``--optim.learning_rate 2e-3``, ``--set model.lstm_hidden=128``, short
aliases such as ``--data_dir``); ``--show-config`` prints the resolved config.
Rerunning with the same ``--out_dir`` resumes from its checkpoints; a non-empty ``--out_dir`` that
is not an earlier run of this experiment is refused (``--overwrite`` deletes its contents first).

    emgjax synth --out data/synth --sessions 8 --duration 60 --formats mindrove
    python experiments/train_direct.py --data_dir data/synth --out_dir runs/direct
"""

from __future__ import annotations

import sys

from emgjax.cli import run_command
from emgjax.config import parse_config
from emgjax.recipes.common import experiment_parser, join_distributed, write_json
from emgjax.recipes.direct import DirectExperiment, evaluate_direct, format_report, train_direct

PROG = "train_direct.py"


def main(argv=None) -> int:
    exp, namespace = parse_config(DirectExperiment(), argv, parser=experiment_parser(PROG, __doc__))

    def body() -> int:
        join_distributed(namespace)
        run = train_direct(exp)
        print(f"trained {run.steps} steps in {run.train_seconds:.1f} s; model in {run.out_dir / 'model'}")
        if run.splits["test"]:
            evaluation = evaluate_direct(run.out_dir, run.splits["test"], plot_dir=run.out_dir)
            print(format_report(evaluation, title="test sessions (model vs predict-the-mean baseline)"))
            write_json(run.out_dir / "evaluation_test.json", evaluation.summary())
        return 0

    return run_command(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
