"""Train the emg2pose port (a published experiment) on emg2pose-format sessions, then evaluate on the test sessions.

Defaults are the published setup of ``--experiment`` (tracking_vemg2pose:
11,790-sample windows, Adam 1e-3, batch 64, clipping 1, L1 + 0.01 x fingertip
distance, early stopping after 50 epochs). Every field of
`emgjax.recipes.emg2pose.Emg2PoseTraining` is an option; ``--set size.hidden_size=64``
etc. shrink the networks for a quick run. Rerunning with the same
``--out_dir`` resumes from its checkpoints.

    python experiments/train_emg2pose.py --data_dir /data/emg2pose_mini --out_dir runs/vemg2pose
"""

from __future__ import annotations

import json
import sys

from emgjax.recipes import write_json
from emgjax.recipes.emg2pose import Emg2PoseTraining, evaluate_emg2pose, train_emg2pose
from emgjax.recipes.overrides import parse_config


def main(argv=None) -> int:
    exp, _ = parse_config(Emg2PoseTraining(), argv, prog="train_emg2pose.py", description=__doc__)
    try:
        run = train_emg2pose(exp)
        print(f"trained {run.steps} steps in {run.train_seconds:.1f} s; model in {run.out_dir / 'model'}")
        if run.splits["test"]:
            metrics = evaluate_emg2pose(run.out_dir, run.splits["test"], window_length=exp.val_window_length)
            write_json(run.out_dir / "evaluation_test.json", metrics)
            keys = ("mae_deg", "landmark_distance", "fingertip_distance")
            print("test sessions:", json.dumps({n: {k: round(metrics[n][k], 3) for k in keys} for n in ("model", "baseline")}))
    except (ValueError, FileNotFoundError) as err:
        print(f"train_emg2pose.py: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
