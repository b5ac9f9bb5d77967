"""Data-parallel scaling of the train step over 1/2/4 simulated CPU devices, and the loader's windows/s per host.

    python bench/scaling.py                                  # both models, 1 2 4 devices, and the loader
    python bench/scaling.py --models direct --devices 1 2 --steps 20
    python bench/scaling.py --parts loader --loader-workers 1 2 4

Part "step": one subprocess per device count N, each started with
``XLA_FLAGS=--xla_force_host_platform_device_count=N`` (the flag must be set before JAX starts), runs
the package's sharded train step (`emgjax.train`: ``make_data_mesh`` over the N devices,
``make_train_step``, ``shard_batch``, ``replicate``; `bench/train_step.py`'s ``bench_jax``) for

- weak scaling: a fixed per-device batch (global batch N x ``--per-device-batch``), and
- strong scaling: a fixed global batch (``--global-batch``) split N ways,

for tracking_vemg2pose at reduced width (``--size``, default 4: TDS channels and LSTM width / 4)
and the direct model (``DirectConfig`` defaults). Efficiency = windows/s at N / (N x windows/s at
1 device), for both, beside the speed-up (windows/s at N / at 1 device). Simulated devices share
the host's cores, and one device already uses all of them through XLA's intra-op threads, so on a
CPU the speed-up cannot exceed about 1x (efficiency 1/N): what this measures there is the cost of the
machinery (sharding, the gradient all-reduce, BatchNorm's cross-device statistics); on as many real
devices as N, the scaling.

Part "loader": emg2pose-format HDF5 sessions written on the fly (`emgjax.data.emg2pose`'s writer,
random EMG and angles: the loader's cost does not depend on the values) in a temporary directory,
read through `emgjax.data.windows.Emg2PoseWindows` (11,790-sample jittered training windows) and
`emgjax.data.loader.Loader` (shuffled, prefetching) for one process of one host: windows/s per
``--loader-workers`` setting. The files were just written, so they are in the page cache: this is
the CPU cost of HDF5 reads, windowing and batching, the ceiling a local disk can only lower.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "tests", ROOT / "bench"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import machine as machine_mod  # noqa: E402

MARK = "SCALING-RESULT "
DEVICE_FLAG = "xla_force_host_platform_device_count"
WINDOWS = {"vemg2pose": 3_790, "direct": 50}
PER_DEVICE = {"vemg2pose": 2, "direct": 64}
GLOBAL = {"vemg2pose": 8, "direct": 256}


def worker(args: argparse.Namespace) -> int:
    """Run in a subprocess whose XLA_FLAGS fixed the device count: print one JSON line per measurement."""
    import jax
    from train_step import bench_jax, make_data

    n = jax.device_count()
    if n != args.worker:
        raise SystemExit(f"expected {args.worker} devices (XLA_FLAGS), found {n}")
    for model in args.models:
        window = args.window or WINDOWS[model]
        for mode, rows in (("weak", n * args.per_device_batch[model]), ("strong", args.global_batch[model])):
            if rows % n:
                print(f"{MARK}{json.dumps({'model': model, 'mode': mode, 'devices': n, 'skipped': rows})}")
                continue
            result = bench_jax(
                model, make_data(model, rows, window), args.steps, args.warmup, size=args.size, devices=n
            )
            row = {"model": model, "mode": mode, "devices": n, "batch": rows, "window": window, **result}
            print(MARK + json.dumps(row), flush=True)
    return 0


def run_steps(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for n in args.devices:
        env = dict(os.environ)
        # Drop a device count inherited from the caller (e.g. the test suite's): this run sets its own.
        flags = [f for f in env.get("XLA_FLAGS", "").split() if not f.startswith(f"--{DEVICE_FLAG}=")]
        env["XLA_FLAGS"] = " ".join([*flags, f"--{DEVICE_FLAG}={n}"])
        env["JAX_PLATFORMS"] = "cpu"
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(n), "--models", *args.models]
        command += ["--steps", str(args.steps), "--warmup", str(args.warmup), "--size", str(args.size)]
        command += ["--per-device-batch", *(f"{m}={args.per_device_batch[m]}" for m in args.models)]
        command += ["--global-batch", *(f"{m}={args.global_batch[m]}" for m in args.models)]
        if args.window:
            command += ["--window", str(args.window)]
        done = subprocess.run(command, check=False, env=env, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"the {n}-device run failed (status {done.returncode}):\n{done.stderr[-3000:]}")
        for line in done.stdout.splitlines():
            if line.startswith(MARK):
                rows.append(json.loads(line[len(MARK) :]))
    return rows


def report_steps(rows: list[dict[str, Any]], machine: machine_mod.Machine, size: int) -> None:
    from train_step import model_flops

    print("\nstep: windows/s over N simulated CPU devices (efficiency = windows/s at N / (N x at 1 device))")
    base = {(r["model"], r["mode"]): r["windows_per_s"] for r in rows if r["devices"] == 1 and "skipped" not in r}
    for r in rows:
        if "skipped" in r:
            print(f"  {r['model']:9s} {r['mode']:6s} N={r['devices']}: skipped ({r['skipped']} rows do not split)")
            continue
        one = base.get((r["model"], r["mode"]))
        efficiency = f"{r['windows_per_s'] / (r['devices'] * one):6.2f}" if one else "   n/a"
        speedup = f"{r['windows_per_s'] / one:5.2f}x" if one else "  n/a"
        flops = model_flops(r["model"], r["window"], r["batch"], size if r["model"] == "vemg2pose" else 0)
        print(
            f"  {r['model']:9s} {r['mode']:6s} N={r['devices']} global batch {r['batch']:4d} x {r['window']:5d}: "
            f"{r['windows_per_s']:9.1f} windows/s  {r['step_s'] * 1e3:8.1f} ms/step  speed-up {speedup}  "
            f"efficiency {efficiency}  "
            f"{machine.rate(flops, r['step_s'])}"
        )
    if machine.platform == "cpu" and max((r["devices"] for r in rows), default=1) > 1:
        print(
            f"  note: simulated CPU devices share this host's {machine.cores} cores, and one device already uses all "
            "of them (XLA's intra-op threads): here the speed-up's ceiling is about 1x and the efficiency's 1/N, so "
            "these rows measure the data-parallel machinery's overhead; on N real devices the ceilings are Nx and 1"
        )


def loader_throughput(args: argparse.Namespace) -> list[dict[str, Any]]:
    """windows/s of Emg2PoseWindows + Loader over freshly written emg2pose-format sessions."""
    from emgjax.data.emg2pose import write_emg2pose_session
    from emgjax.data.loader import Loader
    from emgjax.data.windows import Emg2PoseWindows

    rng = np.random.default_rng(0)
    samples = round(args.loader_seconds * 2000)
    rows = []
    with tempfile.TemporaryDirectory(prefix="emgjax-loader-") as root:
        paths = []
        for i in range(args.loader_sessions):
            angles = rng.uniform(-0.3, 1.2, (samples, 20))
            angles[rng.random(samples) < 0.01] = 0.0  # IK failures, as in the released data
            paths.append(
                write_emg2pose_session(
                    Path(root) / f"session{i:03d}.hdf5",
                    emg=rng.normal(0, 30, (samples, 16)).astype(np.float32),
                    joint_angles=angles,
                    time=np.arange(samples) / 2000.0,
                    session=f"session{i}",
                )
            )
        megabytes = sum(p.stat().st_size for p in paths) / 2**20
        dataset = Emg2PoseWindows(paths, 11_790, jitter=True)
        if len(dataset) < args.loader_batch:
            raise SystemExit(
                f"loader: expected at least --loader-batch {args.loader_batch} windows, found {len(dataset)} "
                "(raise --loader-sessions or --loader-seconds)"
            )
        print(
            f"\nloader: {len(paths)} sessions x {args.loader_seconds:g} s ({megabytes:.0f} MiB of HDF5), "
            f"{len(dataset)} windows of 11,790 samples per epoch, batch {args.loader_batch}"
        )
        for workers in args.loader_workers:
            loader = Loader(
                dataset, args.loader_batch, num_workers=workers, prefetch=2, process_index=0, process_count=1
            )
            next(iter(loader))  # opens the files
            count, started = 0, time.perf_counter()
            for _ in range(args.loader_epochs):
                for batch in loader:
                    count += batch["emg"].shape[0]
            seconds = time.perf_counter() - started
            rows.append({"workers": workers, "windows_per_s": count / seconds, "windows": count})
            print(
                f"  num_workers {workers}: {count / seconds:8.1f} windows/s per process "
                f"({count} windows, {count * 11_790 * (16 + 20) * 4 / seconds / 2**20:.0f} MiB/s of float32 arrays)",
                flush=True,
            )
        dataset.close()
    return rows


def _per_model(text: list[str], defaults: dict[str, int], option: str) -> dict[str, int]:
    out = dict(defaults)
    for item in text:
        model, _, value = item.partition("=")
        if model not in defaults or not value.isdigit() or int(value) < 1:
            raise SystemExit(f"{option}: expected MODEL=POSITIVE_INT with MODEL in {sorted(defaults)}, found {item!r}")
        out[model] = int(value)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", choices=["step", "loader"], default=["step", "loader"])
    parser.add_argument("--models", nargs="+", choices=sorted(WINDOWS), default=["vemg2pose", "direct"])
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4], help="simulated device counts")
    parser.add_argument("--size", type=int, default=4, help="tracking_vemg2pose widths divided by this (0: full)")
    parser.add_argument("--window", type=int, default=0, help="window samples (0: 3790 vemg2pose, 50 direct)")
    parser.add_argument("--per-device-batch", nargs="*", default=[], help="weak scaling, MODEL=ROWS (defaults: 2, 64)")
    parser.add_argument("--global-batch", nargs="*", default=[], help="strong scaling, MODEL=ROWS (defaults: 8, 256)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--loader-sessions", type=int, default=4)
    parser.add_argument("--loader-seconds", type=float, default=120.0, help="seconds of data per session")
    parser.add_argument("--loader-batch", type=int, default=8)
    parser.add_argument("--loader-epochs", type=int, default=3)
    parser.add_argument("--loader-workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--worker", type=int, default=0, help=argparse.SUPPRESS)
    machine_mod.add_arguments(parser)
    args = parser.parse_args(argv)
    args.per_device_batch = _per_model(args.per_device_batch, PER_DEVICE, "--per-device-batch")
    args.global_batch = _per_model(args.global_batch, GLOBAL, "--global-batch")
    if args.steps < 1 or args.warmup < 1 or min(args.devices) < 1 or min(args.loader_workers) < 1:
        parser.error("expected --steps, --warmup, --devices and --loader-workers >= 1")
    if args.worker:
        return worker(args)
    machine = machine_mod.start_from_args(args)
    if "step" in args.parts:
        report_steps(run_steps(args), machine, args.size)
    if "loader" in args.parts:
        loader_throughput(args)
    return machine.finish()


if __name__ == "__main__":
    sys.exit(main())
