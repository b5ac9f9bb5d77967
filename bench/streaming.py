"""Streaming: per-chunk latency of the jitted stream step, and the streaming-vs-windowed pose gap.

    python bench/streaming.py                        # both parts, defaults below
    python bench/streaming.py --parts latency --chunks 10000
    python bench/streaming.py --parts gap --windows 4

Part "latency" (`emgjax.models.streaming`): the jitted step at batch 1, on
random initial weights (speed does not depend on the values), after a warm-up;
each call is timed to `block_until_ready`. Models: the full-size
tracking_vemg2pose with 40 ms chunks (80 samples at 2 kHz) and the direct
model's default config with 40 ms chunks (20 samples at 500 Hz). Prints p50,
p99 and max per chunk, the real-time factor (chunk duration / mean step time)
and the machine's load average (this machine is shared: numbers move with it).

Part "gap": for each published emg2pose experiment with a rollout, randomly
initialised variables (there are no real weights here: the gap of trained
models will differ), synthetic EMG (`emgjax.data.synthetic`) cut into
11,790-sample windows (Meta's evaluation length): Meta's windowed rollout
(align_corners over the window, 250 steps) against the streaming rollout of
the same window from the same initial pose (regular grid, 249 steps), step by
step over their common 249 steps, in degrees: mean and max |difference|, and
the mean |pose| for scale. regression_neuropose has no rollout (and no
streaming form): reported as not applicable.

Grows later: 10,000 chunks, the adapter pipeline, memory and latency over a
simulated hour, emg2pose's windowed recompute cost (one 1790-sample-context
window per output).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from emgjax.data.synthetic import SyntheticConfig, generate_session  # noqa: E402
from emgjax.models import pose_modules, streaming  # noqa: E402
from emgjax.models.configs import EXPERIMENTS  # noqa: E402
from emgjax.models.direct import DirectConfig, DirectModel  # noqa: E402
from emgjax.models.streaming import emg2pose as emg2pose_stream  # noqa: E402

WINDOW = 11_790


def load_note() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "load average unavailable"
    return f"load average {one:.2f} (1 min) {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def time_stream(config: Any, variables: dict, chunk_samples: int, channels: int, chunks: int) -> np.ndarray:
    """Seconds per jitted stream step, batch 1, over ``chunks`` chunks of random EMG (after a warm-up)."""
    step = jax.jit(streaming.stream_step, static_argnums=0)
    state = streaming.init_stream_state(config, variables, 1, chunk_samples)
    rng = np.random.default_rng(0)
    data = [jnp.asarray(rng.standard_normal((1, channels, chunk_samples), np.float32)) for _ in range(64)]
    for i in range(50):  # compile, then fill the buffers past the left context
        state, poses, _ = step(config, variables, state, data[i % 64])
    jax.block_until_ready(poses)
    times = np.empty(chunks)
    for i in range(chunks):
        start = time.perf_counter()
        state, poses, valid = step(config, variables, state, data[i % 64])
        jax.block_until_ready((state, poses, valid))
        times[i] = time.perf_counter() - start
    return times


def report_latency(name: str, times: np.ndarray, chunk_seconds: float) -> None:
    p50, p99, worst = np.percentile(times, 50) * 1e3, np.percentile(times, 99) * 1e3, times.max() * 1e3
    rtf = chunk_seconds / times.mean()
    print(
        f"{name:<34} chunks {len(times):>6}  p50 {p50:7.3f} ms  p99 {p99:7.3f} ms  max {worst:7.3f} ms  "
        f"real-time factor {rtf:7.1f}x"
    )


def part_latency(args: argparse.Namespace) -> None:
    print(f"== per-chunk latency, batch 1 ({load_note()})")
    experiment = EXPERIMENTS["tracking_vemg2pose"]
    config = experiment.model
    variables = jax.jit(pose_modules.init_variables, static_argnums=0)(config, jax.random.PRNGKey(0))
    chunk = 80
    times = time_stream(config, variables, chunk, config.in_channels, args.chunks)
    report_latency(f"tracking_vemg2pose, {chunk} samples @2 kHz", times, chunk / config.sample_rate)
    direct = DirectConfig(mode="sequence")
    direct_variables = DirectModel(direct).init_variables(jax.random.PRNGKey(1))
    chunk = 20
    times = time_stream(direct, direct_variables, chunk, direct.in_channels, args.chunks)
    report_latency(f"direct (default), {chunk} samples @500 Hz", times, chunk / 500.0)
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
    parser.add_argument("--parts", nargs="+", choices=["latency", "gap"], default=["latency", "gap"])
    parser.add_argument("--chunks", type=int, default=2000, help="timed chunks per model (after 50 warm-up chunks)")
    parser.add_argument("--windows", type=int, default=2, help="11,790-sample windows for the gap")
    args = parser.parse_args(argv)
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, float32")
    if "latency" in args.parts:
        part_latency(args)
    if "gap" in args.parts:
        part_gap(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
