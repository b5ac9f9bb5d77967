"""Train-step throughput: ours (JAX), our PyTorch reference and Meta's own code (tracking_vemg2pose, direct model).

    python bench/train_step.py                                   # full sizes (slow on a CPU)
    python bench/train_step.py --emg2pose-src ~/emg2pose         # + Meta's own modules (a checkout you supply)
    python bench/train_step.py --models direct --batch 64 --steps 20
    python bench/train_step.py --models vemg2pose --batch 4 --steps 3 --window 3790   # a quick check

Models (defaults from the issue):
- ``vemg2pose``: tracking_vemg2pose at its published size (``--size K`` divides the TDS channels and
  the LSTM width by K), batch 32, windows of 11,790 samples, one set of weights for all three sides
  (our reference's initial weights; ours through ``emgjax.convert``'s state_dict mapping, Meta's
  modules loaded with ``load_state_dict(strict=True)``). The step is emg2pose's Lightning step:
  the mask drops windows whose initial pose is missing, loss = L1 over the unmasked angles (the
  fingertip term is off on every side: it needs Meta's kinematics and hand model), Adam (lr 1e-3)
  and gradient clipping by global norm 1 (``gradient_clip_val: 1`` of the experiment's config).
  Ours: the project's ``make_emg2pose_loss_fn`` through its data-parallel ``make_train_step`` on one
  device, ``OptimConfig(grad_clip_norm=1)``. PyTorch (our reference ``tests/torch_reference.py``
  and, with ``--emg2pose-src``, Meta's ``emg2pose.pose_modules``): the same step written here
  around the module (no Lightning), ``clip_grad_norm_`` then ``Adam.step``.
- ``direct``: the direct joints model (``DirectConfig()`` defaults, ~1.0 M parameters), batch 64,
  50-sample windows, MSE + Adam without clipping, against its PyTorch twin
  ``bench/torch_direct_reference.py`` (Meta has no such model).

Every side trains in train mode, computes gradients, updates and fetches the loss at the end.
Compilation (JAX's ``lower().compile()``) is timed separately; throughput is windows per second
over ``--steps`` steps after ``--warmup`` untimed steps (at least one: its loss, the same weights
on the same batch, is the parity check). FLOP rates: an analytic count (3 forwards per step) beside
XLA's cost analysis of the compiled step, as a share of the matmul peak measured in the same run
(`bench/machine.py`). Ratios are ours / theirs in windows per second (> 1: ours faster).
Results also go to ``--json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT / "tests", ROOT / "bench"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import machine as machine_mod  # noqa: E402
import meta  # noqa: E402
from flops import TRAIN_FACTOR, direct_flops, emg2pose_flops  # noqa: E402

DEFAULTS = {"vemg2pose": {"batch": 32, "window": 11_790}, "direct": {"batch": 64, "window": 50}}
EXPERIMENT = "tracking_vemg2pose"
CLIP = {"vemg2pose": 1.0, "direct": 0.0}  # emg2pose's gradient_clip_val; the direct recipe's comparison: none


def size_overrides(size: int) -> dict[str, int]:
    """torch_reference size overrides dividing the TDS channels and LSTM width by ``size`` (0: published size)."""
    return {"tds_channels": 16 // size, "hidden_size": 512 // size} if size else {}


def emg2pose_config(size: int) -> Any:
    from emgjax.convert.emg2pose_map import model_config_from_hyper_parameters
    from emgjax.models.configs import EXPERIMENTS

    if not size:
        return EXPERIMENTS[EXPERIMENT].model
    import torch_reference as tr

    return model_config_from_hyper_parameters(tr.hyper_parameters_for(EXPERIMENT, **size_overrides(size)))


def make_data(model: str, batch: int, window: int, seed: int = 0) -> dict[str, np.ndarray]:
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


def model_flops(model: str, window: int, batch: int, size: int = 0) -> float:
    """Analytic FLOPs of one training step (3 forwards)."""
    if model == "vemg2pose":
        return TRAIN_FACTOR * emg2pose_flops(emg2pose_config(size), window, batch)
    from emgjax.models.direct import DirectConfig

    return TRAIN_FACTOR * direct_flops(DirectConfig(), window, batch)


def bench_jax(
    model: str,
    batch: dict[str, np.ndarray],
    steps: int,
    warmup: int,
    *,
    variables: Any = None,
    size: int = 0,
    devices: int = 1,
    compute_dtype: str = "float32",
) -> dict[str, Any]:
    """Our sharded train step over the first ``devices`` devices (global batch = ``batch``'s rows).

    ``compute_dtype``: the models' precision option ("bfloat16": bfloat16 matmul/convolution operands)."""
    import dataclasses

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

    mesh = make_data_mesh(jax.devices()[:devices])
    optimizer = make_optimizer(OptimConfig(learning_rate=1e-3, grad_clip_norm=CLIP[model]))
    if model == "vemg2pose":
        from emgjax.models.pose_modules import init_variables
        from emgjax.recipes.emg2pose import make_emg2pose_loss_fn

        config = dataclasses.replace(emg2pose_config(size), compute_dtype=compute_dtype)
        if variables is None:
            variables = init_variables(config, jax.random.key(0))
        loss_fn = make_emg2pose_loss_fn(config, True, fingertip_weight=0.0)
    else:
        from emgjax.models.direct import DirectConfig, DirectModel
        from emgjax.recipes.direct import make_direct_loss_fn

        window = batch["emg"].shape[-1]
        if variables is None:
            variables = DirectModel(DirectConfig()).init_variables(jax.random.key(0), window)
        loss_fn = make_direct_loss_fn(DirectModel(DirectConfig(compute_dtype=compute_dtype), bn_axis_name="data"))
    state = replicate(create_train_state(variables["params"], optimizer, 1, variables.get("batch_stats")), mesh)
    step = make_train_step(loss_fn, optimizer, mesh, donate=True)
    device_batch = shard_batch(batch, mesh)
    started = time.perf_counter()
    compiled = step.jitted.lower(state, device_batch).compile()
    compile_s = time.perf_counter() - started
    first_loss = float("nan")
    for i in range(warmup):
        state, metrics = compiled(state, device_batch)
        if i == 0:
            first_loss = float(jax.device_get(metrics["loss"]))
    jax.block_until_ready(state)
    started = time.perf_counter()
    for _ in range(steps):
        state, metrics = compiled(state, device_batch)
    loss = float(jax.device_get(metrics["loss"]))
    seconds = time.perf_counter() - started
    n = batch["emg"].shape[0]
    return {
        "compile_s": compile_s,
        "step_s": seconds / steps,
        "windows_per_s": n * steps / seconds,
        "first_loss": first_loss,
        "loss": loss,
        "xla_flops": machine_mod.xla_flops(compiled),
        "device": str(jax.devices()[0]),
        "devices": devices,
    }


def emg2pose_step_loss(net: Any, tensors: dict[str, Any]) -> Any:
    """emg2pose's Lightning training loss without the fingertip term, around any pose module ``net``.

    Windows whose mask is False at the left-context sample (no initial pose) are masked out entirely;
    the loss is the mean |pred - target| over the angles the mask keeps.
    """
    import torch

    mask = tensors["no_ik_failure"].clone()
    mask[~mask[:, net.left_context]] = False
    pred, target, mask = net({**tensors, "no_ik_failure": mask}, True)
    keep = mask.unsqueeze(1).expand_as(pred)
    return torch.nn.functional.l1_loss(pred[keep], target[keep])


def bench_torch(model: str, net: Any, batch: dict[str, np.ndarray], steps: int, warmup: int) -> dict[str, Any]:
    """Adam (+ clipping for vemg2pose) on ``net`` in train mode, the step written out as Lightning runs it."""
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tensors = {k: torch.from_numpy(v).to(device) for k, v in batch.items()}
    net = net.to(device)
    if model == "vemg2pose":

        def loss_of():
            return emg2pose_step_loss(net, tensors)
    else:

        def loss_of():
            return ((net(tensors["emg"]) - tensors["target"]) ** 2).mean()

    net.train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_of()
        loss.backward()
        if CLIP[model]:
            torch.nn.utils.clip_grad_norm_(net.parameters(), CLIP[model])
        optimizer.step()
        return loss

    first_loss = float("nan")
    for i in range(warmup):
        loss = step()
        if i == 0:
            first_loss = float(loss.detach().cpu())
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        loss = step()
    loss = float(loss.detach().cpu())  # waits for the device
    seconds = time.perf_counter() - started
    n = batch["emg"].shape[0]
    return {
        "step_s": seconds / steps,
        "windows_per_s": n * steps / seconds,
        "first_loss": first_loss,
        "loss": loss,
        "device": str(device),
        "threads": torch.get_num_threads(),
    }


def sides(model: str, args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """(our JAX variables or None, {side name: torch module}), every side starting from the same weights."""
    if args.skip_torch:
        return None, {}
    import torch

    torch.manual_seed(0)
    if model == "direct":
        from torch_direct_reference import TorchDirectModel

        return None, {"our PyTorch twin": TorchDirectModel()}
    import torch_reference as tr

    from emgjax.convert.emg2pose_map import convert_state_dict

    reference = tr.build_torch_model(EXPERIMENT, **size_overrides(args.size))
    state_dict = copy.deepcopy(reference.state_dict())
    variables = convert_state_dict({"model." + k: v.numpy() for k, v in state_dict.items()}, emg2pose_config(args.size))
    nets = {"our PyTorch reference": reference}
    if args.emg2pose_src:
        nets["Meta's emg2pose code"] = meta.build_meta_model(
            args.emg2pose_src, EXPERIMENT, state_dict, **size_overrides(args.size)
        )
    return variables, nets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="vemg2pose,direct", help="comma-separated: vemg2pose, direct")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: 32 vemg2pose, 64 direct)")
    parser.add_argument("--window", type=int, default=None, help="window samples (default: 11790 vemg2pose, 50 direct)")
    parser.add_argument("--size", type=int, default=0, help="vemg2pose widths divided by this (0: published size)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before timing (default 2, at least 1)")
    parser.add_argument("--skip-torch", action="store_true", help="time ours (JAX) only")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    parser.add_argument(
        "--compute-dtype",
        choices=["float32", "bfloat16"],
        default="float32",
        help="our models' precision option (bfloat16 operands, float32 accumulation); the PyTorch sides stay float32",
    )
    meta.add_argument(parser)
    machine_mod.add_arguments(parser)
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(models) - set(DEFAULTS))
    if unknown or not models:
        parser.error(f"--models: expected some of {sorted(DEFAULTS)}, found {models}")
    if args.steps < 1 or args.warmup < 1 or args.size < 0:
        parser.error(
            f"expected --steps >= 1, --warmup >= 1, --size >= 0; found {args.steps}, {args.warmup}, {args.size}"
        )
    if args.emg2pose_src and args.skip_torch:
        parser.error("--emg2pose-src runs Meta's PyTorch code: drop --skip-torch")
    if args.threads and not args.skip_torch:
        import torch

        torch.set_num_threads(args.threads)
    machine = machine_mod.start_from_args(args)
    results = []
    for model in models:
        batch_size = args.batch or DEFAULTS[model]["batch"]
        window = args.window or DEFAULTS[model]["window"]
        if model == "vemg2pose" and window < 1_790 + 41:
            parser.error(
                f"--window: tracking_vemg2pose needs at least 1831 samples (1790 context + one step), found {window}"
            )
        batch = make_data(model, batch_size, window)
        variables, nets = sides(model, args)
        flops = model_flops(model, window, batch_size, args.size if model == "vemg2pose" else 0)
        row: dict[str, Any] = {"model": model, "batch": batch_size, "window": window, "steps": args.steps}
        row["flops_per_step"] = flops
        row["compute_dtype"] = args.compute_dtype
        row["ours"] = bench_jax(
            model, batch, args.steps, args.warmup, variables=variables, size=args.size, compute_dtype=args.compute_dtype
        )
        for name, net in nets.items():
            row[name] = bench_torch(model, net, batch, args.steps, args.warmup)
        results.append(row)
        size = f", widths / {args.size}" if args.size and model == "vemg2pose" else ""
        size += f", ours with {args.compute_dtype} operands" if args.compute_dtype != "float32" else ""
        print(
            f"\n{model} batch {batch_size} window {window}{size}: {flops / 1e9:.2f} GFLOP per step (analytic, "
            f"3 forwards; XLA's cost analysis of our step: {row['ours']['xla_flops'] / 1e9:.2f}); "
            f"ours compiled in {row['ours']['compile_s']:.1f} s",
            flush=True,
        )
        ours = row["ours"]
        for name in ["ours", *nets]:
            side = row[name]
            print(
                f"  {name:22s} {side['windows_per_s']:9.2f} windows/s  {side['step_s'] * 1e3:9.1f} ms/step  "
                f"{machine.rate(flops, side['step_s'])}  (first-step loss {side['first_loss']:.6f})",
                flush=True,
            )
        for name in nets:
            ratio = ours["windows_per_s"] / row[name]["windows_per_s"]
            row[f"ours_over_{name}"] = ratio
            parity = (
                f"; |first-step loss difference| {abs(ours['first_loss'] - row[name]['first_loss']):.2e} "
                "(same weights, same batch)"
                if model == "vemg2pose"
                else " (different initial weights)"
            )
            print(f"  ours / {name}: {ratio:.2f}x{parity}", flush=True)
    status = machine.finish()
    meta_info = {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version()}
    if args.json:
        Path(args.json).write_text(
            json.dumps({"meta": meta_info, "machine": machine.as_dict(), "results": results}, indent=2) + "\n"
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
