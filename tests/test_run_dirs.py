"""Run directories: a training run never writes into a folder holding something else.

`prepare_run_dir` (shared by every recipe) accepts a missing or empty folder or
an earlier run of the same experiment (resume), refuses anything else (a
converted model, another experiment's run, data) unless ``loop.overwrite``
(``--overwrite``), which deletes the folder's contents first.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from emgjax.config import parse_config
from emgjax.recipes.common import LoopConfig, SessionsConfig, prepare_run_dir
from emgjax.recipes.direct import DirectExperiment, FinetuneExperiment

ROOT = Path(__file__).resolve().parents[1]


def _converted_model(folder: Path) -> Path:
    """A model bundle as `emgjax convert` writes it (bundle.json + Orbax variables/), made by the project's writer."""
    import jax

    from emgjax.bundle import load_pretrained
    from emgjax.models import EXPERIMENTS, init_variables
    from emgjax.recipes.adapter.frozen import save_pretrained

    config = EXPERIMENTS["regression_neuropose"].model
    save_pretrained(
        folder,
        config,
        init_variables(config, jax.random.key(0)),
        provide_initial_pos=False,
        experiment="regression_neuropose",
    )
    load_pretrained(folder)  # it loads before the training attempt
    return folder


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_fresh_empty_and_resume_are_accepted(tmp_path):
    exp = DirectExperiment(out_dir=str(tmp_path / "run"))
    assert prepare_run_dir(exp.out_dir, exp) == tmp_path / "run"  # created
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["loop"]["overwrite"] is False
    (tmp_path / "run" / "checkpoints").mkdir()
    (tmp_path / "run" / "metrics.jsonl").write_text("")
    # Resume: same config, or only the loop length changed.
    longer = dataclasses.replace(exp, loop=dataclasses.replace(exp.loop, max_steps=50))
    prepare_run_dir(exp.out_dir, longer)
    assert (tmp_path / "run" / "metrics.jsonl").exists()
    # A different config on top of checkpoints is refused, naming the difference.
    other = dataclasses.replace(exp, optim=dataclasses.replace(exp.optim, learning_rate=5e-3))
    with pytest.raises(ValueError, match=r"optim\.learning_rate: saved 0\.001, now 0\.005"):
        prepare_run_dir(exp.out_dir, other)
    empty = tmp_path / "empty"
    empty.mkdir()
    prepare_run_dir(empty, exp)
    assert (empty / "config.json").is_file()


def test_foreign_contents_are_refused_and_left_intact(tmp_path):
    exp = DirectExperiment()
    data = tmp_path / "data"
    data.mkdir()
    (data / "metadata.csv").write_text("filename,split\n")
    before = _snapshot(data)
    with pytest.raises(
        ValueError,
        match=r"expected an empty or new out_dir, or an earlier DirectExperiment run.*metadata\.csv.*--overwrite",
    ):
        prepare_run_dir(data, exp)
    assert _snapshot(data) == before
    # Another experiment's run (its config.json does not read as this experiment) is foreign too.
    direct_run = tmp_path / "direct_run"
    prepare_run_dir(direct_run, exp)
    finetune = FinetuneExperiment(pretrained_dir=str(tmp_path / "elsewhere"), out_dir=str(direct_run))
    with pytest.raises(ValueError, match="earlier FinetuneExperiment run"):
        prepare_run_dir(direct_run, finetune)
    # Unreadable config.json: not a run of ours either.
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="earlier DirectExperiment run"):
        prepare_run_dir(broken, exp)


def test_overwrite_deletes_the_contents_and_starts_afresh(tmp_path, monkeypatch):
    folder = tmp_path / "converted"
    _converted_model(folder)
    plain = DirectExperiment()
    exp = dataclasses.replace(plain, loop=dataclasses.replace(plain.loop, overwrite=True))
    prepare_run_dir(folder, exp)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json"]
    assert json.loads((folder / "config.json").read_text())["loop"]["overwrite"] is True
    # A rerun without --overwrite resumes (overwrite is not part of what is trained).
    (folder / "checkpoints").mkdir()
    prepare_run_dir(folder, plain)
    assert (folder / "checkpoints").is_dir()
    # The working folder (or a parent, or home) is never emptied.
    monkeypatch.chdir(folder)
    with pytest.raises(ValueError, match="expected a dedicated folder"):
        prepare_run_dir(".", exp)
    assert (folder / "checkpoints").is_dir()


def test_overwrite_option_on_the_command_line():
    exp, _ = parse_config(DirectExperiment(), ["--overwrite"])
    assert exp.loop.overwrite is True
    exp, _ = parse_config(DirectExperiment(), ["--overwrite", "false", "--out_dir", "x"])
    assert exp.loop.overwrite is False and exp.out_dir == "x"
    exp, _ = parse_config(DirectExperiment(), ["--set", "loop.overwrite=yes"])
    assert exp.loop.overwrite is True


def test_training_refuses_a_converted_model_folder(tmp_path):
    """The reported failure: training into the folder `emgjax convert` wrote broke the converted model."""
    from emgjax.bundle import load_pretrained

    folder = _converted_model(tmp_path / "tracking_vemg2pose")
    before = _snapshot(folder)
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "experiments" / "train_direct.py"),
            "--out_dir",
            str(folder),
            "--data_dir",
            str(tmp_path / "no_data"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**_env(), "PYTHONPATH": str(ROOT)},
        timeout=300,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"train_direct.py: error: {folder}: expected an empty or new out_dir"
    )
    assert _snapshot(folder) == before
    load_pretrained(folder)  # still loads


def _env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def test_finetune_into_the_pretrained_folder_is_refused_before_anything_is_deleted(tmp_path):
    from emgjax.recipes.direct import finetune_direct

    pretrained = tmp_path / "pretrained"
    pretrained.mkdir()
    (pretrained / "model.json").write_text("{}")
    exp = FinetuneExperiment(
        pretrained_dir=str(pretrained),
        out_dir=str(pretrained),
        loop=LoopConfig(overwrite=True),
        sessions=SessionsConfig(data_dir=str(tmp_path)),
    )
    with pytest.raises(ValueError, match="expected a directory other than the pretrained model's"):
        finetune_direct(exp)
    assert (pretrained / "model.json").read_text() == "{}"
