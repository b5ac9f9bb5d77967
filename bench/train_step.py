"""Train-step throughput, JAX vs PyTorch, for the emg2pose tracking model and the direct joints model.

    python bench/train_step.py                                   # full sizes (slow on a CPU)
    python bench/train_step.py --models direct --batch 64 --steps 20
    python bench/train_step.py --models vemg2pose --batch 4 --steps 3 --window 3790   # a quick check

Models (defaults from the issue):
- ``vemg2pose``: tracking_vemg2pose at its published size, batch 32, windows of
  11,790 samples. JAX: ``pose_forward_train`` + masked L1 (the project's
  ``make_emg2pose_loss_fn`` with the fingertip term off) + Adam, through the
  project's data-parallel ``make_train_step`` on one device. PyTorch:
  ``tests/torch_reference.py``'s ``build_torch_model("tracking_vemg2pose")``
  + Adam + the same masked L1.
- ``direct``: the direct joints model (``DirectConfig()`` defaults, ~1.0 M
  parameters), batch 64, 50-sample windows, MSE + Adam. PyTorch:
  ``bench/torch_direct_reference.py``.

Both sides train in train mode (dropout, BatchNorm statistics), with
gradient computation, the Adam update and the loss fetched at the end.
Compilation (JAX's ``lower().compile()``) is timed separately; throughput is
windows per second over ``--steps`` steps after ``--warmup`` untimed steps.
The ratio is JAX / PyTorch (> 1: JAX faster). Results also go to ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT / "tests", ROOT / "bench"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

DEFAULTS = {"vemg2pose": {"batch": 32, "window": 11_790}, "direct": {"batch": 64, "window": 50}}


def _data(model: str, batch: int, window: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    if model == "vemg2pose":
        return {
            "emg": rng.normal(0.0, 30.0, (batch, 16, window)).astype(np.float32),
            "joint_angles": rng.uniform(-0.3, 1.2, (batch, 20, window)).astype(np.float32),
            "no_ik_failure": rng.random((batch, window)) > 0.02,
        }
    return {
        "emg": rng.normal(size=(batch, 8, window)).astype(np.float32),
        "target": rng.normal(size=(batch, 21, 3)).astype(np.float32),
        "valid": np.ones(batch, bool),
    }


def bench_jax(model: str, batch: dict[str, np.ndarray], steps: int, warmup: int) -> dict:
    import jax

    from emgjax.train import (
        OptimConfig,
        create_train_state,
        make_data_mesh,
        make_optimizer,
        make_train_step,
        replicate,
        shard_batch,
    )

    mesh = make_data_mesh(jax.devices()[:1])
    optimizer = make_optimizer(OptimConfig(learning_rate=1e-3))
    if model == "vemg2pose":
        from emgjax.models.configs import EXPERIMENTS
        from emgjax.models.pose_modules import init_variables
        from emgjax.recipes.emg2pose import make_emg2pose_loss_fn

        config = EXPERIMENTS["tracking_vemg2pose"].model
        variables = init_variables(config, jax.random.key(0))
        loss_fn = make_emg2pose_loss_fn(config, True, fingertip_weight=0.0)
    else:
        from emgjax.models.direct import DirectConfig, DirectModel
        from emgjax.recipes.direct import make_direct_loss_fn

        window = batch["emg"].shape[-1]
        variables = DirectModel(DirectConfig()).init_variables(jax.random.key(0), window)
        loss_fn = make_direct_loss_fn(DirectModel(DirectConfig(), bn_axis_name="data"))
    state = replicate(create_train_state(variables["params"], optimizer, 1, variables.get("batch_stats")), mesh)
    step = make_train_step(loss_fn, optimizer, mesh, donate=True)
    device_batch = shard_batch(batch, mesh)
    started = time.perf_counter()
    compiled = step.jitted.lower(state, device_batch).compile()
    compile_s = time.perf_counter() - started
    for _ in range(warmup):
        state, metrics = compiled(state, device_batch)
    jax.block_until_ready(metrics if warmup else state)
    started = time.perf_counter()
    for _ in range(steps):
        state, metrics = compiled(state, device_batch)
    loss = float(jax.device_get(metrics["loss"]))
    seconds = time.perf_counter() - started
    n = batch["emg"].shape[0]
    return {
        "compile_s": compile_s,
        "step_ms": 1000 * seconds / steps,
        "windows_per_s": n * steps / seconds,
        "loss": loss,
        "device": str(jax.devices()[0]),
    }


def bench_torch(model: str, batch: dict[str, np.ndarray], steps: int, warmup: int) -> dict:
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    tensors = {k: torch.from_numpy(v).to(device) for k, v in batch.items()}
    if model == "vemg2pose":
        from torch_reference import build_torch_model

        net = build_torch_model("tracking_vemg2pose").to(device)

        def loss_of():
            pred, target, mask = net(tensors, True)
            weights = mask[:, None, :].expand_as(pred).to(pred.dtype)
            return ((pred - target).abs() * weights).sum() / weights.sum().clamp_min(1.0)
    else:
        from torch_direct_reference import TorchDirectModel

        net = TorchDirectModel().to(device)

        def loss_of():
            return ((net(tensors["emg"]) - tensors["target"]) ** 2).mean()

    net.train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_of()
        loss.backward()
        optimizer.step()
        return loss

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        loss = step()
    loss = float(loss.detach().cpu())  # waits for the device
    seconds = time.perf_counter() - started
    n = batch["emg"].shape[0]
    return {
        "step_ms": 1000 * seconds / steps,
        "windows_per_s": n * steps / seconds,
        "loss": loss,
        "device": str(device),
        "threads": torch.get_num_threads(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="vemg2pose,direct", help="comma-separated: vemg2pose, direct")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: 32 vemg2pose, 64 direct)")
    parser.add_argument("--window", type=int, default=None, help="window samples (default: 11790 vemg2pose, 50 direct)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before timing (default 2)")
    parser.add_argument("--skip-torch", action="store_true", help="time JAX only")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(models) - set(DEFAULTS))
    if unknown or not models:
        parser.error(f"--models: expected some of {sorted(DEFAULTS)}, found {models}")
    if args.steps < 1 or args.warmup < 0:
        parser.error(f"expected --steps >= 1 and --warmup >= 0, found {args.steps} and {args.warmup}")
    results = []
    for model in models:
        batch_size = args.batch or DEFAULTS[model]["batch"]
        window = args.window or DEFAULTS[model]["window"]
        if model == "vemg2pose" and window < 1_790 + 41:
            parser.error(
                f"--window: tracking_vemg2pose needs at least 1831 samples (1790 context + one step), found {window}"
            )
        batch = _data(model, batch_size, window)
        row = {"model": model, "batch": batch_size, "window": window, "steps": args.steps}
        row["jax"] = bench_jax(model, batch, args.steps, args.warmup)
        if not args.skip_torch:
            row["torch"] = bench_torch(model, batch, args.steps, args.warmup)
            row["ratio_jax_over_torch"] = row["jax"]["windows_per_s"] / row["torch"]["windows_per_s"]
        results.append(row)
        jax_part = (
            f"JAX {row['jax']['windows_per_s']:9.1f} win/s "
            f"({row['jax']['step_ms']:8.1f} ms/step, compile {row['jax']['compile_s']:.1f} s)"
        )
        torch_part = ""
        if "torch" in row:
            torch_part = (
                f" | PyTorch {row['torch']['windows_per_s']:9.1f} win/s ({row['torch']['step_ms']:8.1f} ms/step)"
                f" | JAX/PyTorch {row['ratio_jax_over_torch']:.2f}x"
            )
        print(f"{model:<10} batch {batch_size:>3} window {window:>6}: {jax_part}{torch_part}", flush=True)
    meta = {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version()}
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
