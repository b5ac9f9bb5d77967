"""`emgjax demo`: a quick end-to-end run (--quick), its options and its input errors."""

import json
import time

import pytest

from emgjax import cli, demo


@pytest.mark.slow
def test_quick_demo_runs_end_to_end(tmp_path, capsys):
    started = time.perf_counter()
    assert cli.main(["demo", "--quick", "--out", str(tmp_path)]) == 0
    seconds = time.perf_counter() - started
    out = capsys.readouterr().out
    assert seconds < 60, f"the quick demo took {seconds:.0f} s"
    # the report: model vs baseline, per finger, where the files are
    for text in ("mpjpe_mm", "pa_mpjpe_mm", "mpjpe_index_mm", "baseline", "training curves", "trajectories"):
        assert text in out, text
    report = json.loads((tmp_path / "demo_report.json").read_text())
    evaluation = report["evaluation"]
    assert report["steps"] == 16 and evaluation["frames"] > 0
    assert evaluation["model"]["mpjpe_mm"] > 0 and evaluation["baseline"]["mpjpe_mm"] > 0
    # split by session: the evaluated session is the test one, never a training one
    trained_on = json.loads((tmp_path / "run" / "model.json").read_text())["trained_on"]
    assert set(evaluation["sessions"]).isdisjoint(trained_on)
    for png in (tmp_path / "run" / "curves.png", tmp_path / "trajectories.png"):
        assert png.stat().st_size > 1000, png
    # a rerun with other data settings in the same folder is refused (its statistics would be stale)
    assert demo.main(["--quick", "--out", str(tmp_path), "--sessions", "4"]) == 2
    assert "other settings" in capsys.readouterr().err


def test_demo_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        demo.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--out", "--sessions", "--duration", "--steps", "--seed", "--quick"):
        assert option in text


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--sessions", "2"], "--sessions: expected at least 3"),
        (["--steps", "0"], "expected --steps >= 1"),
        (["--duration", "-1"], "--duration > 0"),
    ],
)
def test_demo_rejects_bad_options(argv, fragment, tmp_path, capsys):
    assert demo.main(argv + ["--out", str(tmp_path / "x")]) == 2
    assert fragment in capsys.readouterr().err


def test_demo_out_must_be_a_folder(tmp_path, capsys):
    path = tmp_path / "file"
    path.write_text("x")
    assert demo.main(["--quick", "--out", str(path)]) == 2
    assert "expected a folder" in capsys.readouterr().err
