"""Benchmark: inverse kinematics (emgjax.kinematics.fit_angles) round trip, accuracy and speed.

Synthetic poses -> FK -> MediaPipe-ordered landmarks under a random global
rotation, translation and hand scale, plus Gaussian noise (``--noise-mm`` per
coordinate) -> IK -> angles, on our synthetic hand. Prints:

  * independent frames (``--frames``, uniform within the joint limits): angle
    error (mean, p95, per joint) next to the Cramer-Rao bound of the noise (the
    best any unbiased per-frame estimator can do), fit error, frames/s;
  * the same without noise (exactness);
  * one smooth sequence (``--seconds`` of emgjax's synthetic gesture motion at
    30 fps) fitted frame by frame and with ``--smoothness``: error and
    frames/s of a 1 x N sequence;
  * single-frame calls (a live stream): latency;
  * optax's Adam on the same objective and start, for comparison (``--adam-steps``);
  * the load average (``uptime``) and the machine's measured float32 matmul peak beside the speeds.

Run from the repo root: ``python bench/ik.py`` (about a minute on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy.spatial.transform import Rotation

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emgjax.data.synthetic import SyntheticConfig, generate_session
from emgjax.kinematics import JOINT_NAMES, fit_hand, synthetic_hand_model
from emgjax.kinematics.ik import joint_bounds, landmarks_and_jacobian, mean_pose, model_landmarks


def matmul_peak_gflops(size: int = 1024, repeats: int = 10) -> float:
    """Best float32 matmul throughput of this machine (GFLOP/s), a yardstick for the speeds below."""
    a = jnp.ones((size, size), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    best = min(_time(lambda: f(a).block_until_ready()) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def timings(fn, repeats: int) -> tuple[float, float]:
    """(median, best) seconds per call; on a shared CPU the best shows the uncontended speed."""
    times = [_time(fn) for _ in range(repeats)]
    return statistics.median(times), min(times)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} CPUs"


def observe(points, rng, scale, noise_mm, per_frame_pose=True):
    """Landmarks (N, 21, 3) mm: model points (N, 21, 3) under random global poses, plus noise."""
    count = len(points) if per_frame_pose else 1
    rotation = Rotation.random(count, random_state=int(rng.integers(1 << 31))).as_matrix()
    translation = rng.normal(0, 300, (count, 3))
    world = scale * np.einsum("nab,njb->nja", rotation, points) + translation[:, None]
    return (world + rng.normal(0, noise_mm, world.shape)).astype(np.float32)


def cramer_rao_deg(angles, hand, scale, noise_mm) -> np.ndarray:
    """(N, 20) expected absolute angle error (degrees) of an unbiased estimator at these poses:
    sqrt(2 / pi) * the standard deviation from the inverse Fisher information of the 26 per-frame
    parameters (20 angles, rotation, translation) under Gaussian landmark noise."""
    points, jac = landmarks_and_jacobian(jnp.asarray(angles), hand)
    points, jac = np.asarray(points, np.float64), np.asarray(jac, np.float64)
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    zero = np.zeros_like(x)
    cross = np.stack([np.stack([zero, -z, y], -1), np.stack([z, zero, -x], -1), np.stack([-y, x, zero], -1)], -2)
    eye = np.broadcast_to(np.eye(3), (*points.shape, 3))
    full = np.concatenate([scale * jac, -scale * cross, eye], -1).reshape(len(angles), 63, 26)
    covariance = np.linalg.inv(np.einsum("nri,nrj->nij", full, full)) * noise_mm**2
    sd = np.sqrt(np.diagonal(covariance, axis1=1, axis2=2)[:, :20])
    return np.degrees(np.sqrt(2 / np.pi) * sd)


def report_errors(label: str, fitted, truth, fit_error, crb=None) -> None:
    error = np.degrees(np.abs(np.asarray(fitted) - truth))
    fit_error = np.asarray(fit_error)
    print(
        f"{label}: angle error mean {error.mean():.3f} deg, p95 {np.percentile(error, 95):.2f} deg"
        + (f" (Cramer-Rao bound mean {crb.mean():.3f} deg)" if crb is not None else "")
        + f"; fit error mean {np.nanmean(fit_error):.3f} mm, p95 {np.nanpercentile(fit_error, 95):.2f} mm,"
        f" max {np.nanmax(fit_error):.2f} mm"
    )
    per_joint = error.mean(axis=0)
    bound = crb.mean(axis=0) if crb is not None else None
    for j, name in enumerate(JOINT_NAMES):
        extra = f"  (bound {bound[j]:.2f})" if bound is not None else ""
        print(f"    {name:<16} {per_joint[j]:6.2f} deg{extra}")


def adam_fit(landmarks_mm, hand, scale, steps, learning_rate):
    """optax Adam on the same objective (landmark residuals + weak prior, projected onto the
    limits) from the same start as fit_hand (mean pose; rotation and translation from fit_hand's
    palm alignment are not reused: Adam optimises a rotation vector from the identity after a
    Kabsch alignment of the palm)."""
    from emgjax.kinematics.ik import PALM_INDICES, rotation_from_vector, similarity_transform

    lower, upper = joint_bounds(hand)
    centre = mean_pose(hand)
    target = jnp.asarray(landmarks_mm)
    palm = np.asarray(PALM_INDICES)
    rest = model_landmarks(centre, hand)
    rotation0, _, _ = similarity_transform(jnp.broadcast_to(rest[palm], target[:, palm].shape), target[:, palm])
    translation0 = jnp.mean(target[:, palm], 1) - scale * jnp.einsum("nab,b->na", rotation0, jnp.mean(rest[palm], 0))
    n = target.shape[0]
    params = {"angles": jnp.broadcast_to(centre, (n, 20)), "w": jnp.zeros((n, 3)), "t": translation0}

    def loss(p):
        rotation = rotation0 @ rotation_from_vector(p["w"])
        world = scale * jnp.einsum("nab,njb->nja", rotation, model_landmarks(p["angles"], hand)) + p["t"][:, None]
        return jnp.sum((world - target) ** 2) + 0.01 * jnp.sum((p["angles"] - centre) ** 2)

    optimiser = optax.adam(learning_rate)

    @jax.jit
    def run(params):
        def step(_, carry):
            params, state = carry
            grads = jax.grad(loss)(params)
            updates, state = optimiser.update(grads, state)
            params = optax.apply_updates(params, updates)
            params["angles"] = jnp.clip(params["angles"], lower, upper)
            return params, state

        params, _ = jax.lax.fori_loop(0, steps, step, (params, optimiser.init(params)))
        rotation = rotation0 @ rotation_from_vector(params["w"])
        world = scale * jnp.einsum("nab,njb->nja", rotation, model_landmarks(params["angles"], hand))
        error = jnp.mean(jnp.linalg.norm(world + params["t"][:, None] - target, axis=-1), axis=-1)
        return params["angles"], error

    return run, params


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=1000, help="independent frames (default 1000)")
    parser.add_argument("--noise-mm", type=float, default=2.0, help="landmark noise per coordinate, mm (default 2)")
    parser.add_argument("--seconds", type=float, default=40.0, help="length of the smooth sequence at 30 fps")
    parser.add_argument("--smoothness", type=float, default=3000.0, help="fit_hand smoothness for the sequence")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--adam-steps", type=int, default=300, help="0 skips the optax comparison")
    args = parser.parse_args(argv)

    hand = synthetic_hand_model()
    rng = np.random.default_rng(0)
    lower, upper = (np.asarray(b) for b in joint_bounds(hand))
    scale = 0.92
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; {load()}")
    print(f"float32 matmul peak (1024^2, best of 10): {matmul_peak_gflops():.1f} GFLOP/s")

    # Independent frames.
    truth = rng.uniform(lower, upper, (args.frames, 20)).astype(np.float32)
    points = np.asarray(model_landmarks(jnp.asarray(truth), hand), np.float64)
    landmarks = observe(points, rng, scale, args.noise_mm)
    clean = observe(points, rng, scale, 0.0)
    fit = fit_hand(landmarks, hand, units="mm")
    jax.block_until_ready(fit.angles)
    median, best = timings(lambda: jax.block_until_ready(fit_hand(landmarks, hand, units="mm").angles), args.repeats)
    crb = cramer_rao_deg(truth, hand, float(fit.scale), args.noise_mm)
    print(f"\n== {args.frames} independent frames, {args.noise_mm} mm noise per coordinate, scale {scale} ==")
    report_errors("round trip", fit.angles, truth, fit.fit_error_mm, crb)
    print(f"  fitted scale {float(fit.scale):.4f} (true {scale})")
    print(f"  speed: {args.frames / best:.0f} frames/s best, {args.frames / median:.0f} median ({load()})")
    exact = fit_hand(clean, hand, units="mm")
    error = np.degrees(np.abs(np.asarray(exact.angles) - truth))
    print(
        f"no noise: angle error mean {error.mean():.4f} deg, max {error.max():.3f} deg; "
        f"fit error mean {float(np.mean(exact.fit_error_mm)):.4f} mm"
    )

    # One smooth sequence (1 x N).
    session = generate_session(SyntheticConfig(duration_s=args.seconds), seed=0)
    sequence = np.asarray(session.angles_frames, np.float32)
    n = len(sequence)
    seq_points = np.asarray(model_landmarks(jnp.asarray(sequence), hand), np.float64)
    seq_landmarks = observe(seq_points, rng, scale, args.noise_mm, per_frame_pose=False)
    print(f"\n== one sequence: {n} frames ({args.seconds:g} s of synthetic gestures at 30 fps), 1 x {n} ==")
    for smoothness in (0.0, args.smoothness):
        call = lambda s=smoothness: fit_hand(seq_landmarks, hand, units="mm", smoothness=s)  # noqa: E731
        fit = call()
        jax.block_until_ready(fit.angles)
        median, best = timings(lambda c=call: jax.block_until_ready(c().angles), args.repeats)
        error = np.degrees(np.abs(np.asarray(fit.angles) - sequence))
        print(
            f"smoothness {smoothness:g}: angle error mean {error.mean():.3f} deg, "
            f"p95 {np.percentile(error, 95):.2f} deg; fit error mean {float(np.mean(fit.fit_error_mm)):.3f} mm; "
            f"{n / best:.0f} frames/s best, {n / median:.0f} median ({load()})"
        )
        if smoothness:
            per_joint = error.mean(axis=0)
            print(
                "    per joint: " + ", ".join(f"{name} {e:.2f}" for name, e in zip(JOINT_NAMES, per_joint, strict=True))
            )

    # A live stream: one frame per call, warm-started from the previous fit with the session's scale.
    frame = seq_landmarks[:1]
    known = float(fit.scale)
    warm = np.asarray(fit.angles[:1])
    jax.block_until_ready(fit_hand(frame, hand, units="mm", scale=known, init_angles=warm).angles)
    median, best = timings(
        lambda: jax.block_until_ready(fit_hand(frame, hand, units="mm", scale=known, init_angles=warm).angles), 20
    )
    print(f"\nsingle frame per call (stream): {median * 1e3:.2f} ms median, {best * 1e3:.2f} ms best ({load()})")

    if args.adam_steps:
        for learning_rate in (0.01, 0.03):
            run, params = adam_fit(landmarks, hand, float(fit.scale), args.adam_steps, learning_rate)
            angles, fit_error = run(params)
            jax.block_until_ready(angles)
            median, best = timings(lambda r=run, p=params: jax.block_until_ready(r(p)[0]), 3)
            error = np.degrees(np.abs(np.asarray(angles) - truth))
            print(
                f"optax adam lr {learning_rate}, {args.adam_steps} steps, independent frames: angle error mean "
                f"{error.mean():.3f} deg; fit error mean {float(np.mean(fit_error)):.3f} mm; "
                f"{args.frames / best:.0f} frames/s best"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
