"""Manual check: emgjax's FK and metrics against emg2pose's own code, on UmeTrack's released hand model.

Not run by the tests or CI (it needs a checkout of Meta's emg2pose and its
CC-BY-NC hand model, which emgjax does not ship). Get the source, then run
from the repo root:

    git clone https://github.com/facebookresearch/emg2pose /tmp/emg2pose_src   # or any checkout
    python bench/kinematics_parity.py --emg2pose-src /tmp/emg2pose_src
    python bench/kinematics_parity.py --emg2pose-src /tmp/emg2pose_src --hand-model my_hand.json

It imports emg2pose's kinematics (emg2pose/kinematics.py, UmeTrack's
lib/common skinning) and metrics (emg2pose/metrics.py) from that checkout
(they need only torch), and emgjax from this repo. With the same random
joint angles (uniform within the hand model's joint_limits, or smooth
trajectories inside them for the metrics) it prints:

  * the max landmark difference in mm between emgjax's FK (float32) and
    emg2pose's (float64, and float32 as emg2pose trains);
  * every emg2pose metric from both, and their relative difference;
  * that the released-encoding test fixture (tests/fixtures/hand_model_released.py)
    has the released file's keys, key order, JSON types and nesting, and that
    both FKs agree on it too.

Goals: landmarks within 1e-3 mm, every metric within 0.1 %. Exit status 1 when
a goal is missed. emg2pose's hand model is loaded from
``<src>/emg2pose/UmeTrack/dataset/generic_hand_model.json`` unless
``--hand-model`` names another file; emg2pose's ``load_default_hand_model``
is pointed at the same file (at run time only) so its metrics use it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

jax.config.update("jax_default_matmul_precision", "highest")  # no reduced-precision matmuls on accelerators

# emgjax is imported from this checkout: these must follow the sys.path insert (and the precision setting).
from emgjax.kinematics import forward_kinematics, load_hand_model  # noqa: E402
from emgjax.metrics import EMG2POSE_METRIC_KEYS, emg2pose_metrics  # noqa: E402

LANDMARK_GOAL_MM = 1e-3
METRIC_GOAL_REL = 1e-3  # 0.1 %
DEFAULT_HAND_MODEL_REL = "emg2pose/UmeTrack/dataset/generic_hand_model.json"
FIXTURE_MODULE = REPO / "tests" / "fixtures" / "hand_model_released.py"
# Angle ranges when a hand model file has no joint_limits (radians; our own).
FALLBACK_LIMITS = (-0.3, 1.3)


def _import_with_lazy_annotations(name: str, file: Path):
    """Import module `name` from `file` compiled with ``from __future__ import annotations``.

    emg2pose/kinematics.py annotates ``NamedTuple | Any``, which raises at
    import time on Python >= 3.11 (typing.NamedTuple is a function there).
    Lazy annotations change nothing else: the code runs as written.
    """
    import __future__

    import types

    module = types.ModuleType(name)
    module.__file__ = str(file)
    module.__package__ = name.rpartition(".")[0]
    sys.modules[name] = module
    code = compile(file.read_text(encoding="utf-8"), str(file), "exec", flags=__future__.annotations.compiler_flag)
    exec(code, module.__dict__)  # noqa: S102 -- the user-supplied emg2pose source, run as an import would
    return module


def import_emg2pose(src: Path):
    """emg2pose.kinematics and emg2pose.metrics from the checkout at ``src``."""
    package = src / "emg2pose"
    if not (package / "kinematics.py").is_file():
        raise SystemExit(f"--emg2pose-src: expected an emg2pose checkout (with emg2pose/kinematics.py), found {src}")
    sys.path.insert(0, str(src))
    import emg2pose

    where = Path(emg2pose.__file__).resolve()
    if src.resolve() not in where.parents:
        raise SystemExit(f"imported emg2pose from {where}, not from --emg2pose-src {src}")
    kinematics = _import_with_lazy_annotations("emg2pose.kinematics", package / "kinematics.py")
    metrics = _import_with_lazy_annotations("emg2pose.metrics", package / "metrics.py")
    return kinematics, metrics


def load_fixture_module():
    spec = importlib.util.spec_from_file_location("hand_model_released", FIXTURE_MODULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------
# Encoding of a JSON hand model: key order, JSON types, nesting
# ---------------------------------------------------------------------------


def json_structure(value):
    """Nesting and element types of a JSON value: e.g. ('list', ('list', 'float')) and the set of leaf types."""
    if isinstance(value, list):
        inner = {json_structure(v) for v in value}
        return ("list", tuple(sorted(inner, key=repr)))
    return type(value).__name__


def encoding_differences(released: dict, fixture: dict) -> list[str]:
    problems = []
    if list(released) != list(fixture):
        problems.append(f"keys/order: released {list(released)}, fixture {list(fixture)}")
    for key, value in released.items():
        if key not in fixture:
            continue
        a, b = json_structure(value), json_structure(fixture[key])
        if a != b:
            problems.append(f"{key}: released {a}, fixture {b}")
        shape_a, shape_b = np.shape(value), np.shape(fixture[key])
        if not key.startswith("mesh_") and key != "dense_bone_weights" and shape_a != shape_b:
            problems.append(f"{key}: shape released {shape_a}, fixture {shape_b}")
        if len(shape_a) != len(shape_b):
            problems.append(f"{key}: rank released {len(shape_a)}, fixture {len(shape_b)}")
    for key in ("joint_frame_index", "joint_parent", "joint_first_child", "joint_next_sibling"):
        none_a = {v for v in released[key] if v >= 22}
        none_b = {v for v in fixture[key] if v >= 22}
        if none_a != none_b:
            problems.append(f"{key}: 'none' markers released {none_a}, fixture {none_b}")
    return problems


# ---------------------------------------------------------------------------
# Angles
# ---------------------------------------------------------------------------


def angle_limits(hand) -> np.ndarray:
    """(20, 2) lower/upper radians for sampling."""
    if hand.joint_limits is not None:
        return np.asarray(hand.joint_limits, dtype=np.float64)
    return np.tile(np.array(FALLBACK_LIMITS), (20, 1))


def random_poses(rng, limits: np.ndarray, frames: int) -> np.ndarray:
    """(frames, 20) uniform within the limits."""
    return rng.uniform(limits[:, 0], limits[:, 1], size=(frames, 20))


def smooth_trajectories(rng, limits: np.ndarray, batch: int, time: int, rate: float = 2000.0) -> np.ndarray:
    """(batch, 20, time) sums of a few slow sinusoids (0.2-3 Hz), mapped into the limits."""
    t = np.arange(time) / rate
    waves = np.zeros((batch, 20, time))
    for _ in range(4):
        freq = rng.uniform(0.2, 3.0, size=(batch, 20, 1))
        phase = rng.uniform(0, 2 * math.pi, size=(batch, 20, 1))
        waves += np.sin(2 * math.pi * freq * t + phase)
    unit = 0.5 + waves / 8.0  # in [0, 1]
    return limits[None, :, 0:1] + unit * (limits[None, :, 1:2] - limits[None, :, 0:1])


def ik_failure_mask(rng, batch: int, time: int, fraction: float = 0.1, run: int = 200) -> np.ndarray:
    """(batch, time) bool, False on random runs of `run` samples covering about `fraction`."""
    mask = np.ones((batch, time), dtype=bool)
    for b in range(batch):
        for start in rng.integers(0, time - run, size=max(1, int(fraction * time / run))):
            mask[b, start : start + run] = False
    return mask


# ---------------------------------------------------------------------------
# emg2pose's side
# ---------------------------------------------------------------------------


def their_hand(kinematics, path: Path, dtype):
    import torch

    hand = kinematics.load_hand_model_from_json(str(path))
    return kinematics.apply_to_hand_model(
        hand, lambda x: x.to(dtype) if x is not None and torch.is_floating_point(x) else x
    )


def their_fk(kinematics, hand, poses: np.ndarray, dtype) -> np.ndarray:
    """(N, 20) radians -> (N, 21, 3) with emg2pose.kinematics.forward_kinematics ((B, 20, T) in)."""
    import torch

    angles = torch.tensor(poses.T[None], dtype=dtype)  # (1, 20, N)
    with torch.no_grad():
        return kinematics.forward_kinematics(angles, hand)[0].double().numpy()


def their_metrics(kinematics, metrics_module, path: Path, pred, target, mask, dtype) -> dict[str, float]:
    """emg2pose's get_default_metrics() on (B, 20, T) arrays, with the hand model at `path`."""
    import torch

    # LandmarkDistances loads emg2pose's default hand model: point it at `path` in `dtype`.
    metrics_module.load_default_hand_model = lambda: their_hand(kinematics, path, dtype)
    results = {}
    pred_t, target_t = torch.tensor(pred, dtype=dtype), torch.tensor(target, dtype=dtype)
    mask_t = torch.tensor(mask)
    with torch.no_grad():
        for metric in metrics_module.get_default_metrics():
            for key, value in metric(pred_t, target_t, mask_t, "val").items():
                results[key.removeprefix("val_")] = float(value)
    results["mae_deg"] = results["mae"] * 180.0 / math.pi  # emgjax's extra key, derived
    return results


# ---------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emg2pose-src", required=True, type=Path, help="an emg2pose checkout (repo root)")
    parser.add_argument("--hand-model", type=Path, help=f"hand model JSON (default: <src>/{DEFAULT_HAND_MODEL_REL})")
    parser.add_argument("--frames", type=int, default=5000, help="random poses for the landmark check")
    parser.add_argument("--batch", type=int, default=8, help="windows for the metric check")
    parser.add_argument("--time", type=int, default=16000, help="samples per window for the metric check (2 kHz)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    kinematics, metrics_module = import_emg2pose(args.emg2pose_src)
    path = args.hand_model or (args.emg2pose_src / DEFAULT_HAND_MODEL_REL)
    ours = load_hand_model(path)
    print(f"hand model: {path}")
    rng = np.random.default_rng(args.seed)
    limits = angle_limits(ours)
    ok = True

    # 1. Landmarks on random poses.
    poses = random_poses(rng, limits, args.frames)
    mine = np.asarray(forward_kinematics(jnp.asarray(poses, jnp.float32), ours), dtype=np.float64)
    ref64 = their_fk(kinematics, their_hand(kinematics, path, torch.float64), poses, torch.float64)
    ref32 = their_fk(kinematics, their_hand(kinematics, path, torch.float32), poses, torch.float32)
    diff64 = np.abs(mine - ref64).max()
    print(f"\nFK, {args.frames} random poses within joint_limits, max |landmark difference| (mm):")
    print(f"  emgjax float32 vs emg2pose float64: {diff64:.3g}")
    print(f"  emgjax float32 vs emg2pose float32: {np.abs(mine - ref32).max():.3g}")
    print(f"  emg2pose float32 vs float64 (rounding level): {np.abs(ref32 - ref64).max():.3g}")
    print(f"  landmark coordinates span {np.abs(ref64).max():.1f} mm; goal {LANDMARK_GOAL_MM:g} mm")
    ok &= bool(diff64 <= LANDMARK_GOAL_MM)

    # 2. Metrics.
    target = smooth_trajectories(rng, limits, args.batch, args.time)
    pred = target + 0.15 * smooth_trajectories(rng, np.tile([-1.0, 1.0], (20, 1)), args.batch, args.time)
    pred += rng.normal(scale=0.002, size=pred.shape)  # sample-level jitter for vel/acc/jerk
    mask = ik_failure_mask(rng, args.batch, args.time)
    mine_metrics = emg2pose_metrics(
        jnp.asarray(pred, jnp.float32), jnp.asarray(target, jnp.float32), jnp.asarray(mask), ours
    )
    ref64_metrics = their_metrics(kinematics, metrics_module, path, pred, target, mask, torch.float64)
    ref32_metrics = their_metrics(kinematics, metrics_module, path, pred, target, mask, torch.float32)
    fk_frames = args.batch * len(range(0, args.time, 40))
    print(
        f"\nmetrics, {args.batch} windows x {args.time} samples ({mask.mean():.0%} valid, FK on {fk_frames} frames "
        "each for pred and target); relative difference |ours - theirs| / |theirs|:"
    )
    print(f"  {'metric':<20}{'emgjax f32':>14}{'emg2pose f64':>14}{'rel vs f64':>12}{'rel vs f32':>12}")
    worst = 0.0
    for key in EMG2POSE_METRIC_KEYS:
        value = float(mine_metrics[key])
        rel64 = abs(value - ref64_metrics[key]) / abs(ref64_metrics[key])
        rel32 = abs(value - ref32_metrics[key]) / abs(ref32_metrics[key])
        worst = max(worst, rel64)
        print(f"  {key:<20}{value:>14.6g}{ref64_metrics[key]:>14.6g}{rel64:>12.2e}{rel32:>12.2e}")
    missing = set(ref64_metrics) - set(EMG2POSE_METRIC_KEYS)
    if missing:
        print(f"  emg2pose metrics emgjax lacks: {sorted(missing)}")
        ok = False
    print(f"  worst relative difference vs float64: {worst:.2e} (goal {METRIC_GOAL_REL:g})")
    ok &= worst <= METRIC_GOAL_REL

    # 3. The released-encoding fixture: same encoding as this file, and both FKs agree on it.
    fixture = load_fixture_module()
    released = json.loads(path.read_text(encoding="utf-8"))
    problems = encoding_differences(released, fixture.released_encoding_dict())
    verdict = "matches" if not problems else "DIFFERS from"
    print(f"\nfixture {FIXTURE_MODULE.relative_to(REPO)}: encoding {verdict} {path.name}")
    for problem in problems:
        print(f"  {problem}")
    ok &= not problems
    with tempfile.TemporaryDirectory() as tmp:
        fixture_path = fixture.write_released_encoding(Path(tmp) / "hand_model_released.json")
        fixture_hand = load_hand_model(fixture_path)
        fixture_poses = random_poses(rng, angle_limits(fixture_hand), args.frames)
        fixture_mine = np.asarray(forward_kinematics(jnp.asarray(fixture_poses, jnp.float32), fixture_hand))
        fixture_ref = their_fk(
            kinematics, their_hand(kinematics, fixture_path, torch.float64), fixture_poses, torch.float64
        )
    fixture_diff = np.abs(fixture_mine - fixture_ref).max()
    print(f"  FK on it, emgjax float32 vs emg2pose float64: max |landmark difference| {fixture_diff:.3g} mm")
    ok &= bool(fixture_diff <= LANDMARK_GOAL_MM)

    verdict = "PASS" if ok else "FAIL"
    print(f"\n{verdict}: landmarks within {LANDMARK_GOAL_MM:g} mm, metrics within {METRIC_GOAL_REL:.1%}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
