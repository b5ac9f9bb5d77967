"""`emgjax stream`: live hand pose from a model bundle and an EMG source, with a live view and a report.

    emgjax stream --model DIR --source synthetic --seconds 10 --no-view
    emgjax stream --model DIR --source mindrove --record session.h5   # pip install 'emgjax[mindrove]'
    emgjax stream --model DIR --source synthetic-board --resample --view rerun --save-rrd run.rrd
    emgjax stream --model DIR --source file session.h5 --fast

Sources: ``mindrove`` (the armband over WiFi, ``--board-id`` to pick another SDK board), ``synthetic-board``
(the SDK's synthetic board), ``file PATH`` (a recorded MindRove or emg2pose session, replayed at its own
speed, or as fast as possible with ``--fast``), ``synthetic`` (our generator at the model's own channels
and rate). A source whose channels or rate differ from the model's input is refused before streaming
(``--resample`` bridges a rate difference). The report at the end (also after Ctrl-C) gives poses, pose
FPS, per-chunk latency p50/p99/max, the real-time factor, gaps, NaN fills and the compile time.
"""

from __future__ import annotations

import argparse
import logging
import sys

from emgjax.errors import run_command

PROG = "emgjax stream"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Stream EMG through a model bundle: live hand pose, latency and real-time factor.",
        allow_abbrev=False,
    )
    parser.add_argument("--model", required=True, metavar="DIR", help="a model bundle (emgjax.load_model)")
    parser.add_argument(
        "--source",
        required=True,
        nargs="+",
        metavar="SOURCE",
        help="mindrove | synthetic-board | file PATH | synthetic",
    )
    parser.add_argument("--seconds", type=float, default=None, help="stop after this much EMG (default: Ctrl-C)")
    parser.add_argument("--record", metavar="OUT", default=None, help="save the EMG seen as a MindRove session (.h5)")
    parser.add_argument("--no-view", action="store_true", help="no live view: print the numbers only")
    parser.add_argument("--view", choices=("terminal", "matplotlib", "rerun"), default=None, help="live view")
    parser.add_argument("--save-rrd", metavar="FILE", default=None, help="save a Rerun recording to replay later")
    parser.add_argument("--resample", action="store_true", help="resample a source whose rate differs from the model's")
    parser.add_argument("--board-id", type=int, default=None, help="MindRove SDK board id for --source mindrove")
    parser.add_argument("--fast", action="store_true", help="replay file/synthetic sources as fast as possible")
    parser.add_argument("--seed", type=int, default=0, help="seed of --source synthetic")
    return parser


def _source_choice(values: list[str]) -> tuple[str, str | None]:
    from emgjax.stream.factory import SOURCES

    name, rest = values[0], values[1:]
    if name not in SOURCES:
        raise ValueError(f"--source: expected one of {list(SOURCES)}, found {name!r}")
    if name == "file":
        if len(rest) != 1:
            raise ValueError(f"--source file: expected one session file path, found {len(rest)} argument(s)")
        return name, rest[0]
    if rest:
        raise ValueError(f"--source {name}: expected no further argument, found {rest}")
    return name, None


def stream_command(args: argparse.Namespace) -> int:
    from emgjax.bundle import load_model
    from emgjax.stream.factory import open_source
    from emgjax.stream.runner import check_seconds, run_stream
    from emgjax.stream.view import make_view

    name, path = _source_choice(args.source)
    check_seconds(args.seconds)
    if args.no_view and (args.view is not None or args.save_rrd is not None):
        raise ValueError("--no-view: expected no --view or --save-rrd with it")
    if args.board_id is not None and name not in ("mindrove", "synthetic-board"):
        raise ValueError(f"--board-id: expected with --source mindrove or synthetic-board, found --source {name}")
    if name in ("mindrove", "synthetic-board"):
        from emgjax.stream import require_sdk

        require_sdk()  # before loading the model: a missing extra is the first thing to hear about
    if args.fast and name not in ("file", "synthetic"):
        raise ValueError(f"--fast: expected with --source file or synthetic, found --source {name} (a live device)")
    view, note = (None, None) if args.no_view else make_view(args.view, save_rrd=args.save_rrd)
    model = load_model(args.model)
    spec = model.input_spec
    # The source is closed by run_stream, also when it refuses it (a spec mismatch, an unwritable --record).
    source = open_source(
        name,
        path,
        chunk_samples=int(model.default_chunk_samples),
        channels=spec.channels,  # --source synthetic: generated at the model's own spec
        sample_rate=spec.sample_rate,
        seed=args.seed,
        realtime=not args.fast,
        board_id=args.board_id,
    )
    if note:
        print(f"{PROG}: {note}", file=sys.stderr)
    print(
        f"{PROG}: {model.kind} model ({spec.channels} ch at {spec.sample_rate:g} Hz) <- {source.name}; "
        + ("Ctrl-C to stop" if args.seconds is None else f"{args.seconds:g} s (Ctrl-C stops early)"),
        file=sys.stderr,
    )
    report = run_stream(model, source, seconds=args.seconds, record=args.record, view=view, resample=args.resample)
    print(report.format())
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    # Source warnings (NaN bursts, resampling) as one line each, named after the command.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
    logger = logging.getLogger("emgjax.stream")
    logger.addHandler(handler)
    try:
        return run_command(PROG, lambda: stream_command(args))
    finally:
        logger.removeHandler(handler)


if __name__ == "__main__":
    sys.exit(main())
