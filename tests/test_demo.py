"""`emgjax demo`: the default run learns (beats the mean pose on the held-out session), --quick, options, errors."""

import json

import pytest

from emgjax import cli, demo

# Measured with the default settings (8 sessions x 60 s, 600 steps, seed 0): MPJPE 7.73 mm vs 21.51 mm for the
# mean-pose baseline (ratio 0.36; PA-MPJPE 6.64 vs 14.14). An untrained model (--steps 1) scores 1.0x the baseline
# or worse, a 300-step run on 5 x 30 s sessions 0.56. 0.6 leaves a wide margin for platform differences yet fails
# any run that did not learn.
MAX_RATIO = 0.6


@pytest.mark.slow
def test_default_demo_beats_the_mean_pose_on_the_held_out_session(tmp_path, capsys):
    assert cli.main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"emgjax demo: output in {tmp_path}\n")  # where it writes, first
    report = json.loads((tmp_path / "demo_report.json").read_text())
    evaluation = report["evaluation"]
    model, baseline = evaluation["model"], evaluation["baseline"]
    assert report["steps"] == 600
    assert model["mpjpe_mm"] <= MAX_RATIO * baseline["mpjpe_mm"], (model, baseline)
    assert model["pa_mpjpe_mm"] < baseline["pa_mpjpe_mm"], (model, baseline)
    # held out: the evaluated session is the test one, never a training one
    trained_on = json.loads((tmp_path / "run" / "statistics.json").read_text())["trained_on"]
    assert evaluation["sessions"] and set(evaluation["sessions"]).isdisjoint(trained_on)
    assert f"MPJPE {model['mpjpe_mm']:.2f} mm vs {baseline['mpjpe_mm']:.2f} mm" in out


@pytest.mark.slow
def test_quick_demo_reports_and_reruns(tmp_path, capsys):
    assert cli.main(["demo", "--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    # the report: model vs baseline, per finger, where the files are
    for text in ("mpjpe_mm", "pa_mpjpe_mm", "mpjpe_index_mm", "baseline", "training curves", "trajectories"):
        assert text in out, text
    report = json.loads((tmp_path / "demo_report.json").read_text())
    assert report["steps"] == 16 and report["evaluation"]["frames"] > 0
    for png in (tmp_path / "run" / "curves.png", tmp_path / "trajectories.png"):
        assert png.stat().st_size > 1000, png
    # a rerun with other data settings in the same folder is refused (its statistics would be stale) ...
    assert demo.main(["--quick", "--out", str(tmp_path), "--sessions", "4"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("emgjax demo: error:") and "other settings" in err and err.count("\n") == 1
    # ... unless asked to start afresh
    assert demo.main(["--quick", "--out", str(tmp_path), "--sessions", "4", "--steps", "4", "--overwrite"]) == 0
    assert json.loads((tmp_path / "demo_settings.json").read_text())["sessions"] == 4
    assert len(list((tmp_path / "data" / "mindrove").iterdir())) == 4


def test_demo_help_lists_the_options_and_the_default_folder(capsys):
    with pytest.raises(SystemExit) as exit_info:
        demo.main(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--out", "--sessions", "--duration", "--steps", "--seed", "--quick", "--overwrite"):
        assert option in text
    assert "default ./emgjax-demo" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sessions", "2"], "--sessions: expected 3 (train, val and test) to 10,000, found 2"),
        (["--steps", "0"], "expected --steps >= 1 and 0 <= --seed < 2**31, found 0 and 0"),
        (["--duration", "-1"], "--duration: expected seconds in (0, 600], found -1"),
        # The reported failure: a raw "no batches" traceback after generating the data.
        (
            ["--sessions", "3", "--duration", "1"],
            (
                "--sessions 3 --duration 1: expected at least one training batch of 64 windows (100 ms every 50 ms), "
                "found 19 in 1 training session(s); use --duration 3.45 or more, or more --sessions"
            ),
        ),
        (["--quick", "--duration", "0.05"], "--sessions 3 --duration 0.05: expected at least one training batch of 16"),
    ],
)
def test_demo_rejects_bad_options_before_any_work(argv, message, tmp_path, capsys):
    assert demo.main([*argv, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"emgjax demo: error: {message}") and err.count("\n") == 1, err
    assert not (tmp_path / "x").exists()


def test_demo_out_must_be_a_folder_of_its_own(tmp_path, capsys):
    path = tmp_path / "file"
    path.write_text("x")
    assert demo.main(["--quick", "--out", str(path)]) == 2
    assert "expected a folder, found a file" in capsys.readouterr().err
    (tmp_path / "notes.txt").write_text("mine")
    assert demo.main(["--quick", "--out", str(tmp_path)]) == 2
    assert "expected a new, empty or earlier demo folder" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_short_sessions_that_pass_the_estimate_still_fail_in_one_line(tmp_path, capsys):
    """The up-front estimate ignores masked windows; the loader's own check then still gives one line, no traceback."""
    assert demo.main(["--sessions", "3", "--duration", "3.25", "--steps", "1", "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("emgjax demo: error: train split: no batches:") and err.count("\n") == 1, err
