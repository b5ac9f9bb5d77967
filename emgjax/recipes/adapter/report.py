"""The adapter benchmark's report: one row per (row kind, variant, objective), written as CSV, Markdown, plot and JSON.

A row holds the mean and std over seeds of each metric (``aggregate``);
``write_outputs`` writes ``results.csv`` (mean and std columns), ``results.md``
(mean ± std), ``adapter_benchmark.png`` and ``summary.json``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import pathlib
from typing import Any

import numpy as np

__all__ = ["CSV_COLUMNS", "METRICS", "aggregate", "write_outputs"]

# Per-model measurements: each row reports their mean and spread over seeds.
METRICS = (
    "snr_db",
    "snr_0_250_db",
    "snr_250_1000_db",
    "corr_measured",
    "corr_synthesised",
    "angle_mae_deg",
    "landmark_mm",
    "windows_per_s",
)
CSV_COLUMNS = ("row", "variant", "objective", "trained", "seeds", "params", *METRICS, "train_s")


def aggregate(
    row: str, variant: str, objective: str, trained: str, per_seed: list[dict], params: int, train_s: float | None
) -> dict[str, Any]:
    """One table row: the row's labels and, per metric, (mean, std) over the seeds that report it (else None)."""
    out = {
        "row": row,
        "variant": variant,
        "objective": objective,
        "trained": trained,
        "seeds": len(per_seed),
        "params": params,
        "train_s": train_s,
    }
    for key in METRICS:
        values = [m[key] for m in per_seed if m.get(key) is not None]
        out[key] = (float(np.mean(values)), float(np.std(values))) if values else None
    return out


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, tuple):
        mean, std = value
        if not math.isfinite(mean):
            return "—"
        return f"{mean:.{digits}f} ± {std:.{digits}f}"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def write_outputs(summary: dict[str, Any], out_dir: str | os.PathLike) -> None:
    """results.csv (mean and std columns), results.md (mean ± std), adapter_benchmark.png, summary.json."""
    out_dir = pathlib.Path(out_dir)
    rows = summary["rows"]
    with open(out_dir / "results.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        header = []
        for column in CSV_COLUMNS:
            header.extend([column, f"{column}_std"] if column in METRICS else [column])
        writer.writerow(header)
        for row in rows:
            line = []
            for column in CSV_COLUMNS:
                value = row.get(column)
                if column in METRICS:
                    line.extend(["", ""] if value is None else [f"{value[0]:.6g}", f"{value[1]:.6g}"])
                else:
                    line.append("" if value is None else (f"{value:.1f}" if isinstance(value, float) else value))
            writer.writerow(line)
    titles = {
        "row": "row",
        "variant": "variant",
        "objective": "objective",
        "trained": "trained",
        "seeds": "seeds",
        "params": "adapter params",
        "snr_db": "SNR dB",
        "snr_0_250_db": "SNR 0–250 Hz",
        "snr_250_1000_db": "SNR 250–1000 Hz",
        "corr_measured": "r measured",
        "corr_synthesised": "r synthesised",
        "angle_mae_deg": "angle MAE °",
        "landmark_mm": "landmark mm",
        "windows_per_s": "windows/s",
        "train_s": "train s",
    }
    lines = ["| " + " | ".join(titles[c] for c in CSV_COLUMNS) + " |", "|" + "---|" * len(CSV_COLUMNS)]
    for row in rows:
        cells = []
        for column in CSV_COLUMNS:
            value = row.get(column)
            digits = 0 if column == "windows_per_s" else (3 if column.startswith("corr") else 2)
            cells.append(_fmt(value, digits) if column != "train_s" else _fmt(value, 0))
        lines.append("| " + " | ".join(cells) + " |")
    report = summary["emg2pose"]["report"]
    notes = [
        (
            f"Held-out windows: {summary['heldout_windows']} (whole held-out sessions, never seen in training); "
            f"window {summary['emg2pose']['window_samples']} samples at 2 kHz, emg2pose left context "
            f"{summary['emg2pose']['left_context']}. Mean ± std over seeds."
        )
    ]
    if "mae_deg" in report:
        notes.append(
            f"Frozen emg2pose (trained here): held-out MAE {report['mae_deg']:.2f}° vs predict-the-mean "
            f"{report['mean_baseline_mae_deg']:.2f}°."
        )
    notes.append(f"Total wall time {summary['timings']['total_s']:.0f} s on {', '.join(summary['devices'])}.")
    (out_dir / "results.md").write_text("\n".join(lines) + "\n\n" + "\n".join(notes) + "\n")
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    _plot(rows, out_dir / "adapter_benchmark.png")


def _plot(rows: list[dict[str, Any]], path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['row']}: {r['variant']}" + (f" [{r['objective']}]" if r["objective"] != "-" else "") for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(18, max(4, 0.35 * len(rows) + 1.5)), sharey=True)
    y = np.arange(len(rows))
    colours = {
        "mean pose": "grey",
        "ceiling": "tab:green",
        "floor": "tab:red",
        "fixed": "tab:orange",
        "trained": "tab:blue",
        "direct": "tab:purple",
    }
    for ax, key, title in (
        (axes[0], "angle_mae_deg", "angle MAE (deg, lower is better)"),
        (axes[1], "landmark_mm", "landmark distance (mm, lower is better)"),
    ):
        values = [r[key] if r[key] is not None else (np.nan, 0.0) for r in rows]
        ax.barh(y, [v[0] for v in values], xerr=[v[1] for v in values], color=[colours[r["row"]] for r in rows])
        ax.set_title(title)
    low = [r["snr_0_250_db"][0] if r["snr_0_250_db"] else np.nan for r in rows]
    high = [r["snr_250_1000_db"][0] if r["snr_250_1000_db"] else np.nan for r in rows]
    axes[2].barh(y - 0.2, low, height=0.4, label="0–250 Hz (measured band)")
    axes[2].barh(y + 0.2, high, height=0.4, label="250–1000 Hz (invented band)")
    axes[2].axvline(0.0, color="k", lw=0.8)
    axes[2].set_title("reconstruction SNR (dB, higher is better)")
    axes[2].legend(loc="lower right", fontsize=8)
    axes[0].set_yticks(y, labels, fontsize=8)
    axes[0].invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
