"""Streaming: per-chunk latency through the bundle API, emg2pose's windowed cost, a simulated hour, the pose gap.

    python bench/streaming.py                                   # every part, defaults below
    python bench/streaming.py --parts latency --chunks 10000 --chunk-ms 40
    python bench/streaming.py --parts hour --hour-chunks 9000   # a tenth of the hour
    python bench/streaming.py --parts gap --windows 4

Models (random weights: speed does not depend on the values), written as bundles in a temporary
directory and opened with `emgjax.load_model`, so that what is timed is what a live loop calls,
``state, poses, valid = model.stream_step(state, chunk)`` at batch 1, each call timed to
`block_until_ready` after 50 warm-up chunks:

- emg2pose: the full-size tracking_vemg2pose (`emgjax.recipes.adapter.frozen.save_pretrained`,
  with an input z-score), 16 channels at 2 kHz;
- direct: `DirectConfig` defaults in mode "sequence" (joints), 8 channels at 500 Hz, with the
  notch (60 Hz) and band-pass (20–200 Hz) filter and the z-score, so the causal filter is timed too;
- adapter: linear+sinc in front of the full-size tracking_vemg2pose, 8 channels at 500 Hz.

Part "latency": p50, p99 and max per chunk over ``--chunks`` chunks of ``--chunk-ms``, the
real-time factor (chunk duration / mean step time), and a floor estimate: the weights the step must
read per chunk (batch 1 reads each weight once per use: the network's once, the recurrent step's
once per pose) over the measured memory bandwidth, and the FLOPs (XLA's cost analysis, whose loops
are counted once, plus the remaining recurrent steps) over the measured matmul peak.

Part "windowed": emg2pose's own way, recomputing a window with the full 1,790-sample left context
for every output pose: the jitted windowed forward (`pose_modules.predict_pose`) of the minimal
window that yields one new rollout step (`min_window_length`), from a fresh LSTM state, and its
cost per chunk (one call per pose: chunk duration x rollout rate calls).

Part "hour": one simulated hour of chunks (``--hour-chunks``, default 3600 s / chunk) through the
emg2pose model: latency p50/p99 and the process's resident memory (VmRSS) over the first and the
last 1,000 chunks — a stream must not grow in memory or latency.

Part "gap": for each published emg2pose experiment with a rollout, randomly initialised variables
(there are no real weights here: the gap of trained models will differ), synthetic EMG
(`emgjax.data.synthetic`) cut into 11,790-sample windows (Meta's evaluation length): Meta's
windowed rollout (align_corners over the window, 250 steps) against the streaming rollout of the
same window from the same initial pose (regular grid, 249 steps), step by step over their common
249 steps, in degrees: mean and max |difference|, and the mean |pose| for scale.
regression_neuropose has no rollout (and no streaming form): reported as not applicable.

Every part prints the load average beside its figures, and the header the machine's measured
matmul peak and memory bandwidth: this machine is shared, and the numbers move with it. As in every
bench script, `bench/machine.py` measures the float32 matmul peak before and after the run and says
whether the run was quiet enough for a headline (``--strict``: exit status 3 when it was not); the
latency part prints the FLOP rate each chunk achieved as a share of that peak.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "bench"))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import machine as machine_mod  # noqa: E402

from emgjax.bundle import Model, direct_specs, load_model, save_adapter_pipeline, save_model  # noqa: E402
from emgjax.data.synthetic import SyntheticConfig, generate_session  # noqa: E402
from emgjax.models import pose_modules, streaming  # noqa: E402
from emgjax.models.adapter import AdapterPipeline, variant_config  # noqa: E402
from emgjax.models.configs import EXPERIMENTS  # noqa: E402
from emgjax.models.direct import DirectConfig, DirectModel  # noqa: E402
from emgjax.models.streaming import emg2pose as emg2pose_stream  # noqa: E402
from emgjax.recipes.adapter.frozen import save_pretrained  # noqa: E402

WINDOW = 11_790
WARMUP = 50
TRACKING = "tracking_vemg2pose"


# ----------------------------------------------------------------------------- the machine


def load_note() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "load average unavailable"
    return f"load average {one:.2f} (1 min) {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def best_seconds(fn: Callable[[], Any], repeats: int) -> float:
    """Fastest of ``repeats`` timed calls of ``fn`` (after one warm-up call), to block_until_ready."""
    jax.block_until_ready(fn())
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - start)
    return best


def machine_peak() -> tuple[float, float, float]:
    """(matmul peak FLOP/s: a jitted 1024^3 float32 matmul; bandwidth B/s of a float32 matrix-vector
    product, the batch-1 streaming pattern, over 64 MiB (memory / last-level cache) and over 2 MiB
    (a per-core cache)), each the best of 20 calls."""
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.standard_normal((1024, 1024), np.float32))
    matmul = jax.jit(jnp.dot)
    flops = 2 * 1024**3 / best_seconds(lambda: matmul(a, a), 20)
    w = jnp.asarray(rng.standard_normal((4096, 4096), np.float32))
    v = jnp.asarray(rng.standard_normal((1, 4096), np.float32))
    bandwidth = w.size * 4 / best_seconds(lambda: matmul(v, w), 20)
    # 2 MiB: 64 dependent products in one call, so that the call's own overhead does not count.
    small, repeats = w[:512, :1024], 64

    @jax.jit
    def chained(x: jax.Array, m: jax.Array) -> jax.Array:
        return jax.lax.fori_loop(0, repeats, lambda _, y: jnp.tanh(jnp.dot(y, m))[:, :512], x)

    cached = repeats * small.size * 4 / best_seconds(lambda: chained(v[:, :512], small), 20)
    return flops, bandwidth, cached


def rss_mib() -> float:
    """The process's resident memory now (VmRSS), MiB; the peak (ru_maxrss) where /proc is absent."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----------------------------------------------------------------------------- the models


def build_bundles(root: str) -> dict[str, str]:
    """The three timed models as bundles under ``root`` (random weights): {name: directory}."""
    rng = np.random.default_rng(0)
    experiment = EXPERIMENTS[TRACKING]
    config = experiment.model
    frozen = jax.jit(pose_modules.init_variables, static_argnums=0)(config, jax.random.PRNGKey(0))
    norm16 = {"mean": rng.normal(0, 5, 16).tolist(), "std": rng.uniform(20, 40, 16).tolist()}
    norm8 = {"mean": rng.normal(0, 5, 8).tolist(), "std": rng.uniform(20, 40, 8).tolist()}
    out = {}
    out["emg2pose"] = str(
        save_pretrained(
            os.path.join(root, "emg2pose"),
            config,
            frozen,
            provide_initial_pos=experiment.provide_initial_pos,
            experiment=TRACKING,
            extra={"emg_norm": norm16},
        )
    )
    direct = DirectConfig(mode="sequence")
    direct_vars = DirectModel(direct).init_variables(jax.random.PRNGKey(1))
    target = {
        "kind": "landmarks",
        "centre_on_wrist": True,
        "mean": rng.normal(0, 1, direct.output_shape).tolist(),
        "scale": 0.05,
    }
    specs = direct_specs(direct, 500.0, notch_hz=60.0, band_hz=(20.0, 200.0), normalisation=norm8, target=target)
    out["direct"] = str(
        save_model(
            os.path.join(root, "direct"), "direct", direct, direct_vars, input_spec=specs[0], output_spec=specs[1]
        )
    )
    pipeline = AdapterPipeline(variant_config("linear+sinc"), config)
    adapter_vars = pipeline.init(jax.random.PRNGKey(3), frozen, num_samples=64)
    out["adapter"] = str(
        save_adapter_pipeline(os.path.join(root, "adapter"), pipeline.config, config, adapter_vars, normalisation=norm8)
    )
    return out


def chunk_samples(model: Model, chunk_ms: float) -> int:
    return max(1, round(chunk_ms / 1000.0 * model.input_spec.sample_rate))


def chunk_pool(model: Model, samples: int, count: int = 64) -> list[np.ndarray]:
    """``count`` chunks of EMG-like noise in the model's input units (microvolts), cycled by the timers."""
    rng = np.random.default_rng(0)
    shape = (1, model.input_spec.channels, samples)
    return [(rng.standard_normal(shape) * 30.0).astype(np.float32) for _ in range(count)]


def time_stream(model: Model, samples: int, chunks: int, on_chunk: Callable[[int], None] | None = None) -> np.ndarray:
    """Seconds per `Model.stream_step` at batch 1 over ``chunks`` chunks, after ``WARMUP`` chunks."""
    data = chunk_pool(model, samples)
    state = model.init_stream(1, samples)
    for i in range(WARMUP):  # compile, then fill the buffers past the left context
        state, poses, valid = model.stream_step(state, data[i % len(data)])
    jax.block_until_ready((state, poses, valid))
    times = np.empty(chunks)
    for i in range(chunks):
        start = time.perf_counter()
        state, poses, valid = model.stream_step(state, data[i % len(data)])
        jax.block_until_ready((state, poses, valid))
        times[i] = time.perf_counter() - start
        if on_chunk is not None:
            on_chunk(i)
    return times


def _nbytes(tree: Any) -> int:
    return int(sum(np.asarray(x).nbytes for x in jax.tree_util.tree_leaves(tree)))


def _emg2pose_reads(variables: emg2pose_stream.Emg2PoseStreamVariables) -> tuple[int, int]:
    """(bytes read once per chunk, bytes read per rollout step) of prepared emg2pose variables."""
    weights = variables.decoder
    step = _nbytes(weights) - _nbytes(weights.lstm[0].kernel_ih)  # layer 0's input rows are applied before
    return _nbytes((variables.network, variables.feature_kernel, variables.feature_bias)), step


def weight_reads(model: Model) -> tuple[int, int]:
    """(bytes of weights read once per chunk, bytes read again for every pose) by the model's stream step."""
    variables = streaming.prepare_variables(model.config, model.params)
    if model.kind == "emg2pose":
        return _emg2pose_reads(variables)
    if model.kind == "adapter_pipeline":
        once, step = _emg2pose_reads(variables.emg2pose)
        return once + _nbytes(variables.adapter), step
    recurrent = sum(
        _nbytes(layer["kernel_hh"]) for layer in variables["params"]["lstm"].values()
    )  # direct: layer by layer, each step reads kernel_hh only
    return _nbytes(variables) - recurrent, recurrent


def floor_note(
    model: Model, samples: int, peak: tuple[float, float, float], machine: machine_mod.Machine, seconds: float
) -> str:
    """Bytes and FLOPs one chunk needs at least, the time they take at the measured peaks, and the FLOP rate
    achieved in ``seconds`` (the mean step time)."""
    step, variables = model._stream_program(samples)
    state = model.init_stream(1, samples)
    chunk = chunk_pool(model, samples, 1)[0]
    cost = step.lower(variables, state.filter, state.model, chunk).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    poses = model.stream_rate * samples / model.input_spec.sample_rate
    once, per_pose = weight_reads(model)
    reads = once + poses * per_pose
    # XLA counts a loop body once: add the recurrent steps it left out (2 FLOPs per weight per step).
    flops = float(cost.get("flops", 0.0)) + max(0.0, poses - 1) * 2 * per_pose / 4
    return (
        f"   floor: {reads / 2**20:.1f} MiB of weights per chunk ({once / 2**20:.1f} once + {poses:g} poses x "
        f"{per_pose / 2**20:.1f}) / {peak[1] / 1e9:.1f} GB/s = {reads / peak[1] * 1e3:.3f} ms (in cache at "
        f"{peak[2] / 1e9:.1f} GB/s: {reads / peak[2] * 1e3:.3f} ms); "
        f"{flops / 1e6:.1f} MFLOP / {peak[0] / 1e9:.1f} GFLOP/s = {flops / peak[0] * 1e3:.3f} ms; "
        f"achieved {machine.rate(flops, seconds)}"
    )


def report_latency(name: str, times: np.ndarray, chunk_seconds: float) -> None:
    p50, p99, worst = np.percentile(times, 50) * 1e3, np.percentile(times, 99) * 1e3, times.max() * 1e3
    rtf = chunk_seconds / times.mean()
    print(
        f"{name:<40} chunks {len(times):>6}  p50 {p50:7.3f} ms  p99 {p99:7.3f} ms  max {worst:7.3f} ms  "
        f"real-time factor {rtf:7.1f}x",
        flush=True,
    )


# ----------------------------------------------------------------------------- the parts


def part_latency(
    args: argparse.Namespace, bundles: dict[str, str], peak: tuple[float, float, float], machine: machine_mod.Machine
) -> None:
    print(f"== per-chunk latency through Model.stream_step, batch 1, {args.chunk_ms:g} ms chunks ({load_note()})")
    for name in args.models:
        model = load_model(bundles[name])
        samples = chunk_samples(model, args.chunk_ms)
        times = time_stream(model, samples, args.chunks)
        rate = model.input_spec.sample_rate
        report_latency(f"{name}, {samples} samples @{rate:g} Hz", times, samples / rate)
        print(floor_note(model, samples, peak, machine, float(times.mean())), flush=True)
    print(f"   after: {load_note()}")


def part_windowed(args: argparse.Namespace, bundles: dict[str, str]) -> None:
    model = load_model(bundles["emg2pose"])
    config = model.config
    length = config.min_window_length()
    print(
        f"== emg2pose's way: the windowed forward of a {length}-sample window ({config.left_context}-sample left "
        f"context) per output pose, batch 1 ({load_note()})"
    )
    forward = jax.jit(pose_modules.predict_pose, static_argnums=0)
    rng = np.random.default_rng(0)
    emg = jnp.asarray(rng.standard_normal((1, config.in_channels, length), np.float32))
    start = jnp.zeros((1, config.num_joints), jnp.float32)
    jax.block_until_ready(forward(config, model.params, emg, start))
    times = np.empty(args.windowed_calls)
    for i in range(len(times)):
        begin = time.perf_counter()
        jax.block_until_ready(forward(config, model.params, emg, start))
        times[i] = time.perf_counter() - begin
    per_chunk = model.stream_rate * args.chunk_ms / 1000.0
    p50, p99 = np.percentile(times, 50) * 1e3, np.percentile(times, 99) * 1e3
    print(
        f"{TRACKING + ', one window':<40} calls  {len(times):>6}  p50 {p50:7.3f} ms  p99 {p99:7.3f} ms  "
        f"-> {per_chunk:g} windows per {args.chunk_ms:g} ms chunk: p50 {per_chunk * p50:7.3f} ms, "
        f"real-time factor {args.chunk_ms / 1000.0 / (per_chunk * times.mean()):5.1f}x",
        flush=True,
    )


def part_hour(args: argparse.Namespace, bundles: dict[str, str]) -> None:
    model = load_model(bundles["emg2pose"])
    samples = chunk_samples(model, args.chunk_ms)
    chunks = args.hour_chunks or round(3600.0 * 1000.0 / args.chunk_ms)
    edge = min(1000, chunks // 2)
    print(
        f"== a simulated hour: {chunks} chunks of {args.chunk_ms:g} ms ({chunks * args.chunk_ms / 1000:.0f} s of "
        f"input) through {TRACKING} ({load_note()})",
        flush=True,
    )
    rss = np.empty(chunks)

    def sample_rss(i: int) -> None:
        if i < edge or i >= chunks - edge:
            rss[i] = rss_mib()

    begin = time.perf_counter()
    times = time_stream(model, samples, chunks, sample_rss)
    wall = time.perf_counter() - begin
    for label, part in (("first", slice(0, edge)), ("last", slice(chunks - edge, chunks))):
        t = times[part] * 1e3
        print(
            f"{label + f' {edge} chunks':<40} p50 {np.percentile(t, 50):7.3f} ms  p99 {np.percentile(t, 99):7.3f} ms"
            f"  VmRSS {rss[part].min():8.1f} .. {rss[part].max():8.1f} MiB"
        )
    print(
        f"   all {chunks} chunks: {wall:.0f} s of wall time, "
        f"real-time factor {chunks * args.chunk_ms / 1000 / wall:.1f}x"
    )
    print(f"   after: {load_note()}")


def part_gap(args: argparse.Namespace) -> None:
    print("== streaming (regular grid) vs windowed (align_corners) rollout, random weights, synthetic EMG")
    session = generate_session(SyntheticConfig(duration_s=WINDOW * args.windows / 2000.0 + 1.0), seed=0)
    emg = np.stack([session.emg_2k[i * WINDOW : (i + 1) * WINDOW].T for i in range(args.windows)])  # (B, 16, T)
    angles = np.stack([session.angles_2k[i * WINDOW : (i + 1) * WINDOW].T for i in range(args.windows)])
    emg_j = jnp.asarray(emg)
    for name, experiment in EXPERIMENTS.items():
        config = experiment.model
        if config.kind == "pose":
            print(f"{name:<22} not applicable: no rollout resampling (and NeuroPose has no streaming form)")
            continue
        variables = jax.jit(pose_modules.init_variables, static_argnums=0)(config, jax.random.PRNGKey(2))
        initial = pose_modules.initial_pose(config, jnp.asarray(angles), experiment.provide_initial_pos)
        windowed_fn: Callable[..., jax.Array] = jax.jit(pose_modules.predict_pose, static_argnums=0)
        streamed_fn: Callable[..., jax.Array] = jax.jit(emg2pose_stream.predict_streaming_offline, static_argnums=0)
        windowed = np.asarray(windowed_fn(config, variables, emg_j, initial))
        streamed = np.asarray(streamed_fn(config, variables, emg_j, initial))
        n = min(windowed.shape[-1], streamed.shape[-1])
        diff = np.degrees(np.abs(windowed[..., :n] - streamed[..., :n]))
        scale = np.degrees(np.abs(windowed[..., :n])).mean()
        print(
            f"{name:<22} steps windowed {windowed.shape[-1]} streaming {streamed.shape[-1]}: "
            f"|diff| mean {diff.mean():.4f} deg, p99 {np.percentile(diff, 99):.4f} deg, max {diff.max():.4f} deg "
            f"(mean |pose| {scale:.2f} deg)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parts = ["latency", "windowed", "hour", "gap"]
    parser.add_argument("--parts", nargs="+", choices=parts, default=parts)
    parser.add_argument(
        "--models", nargs="+", choices=["emg2pose", "direct", "adapter"], default=["emg2pose", "direct", "adapter"]
    )
    parser.add_argument("--chunks", type=int, default=10_000, help="timed chunks per model (after 50 warm-up chunks)")
    parser.add_argument("--chunk-ms", type=float, default=40.0, help="chunk duration in milliseconds")
    parser.add_argument("--windowed-calls", type=int, default=500, help="timed windowed forwards")
    parser.add_argument("--hour-chunks", type=int, default=0, help="chunks of the simulated hour (0: one hour)")
    parser.add_argument("--windows", type=int, default=2, help="11,790-sample windows for the gap")
    machine_mod.add_arguments(parser)
    args = parser.parse_args(argv)
    machine = machine_mod.start_from_args(args)
    # The FLOP peak: bench/machine.py's (the best of jax, numpy and torch), the one every bench script uses.
    peak = (machine.peak, *machine_peak()[1:])
    print(
        f"jax {jax.__version__} on {jax.devices()[0].platform}, float32; matmul peak "
        f"{peak[0] / 1e9:.1f} GFLOP/s, matrix-vector bandwidth {peak[1] / 1e9:.1f} GB/s over 64 MiB, "
        f"{peak[2] / 1e9:.1f} GB/s over 2 MiB; {load_note()}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="emgjax-bench-") as root:
        bundles = build_bundles(root) if set(args.parts) - {"gap"} else {}
        if "latency" in args.parts:
            part_latency(args, bundles, peak, machine)
        if "windowed" in args.parts:
            part_windowed(args, bundles)
        if "hour" in args.parts:
            part_hour(args, bundles)
    if "gap" in args.parts:
        part_gap(args)
    return machine.finish()


if __name__ == "__main__":
    raise SystemExit(main())
