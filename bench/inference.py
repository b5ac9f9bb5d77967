"""Inference speed: emgjax (jitted) vs the PyTorch reference of Meta's tracking_vemg2pose.

Full published size, 10 s windows beyond the left context (1790 + 20,000
samples), batch 1 and 32, provide_initial_pos=True, eval mode, float32, in one
process on the same CPU:

    python bench/inference.py                 # both batch sizes
    python bench/inference.py --batches 1 --repeats 20

Prints, per batch size: JAX compile time (separately), median seconds per
call, windows/s for JAX and torch (torch.no_grad, torch.set_num_threads = CPU
count), the speed-up, the FLOPs per call (XLA's cost analysis and an analytic
count) and the achieved GFLOP/s, and the max |difference| of the two outputs.
Needs the `torch` extra and tests/torch_reference.py (run from the repo root).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))

import jax  # noqa: E402
import torch  # noqa: E402
import torch_reference as tr  # noqa: E402

from emgjax.convert import emg2pose_map  # noqa: E402
from emgjax.models import pose_modules  # noqa: E402
from emgjax.models.configs import EXPERIMENTS, PoseModelConfig, TdsNetworkConfig  # noqa: E402

EXPERIMENT = "tracking_vemg2pose"


def analytic_flops(config: PoseModelConfig, num_samples: int, batch: int) -> float:
    """Multiply-adds × 2 of convolutions, linears and the LSTM rollout (norms/activations left out)."""
    net: TdsNetworkConfig = config.network
    flops, length = 0.0, num_samples
    for block in net.conv_blocks:
        length = (length - block.kernel_size) // block.stride + 1
        flops += 2 * length * block.kernel_size * block.in_channels * block.out_channels
    for stage in net.tds_stages:
        c = stage.num_features
        length = (length - stage.in_conv_kernel_width) // stage.in_conv_stride + 1
        flops += 2 * length * stage.in_conv_kernel_width * stage.in_channels * c
        for _ in range(stage.num_blocks):
            length = length - stage.kernel_width + 1
            flops += 2 * length * stage.kernel_width * stage.channels * c  # conv2d: width columns × ch × ch × k
            flops += 2 * 2 * length * c * c  # two Linear C→C
        if stage.out_channels is not None:
            flops += 2 * length * c * stage.out_channels
    dec = config.decoder
    steps = config.rollout_steps(num_samples)
    h = dec.hidden_size
    per_step = 2 * 4 * h * (dec.in_channels + h) + 2 * 4 * h * 2 * h * (dec.num_layers - 1) + 2 * h * dec.out_channels
    flops += steps * per_step
    return batch * flops


def timings(fn, repeats: int) -> tuple[float, float]:
    """(median, best) seconds per call; on a shared CPU the best shows the uncontended speed."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--seconds", type=float, default=10.0, help="window length beyond the left context")
    parser.add_argument(
        "--repeats", type=int, default=0, help="timed calls per batch size (0: 20 at batch 1, 5 otherwise)"
    )
    parser.add_argument(
        "--precision",
        default="default",
        choices=["default", "high", "highest"],
        help="jax_default_matmul_precision (CPU float32 matmuls are float32 either way)",
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    args = parser.parse_args(argv)

    jax.config.update("jax_default_matmul_precision", args.precision)
    torch.set_num_threads(args.threads)
    config = EXPERIMENTS[EXPERIMENT].model
    model = tr.build_torch_model(EXPERIMENT)
    tr.randomize_(model, 0)
    model.eval()
    state_dict = {"model." + k: v.numpy() for k, v in model.state_dict().items()}
    variables = jax.device_put(emg2pose_map.convert_state_dict(state_dict, config))
    num_samples = config.left_context + round(args.seconds * config.sample_rate)
    forward = jax.jit(pose_modules.pose_forward, static_argnums=(0, 5))

    print(
        f"{EXPERIMENT}, full size, window {num_samples} samples ({args.seconds:g} s + left context "
        f"{config.left_context}); CPU count {os.cpu_count()}, torch threads {args.threads}, "
        f"jax {jax.__version__} ({jax.devices()[0].platform}), torch {torch.__version__}, "
        f"matmul precision {args.precision}"
    )
    for batch in args.batches:
        repeats = args.repeats or (20 if batch == 1 else 5)
        rng = np.random.default_rng(batch)
        emg = rng.standard_normal((batch, 16, num_samples)).astype(np.float32)
        angles = (0.5 * rng.standard_normal((batch, 20, num_samples))).astype(np.float32)
        mask = np.ones((batch, num_samples), bool)
        emg_j, angles_j, mask_j = (jax.device_put(a) for a in (emg, angles, mask))

        start = time.perf_counter()
        lowered = forward.lower(config, variables, emg_j, angles_j, mask_j, True)
        compiled = lowered.compile()
        compile_s = time.perf_counter() - start
        cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        xla_flops = float(cost.get("flops", float("nan"))) if cost else float("nan")

        def run_jax(compiled=compiled, emg_j=emg_j, angles_j=angles_j, mask_j=mask_j):
            jax.block_until_ready(compiled(variables, emg_j, angles_j, mask_j))

        run_jax()  # warm-up
        jax_s, jax_best = timings(run_jax, repeats)

        torch_batch = {
            "emg": torch.from_numpy(emg),
            "joint_angles": torch.from_numpy(angles),
            "no_ik_failure": torch.from_numpy(mask),
        }

        def run_torch(torch_batch=torch_batch):
            with torch.no_grad():
                return model(torch_batch, True)

        run_torch()  # warm-up
        torch_s, torch_best = timings(run_torch, max(3, repeats // 4))

        j_pred = np.asarray(compiled(variables, emg_j, angles_j, mask_j)[0])
        t_pred = run_torch()[0].numpy()
        flops = analytic_flops(config, num_samples, batch)
        print(
            f"\nbatch {batch}: jax compile {compile_s:.2f} s; {flops / 1e9:.2f} GFLOP per call (analytic; XLA's cost "
            f"analysis says {xla_flops / 1e9:.2f}, counting the rollout loop body once)"
        )
        for name, median, best in (("jax", jax_s, jax_best), ("torch", torch_s, torch_best)):
            print(
                f"  {name:5s} median {median * 1e3:9.1f} ms/call  {batch / median:7.2f} windows/s  "
                f"{flops / median / 1e9:6.1f} GFLOP/s   "
                f"(best {batch / best:7.2f} windows/s, {flops / best / 1e9:6.1f} GFLOP/s)"
            )
        print(
            f"  speed-up jax/torch: median {torch_s / jax_s:.2f}x, best {torch_best / jax_best:.2f}x   "
            f"max |pred difference| {np.max(np.abs(j_pred - t_pred)):.2e} rad"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
