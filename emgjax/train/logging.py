"""Training logs: one JSON object per line (JSONL) and a PNG of the curves.

Records are flat dicts such as
``{"kind": "epoch", "epoch": 3, "step": 480, "train_loss": 0.12, "val_loss": 0.2, "time_s": 9.1}``
or ``{"kind": "eval", "step": 500, "val_loss": 0.19}``. Metric keys start with
``train_`` or ``val_``; the plot draws one panel per metric name with the
train and validation curves against the step.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Callable, Iterable, Mapping

__all__ = ["MetricsLog", "read_metrics", "plot_curves"]


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN/inf; None keeps the line valid and visibly marks it
    return value


class MetricsLog:
    """Append-only JSONL metrics file.

    ``keep``: when given and the file exists (a resumed run), only the
    existing records for which ``keep(record)`` is True are kept, so records
    written after the checkpoint being resumed from are not duplicated.
    Without ``keep`` an existing file is replaced (a fresh run).
    """

    def __init__(self, path: str | os.PathLike, *, keep: Callable[[dict], bool] | None = None):
        self.path = os.fspath(path)
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        kept = []
        if keep is not None and os.path.exists(self.path):
            kept = [r for r in read_metrics(self.path) if keep(r)]
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            for record in kept:
                f.write(json.dumps(record) + "\n")
        os.replace(tmp, self.path)  # atomic: a crash here leaves the old or the new file, never half
        self.records: list[dict] = kept

    def log(self, record: Mapping[str, Any]) -> None:
        clean = {str(k): _jsonable(v) for k, v in record.items()}
        line = json.dumps(clean, allow_nan=False)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
        self.records.append(clean)


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """All records of a JSONL metrics file (ValueError naming the file and line if malformed)."""
    path = os.fspath(path)
    records = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}: line {number}: expected a JSON object, found invalid JSON ({err.msg})") from None
            if not isinstance(record, dict):
                raise ValueError(f"{path}: line {number}: expected a JSON object, found {type(record).__name__}")
            records.append(record)
    return records


def plot_curves(records: Iterable[Mapping[str, Any]] | str | os.PathLike, png_path: str | os.PathLike) -> str:
    """Draw train/validation curves of every metric against the step; returns the PNG path.

    ``records``: a list of records or the path of a JSONL file. Uses the Agg
    canvas directly (no pyplot global state, no display needed).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if isinstance(records, (str, os.PathLike)):
        records = read_metrics(records)
    records = list(records)
    series: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for record in records:
        step = record.get("step")
        if step is None:
            continue
        for key, value in record.items():
            for prefix in ("train_", "val_"):
                if key.startswith(prefix) and isinstance(value, (int, float)) and not isinstance(value, bool):
                    name = key[len(prefix) :]
                    series.setdefault(name, {}).setdefault(prefix[:-1], []).append((float(step), float(value)))
    if not series:
        raise ValueError("plot_curves: expected records with 'step' and train_*/val_* metrics, found none")
    names = sorted(series, key=lambda n: (n != "loss", n))
    figure = Figure(figsize=(5.0 * len(names), 3.6), constrained_layout=True)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(names), squeeze=False)[0]
    for axis, name in zip(axes, names):
        for split, points in sorted(series[name].items(), reverse=True):
            points.sort()
            axis.plot([p[0] for p in points], [p[1] for p in points], marker="." if len(points) < 50 else None, label=split)
        axis.set_title(name)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
        axis.legend()
    png_path = os.fspath(png_path)
    os.makedirs(os.path.dirname(os.path.abspath(png_path)), exist_ok=True)
    figure.savefig(png_path, dpi=100)
    return png_path
