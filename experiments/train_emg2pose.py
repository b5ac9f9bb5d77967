"""Train the emg2pose port (a published experiment) on emg2pose-format sessions, then evaluate on the test sessions.

``--experiment`` is one of emg2pose's five: tracking_vemg2pose (default),
regression_vemg2pose, tracking_emg2pose, regression_emg2pose,
regression_neuropose. Defaults are its published setup (tracking_vemg2pose:
11,790-sample windows; tracking/regression_emg2pose: 5,790; NeuroPose: 4,000;
validation and test windows of 11,790 samples, 10,000 for NeuroPose; Adam 1e-3,
batch 64, clipping 1 or 0 as published, L1 + 0.01 x fingertip distance, early
stopping after 50 epochs; windows only inside runs without IK failure, as
emg2pose's datamodule). Every field of `emgjax.recipes.emg2pose.Emg2PoseTraining`
is an option; ``--set size.hidden_size=64`` etc. shrink the networks for a quick
run. Rerunning with the same ``--out_dir`` resumes from its checkpoints.

    python experiments/train_emg2pose.py --data_dir /data/emg2pose_mini --out_dir runs/vemg2pose
    python experiments/train_emg2pose.py --experiment regression_emg2pose --data_dir /data/emg2pose_mini \
        --out_dir runs/regression_emg2pose
"""

from __future__ import annotations

import json
import sys

from emgjax.cli import run_command
from emgjax.config import parse_config
from emgjax.recipes.common import experiment_parser, join_distributed, write_json
from emgjax.recipes.emg2pose import Emg2PoseTraining, evaluate_emg2pose, train_emg2pose

PROG = "train_emg2pose.py"


def main(argv=None) -> int:
    exp, namespace = parse_config(Emg2PoseTraining(), argv, parser=experiment_parser(PROG, __doc__))

    def body() -> int:
        join_distributed(namespace)
        run = train_emg2pose(exp)
        print(f"trained {run.steps} steps in {run.train_seconds:.1f} s; model in {run.out_dir / 'model'}")
        if run.splits["test"]:
            metrics = evaluate_emg2pose(
                run.out_dir,
                run.splits["test"],
                window_length=exp.val_window_length,
                skip_ik_failures=exp.skip_ik_failures,
            )
            write_json(run.out_dir / "evaluation_test.json", metrics)
            keys = ("mae_deg", "landmark_distance", "fingertip_distance")
            print(
                "test sessions:",
                json.dumps({n: {k: round(metrics[n][k], 3) for k in keys} for n in ("model", "baseline")}),
            )
        return 0

    return run_command(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
