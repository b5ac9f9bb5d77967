"""The batch adapter benchmark: --tiny writes its table and plot; bad configurations fail before any work."""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import json
import pathlib

import jax
import pytest

from emgjax.recipes.adapter import bench_config, benchmark, draws, report

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _cli():
    spec = importlib.util.spec_from_file_location("bench_adapters", ROOT / "experiments" / "bench_adapters.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_tiny_benchmark_writes_table_and_plot(tmp_path):
    out = tmp_path / "bench"
    assert _cli().main(["--tiny", "--out", str(out)]) == 0
    for name in (
        "results.csv",
        "results.md",
        "adapter_benchmark.png",
        "summary.json",
        "frozen_curve.csv",
        "frozen_curve.png",
    ):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    with open(out / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    kinds = [(r["row"], r["variant"], r["objective"]) for r in rows]
    assert kinds == [
        ("mean pose", "-", "-"),
        ("ceiling", "true 16 ch / 2 kHz", "-"),
        ("floor", "zero_fill+zero_stuff", "-"),
        ("floor", "duplicate+hold", "-"),
        ("fixed", "interpolation+linear", "-"),
        ("fixed", "interpolation+sinc", "-"),
        ("trained", "linear+sinc", "recon"),
        ("trained", "linear+sinc", "pose"),
        ("ceiling", "linear 16x16 on true 16 ch / 2 kHz", "pose"),
        ("direct", "Conv1D+LSTM on 8 ch / 500 Hz", "pose"),
        ("target", "emg2pose architecture on 8 ch / 500 Hz", "pose"),
    ]
    by_variant = {(r["row"], r["variant"], r["objective"]): r for r in rows}
    trained = by_variant[("trained", "linear+sinc", "recon")]
    # 2 data seeds x 1 init seed; each trained row picked its own learning rate from the sweep.
    assert trained["runs"] == trained["data_seeds"] == "2" and float(trained["params"]) == 16 * 8 + 16
    assert all(float(r["learning_rate"]) in (1e-3, 1e-2) for r in rows if r["trained"] != "no")
    assert by_variant[("ceiling", "true 16 ch / 2 kHz", "-")]["learning_rate"] == ""
    # The calibrated ceiling trains the same kind of input stage on the true 16 ch input.
    calibrated = by_variant[("ceiling", "linear 16x16 on true 16 ch / 2 kHz", "pose")]
    assert calibrated["runs"] == "2" and float(calibrated["params"]) == 16 * 16 + 16
    for row in rows:
        assert (
            float(row["angle_mae_deg"]) > 0 and float(row["landmark_mm"]) > 0 and float(row["angle_mae_deg_ci95"]) >= 0
        )
    # Every row but the references is compared with the better floor and both ceilings, on matched runs.
    # Data seeds are the units; the run-level test (every run as if independent) is kept beside it.
    assert trained["mae_vs_floor_p"] != "" and trained["mae_vs_calibrated_p"] != "" and trained["mae_vs_floor_n"] == "2"
    assert trained["mae_vs_floor_run_level_p"] != "" and trained["angle_mae_deg_run_level_ci95"] != ""
    assert by_variant[("ceiling", "true 16 ch / 2 kHz", "-")]["mae_vs_ceiling"] == ""
    # Reconstruction metrics exist for every adapter row, not for the ceiling / mean / direct / target rows.
    assert by_variant[("ceiling", "true 16 ch / 2 kHz", "-")]["snr_db"] == ""
    assert by_variant[("target", "emg2pose architecture on 8 ch / 500 Hz", "pose")]["snr_db"] == ""
    # Measured electrodes keep their 0-250 Hz content; synthesised ones are only interpolated.
    fixed = by_variant[("fixed", "interpolation+sinc", "-")]
    assert float(fixed["corr_measured"]) > 0.5 and float(fixed["corr_measured"]) > float(fixed["corr_synthesised"])
    # zero_fill leaves the synthesised electrodes at zero: no correlation there.
    assert float(by_variant[("floor", "zero_fill+zero_stuff", "-")]["corr_synthesised"]) == 0.0
    table = (out / "results.md").read_text()
    assert "| row | variant |" in table and "± " in table and "(p " in table and "interpolation+sinc" in table
    summary = json.loads((out / "summary.json").read_text())
    assert summary["emg2pose"]["report"]["cached"] is False
    # The tables can be written again from summary.json alone, identically.
    written = {name: (out / name).read_text() for name in ("results.csv", "results.md")}
    (out / "results.csv").unlink()
    report.rewrite_outputs(out)
    assert {name: (out / name).read_text() for name in written} == written
    (out / "results.md").unlink()
    assert _cli().main(["--from-summary", "--out", str(out)]) == 0  # the same from the command line
    assert {name: (out / name).read_text() for name in written} == written
    # Held-out users are new: in no training set and not in the frozen model's pool.
    users = summary["users"]
    for draw in users.values():
        assert draw["heldout"] and not set(draw["heldout"]) & set(draw["train"])
    assert not set(users["0"]["heldout"]) & set(users["1"]["heldout"])
    with open(out / "frozen_curve.csv") as handle:
        curve = list(csv.DictReader(handle))
    assert [int(p["step"]) for p in curve] == [20, 40] and all(float(p["val_mae_deg"]) > 0 for p in curve)
    # The frozen model was written in `emgjax convert`'s format and reads back with load_pretrained.
    from emgjax.bundle import load_pretrained

    model = load_pretrained(out / "frozen_emg2pose")
    assert model.provide_initial_pos is False and "emg_norm" in model.metadata
    # Each trained (variant, objective) is kept as an adapter bundle referencing that frozen model; it
    # takes raw 8 ch / 500 Hz EMG (its normalisation is the measured electrodes' z-score).
    import numpy as np

    from emgjax import load_model
    from emgjax.models.adapter import AdapterPipeline

    assert sorted(p.name for p in (out / "models").iterdir()) == ["linear_sinc__pose", "linear_sinc__recon"]
    adapter = load_model(out / "models" / "linear_sinc__pose")
    assert adapter.kind == "adapter_pipeline" and adapter.metadata["objective"] == "pose"
    assert (adapter.input_spec.channels, adapter.input_spec.sample_rate) == (8, 500.0)
    norm = adapter.input_spec.preprocessing.normalisation
    assert np.allclose(norm["mean"], model.metadata["emg_norm"]["mean"][::2])
    z = np.random.default_rng(0).standard_normal((2, 8, summary["emg2pose"]["window_samples"] // 4))
    raw = (z * np.asarray(norm["std"])[:, None] + np.asarray(norm["mean"])[:, None]).astype(np.float32)
    expected = AdapterPipeline(adapter.config.pipeline, adapter.config.emg2pose)(adapter.params, z.astype(np.float32))
    np.testing.assert_allclose(adapter.predict(raw), expected[0]["angles"], rtol=1e-4, atol=1e-4)

    # Determinism on one machine: a second run in the same process (the frozen model now cached, fewer row
    # families) gives bit-identical runs for every row both have.
    again = benchmark.run_benchmark(
        bench_config.tiny_config(direct=False, target_space=False), out, log=lambda line: None
    )
    first = {(r["row"], r["variant"], r["objective"]): r["runs"] for r in summary["rows"]}
    assert again["emg2pose"]["report"]["cached"] is True and len(again["rows"]) == len(first) - 2

    def results(runs):  # throughput is a timing, not a result
        return [{k: v for k, v in run.items() if k != "windows_per_s"} for run in json.loads(json.dumps(runs))]

    for r in again["rows"]:
        assert results(r["runs"]) == results(first[(r["row"], r["variant"], r["objective"])])


def test_real_data_split_by_user_and_stage(tmp_path):
    """--data: users from metadata.csv; the frozen pool, train and held-out users never overlap (a dry run)."""
    from emgjax.data.synthetic import write_synthetic_dataset
    from emgjax.recipes.adapter.draws import data_source

    write_synthetic_dataset(tmp_path, n_sessions=1, duration_s=1.0, n_users=6, formats=("emg2pose",))
    config = bench_config.tiny_config(data_dir=str(tmp_path / "emg2pose"), n_heldout_users=1, frozen_val_users=1)
    source = data_source(config)
    pool_train, pool_val = source.frozen_pool()
    pool = {s.user for s in pool_train} | {s.user for s in pool_val}
    assert {s.user for s in pool_train} == {"user0", "user1"} and {s.user for s in pool_val} == {"user2"}
    heldout = set()
    for seed in (0, 1, 2, 3):
        draw = source.draw(seed)
        users = draw.users
        assert len(users["heldout"]) == 1 and len(users["train"]) == 2
        assert (
            not set(users["heldout"]) & set(users["train"]) and not (set(users["train"]) | set(users["heldout"])) & pool
        )
        heldout |= set(users["heldout"])
    assert len(heldout) > 1  # the data seed draws which user is held out
    # Holding out the only stage leaves nothing to train on: a clear error, not an empty benchmark.
    staged = dataclasses.replace(config, heldout_stages=("stage0",))
    with pytest.raises(ValueError, match="train"):
        data_source(staged).draw(0)
    write_synthetic_dataset(tmp_path / "few", n_sessions=1, duration_s=1.0, n_users=2, formats=("emg2pose",))
    with pytest.raises(ValueError, match="at least 4 users"):
        data_source(dataclasses.replace(config, data_dir=str(tmp_path / "few" / "emg2pose")))


def test_bad_configuration_fails_before_any_work(tmp_path, monkeypatch, capsys):
    def boom(*args, **kwargs):
        raise AssertionError("generated data or compiled before validating the configuration")

    import emgjax.bundle  # noqa: F401  (jits at import; imported before jax.jit is patched)

    monkeypatch.setattr(draws, "synthetic_sessions", boom)
    monkeypatch.setattr(draws, "load_emg2pose_sessions", boom)
    monkeypatch.setattr(jax, "jit", boom)
    cli = _cli()
    assert cli.main(["--tiny", "--out", str(tmp_path / "a"), "--variants", "linear+cubic"]) == 2
    assert "unknown upsampler 'cubic'" in capsys.readouterr().err
    assert cli.main(["--tiny", "--out", str(tmp_path / "b"), "--objectives", "pose,snr"]) == 2
    assert "unknown objective 'snr'" in capsys.readouterr().err
    assert cli.main(["--tiny", "--out", str(tmp_path / "c"), "--variants", "interpolation+sinc"]) == 2
    assert "no parameters to train" in capsys.readouterr().err
    assert cli.main(["--tiny", "--out", str(tmp_path / "d"), "--emg2pose", str(tmp_path / "missing")]) == 2
    assert "no such model directory" in capsys.readouterr().err
    assert cli.main(["--tiny", "--out", str(tmp_path / "e"), "--objectives", "landmarks"]) == 2
    assert "not landmark or MANO labels" in capsys.readouterr().err
    assert cli.main(["--tiny", "--out", str(tmp_path / "f"), "--heldout-stages", "stage1"]) == 2
    assert "--heldout-stages: expected --data" in capsys.readouterr().err
    assert cli.main(["--tiny", "--knob", "--out", str(tmp_path / "g"), "--data", str(tmp_path)]) == 2
    assert "--knob: expected synthetic data" in capsys.readouterr().err
    assert cli.main(["--from-summary", "--out", str(tmp_path / "h")]) == 2
    assert "expected a benchmark's summary.json, found no" in capsys.readouterr().err
    assert cli.main(["--from-summary", "--knob", "--out", str(tmp_path / "h")]) == 2
    assert "expected knob_<value>/summary.json files, found none" in capsys.readouterr().err
    with pytest.raises(ValueError, match="seeds: expected distinct seeds"):
        bench_config.tiny_config(seeds=(1, 1))
    with pytest.raises(ValueError, match="sweep_data_seed: expected a draw no test uses"):
        bench_config.tiny_config(sweep_data_seed=0)
    with pytest.raises(ValueError, match="knob_values: expected shares in"):
        bench_config.tiny_config(knob_values=(0.0, 1.5))
    assert not (tmp_path / "a").exists() and not (tmp_path / "g").exists()
