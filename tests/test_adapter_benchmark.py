"""The batch adapter benchmark: --tiny writes its table and plot; bad configurations fail before any work."""

from __future__ import annotations

import csv
import importlib.util
import json
import pathlib

import jax
import pytest

from emgjax.recipes.adapter import bench_config, benchmark

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
    for name in ("results.csv", "results.md", "adapter_benchmark.png", "summary.json"):
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
    ]
    by_variant = {(r["row"], r["variant"], r["objective"]): r for r in rows}
    trained = by_variant[("trained", "linear+sinc", "recon")]
    assert trained["seeds"] == "2" and float(trained["params"]) == 16 * 8 + 16
    # The calibrated ceiling trains the same kind of input stage on the true 16 ch input.
    calibrated = by_variant[("ceiling", "linear 16x16 on true 16 ch / 2 kHz", "pose")]
    assert calibrated["seeds"] == "2" and float(calibrated["params"]) == 16 * 16 + 16
    for row in rows:
        assert float(row["angle_mae_deg"]) > 0 and float(row["landmark_mm"]) > 0
    # Reconstruction metrics exist for every adapter row, not for the ceiling / mean / direct rows.
    assert by_variant[("ceiling", "true 16 ch / 2 kHz", "-")]["snr_db"] == ""
    # Measured electrodes keep their 0-250 Hz content; synthesised ones are only interpolated.
    fixed = by_variant[("fixed", "interpolation+sinc", "-")]
    assert float(fixed["corr_measured"]) > 0.5 and float(fixed["corr_measured"]) > float(fixed["corr_synthesised"])
    # zero_fill leaves the synthesised electrodes at zero: no correlation there.
    assert float(by_variant[("floor", "zero_fill+zero_stuff", "-")]["corr_synthesised"]) == 0.0
    table = (out / "results.md").read_text()
    assert "| row | variant |" in table and "± " in table and "interpolation+sinc" in table
    summary = json.loads((out / "summary.json").read_text())
    assert summary["emg2pose"]["report"]["cached"] is False
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


def test_bad_configuration_fails_before_any_work(tmp_path, monkeypatch, capsys):
    def boom(*args, **kwargs):
        raise AssertionError("generated data or compiled before validating the configuration")

    monkeypatch.setattr(benchmark, "synthetic_sessions", boom)
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
    with pytest.raises(ValueError, match="seeds: expected distinct seeds"):
        bench_config.tiny_config(seeds=(1, 1))
    assert not (tmp_path / "a").exists()
