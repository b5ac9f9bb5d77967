"""Training logs: one JSON object per line (JSONL) and a PNG of the curves.

Records are flat dicts such as
``{"kind": "epoch", "epoch": 3, "step": 480, "train_loss": 0.12, "val_loss": 0.2, "time_s": 9.1}``
or ``{"kind": "eval", "step": 500, "val_loss": 0.19}``. Metric keys start with
``train_`` or ``val_``; the plot draws one panel per metric name with the
train, end-of-epoch validation and periodic validation curves against the step.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["MetricsLog", "read_metrics", "plot_curves", "curves_figure"]


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
                raise ValueError(
                    f"{path}: line {number}: expected a JSON object, found invalid JSON ({err.msg})"
                ) from None
            if not isinstance(record, dict):
                raise ValueError(f"{path}: line {number}: expected a JSON object, found {type(record).__name__}")
            records.append(record)
    return records


# Which records a curve's points come from: training means and validation are logged at every epoch end
# ("epoch" records), validation also every ``eval_every_steps`` ("eval" records). The two validation kinds
# are drawn as separate lines: joined into one they zig-zag between two different schedules.
_SERIES_LABELS = {
    ("train", "epoch"): "train (epoch mean)",
    ("val", "epoch"): "val (epoch end)",
    ("val", "eval"): "val (every N steps)",
}


def curves_figure(records: Iterable[Mapping[str, Any]] | str | os.PathLike) -> Figure:
    """The matplotlib ``Figure`` of `plot_curves`: one panel per metric name, one line per series.

    Series: ``train (epoch mean)``, ``val (epoch end)`` and ``val (every N
    steps)`` (records of kind "eval"); each line's points are sorted by step.
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
        kind = "eval" if record.get("kind") == "eval" else "epoch"
        for key, value in record.items():
            for prefix in ("train", "val"):
                if key.startswith(prefix + "_") and isinstance(value, (int, float)) and not isinstance(value, bool):
                    name = key[len(prefix) + 1 :]
                    label = _SERIES_LABELS.get((prefix, kind), f"{prefix} ({kind})")
                    series.setdefault(name, {}).setdefault(label, []).append((float(step), float(value)))
    if not series:
        raise ValueError("plot_curves: expected records with 'step' and train_*/val_* metrics, found none")
    names = sorted(series, key=lambda n: (n != "loss", n))
    figure = Figure(figsize=(5.0 * len(names), 3.6), constrained_layout=True)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(names), squeeze=False)[0]
    order = list(_SERIES_LABELS.values())
    for axis, name in zip(axes, names, strict=True):
        for label in sorted(series[name], key=lambda lab: (order.index(lab) if lab in order else len(order), lab)):
            points = sorted(series[name][label])
            few = len(points) < 50
            axis.plot(
                [p[0] for p in points],
                [p[1] for p in points],
                marker="." if few else None,
                label=label,
                linestyle=":" if label.endswith("steps)") else "-",
            )
        axis.set_title(name)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
        axis.legend()
    return figure


def plot_curves(records: Iterable[Mapping[str, Any]] | str | os.PathLike, png_path: str | os.PathLike) -> str:
    """Draw train/validation curves of every metric against the step (see `curves_figure`); returns the PNG path.

    ``records``: a list of records or the path of a JSONL file. Uses the Agg
    canvas directly (no pyplot global state, no display needed).
    """
    figure = curves_figure(records)
    png_path = os.fspath(png_path)
    os.makedirs(os.path.dirname(os.path.abspath(png_path)), exist_ok=True)
    figure.savefig(png_path, dpi=100)
    return png_path
