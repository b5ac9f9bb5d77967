"""Batch benchmark of the MindRove -> emg2pose hardware adapters (thin CLI over emgjax.recipes.adapter).

    python experiments/bench_adapters.py --quick --out runs/adapters         # CPU, synthetic users, < 10 min
    python experiments/bench_adapters.py --quick --knob --out runs/knob      # known-answer check, < 10 min
    python experiments/bench_adapters.py --tiny --out /tmp/adapters          # smoke test
    python experiments/bench_adapters.py --from-summary --out runs/adapters  # rewrite the tables (no training)
    python experiments/bench_adapters.py --out runs/adapters_full \\
        [--data EMG2POSE_DIR [--heldout-stages S1,S2]] [--emg2pose CONVERTED_DIR]   # the full grid, GPU/TPU

Writes OUT/results.csv, OUT/results.md, OUT/adapter_benchmark.png, OUT/summary.json and the frozen
model's learning curve OUT/frozen_curve.csv/.png (--knob: OUT/knob.csv, OUT/knob.png and one
benchmark per knob value under OUT/knob_<value>/); see docs/adapter_benchmark.md for what they mean.
"""

# No `from __future__ import annotations`: tests load this file without registering it in sys.modules,
# where dataclasses cannot resolve string annotations.
import dataclasses
import sys
from dataclasses import field

from emgjax.cli import run_command
from emgjax.config import parse_config


@dataclasses.dataclass(frozen=True)
class BenchOptions:
    """The command-line options (parsed by `emgjax.config.parse_config`); None: the chosen grid's value."""

    out: str | None = field(default=None, metadata={"help": "output directory (the frozen emg2pose is cached here)"})
    quick: bool = field(default=False, metadata={"help": "the CPU quick grid on synthetic data (< 10 min)"})
    tiny: bool = field(default=False, metadata={"help": "a seconds-long smoke run (tests)"})
    data: str | None = field(
        default=None, metadata={"help": "directory of emg2pose-format HDF5 sessions (default: synthetic)"}
    )
    emg2pose: str | None = field(
        default=None, metadata={"help": "a converted emg2pose directory (`emgjax convert`) to freeze"}
    )
    variants: tuple[str, ...] | None = field(
        default=None, metadata={"help": "comma-separated ADAPTER+UPSAMPLER variants to train"}
    )
    # A string: an objective 'term=w,...' holds commas, so several of those are separated by ';'.
    objectives: str | None = field(
        default=None,
        metadata={"help": "comma-separated objective names (recon, pose, recon+pose, pose+prior), or ';'-separated"},
    )
    seeds: tuple[int, ...] | None = field(
        default=None, metadata={"help": "comma-separated init seeds (initial parameters, dropout)"}
    )
    data_seeds: tuple[int, ...] | None = field(
        default=None, metadata={"help": "comma-separated data seeds (draws of train and held-out users)"}
    )
    learning_rates: tuple[float, ...] | None = field(
        default=None, metadata={"help": "comma-separated learning rates each trained row sweeps"}
    )
    heldout_stages: tuple[str, ...] | None = field(
        default=None, metadata={"help": "with --data: emg2pose stages held out with the held-out users"}
    )
    knob: bool = field(
        default=False, metadata={"help": "the known-answer check: a reduced grid at every high-band knob value"}
    )
    steps: int | None = field(default=None, metadata={"help": "adapter training steps (phase 1)"})
    phase2_steps: int | None = field(default=None, metadata={"help": "extra steps with the emg2pose decoder unfrozen"})
    from_summary: bool = field(
        default=False,
        metadata={
            "help": "write OUT's tables and plots again from its summary.json (with --knob: from every "
            "OUT/knob_<value>/summary.json) with this version's statistics; nothing is trained"
        },
    )


def main(argv: list[str] | None = None) -> int:
    args, _ = parse_config(
        BenchOptions(), sys.argv[1:] if argv is None else argv, prog="bench_adapters", description=__doc__
    )
    return run_command("bench_adapters", lambda: _run(args))


def _run(args: BenchOptions) -> int:
    from emgjax.errors import check_output_path
    from emgjax.recipes.adapter import bench_config, benchmark

    if args.out is None:
        raise ValueError("--out: expected an output directory, found none")
    if args.quick and args.tiny:
        raise ValueError("--quick and --tiny: expected at most one grid size, found both")
    check_output_path("--out", args.out)
    if args.from_summary:
        from emgjax.recipes.adapter import report

        (report.rewrite_knob if args.knob else report.rewrite_outputs)(args.out)
        print(f"rewrote the tables and plots in {args.out} from its summaries", flush=True)
        return 0

    changes = {}
    if args.variants:
        changes["variants"] = tuple(v for v in args.variants if v)
    if args.objectives:
        # objective names contain '+' but never ','
        changes["objectives"] = tuple(
            o.strip() for o in args.objectives.split(";" if ";" in args.objectives else ",") if o.strip()
        )
    if args.seeds:
        changes["seeds"] = args.seeds
    if args.data_seeds:
        changes["data_seeds"] = args.data_seeds
    if args.learning_rates:
        changes["learning_rates"] = args.learning_rates
    if args.heldout_stages:
        if not args.data:
            raise ValueError("--heldout-stages: expected --data (emg2pose files with stages), found none")
        changes["heldout_stages"] = tuple(s for s in args.heldout_stages if s)
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
    run = benchmark.run_knob if args.knob else benchmark.run_benchmark
    run(config, args.out, log=lambda message: print(message, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
