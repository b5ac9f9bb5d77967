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

sys.path.insert(0, os.path.join(REPO, "bench"))
import machine as machine_mod  # noqa: E402
import meta  # noqa: E402
from flops import emg2pose_flops  # noqa: E402

from emgjax.convert import emg2pose_map  # noqa: E402
from emgjax.models import pose_modules  # noqa: E402
from emgjax.models.configs import EXPERIMENTS  # noqa: E402

EXPERIMENT = "tracking_vemg2pose"


def timings(fn, repeats: int) -> tuple[float, float]:
    """(median, best) seconds per call; on a shared CPU the best shows the uncontended speed."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
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
    parser.add_argument(
        "--size",
        type=int,
        default=0,
        help="TDS channels and LSTM hidden size scaled down by this factor (0: the published size; for quick checks)",
    )
    meta.add_argument(parser)
    machine_mod.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.size < 0 or min(args.batches) < 1 or args.seconds <= 0:
        parser.error(
            f"expected --size >= 0, batches >= 1, --seconds > 0; found {args.size}, {args.batches}, {args.seconds}"
        )

    jax.config.update("jax_default_matmul_precision", args.precision)
    torch.set_num_threads(args.threads)
    overrides = {"tds_channels": 16 // args.size, "hidden_size": 512 // args.size} if args.size else {}
    model = tr.build_torch_model(EXPERIMENT, **overrides)
    tr.randomize_(model, 0)
    model.eval()
    torch_device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(torch_device)
    meta_model = None
    if args.emg2pose_src:
        meta_model = meta.build_meta_model(args.emg2pose_src, EXPERIMENT, model.state_dict(), **overrides)
        meta_model.eval()
        meta_model.to(torch_device)
    state_dict = {"model." + k: v.cpu().numpy() for k, v in model.state_dict().items()}
    config = (
        emg2pose_map.model_config_from_hyper_parameters(tr.hyper_parameters_for(EXPERIMENT, **overrides))
        if args.size
        else EXPERIMENTS[EXPERIMENT].model
    )
    variables = jax.device_put(emg2pose_map.convert_state_dict(state_dict, config))
    num_samples = config.left_context + round(args.seconds * config.sample_rate)
    forward = jax.jit(pose_modules.pose_forward, static_argnums=(0, 5))

    machine = machine_mod.start_from_args(args)
    print(
        f"{EXPERIMENT}, {'full size' if not args.size else f'size / {args.size}'}, window {num_samples} samples "
        f"({args.seconds:g} s + left context {config.left_context}); torch threads {args.threads}, "
        f"jax {jax.__version__}, torch {torch.__version__} on {torch_device}, matmul precision {args.precision}; "
        f"Meta's code: {args.emg2pose_src or 'not given (--emg2pose-src DIR)'}",
        flush=True,
    )
    for batch in args.batches:
        repeats = args.repeats or (20 if batch == 1 else 5)
        rng = np.random.default_rng(batch)
        emg = rng.standard_normal((batch, 16, num_samples)).astype(np.float32)
        angles = (0.5 * rng.standard_normal((batch, 20, num_samples))).astype(np.float32)
        mask = np.ones((batch, num_samples), bool)
        emg_j, angles_j, mask_j = (jax.device_put(a) for a in (emg, angles, mask))

        start = time.perf_counter()
        compiled = forward.lower(config, variables, emg_j, angles_j, mask_j, True).compile()
        compile_s = time.perf_counter() - start
        xla = machine_mod.xla_flops(compiled)

        def run_jax(compiled=compiled, emg_j=emg_j, angles_j=angles_j, mask_j=mask_j):
            return jax.block_until_ready(compiled(variables, emg_j, angles_j, mask_j))

        torch_batch = {
            "emg": torch.from_numpy(emg).to(torch_device),
            "joint_angles": torch.from_numpy(angles).to(torch_device),
            "no_ik_failure": torch.from_numpy(mask).to(torch_device),
        }

        def torch_runner(net, torch_batch=torch_batch):
            def forward():
                with torch.no_grad():
                    out = net(torch_batch, True)
                if torch_device.type == "cuda":
                    torch.cuda.synchronize()  # the call's time includes its kernels
                return tuple(t.cpu() for t in out)

            return forward

        runners = [
            ("ours (jax)", run_jax, repeats),
            ("our PyTorch reference", torch_runner(model), max(3, repeats // 4)),
        ]
        if meta_model is not None:
            runners.append(("Meta's emg2pose code", torch_runner(meta_model), max(3, repeats // 4)))
        results = {}
        for name, run, count in runners:
            pred = np.asarray(run()[0])  # warm-up (jax: first call after compilation), and the output for parity
            results[name] = (pred, *timings(run, count))
        flops = emg2pose_flops(config, num_samples, batch)
        print(
            f"\nbatch {batch}: jax compile {compile_s:.2f} s; {flops / 1e9:.2f} GFLOP per call (analytic; XLA's cost "
            f"analysis says {xla / 1e9:.2f}, counting the rollout loop body once)"
        )
        for name, (_, median, best) in results.items():
            print(
                f"  {name:22s} median {median * 1e3:9.1f} ms/call  {batch / median:8.2f} windows/s  "
                f"{machine.rate(flops, median)}   (best {best * 1e3:9.1f} ms, {machine.rate(flops, best)})"
            )
        ours = results["ours (jax)"]
        for name, (pred, median, best) in results.items():
            if name != "ours (jax)":
                print(
                    f"  ours / {name}: median {median / ours[1]:.2f}x, best {best / ours[2]:.2f}x faster; "
                    f"max |pred difference| {np.max(np.abs(ours[0] - pred)):.2e} rad"
                )
        if meta_model is not None:
            ref, met = results["our PyTorch reference"][0], results["Meta's emg2pose code"][0]
            print(f"  our reference vs Meta's code: max |pred difference| {np.max(np.abs(ref - met)):.2e} rad")
    return machine.finish()


if __name__ == "__main__":
    sys.exit(main())
