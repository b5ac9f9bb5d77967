"""bench/: the busy-machine verdict of bench/machine.py, and each bench script's main at tiny sizes.

No timing is asserted (speed belongs in bench/): the scripts must run, print their rows, keep their
parity figures small, and turn a busy machine into exit status 3 under --strict. Meta's code is
never needed (--emg2pose-src is left out).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import machine  # noqa: E402

TINY_PEAK = ["--peak-size", "64", "--peak-repeats", "1"]
GFLOPS = 1e9


def test_busy_reasons_load_and_peak_drift():
    assert machine.busy_reasons(1.4, 2, 200 * GFLOPS, 185 * GFLOPS) == []  # 7.5 % apart, load below 1.5
    assert machine.busy_reasons(None, 2, 200 * GFLOPS, None) == []  # unknown load, not finished yet
    (load,) = machine.busy_reasons(1.6, 2, 200 * GFLOPS, 200 * GFLOPS)
    assert "load average 1.60" in load and "2 cores" in load
    (drift,) = machine.busy_reasons(0.1, 2, 200 * GFLOPS, 170 * GFLOPS)  # 15 % apart
    assert "15 % apart" in drift
    assert len(machine.busy_reasons(3.0, 2, 150 * GFLOPS, 200 * GFLOPS)) == 2  # the drift counts either way


@pytest.mark.parametrize("strict", [False, True])
def test_finish_warns_and_strict_exits_3_on_a_busy_run(monkeypatch, capsys, strict):
    peaks = iter([{"jax": 200 * GFLOPS, "numpy": 190 * GFLOPS}, {"jax": 120 * GFLOPS, "numpy": 150 * GFLOPS}])
    monkeypatch.setattr(machine, "matmul_peak", lambda size=None, repeats=5: next(peaks))
    monkeypatch.setattr(machine, "load_average", lambda: (0.2, 0.3, 0.4))
    monkeypatch.setattr(machine, "usable_cores", lambda: 2)
    run = machine.start(strict=strict)
    assert run.peak == 200 * GFLOPS and run.reasons() == []
    assert run.rate(100 * GFLOPS, 1.0) == "100.0 GFLOP/s, 50 % of peak"
    assert machine.format_rate(2.5e12) == "2.50 TFLOP/s"
    assert run.finish() == (3 if strict else 0)
    out = capsys.readouterr().out
    assert "WARNING: not a valid headline: matmul peak 200.0 GFLOP/s before and 150.0 after (25 % apart" in out
    assert run.as_dict()["valid"] is False


def test_quiet_run_is_valid(monkeypatch, capsys):
    monkeypatch.setattr(machine, "matmul_peak", lambda size=None, repeats=5: {"jax": 100 * GFLOPS})
    monkeypatch.setattr(machine, "load_average", lambda: (0.0, 0.0, 0.0))
    run = machine.start(strict=True)
    assert run.finish() == 0
    assert "quiet run" in capsys.readouterr().out


def test_matmul_peak_measures_every_backend():
    peaks = machine.matmul_peak(64, 1)
    assert {"jax", "numpy", "torch"} <= set(peaks) and all(value > 0 for value in peaks.values())


def test_inference_main_tiny(capsys):
    import inference

    args = ["--models", "vemg2pose", "--size", "8", "--seconds", "0.1", "--batches", "1", "--repeats", "1"]
    assert inference.main([*args, *TINY_PEAK]) == 0
    out = capsys.readouterr().out
    assert "machine: float32 matmul peak after the run" in out
    assert re.search(r"ours \(jax\) +median .* windows/s .*GFLOP/s, \d+ % of peak", out)
    (difference,) = re.findall(r"ours / our PyTorch reference: .* max \|pred difference\| (\S+) rad", out)
    assert float(difference) < 1e-4


def test_train_step_main_tiny(capsys, tmp_path):
    import json

    import train_step

    args = ["--models", "direct", "--batch", "2", "--steps", "1", "--warmup", "1", "--json", str(tmp_path / "r.json")]
    assert train_step.main([*args, *TINY_PEAK]) == 0
    out = capsys.readouterr().out
    assert "ours / our PyTorch twin:" in out and "% of peak" in out
    written = json.loads((tmp_path / "r.json").read_text())
    (row,) = written["results"]
    assert row["ours"]["windows_per_s"] > 0 and row["flops_per_step"] > 0 and row["our PyTorch twin"]["loss"] > 0
    assert isinstance(written["machine"]["valid"], bool) and written["machine"]["peaks_after"]


def test_scaling_report_and_loader_tiny(capsys):
    import scaling

    run = machine.Machine("cpu", "cpu", 1, "test CPU", 2, {}, (0.0, 0.0, 0.0), {"jax": 100 * GFLOPS})
    rows = [
        {"model": "direct", "mode": mode, "devices": n, "batch": batch, "window": 50, "windows_per_s": wps, "step_s": s}
        for mode, n, batch, wps, s in (("weak", 1, 8, 100.0, 0.08), ("weak", 4, 32, 200.0, 0.16))
    ]
    scaling.report_steps([*rows, {"model": "direct", "mode": "strong", "devices": 4, "skipped": 6}], run, 0)
    out = capsys.readouterr().out
    assert re.search(
        r"direct +weak +N=4 global batch +32 x +50: +200.0 windows/s .* speed-up +2.00x +efficiency +0.50 ", out
    )
    assert "strong N=4: skipped (6 rows do not split)" in out and "share this host's 2 cores" in out

    args = ["--parts", "loader", "--loader-sessions", "1", "--loader-seconds", "14", "--loader-batch", "2"]
    assert scaling.main([*args, "--loader-epochs", "1", "--loader-workers", "1", *TINY_PEAK]) == 0
    assert re.search(r"num_workers 1: +\d+\.\d windows/s per process", capsys.readouterr().out)
