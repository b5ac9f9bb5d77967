"""The adapter benchmark's report: one row per (row kind, variant, objective), written as CSV, Markdown, plots and JSON.

A row holds its runs (one metrics dict per data seed x init seed; per data
seed for untrained rows). ``summarise`` turns them into the mean and 95 %
interval of each metric over data seeds (``stats.row_ci``) and the paired
comparisons of the row's angle MAE against the best floor, the ceiling (the
frozen model on the true input) and the calibrated ceiling
(``stats.paired_comparison``, data seeds as the units); the run-level numbers
(every run as if independent) are kept under ``run_level``.
``write_outputs`` writes ``results.csv``, ``results.md``,
``adapter_benchmark.png``, ``summary.json`` and the frozen model's learning
curve (``frozen_curve.csv`` / ``.png``); ``write_knob`` the known-answer
check's ``knob.csv`` / ``knob.png``. ``rewrite_outputs`` / ``rewrite_knob``
write them again from the ``summary.json`` files of an earlier run (after a
change of the statistics or the tables, without training anything).
"""

from __future__ import annotations

import csv
import json
import math
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from emgjax.recipes.adapter.stats import mean_ci, paired_comparison, row_ci, run_values

__all__ = [
    "CSV_COLUMNS",
    "METRICS",
    "COMPARISONS",
    "summarise",
    "label",
    "write_outputs",
    "write_knob",
    "rewrite_outputs",
    "rewrite_knob",
]

# Per-model measurements: each row reports their mean and 95 % interval over its data seeds.
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
# Paired comparisons of angle MAE (row minus reference, matched runs): the reference rows they name.
COMPARISONS = {
    "vs_floor": "the better floor",
    "vs_ceiling": "ceiling: true 16 ch / 2 kHz",
    "vs_calibrated": "calibrated ceiling",
}
CSV_COLUMNS = (
    "row",
    "variant",
    "objective",
    "trained",
    "data_seeds",
    "runs",
    "params",
    "learning_rate",
    *METRICS,
    "train_s",
)


def label(row: Mapping[str, Any]) -> str:
    """'row: variant [objective]', the row's name in plots, the knob table and the chosen learning rates."""
    return f"{row['row']}: {row['variant']}" + (f" [{row['objective']}]" if row["objective"] != "-" else "")


def _references(rows: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The rows each comparison is made against (those present)."""
    refs: dict[str, Mapping[str, Any]] = {}
    floors = [r for r in rows if r["row"] == "floor"]
    if floors:
        refs["vs_floor"] = min(floors, key=lambda r: row_ci(run_values(r["runs"], "angle_mae_deg"))[0])
    for r in rows:
        if r["row"] == "ceiling" and r["trained"] == "no":
            refs["vs_ceiling"] = r
        elif r["row"] == "ceiling":
            refs["vs_calibrated"] = r
    return refs


def summarise(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per row: labels, ``data_seeds`` and ``runs`` (counts), each metric as (mean, 95 % half-width) over data
    seeds or None, the comparisons (data seeds as the units) and ``run_level``: each metric's (mean, half-width)
    over all runs as if independent (the comparisons' run-level tests are in each comparison's ``run_level``)."""
    refs = _references(rows)
    out = []
    for r in rows:
        s: dict[str, Any] = {k: r[k] for k in ("row", "variant", "objective", "trained", "params", "learning_rate")}
        s["data_seeds"] = len({run["data_seed"] for run in r["runs"]})
        s["runs"] = len(r["runs"])
        s["train_s"] = r.get("train_s")
        s["run_level"] = {}
        for metric in METRICS:
            values = run_values(r["runs"], metric)
            s[metric] = row_ci(values) if values else None
            s["run_level"][metric] = mean_ci(list(values.values())) if values else None
        mae = run_values(r["runs"], "angle_mae_deg")
        for key, ref in refs.items():
            s[key] = None if ref is r else paired_comparison(mae, run_values(ref["runs"], "angle_mae_deg"))
        s["reference_labels"] = {key: label(ref) for key, ref in refs.items()}
        out.append(s)
    return out


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, tuple):
        mean, half = value
        if not math.isfinite(mean):
            return "—"
        return f"{mean:.{digits}f}" + ("" if not math.isfinite(half) else f" ± {half:.{digits}f}")
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _fmt_comparison(c: Mapping[str, Any] | None) -> str:
    """'−1.23 ± 0.40 (p 0.003) *': mean difference (°), its 95 % half-width, the paired t-test p, * if p < 0.05."""
    if c is None:
        return "—"
    half = "" if not math.isfinite(c["ci95"]) else f" ± {c['ci95']:.2f}"
    p = "<0.001" if c["p"] < 0.001 else f"{c['p']:.3f}"
    return f"{c['diff']:+.2f}{half} (p {p})" + (" *" if c["significant"] else "")


_TITLES = {
    "row": "row",
    "variant": "variant",
    "objective": "objective",
    "trained": "trained",
    "data_seeds": "data seeds",
    "runs": "runs",
    "params": "params",
    "learning_rate": "lr",
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


def write_outputs(summary: dict[str, Any], out_dir: str | os.PathLike) -> None:
    """results.csv, results.md, adapter_benchmark.png, summary.json (with its ``table``), the learning curve.

    results.csv: per metric its mean and ``_ci95`` over data seeds, per comparison ``mae_vs_*`` (difference),
    ``_ci95``, ``_p`` and ``_n`` (data seeds); then the run-level numbers (every run as if independent, for
    comparison only): ``*_run_level`` and ``*_run_level_ci95`` per metric, ``mae_vs_*_run_level`` /
    ``_run_level_ci95`` / ``_run_level_p`` per comparison.
    """
    out_dir = pathlib.Path(out_dir)
    table = summarise(summary["rows"])
    summary["table"] = table
    with open(out_dir / "results.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        header = []
        for column in CSV_COLUMNS:
            header.extend([column, f"{column}_ci95"] if column in METRICS else [column])
        for key in COMPARISONS:
            header.extend([f"mae_{key}", f"mae_{key}_ci95", f"mae_{key}_p", f"mae_{key}_n"])
        for metric in METRICS:
            header.extend([f"{metric}_run_level", f"{metric}_run_level_ci95"])
        for key in COMPARISONS:
            header.extend([f"mae_{key}_run_level", f"mae_{key}_run_level_ci95", f"mae_{key}_run_level_p"])
        writer.writerow(header)
        for row in table:
            line: list[Any] = []
            for column in CSV_COLUMNS:
                value = row.get(column)
                if column in METRICS:
                    line.extend(_csv_interval(value))
                elif column == "learning_rate":
                    line.append("" if value is None else f"{value:g}")
                else:
                    line.append("" if value is None else (f"{value:.1f}" if isinstance(value, float) else value))
            for key in COMPARISONS:
                c = row.get(key)
                line.extend(["", "", "", ""] if c is None else [*_csv_test(c), c["n"]])
            for metric in METRICS:
                line.extend(_csv_interval(row["run_level"][metric]))
            for key in COMPARISONS:
                c = row.get(key)
                line.extend(["", "", ""] if c is None or c["run_level"] is None else _csv_test(c["run_level"]))
            writer.writerow(line)
    (out_dir / "results.md").write_text(_markdown(summary, table))
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    _plot(table, out_dir / "adapter_benchmark.png")
    curve = summary["emg2pose"]["report"].get("curve")
    if curve:
        _write_curve(curve, summary["emg2pose"]["report"], out_dir)


def rewrite_outputs(out_dir: str | os.PathLike) -> dict[str, Any]:
    """Write OUT's results again from OUT/summary.json (its rows' runs; nothing is trained); returns the summary."""
    path = pathlib.Path(out_dir) / "summary.json"
    if not path.is_file():
        raise ValueError(f"rewrite_outputs: expected a benchmark's summary.json, found no {path}")
    summary: dict[str, Any] = json.loads(path.read_text())
    if "rows" not in summary or "emg2pose" not in summary:
        raise ValueError(f"rewrite_outputs: expected a benchmark summary with 'rows' and 'emg2pose', found {path}")
    write_outputs(summary, out_dir)
    return summary


def _csv_interval(value: Sequence[float] | None) -> list[str]:
    return ["", ""] if value is None else [f"{value[0]:.6g}", f"{value[1]:.6g}"]


def _csv_test(c: Mapping[str, Any]) -> list[str]:
    return [f"{c['diff']:.6g}", f"{c['ci95']:.6g}", f"{c['p']:.4g}"]


def _markdown(summary: Mapping[str, Any], table: Sequence[Mapping[str, Any]]) -> str:
    """Three tables (accuracy with comparisons; reconstruction; run-level numbers for comparison) and the notes."""
    refs = table[0]["reference_labels"] if table else {}
    keys = [k for k in COMPARISONS if k in refs]
    pose_columns = (
        "row",
        "variant",
        "objective",
        "data_seeds",
        "runs",
        "params",
        "learning_rate",
        "angle_mae_deg",
        "landmark_mm",
    )
    titles = [_TITLES[c] for c in pose_columns] + [f"Δ° vs {refs[k]}" for k in keys]
    lines = ["| " + " | ".join(titles) + " |", "|" + "---|" * len(titles)]
    for row in table:
        cells = [_cell(row, c) for c in pose_columns] + [_fmt_comparison(row.get(k)) for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    recon_columns = (
        "row",
        "variant",
        "objective",
        "snr_db",
        "snr_0_250_db",
        "snr_250_1000_db",
        "corr_measured",
        "corr_synthesised",
        "windows_per_s",
        "train_s",
    )
    lines += ["", "| " + " | ".join(_TITLES[c] for c in recon_columns) + " |", "|" + "---|" * len(recon_columns)]
    for row in table:
        lines.append("| " + " | ".join(_cell(row, c) for c in recon_columns) + " |")
    run_titles = ["row", "runs", "angle MAE ° (run level)"] + [f"Δ° vs {refs[k]} (run level)" for k in keys]
    lines += ["", "| " + " | ".join(run_titles) + " |", "|" + "---|" * len(run_titles)]
    for row in table:
        cells = [label(row), str(row["runs"]), _fmt(row["run_level"]["angle_mae_deg"])]
        cells += [_fmt_comparison(None if row.get(k) is None else row[k]["run_level"]) for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    report = summary["emg2pose"]["report"]
    # "seed: count" (summary.json turns the int keys into strings: the same text either way)
    windows = ", ".join(f"{seed}: {count}" for seed, count in summary["heldout_windows"].items())
    notes = [
        (
            f"Units are data seeds (draws of users): mean ± 95 % interval (Student t, df = data seeds − 1) over each "
            f"row's per-data-seed means (trained rows: the mean over the data seed's init seeds; untrained rows: "
            f"one run per data seed). Δ°: difference in angle MAE (row minus reference), per data seed the mean over "
            f"matched init seeds, ± its 95 % interval over data seeds, one-sample t-test p over data seeds; * "
            f"significant at p < 0.05. Held-out windows per data seed ({windows}): users never seen in training; "
            f"window {summary['emg2pose']['window_samples']} samples at 2 kHz, emg2pose left context "
            f"{summary['emg2pose']['left_context']}."
        ),
        (
            "Third table, for comparison only: the run-level numbers, every run (data seed x init seed) as if "
            "independent. Runs of one data seed share their users, so these intervals and p-values overstate "
            "certainty (pseudo-replication); they decide nothing."
        ),
    ]
    if "mae_deg" in report:
        notes.append(
            f"Frozen emg2pose (trained here): validation MAE {report['mae_deg']:.2f}° (other users) vs "
            f"predict-the-mean {report['mean_baseline_mae_deg']:.2f}°, best of {report.get('steps', '?')} steps at "
            f"step {report.get('best_step', '?')}."
        )
    notes.append(f"Learning rates (validation draw): {json.dumps(summary.get('learning_rates', {}))}.")
    notes.append(f"Total wall time {summary['timings']['total_s']:.0f} s on {', '.join(summary['devices'])}.")
    return "\n".join(lines) + "\n\n" + "\n\n".join(notes) + "\n"


def _cell(row: Mapping[str, Any], column: str) -> str:
    value = row.get(column)
    if column == "train_s":
        return _fmt(value, 0)
    if column == "learning_rate":
        return "—" if value is None else f"{value:g}"
    digits = 0 if column == "windows_per_s" else (3 if column.startswith("corr") else 2)
    return _fmt(value, digits)


_COLOURS = {
    "mean pose": "grey",
    "ceiling": "tab:green",
    "floor": "tab:red",
    "fixed": "tab:orange",
    "trained": "tab:blue",
    "direct": "tab:purple",
    "target": "tab:brown",
}


def _plot(table: Sequence[Mapping[str, Any]], path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [label(r) for r in table]
    fig, axes = plt.subplots(1, 3, figsize=(18, max(4, 0.35 * len(table) + 1.5)), sharey=True)
    y = np.arange(len(table))
    for ax, key, title in (
        (axes[0], "angle_mae_deg", "angle MAE (deg, lower is better; 95 % CI over data seeds)"),
        (axes[1], "landmark_mm", "landmark distance (mm, lower is better; 95 % CI over data seeds)"),
    ):
        values = [r[key] if r[key] is not None else (np.nan, 0.0) for r in table]
        ax.barh(
            y,
            [v[0] for v in values],
            xerr=[np.nan_to_num(v[1]) for v in values],
            color=[_COLOURS[r["row"]] for r in table],
        )
        ax.set_title(title)
    low = [r["snr_0_250_db"][0] if r["snr_0_250_db"] else np.nan for r in table]
    high = [r["snr_250_1000_db"][0] if r["snr_250_1000_db"] else np.nan for r in table]
    axes[2].barh(y - 0.2, low, height=0.4, label="0–250 Hz (measured band)")
    axes[2].barh(y + 0.2, high, height=0.4, label="250–1000 Hz (invented band)")
    axes[2].axvline(0.0, color="k", lw=0.8)
    axes[2].set_title("reconstruction SNR (dB, Welch, output span)")
    axes[2].legend(loc="lower right", fontsize=8)
    axes[0].set_yticks(y, labels, fontsize=8)
    axes[0].invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _write_curve(curve: Sequence[Mapping[str, float]], report: Mapping[str, Any], out_dir: pathlib.Path) -> None:
    """frozen_curve.csv (step, train L1, validation MAE) and frozen_curve.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(out_dir / "frozen_curve.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "train_l1_deg", "val_mae_deg"])
        for point in curve:
            writer.writerow([point["step"], f"{point['train_l1_deg']:.4f}", f"{point['val_mae_deg']:.4f}"])
    fig, ax = plt.subplots(figsize=(6, 4))
    steps = [p["step"] for p in curve]
    ax.plot(steps, [p["train_l1_deg"] for p in curve], "o-", label="train L1 (last interval)")
    ax.plot(steps, [p["val_mae_deg"] for p in curve], "s-", label="validation MAE (other users)")
    ax.axhline(report["mean_baseline_mae_deg"], color="grey", ls="--", label="predict the mean pose")
    if "best_step" in report:
        ax.axvline(report["best_step"], color="k", lw=0.8, ls=":", label="kept (best validation)")
    ax.set_xlabel("step")
    ax.set_ylabel("degrees")
    ax.set_title("frozen emg2pose: learning curve")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "frozen_curve.png", dpi=100)
    plt.close(fig)


def write_knob(summaries: Sequence[tuple[float, Mapping[str, Any]]], out_dir: str | os.PathLike) -> dict[str, Any]:
    """knob.csv (knob, row, mean MAE and 95 % half-width over data seeds, counts, gap to the calibrated ceiling)
    and knob.png.

    summaries: (knob value, run_benchmark's summary) per value. The gap of a row is its paired difference
    to the calibrated ceiling (or the ceiling when there is none) at that knob value, data seeds as the units
    (``gap_p``; ``gap_p_run_level``: every run as if independent, for comparison only).
    """
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for value, summary in summaries:
        for row in summary["table"]:
            if row["row"] in ("mean pose", "fixed"):
                continue
            mae = row["angle_mae_deg"]
            gap = row.get("vs_calibrated") or row.get("vs_ceiling")
            run_gap = None if gap is None else gap["run_level"]
            records.append(
                {
                    "knob": value,
                    "row": label(row),
                    "mae_deg": mae[0],
                    "ci95": mae[1],
                    "data_seeds": row["data_seeds"],
                    "runs": row["runs"],
                    "gap_deg": None if gap is None else gap["diff"],
                    "gap_ci95": None if gap is None else gap["ci95"],
                    "gap_p": None if gap is None else gap["p"],
                    "gap_p_run_level": None if run_gap is None else run_gap["p"],
                }
            )
    with open(out_dir / "knob.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        columns = tuple(records[0]) if records else ("knob", "row")
        writer.writerow(columns)
        for r in records:
            writer.writerow([_csv(r[c]) for c in columns])
    _plot_knob(records, out_dir / "knob.png")
    return {"records": records, "learning_rates": summaries[0][1]["learning_rates"] if summaries else {}}


def rewrite_knob(out_dir: str | os.PathLike) -> dict[str, Any]:
    """Write a knob run's outputs again from its OUT/knob_<value>/summary.json files (``rewrite_outputs`` each,
    then ``write_knob``); the knob value is read from each summary's config."""
    paths = sorted(pathlib.Path(out_dir).glob("knob_*/summary.json"))
    if not paths:
        raise ValueError(f"rewrite_knob: expected knob_<value>/summary.json files, found none in {out_dir}")
    summaries = [rewrite_outputs(path.parent) for path in paths]
    pairs = sorted(((float(s["config"]["high_band_info"]), s) for s in summaries), key=lambda pair: pair[0])
    return write_knob(pairs, out_dir)


def _csv(value: Any) -> Any:
    return "" if value is None else (f"{value:.6g}" if isinstance(value, float) else value)


def _plot_knob(records: Sequence[Mapping[str, Any]], path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    names = list(dict.fromkeys(r["row"] for r in records))
    for k, name in enumerate(names):
        points = [r for r in records if r["row"] == name]
        x = np.asarray([p["knob"] for p in points]) + 0.008 * (k - len(names) / 2)  # dodge the error bars
        colour = _COLOURS.get(name.split(":")[0])
        style = "--" if name.startswith(("ceiling: true", "floor")) else "-"
        ax.errorbar(
            x,
            [p["mae_deg"] for p in points],
            yerr=[np.nan_to_num(p["ci95"]) for p in points],
            fmt="o" + style,
            capsize=3,
            color=colour,
            label=name,
        )
    ax.set_xlabel("high_band_info (share of pose information moved to 250–1000 Hz, dropped electrodes)")
    ax.set_ylabel("held-out angle MAE (deg, 95 % CI over data seeds)")
    ax.set_title("known-answer check: information leaves the armband")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
