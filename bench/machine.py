"""The machine a benchmark runs on: its float32 matmul peak, threads, load, and whether the run was quiet.

Every script under ``bench/`` calls `start` before its measurements and `Machine.finish` after them:

    machine = start(strict=args.strict)          # prints the header: device, CPU, threads, load, peak
    ...                                          # the measurements; machine.rate(flops, seconds) beside each
    return machine.finish()                      # measures the peak again; prints the verdict; 0, or 3 if --strict

The peak is the best of ``repeats`` calls of a square float32 matmul (2048 on a CPU, 8192 on an
accelerator) through ``jax.jit`` and, on a CPU, numpy and torch (when installed) too; the largest of
them is "the peak" that achieved rates are a share of (on an accelerator this share is the
model-FLOP utilisation against the *measured* matmul rate, not the vendor's datasheet figure).

A headline is not valid when the machine was visibly busy: the 1-minute load average before the
start above ``cores - 0.5`` (someone else was running), or the peak measured before and after
differing by more than 10 % (someone else started or stopped during the run). The scripts then
print a WARNING line and, with ``--strict``, exit with status 3.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "BUSY_TOLERANCE",
    "Machine",
    "add_arguments",
    "busy_reasons",
    "cpu_model",
    "format_rate",
    "matmul_peak",
    "start",
    "start_from_args",
    "xla_flops",
]

BUSY_TOLERANCE = 0.10  # the largest relative change of the peak between start and finish of a valid run
LOAD_MARGIN = 0.5  # the 1-minute load average may reach cores - LOAD_MARGIN before the start


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, else `platform.processor`)."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def load_average() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except (AttributeError, OSError):
        return None


def _best_seconds(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up (and, for jax, compilation)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def matmul_peak(size: int | None = None, repeats: int = 5) -> dict[str, float]:
    """FLOP/s of a (size, size) @ (size, size) float32 matmul, best of ``repeats``: {"jax": ..., "numpy": ...}.

    numpy and torch are measured only on a CPU backend (torch only when importable). ``size``
    defaults to 2048 on a CPU and 8192 on an accelerator (2048 is too small to fill one).
    """
    import jax
    import jax.numpy as jnp

    on_cpu = jax.devices()[0].platform == "cpu"
    size = size or (2048 if on_cpu else 8192)
    if size < 1 or repeats < 1:
        raise ValueError(f"matmul_peak: expected size >= 1 and repeats >= 1, found {size} and {repeats}")
    flops = 2.0 * size**3
    host = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    matmul = jax.jit(jnp.dot)
    a = jax.device_put(host)
    peaks = {"jax": flops / _best_seconds(lambda: jax.block_until_ready(matmul(a, a)), repeats)}
    if on_cpu:
        peaks["numpy"] = flops / _best_seconds(lambda: host @ host, repeats)
        try:
            import torch
        except ImportError:
            pass
        else:
            t = torch.from_numpy(host)
            peaks["torch"] = flops / _best_seconds(lambda: torch.mm(t, t), repeats)
    return peaks


def busy_reasons(
    load_before: float | None,
    cores: int,
    peak_before: float,
    peak_after: float | None,
    tolerance: float = BUSY_TOLERANCE,
) -> list[str]:
    """Why a run's headline is not valid (empty: it is): the load before the start, the peak's drift.

    load_before: the 1-minute load average before the start (None: unknown, not held against the run);
    peak_before, peak_after: FLOP/s (peak_after None: the run has not finished yet).
    """
    reasons = []
    if load_before is not None and load_before > cores - LOAD_MARGIN:
        reasons.append(
            f"load average {load_before:.2f} before the start on {cores} cores (expected <= {cores - LOAD_MARGIN:g}): "
            "other work was running"
        )
    if peak_after is not None:
        change = abs(peak_after - peak_before) / max(peak_before, peak_after)
        if change > tolerance:
            reasons.append(
                f"matmul peak {peak_before / 1e9:.1f} GFLOP/s before and {peak_after / 1e9:.1f} after "
                f"({100 * change:.0f} % apart, expected <= {100 * tolerance:.0f} %): the machine's load changed"
            )
    return reasons


def format_rate(flops_per_s: float) -> str:
    """GFLOP/s below 1 TFLOP/s, TFLOP/s above (accelerators)."""
    if flops_per_s >= 1e12:
        return f"{flops_per_s / 1e12:.2f} TFLOP/s"
    return f"{flops_per_s / 1e9:.1f} GFLOP/s"


def xla_flops(compiled: Any) -> float:
    """FLOPs of one call of a compiled jax function by XLA's cost analysis (nan where XLA gives none).

    XLA counts the body of a while loop (``lax.scan``/``fori_loop`` not unrolled) once, not once per
    iteration, so a recurrent rollout is undercounted; the scripts print an analytic count beside it.
    """
    try:
        cost = compiled.cost_analysis()
    except Exception:  # some backends have no cost model
        return float("nan")
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else None
    return float(cost.get("flops", float("nan"))) if cost else float("nan")


@dataclasses.dataclass
class Machine:
    """What `start` measured; `rate` formats achieved rates against it, `finish` gives the verdict."""

    device_kind: str
    platform: str
    device_count: int
    cpu: str
    cores: int
    threads: dict[str, int]
    load_before: tuple[float, float, float] | None
    peaks_before: dict[str, float]
    strict: bool = False
    size: int | None = None
    repeats: int = 5
    peaks_after: dict[str, float] | None = None

    @property
    def peak(self) -> float:
        """The peak achieved rates are a share of: the best backend's, before the run (FLOP/s)."""
        return max(self.peaks_before.values())

    def share(self, flops_per_s: float) -> float:
        return flops_per_s / self.peak

    def rate(self, flops: float, seconds: float) -> str:
        """'123.4 GFLOP/s, 61 % of peak' for ``flops`` done in ``seconds`` ('MFU' on an accelerator)."""
        if not (flops > 0 and seconds > 0):
            return "FLOPs unknown"
        achieved = flops / seconds
        what = "of peak" if self.platform == "cpu" else "MFU vs measured matmul peak"
        return f"{format_rate(achieved)}, {100 * self.share(achieved):.0f} % {what}"

    def reasons(self) -> list[str]:
        load = self.load_before[0] if self.load_before else None
        after = max(self.peaks_after.values()) if self.peaks_after else None
        return busy_reasons(load, self.cores, self.peak, after)

    def header(self) -> str:
        peaks = ", ".join(f"{name} {format_rate(value)}" for name, value in self.peaks_before.items())
        threads = ", ".join(f"{name} {value}" for name, value in self.threads.items())
        load = "unknown" if self.load_before is None else " ".join(f"{v:.2f}" for v in self.load_before)
        return (
            f"machine: {self.device_kind} ({self.platform}, {self.device_count} device(s)); CPU {self.cpu}, "
            f"{self.cores} usable cores; threads: {threads}; load average (1/5/15 min) {load}\n"
            f"machine: float32 matmul peak before the run: {peaks}"
        )

    def finish(self) -> int:
        """Measure the peak again, print the verdict; 0, or 3 when the run is not valid and ``strict``."""
        self.peaks_after = matmul_peak(self.size, self.repeats)
        peaks = ", ".join(f"{name} {format_rate(value)}" for name, value in self.peaks_after.items())
        print(f"machine: float32 matmul peak after the run: {peaks}; load average now {_load_text()}", flush=True)
        reasons = self.reasons()
        if not reasons:
            print("machine: quiet run: the figures above are a valid headline", flush=True)
            return 0
        for reason in reasons:
            print(f"WARNING: not a valid headline: {reason}", flush=True)
        return 3 if self.strict else 0

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "valid": not self.reasons()}


def _load_text() -> str:
    load = load_average()
    return "unknown" if load is None else " ".join(f"{v:.2f}" for v in load)


def _threads() -> dict[str, int]:
    threads = {"os.cpu_count": os.cpu_count() or 1}
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(name, "").isdigit():
            threads[name] = int(os.environ[name])
    try:
        import torch
    except ImportError:
        pass
    else:
        threads["torch"] = torch.get_num_threads()
    return threads


def start(strict: bool = False, repeats: int = 5, size: int | None = None) -> Machine:
    """Describe the machine and measure its peak before a run; prints the header (and a WARNING if busy)."""
    import jax

    load = load_average()  # before our own measurement adds to it
    device = jax.devices()[0]
    machine = Machine(
        device_kind=device.device_kind,
        platform=device.platform,
        device_count=jax.device_count(),
        cpu=cpu_model(),
        cores=usable_cores(),
        threads=_threads(),
        load_before=load,
        peaks_before=matmul_peak(size, repeats),
        strict=strict,
        size=size,
        repeats=repeats,
    )
    print(machine.header(), flush=True)
    for reason in machine.reasons():
        print(f"WARNING: not a valid headline: {reason}", flush=True)
    return machine


def start_from_args(args: Any) -> Machine:
    """`start` with the options of `add_arguments`."""
    return start(strict=args.strict, repeats=args.peak_repeats, size=args.peak_size or None)


def add_arguments(parser: Any) -> None:
    """The options every bench script shares: --strict, --peak-repeats, --peak-size."""
    parser.add_argument("--peak-repeats", type=int, default=5, help="timed matmuls per backend for the peak")
    parser.add_argument(
        "--peak-size", type=int, default=0, help="matmul size for the peak (0: 2048 on a CPU, 8192 on an accelerator)"
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit with status 3 when the machine was busy (load before the start, or the peak moved by > 10 %%)",
    )
