"""The `emgjax` command: a thin dispatcher over library functions.

Each subcommand lives next to the code it drives and exposes `main(argv) -> int`;
imports are lazy so `emgjax --help` stays fast and a subcommand's heavy
dependencies load only when it runs.
"""

from __future__ import annotations

import importlib
import sys

# run_command lives in the leaf module emgjax.errors, so commands in low layers (e.g. `emgjax synth` in
# emgjax.data.synthetic) can use it without importing the CLI; it is re-exported here for scripts.
from emgjax.errors import USER_ERRORS, run_command

__all__ = ["SUBCOMMANDS", "USER_ERRORS", "main", "run_command"]

# name -> (module exposing main(argv) -> int, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "convert": ("emgjax.convert.command", "convert a PyTorch Lightning emg2pose .ckpt into emgjax parameters"),
    "synth": ("emgjax.data.synthetic", "write a synthetic emg2pose-format and MindRove-format dataset"),
    "demo": ("emgjax.demo", "end-to-end demo on synthetic data: train, evaluate, report"),
    "record": ("emgjax.record.command", "record EMG, camera frames, hand labels and prompts into a session file"),
    "check": ("emgjax.record.check", "report a session's duration, gaps, label coverage, IK error and prompts"),
    "label": ("emgjax.record.relabel", "recompute a session's hand labels from its recorded video"),
    "calibrate": (
        "emgjax.recipes.calibrate",
        "record a few minutes, fine-tune a direct model on them, save the bundle",
    ),
    "stream": ("emgjax.stream.command", "live hand pose from a model bundle and an EMG source (armband, file)"),
}


def _usage() -> str:
    lines = ["usage: emgjax <command> [options]", "", "commands:"]
    width = max(len(name) for name in SUBCOMMANDS)
    for name, (_, help_text) in SUBCOMMANDS.items():
        lines.append(f"  {name.ljust(width)}  {help_text}")
    lines.append("")
    lines.append("Run `emgjax <command> --help` for a command's options.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from emgjax._version import __version__

        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"emgjax: unknown command {name!r}; expected one of {sorted(SUBCOMMANDS)}", file=sys.stderr)
        print(_usage(), file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
