"""Batch benchmark of the MindRove -> emg2pose hardware adapters (thin CLI over emgjax.recipes.adapter).

    python experiments/bench_adapters.py --quick --out runs/adapters      # CPU, synthetic data, < 10 min
    python experiments/bench_adapters.py --tiny --out /tmp/adapters       # smoke test, < 60 s
    python experiments/bench_adapters.py --out runs/adapters_full \\
        [--data EMG2POSE_DIR] [--emg2pose CONVERTED_DIR]                   # the full grid, for a GPU/TPU

Writes OUT/results.csv, OUT/results.md, OUT/adapter_benchmark.png and OUT/summary.json;
see docs/adapter_benchmark.md for what the numbers mean.
"""

from __future__ import annotations

import argparse
import sys

from emgjax.cli import run_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="the CPU quick grid on synthetic data (< 10 min)")
    size.add_argument("--tiny", action="store_true", help="a seconds-long smoke run (tests)")
    parser.add_argument("--out", required=True, help="output directory (the frozen emg2pose is cached here)")
    parser.add_argument("--data", help="directory of emg2pose-format HDF5 sessions (default: synthetic)")
    parser.add_argument("--emg2pose", help="a converted emg2pose directory (`emgjax convert`) to freeze")
    parser.add_argument("--variants", help="comma-separated ADAPTER+UPSAMPLER variants to train")
    parser.add_argument("--objectives", help="comma-separated objective names (recon, pose, recon+pose, pose+prior)")
    parser.add_argument("--seeds", help="comma-separated integer seeds")
    parser.add_argument("--steps", type=int, help="adapter training steps (phase 1)")
    parser.add_argument("--phase2-steps", type=int, help="extra steps with the emg2pose decoder unfrozen")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    return run_command("bench_adapters", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from emgjax.errors import check_output_path
    from emgjax.recipes.adapter import bench_config, benchmark

    check_output_path("--out", args.out)

    changes = {}
    if args.variants:
        changes["variants"] = tuple(v.strip() for v in args.variants.split(",") if v.strip())
    if args.objectives:
        # objective names contain '+' but never ','
        changes["objectives"] = tuple(
            o.strip() for o in args.objectives.split(";" if ";" in args.objectives else ",") if o.strip()
        )
    if args.seeds:
        try:
            changes["seeds"] = tuple(int(s) for s in args.seeds.split(","))
        except ValueError:
            raise ValueError(f"--seeds: expected comma-separated integers, found {args.seeds!r}") from None
    if args.steps is not None:
        changes["steps"] = args.steps
    if args.phase2_steps is not None:
        changes["phase2_steps"] = args.phase2_steps
    if args.data:
        changes["data_dir"] = args.data
    if args.emg2pose:
        changes["emg2pose_dir"] = args.emg2pose
    make = (
        bench_config.tiny_config if args.tiny else bench_config.quick_config if args.quick else bench_config.full_config
    )
    config = make(**changes)
    benchmark.run_benchmark(config, args.out, log=lambda message: print(message, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
