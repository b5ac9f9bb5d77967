"""Evaluate a trained run (direct or emg2pose) on held-out sessions.

    python experiments/evaluate.py runs/direct --data_dir data/synth --split test
    python experiments/evaluate.py runs/direct --sessions data/other/session000.hdf5 data/other/session001.hdf5

The run's saved normalisation and target statistics are used (never
statistics of the evaluated data). Writes ``RUN/evaluation_<name>.json``
(and, for direct models, ``RUN/trajectories.png``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from emgjax.cli import run_command
from emgjax.recipes.common import SessionsConfig, resolve_sessions, write_json


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="evaluate.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", help="a run directory (its model is RUN/model/, an emgjax model bundle)")
    parser.add_argument("--sessions", nargs="+", default=None, help="session files to evaluate on")
    parser.add_argument("--data_dir", default=None, help="folder with metadata.csv (use with --split)")
    parser.add_argument("--splits_file", default=None, help="JSON/CSV splits file (use with --split)")
    parser.add_argument(
        "--split", default="test", choices=("train", "val", "test"), help="split to evaluate (default test)"
    )
    parser.add_argument(
        "--window_length", type=int, default=None, help="emg2pose runs: evaluation window (default: the run's)"
    )
    args = parser.parse_args(argv)
    if not (args.sessions or args.data_dir or args.splits_file):
        parser.error("give --sessions, or --data_dir/--splits_file with --split")
    return run_command("evaluate.py", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from emgjax.bundle import read_bundle_info, resolve_model_dir

    kinds = {"direct": "mindrove", "emg2pose": "emg2pose"}
    json_path, info = read_bundle_info(resolve_model_dir(args.run_dir))
    kind = kinds.get(info.get("kind"))
    if kind is None:
        raise ValueError(f"{json_path}: expected a model of kind {' or '.join(kinds)}, found {info.get('kind')!r}")
    if args.sessions:
        sessions, name = [Path(p) for p in args.sessions], "sessions"
    else:
        splits = resolve_sessions(
            SessionsConfig(data_dir=args.data_dir or "", splits_file=args.splits_file or ""), kind
        )
        sessions, name = splits[args.split], args.split
    if kind == "mindrove":
        from emgjax.recipes.direct import evaluate_direct, format_report

        evaluation = evaluate_direct(args.run_dir, sessions, plot_dir=args.run_dir)
        print(format_report(evaluation, title=f"{name} (model vs predict-the-mean baseline)"))
        summary = evaluation.summary()
    else:
        from emgjax.recipes.emg2pose import evaluate_emg2pose

        summary = evaluate_emg2pose(args.run_dir, sessions, window_length=args.window_length)
        print(json.dumps(summary, indent=2))
    path = write_json(Path(args.run_dir) / f"evaluation_{name}.json", summary)
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
