"""Every ```python and ```bash block of README.md runs as written.

The blocks run in README order in one temporary folder (the reader's working
folder), so a snippet finds what the README's earlier commands wrote there
(``data/synth`` from ``emgjax synth``, ``runs/tracking_vemg2pose`` from
``emgjax convert``). Each python block runs on its own, in a fresh
interpreter: a reader copies one snippet at a time. Bash blocks run command by
command (``\\``-continued lines joined) with ``emgjax`` and ``python`` being
this checkout's; ``experiments/``, ``bench/`` and ``convert/`` are linked in.

The one file the README assumes the reader has, Meta's
``tracking_vemg2pose.ckpt``, is fabricated with the PyTorch reference model
(tests/torch_reference.py, random weights, full size) and written as a
Lightning checkpoint; without torch the commands that need it are skipped,
saying so.

Nothing else is skipped unless it is listed in ``SKIPPED`` with its reason:
a new block runs by default, and a stale entry (matching no command) fails.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# Command prefix -> why it does not run here. Matched against each bash command (continuations joined).
SKIPPED = {
    "pip install . && emgjax demo": (
        "installs the package, then the full demo (~1-4 min); tests/test_demo.py runs the demo with these very "
        "default settings and checks that it beats the mean pose"
    ),
    'pip install ".[torch,test,record]" && python -m pytest': "the test suite itself (this test is part of it)",
    'pip install ".[dev]" && mkdocs build --strict': (
        "installs the docs tooling into the environment; .ci/run runs `mkdocs build --strict` itself"
    ),
    "python experiments/train_direct.py --data_dir data/synth --out_dir runs/direct": (
        "full training, 600 steps (several minutes on 2 CPU cores); tests/test_recipes.py trains the same recipe small"
    ),
    "python experiments/evaluate.py runs/direct": "needs runs/direct from the full training skipped above",
    "python experiments/finetune_direct.py": (
        "needs runs/direct (skipped above) and a new user's own recordings in data/new_user"
    ),
    "python experiments/bench_adapters.py --quick": (
        "a benchmark (~10 CPU-minutes on 2 cores); tests/test_adapter_benchmark.py covers it"
    ),
    "python experiments/bench_adapters.py --out runs/full": (
        "needs the real emg2pose dataset and a converted Meta checkpoint (EMG2POSE_DIR, CONVERTED_DIR placeholders) "
        "and a GPU/TPU"
    ),
    "python bench/inference.py": "a benchmark (speed belongs in bench/, not in tests)",
    "emgjax calibrate --model runs/direct --source mindrove": (
        "needs a MindRove armband, a webcam and runs/direct (skipped above); tests/test_calibrate.py runs the same "
        "loop on the synthetic source"
    ),
    "emgjax stream --model runs/me/model --source mindrove": "needs a MindRove armband and the calibrated model above",
    "python bench/train_step.py": "a benchmark (speed belongs in bench/, not in tests)",
    "python bench/scaling.py": "a benchmark (speed belongs in bench/, not in tests)",
}

# What needs Meta's checkpoint (fabricated here with torch).
NEEDS_CHECKPOINT = (
    "tracking_vemg2pose.ckpt",
    'load_pretrained("runs/tracking_vemg2pose")',
    'load_model("runs/tracking_vemg2pose")',
)


@dataclasses.dataclass(frozen=True)
class Block:
    language: str
    line: int  # 1-based line of the opening fence
    text: str


def readme_blocks(text: str | None = None) -> list[Block]:
    """The ```python and ```bash fenced blocks of the README, in order."""
    text = README.read_text() if text is None else text
    blocks, language, start, body = [], None, 0, []
    for number, line in enumerate(text.splitlines(), start=1):
        fence = re.fullmatch(r"```(\w*)\s*", line)
        if language is None and fence:
            language, start, body = fence.group(1) or "-", number, []
        elif language is not None and line.strip() == "```":
            if language in ("python", "bash"):
                blocks.append(Block(language, start, "\n".join(body) + "\n"))
            language = None
        elif language is not None:
            body.append(line)
    assert language is None, f"README.md: unclosed code fence opened on line {start}"
    return blocks


def bash_commands(block: Block) -> list[str]:
    """One string per command line of a bash block (``\\`` continuations joined, blank and comment lines dropped)."""
    commands, current = [], ""
    for line in block.text.splitlines():
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        if current.strip() and not current.strip().startswith("#"):  # a comment line is no command
            commands.append(current.strip())
        current = ""
    return commands


def skip_reason(command: str) -> str | None:
    matches = [reason for prefix, reason in SKIPPED.items() if command.startswith(prefix)]
    assert len(matches) <= 1, f"{command!r} matches several SKIPPED entries"
    return matches[0] if matches else None


def test_blocks_are_found_and_every_skip_entry_names_a_command():
    blocks = readme_blocks()
    assert {b.language for b in blocks} == {"python", "bash"} and len(blocks) >= 10
    commands = [c for b in blocks if b.language == "bash" for c in bash_commands(b)]
    stale = [prefix for prefix in SKIPPED if not any(c.startswith(prefix) for c in commands)]
    assert not stale, f"SKIPPED entries matching no README command (remove them): {stale}"
    assert any(skip_reason(c) is None for c in commands)  # the list does not swallow everything


def test_block_parsing_joins_continuations_and_ignores_other_fences():
    text = (
        "intro\n```bash\nemgjax synth --out a \\\n  --sessions 2   # comment\n\n# a note\nls\n```\n"
        "```\nplain\n```\n```python\nx = 1\n```\n"
    )
    blocks = readme_blocks(text)
    assert [(b.language, b.line) for b in blocks] == [("bash", 2), ("python", 12)]
    assert bash_commands(blocks[0]) == ["emgjax synth --out a    --sessions 2   # comment", "ls"]
    assert blocks[1].text == "x = 1\n"


def _environment(tmp_path: Path) -> dict[str, str]:
    shims = tmp_path / ".bin"
    shims.mkdir()
    emgjax = shims / "emgjax"
    emgjax.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m emgjax.cli "$@"\n')
    emgjax.chmod(0o755)
    python = shims / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "PYTHONPATH")}  # the reader's 1 CPU device
    env.update(PATH=f"{shims}{os.pathsep}{env.get('PATH', '')}", PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    return env


def _fabricate_meta_checkpoint(folder: Path) -> bool:
    """Write ``tracking_vemg2pose.ckpt`` (random weights, Lightning layout) as the reader would download it."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        import torch_reference as tr
    finally:
        sys.path.remove(str(ROOT / "tests"))
    model = tr.build_torch_model("tracking_vemg2pose")
    tr.randomize_(model, 0)
    tr.save_lightning_checkpoint(model, folder / "tracking_vemg2pose.ckpt", "tracking_vemg2pose")
    return True


@pytest.mark.slow
def test_readme_blocks_run_as_written(tmp_path):
    for name in ("experiments", "bench", "convert"):
        (tmp_path / name).symlink_to(ROOT / name)
    env = _environment(tmp_path)
    have_checkpoint = _fabricate_meta_checkpoint(tmp_path)
    ran, skipped, failures = [], [], []
    for index, block in enumerate(readme_blocks()):
        where = f"README.md:{block.line}"
        if block.language == "python":
            if not have_checkpoint and any(marker in block.text for marker in NEEDS_CHECKPOINT):
                skipped.append((where, "needs torch to fabricate Meta's checkpoint"))
                continue
            script = tmp_path / f".readme_block_{index}.py"
            script.write_text(block.text)
            runs = [(where, [sys.executable, str(script)])]
        else:
            runs = []
            for command in bash_commands(block):
                reason = skip_reason(command)
                if reason is None and not have_checkpoint and any(m in command for m in NEEDS_CHECKPOINT):
                    reason = "needs torch to fabricate Meta's checkpoint"
                if reason is not None:
                    skipped.append((f"{where} {command}", reason))
                else:
                    runs.append((f"{where} {command}", ["bash", "-eo", "pipefail", "-c", command]))
        for label, argv in runs:
            proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900, check=False)
            ran.append(label)
            if proc.returncode != 0:
                failures.append(f"{label}\n  exit {proc.returncode}\n  {proc.stderr.strip()[-3000:]}")
    print("ran:", *ran, "skipped:", *(f"{w}: {r}" for w, r in skipped), sep="\n  ")
    assert not failures, "README blocks that fail as written:\n" + "\n".join(failures)
    # What the blocks were run for: the files the README says they write.
    assert (tmp_path / "data" / "synth" / "metadata.csv").is_file()
    assert (tmp_path / "runs" / "vemg2pose_small" / "model" / "bundle.json").is_file()
    if have_checkpoint:
        assert (tmp_path / "runs" / "tracking_vemg2pose" / "bundle.json").is_file()
