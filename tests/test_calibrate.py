"""`emgjax calibrate`: record with labels, fine-tune a direct model, save a bundle, report before/after error."""

import json
import os
import runpy
from pathlib import Path

import jax
import numpy as np
import pytest
from test_bundle import DIRECT_ARGS  # the tiny direct model the bundle tests train

from emgjax.cli import main as emgjax_main
from emgjax.recipes.calibrate import MODEL_DIR, RUN_DIR, SESSION_FILE, calibrate

# The tiny model's training (module fixture) and the fine-tuning's compiles take about 30 s together.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]

FAST = ["--source", "synthetic", "--labels", "synthetic", "--camera", "none", "--no-view", "--fast", "--quiet"]
TINY_LOOP = ["--epochs", "1", "--batch-size", "16"]


@pytest.fixture(scope="module")
def direct_model(tmp_path_factory):
    """A tiny direct joints model trained for two steps on synthetic MindRove sessions (its run folder)."""
    from emgjax.data.synthetic import write_synthetic_dataset

    root = tmp_path_factory.mktemp("calibrate")
    write_synthetic_dataset(root / "data", n_sessions=3, duration_s=8.0, seed=3, formats=("mindrove",))
    train = runpy.run_path(str(ROOT / "experiments" / "train_direct.py"))["main"]
    assert train(["--out_dir", str(root / "direct"), "--data_dir", str(root / "data"), *DIRECT_ARGS]) == 0
    return root / "direct"


def _run(argv, capsys):
    code = emgjax_main(["calibrate", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_calibrate_end_to_end(direct_model, tmp_path, capsys):
    import emgjax

    out = tmp_path / "me"
    argv = ["--model", direct_model, *FAST, *TINY_LOOP, "--minutes", 0.3, "--prompts", "--out", out]
    code, printed, err = _run(argv, capsys)
    assert code == 0, err
    # the session, the fine-tuning run and the calibrated bundle
    assert (out / SESSION_FILE).is_file() and (out / RUN_DIR / "finetune_evaluation.json").is_file()
    calibrated = emgjax.load_model(out / MODEL_DIR)
    original = emgjax.load_model(direct_model / "model")
    assert calibrated.kind == "direct" and calibrated.output_spec.what == "joints"
    pose = calibrated.predict(np.random.default_rng(0).standard_normal((2, 8, 64)).astype(np.float32) * 50)
    assert pose.shape == (2, 21, 3) and np.isfinite(pose).all()
    # fine-tuning trained the head and left the backbone as it was
    heads = [k for k in calibrated.params["params"] if k.startswith("head")]
    assert heads and any(
        not np.array_equal(a, b)
        for k in heads
        for a, b in zip(
            jax.tree.leaves(calibrated.params["params"][k]), jax.tree.leaves(original.params["params"][k]), strict=True
        )
    )
    for a, b in zip(
        jax.tree.leaves(calibrated.params["params"]["lstm"]),
        jax.tree.leaves(original.params["params"]["lstm"]),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    # 0.3 min of EMG at 500 Hz, prompts stored, the synthetic generator's labels
    from emgjax.record.check import check_session

    report = check_session(out / SESSION_FILE)
    assert report["samples"] == 9000 and report["prompts"] and report["label_coverage"] > 0.3
    # the printed numbers are the evaluation's (the original model vs the calibrated one on the held-out 20 %)
    saved = json.loads((out / RUN_DIR / "finetune_evaluation.json").read_text())
    before, after = saved["before"]["model"]["mpjpe_mm"], saved["after"]["model"]["mpjpe_mm"]
    assert f"before  {before:8.2f}" in printed and f"after   {after:8.2f}" in printed, printed
    assert "fine-tuned" in printed and "first 14.4 s" in printed and "last 3.6 s" in printed, printed
    assert f"emgjax stream --model {out / MODEL_DIR} --source synthetic" in printed


def test_calibrate_stops_when_labels_are_too_sparse(direct_model, tmp_path):
    # Every frame valid or not, no recording reaches a coverage above 100 %: the check after recording stops
    # before fine-tuning and leaves the session for `emgjax check`.
    out = tmp_path / "sparse"
    with pytest.raises(ValueError, match=r"label coverage too low to calibrate: expected at least 101%"):
        calibrate(direct_model, out, labels="synthetic", minutes=0.2, fast=True, batch_size=16, min_label_coverage=1.01)
    assert (out / SESSION_FILE).is_file() and not (out / RUN_DIR).exists()


def _one_line_error(code, err, *fragments):
    assert code == 2 and err.count("\n") == 1 and err.startswith("emgjax calibrate: error: "), err
    for fragment in fragments:
        assert fragment in err, err


def test_bad_inputs_are_refused_before_recording(direct_model, tmp_path, capsys):
    from emgjax.models import pose_modules
    from emgjax.recipes.adapter.frozen import save_pretrained, tiny_emg2pose_config

    out = tmp_path / "out"
    base = [*FAST, *TINY_LOOP, "--out", out]
    not_a_bundle = tmp_path / "empty"
    not_a_bundle.mkdir()
    code, _, err = _run(["--model", not_a_bundle, "--minutes", 0.3, *base], capsys)
    _one_line_error(code, err, "bundle.json")
    config = tiny_emg2pose_config()
    e2p = save_pretrained(
        tmp_path / "e2p", config, pose_modules.init_variables(config, jax.random.key(0)), provide_initial_pos=False
    )
    code, _, err = _run(["--model", e2p, "--minutes", 0.3, *base], capsys)
    _one_line_error(code, err, "expected a direct model", "found a emg2pose model")
    for minutes in (0, -1, "nan"):
        code, _, err = _run(["--model", direct_model, "--minutes", minutes, *base], capsys)
        _one_line_error(code, err, "--minutes: expected a positive number of minutes")
    code, _, err = _run(["--model", direct_model, "--minutes", 0.01, *base], capsys)
    _one_line_error(code, err, "--minutes: expected at least", "found 0.01")
    code, _, err = _run(["--model", direct_model, "--minutes", 0.3, "--heldout-fraction", 1, *base], capsys)
    _one_line_error(code, err, "--heldout-fraction: expected a fraction in (0, 1)")
    # no labels: a camera-less recording without --labels synthetic has nothing to fine-tune on
    argv = ["--model", direct_model, "--source", "synthetic", "--camera", "none", "--minutes", 0.3, "--out", out]
    code, _, err = _run([*argv, "--no-view"], capsys)
    _one_line_error(code, err, "expected hand labels to fine-tune on", "found none")
    code, _, err = _run([*argv, "--no-view", "--labels", "none"], capsys)
    _one_line_error(code, err, "expected hand labels to fine-tune on")
    assert not out.exists()  # nothing was recorded
    # the output: a file, a folder holding something, a folder that cannot be written
    (tmp_path / "file").write_text("x")
    code, _, err = _run(["--model", direct_model, *FAST, "--minutes", 0.3, "--out", tmp_path / "file"], capsys)
    _one_line_error(code, err, "expected a folder for the calibration, found a file")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    code, _, err = _run(["--model", direct_model, *FAST, "--minutes", 0.3, "--out", busy], capsys)
    _one_line_error(code, err, "expected a new or empty folder", "keep.txt")
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            code, _, err = _run(["--model", direct_model, *FAST, "--minutes", 0.3, "--out", locked / "me"], capsys)
            _one_line_error(code, err, "cannot create the folder")
        finally:
            locked.chmod(0o700)
