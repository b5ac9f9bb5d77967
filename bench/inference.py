"""Inference speed: ours (jitted JAX), our PyTorch reference and Meta's own code; and the direct model.

tracking_vemg2pose at its published size (``--size K`` divides the TDS channels and LSTM width by
K, for quick checks), 10 s windows beyond the left context (1790 + 20,000 samples), batch 1 and
32, provide_initial_pos=True, eval mode, float32, in one process on the same machine:

    python bench/inference.py                                # both batch sizes, and the direct model
    python bench/inference.py --emg2pose-src ~/emg2pose      # + Meta's own modules (a checkout you supply)
    python bench/inference.py --batches 1 --repeats 20 --models vemg2pose

Sides: ours (``pose_modules.pose_forward`` under ``jax.jit``), our PyTorch reference
(``tests/torch_reference.py``, ``torch.no_grad``, ``torch.set_num_threads(--threads)``) and, with
``--emg2pose-src DIR``, Meta's ``emg2pose.pose_modules`` built from the experiment's hydra config
(`bench/meta.py`); all three hold the same weights (our reference's, randomised; ours through
``emgjax.convert``'s state_dict mapping). Prints, per batch size: JAX compile time (separately),
median and best time per call, windows/s, the FLOPs per call (analytic, and XLA's cost analysis)
and the achieved rate as a share of the matmul peak measured in the same run (`bench/machine.py`),
the ratios ours / theirs and the max |difference| of the outputs (parity).

The direct model (``--models direct``): ``DirectModel(DirectConfig())`` batch-1 (and
``--batches``) inference on a 100 ms window (50 samples at 500 Hz), ours jitted against its PyTorch
twin (``bench/torch_direct_reference.py``, different random weights: speed only).
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
from flops import direct_flops, emg2pose_flops  # noqa: E402

from emgjax.convert import emg2pose_map  # noqa: E402
from emgjax.models import pose_modules  # noqa: E402
from emgjax.models.configs import EXPERIMENTS  # noqa: E402

EXPERIMENT = "tracking_vemg2pose"
TORCH_DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


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
    parser.add_argument("--models", nargs="+", choices=["vemg2pose", "direct"], default=["vemg2pose", "direct"])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--direct-window", type=int, default=50, help="direct model window samples (100 ms at 500 Hz)")
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
    machine = machine_mod.start_from_args(args)
    print(
        f"jax {jax.__version__}, torch {torch.__version__} on {TORCH_DEVICE} ({args.threads} threads), "
        f"matmul precision {args.precision}",
        flush=True,
    )
    if "vemg2pose" in args.models:
        bench_vemg2pose(args, machine)
    if "direct" in args.models:
        bench_direct(args, machine)
    return machine.finish()


def bench_vemg2pose(args: argparse.Namespace, machine: machine_mod.Machine) -> None:
    """tracking_vemg2pose: ours, our PyTorch reference and (--emg2pose-src) Meta's code, same weights."""
    overrides = {"tds_channels": 16 // args.size, "hidden_size": 512 // args.size} if args.size else {}
    model = tr.build_torch_model(EXPERIMENT, **overrides)
    tr.randomize_(model, 0)
    model.eval()
    torch_device = TORCH_DEVICE
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

    print(
        f"\n{EXPERIMENT}, {'full size' if not args.size else f'size / {args.size}'}, window {num_samples} samples "
        f"({args.seconds:g} s + left context {config.left_context}); "
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


def bench_direct(args: argparse.Namespace, machine: machine_mod.Machine) -> None:
    """Batch inference of the direct model, ours (jitted) against its PyTorch twin, in eval mode."""
    from torch_direct_reference import TorchDirectModel

    from emgjax.models.direct import DirectConfig, DirectModel

    config, window = DirectConfig(), args.direct_window
    model = DirectModel(config)
    variables = model.init_variables(jax.random.key(0), window)
    forward = jax.jit(lambda v, x: model.apply(v, x, train=False))
    torch.manual_seed(0)
    twin = TorchDirectModel().eval().to(TORCH_DEVICE)
    print(f"\ndirect model (DirectConfig defaults), window {window} samples, eval mode")
    for batch in args.batches:
        emg = np.random.default_rng(batch).standard_normal((batch, config.in_channels, window)).astype(np.float32)
        emg_j, emg_t = jax.device_put(emg), torch.from_numpy(emg).to(TORCH_DEVICE)
        compiled = forward.lower(variables, emg_j).compile()
        flops = direct_flops(config, window, batch)
        repeats = args.repeats or 200

        def run_jax(compiled=compiled, emg_j=emg_j):
            return jax.block_until_ready(compiled(variables, emg_j))

        def run_torch(emg_t=emg_t):
            with torch.no_grad():
                out = twin(emg_t)
            if TORCH_DEVICE.type == "cuda":
                torch.cuda.synchronize()
            return out

        rows = {}
        for name, run in (("ours (jax)", run_jax), ("our PyTorch twin", run_torch)):
            run()
            rows[name] = timings(run, repeats)
        print(
            f"batch {batch}: {flops / 1e6:.2f} MFLOP per call "
            f"(analytic; XLA: {machine_mod.xla_flops(compiled) / 1e6:.2f})"
        )
        for name, (median, best) in rows.items():
            print(
                f"  {name:22s} median {median * 1e3:8.3f} ms/call  {batch / median:9.1f} windows/s  "
                f"{machine.rate(flops, median)}   (best {best * 1e3:8.3f} ms)"
            )
        (ours_median, ours_best), (twin_median, twin_best) = rows["ours (jax)"], rows["our PyTorch twin"]
        print(
            f"  ours / our PyTorch twin: median {twin_median / ours_median:.2f}x, "
            f"best {twin_best / ours_best:.2f}x faster"
        )


if __name__ == "__main__":
    sys.exit(main())
