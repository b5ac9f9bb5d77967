"""Tests for emgjax.metrics against hand-computed values."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from emgjax.kinematics import (
    JOINT_NAMES,
    LANDMARK_NAMES,
    forward_kinematics,
    synthetic_hand_model,
)
from emgjax.metrics import (
    EMG2POSE_METRIC_KEYS,
    angle_mae,
    derivative_masks,
    emg2pose_metrics,
    fingertip_distance,
    landmark_distance,
    masked_mean,
    masked_sum_and_count,
    motion_magnitudes,
    mpjpe,
    pa_mpjpe,
)

HAND = synthetic_hand_model()


def test_masked_mean_hand_computed_and_all_masked():
    x = jnp.array([[1.0, 2.0, 3.0], [4.0, 5.0, np.nan]])
    mask = jnp.array([[True, False, True], [True, False, False]])
    assert float(masked_mean(x, mask)) == pytest.approx((1 + 3 + 4) / 3)
    total, count = masked_sum_and_count(x, mask)
    assert float(total) == 8.0 and float(count) == 3.0
    assert float(masked_mean(x, jnp.zeros_like(mask))) == 0.0  # all masked: 0, not NaN
    with pytest.raises(ValueError, match=r"broadcastable to values \(2, 3\), found \(3, 2\)"):
        masked_mean(x, jnp.ones((3, 2), bool))


def test_angle_mae_hand_computed():
    target = np.zeros((1, 20, 3), np.float32)
    target[0, :, :2] = 0.1 * np.arange(1, 21)[:, None]  # joint j off by 0.1 (j + 1)
    target[0, :, 2] = 100.0  # an IK failure: huge, masked out
    pred = np.zeros_like(target)
    mask = np.array([[True, True, False]])
    # mean of 0.1 * (1..20) = 1.05
    assert float(angle_mae(pred, target, mask)) == pytest.approx(1.05, rel=1e-6)
    assert float(angle_mae(pred, target, mask, joints=[0, 19])) == pytest.approx((0.1 + 2.0) / 2, rel=1e-6)


def test_one_mean_over_elements_not_mean_of_window_means():
    # Window 0: one valid sample, error 1 everywhere; window 1: three valid
    # samples, error 0. Pooled: 20 / 80 = 0.25. Mean of window means: 0.5.
    pred = np.zeros((2, 20, 4), np.float32)
    pred[0] = 1.0
    target = np.zeros_like(pred)
    mask = np.array([[True, False, False, False], [True, True, True, False]])
    assert float(angle_mae(pred, target, mask)) == pytest.approx(0.25)


def test_derivative_masks_shrink():
    mask = jnp.array([True, True, True, False, True, True, True, True])
    vel, acc, jerk = derivative_masks(mask, 3)
    np.testing.assert_array_equal(vel, [1, 1, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(acc, [1, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(jerk, [0, 0, 0, 0, 1])


def _reference_motion(pred, mask, order, rate):
    """Loop reference: the k-th difference at t counts iff mask[t..t+k] all hold."""
    diffs = np.diff(pred, n=order, axis=-1)
    total, count = 0.0, 0
    for b in range(pred.shape[0]):
        for t in range(diffs.shape[-1]):
            if mask[b, t : t + order + 1].all():
                total += np.abs(diffs[b, :, t]).sum() * rate
                count += pred.shape[1]
    return total / max(count, 1)


def test_vel_acc_jerk_ramp_and_masked_jumps():
    t = np.arange(12, dtype=np.float32)
    pred = np.broadcast_to(0.001 * t, (1, 20, 12)).copy()
    vel, acc, jerk = motion_magnitudes(pred, np.ones((1, 12), bool))
    assert float(vel) == pytest.approx(2.0, rel=1e-4)  # 0.001 rad per sample * 2000 Hz
    assert float(acc) == pytest.approx(0.0, abs=1e-3) and float(jerk) == pytest.approx(0.0, abs=1e-3)

    # A jump at an IK failure must not count in any derivative.
    pred[..., 6] = 50.0
    mask = np.ones((1, 12), bool)
    mask[0, 6] = False
    vel, acc, jerk = motion_magnitudes(pred, mask)
    assert float(vel) == pytest.approx(2.0, rel=1e-4)
    assert float(acc) < 1e-2 and float(jerk) < 1e-2

    rng = np.random.default_rng(0)
    pred = rng.normal(size=(3, 20, 15)).astype(np.float32)
    mask = rng.random((3, 15)) > 0.2
    got = motion_magnitudes(pred, mask, sample_rate=500.0)
    for order, value in zip((1, 2, 3), got, strict=True):
        assert float(value) == pytest.approx(_reference_motion(pred, mask, order, 500.0), rel=1e-4)


def _index_tip_error(angle: float) -> float:
    """Distance the index tip moves when its DIP bends by `angle` (scipy rotation)."""
    dip = JOINT_NAMES.index("INDEX_DIP_FE")
    axis = np.asarray(HAND.joint_rotation_axes[dip], np.float64)
    pivot = np.asarray(HAND.joint_rest_positions[dip], np.float64)
    tip = np.asarray(HAND.landmark_rest_positions[LANDMARK_NAMES.index("index_fingertip")], np.float64)
    moved = Rotation.from_rotvec(axis * angle).apply(tip - pivot) + pivot
    return float(np.linalg.norm(moved - tip))


def test_landmark_and_fingertip_distance_hand_computed():
    # FK on samples 0, 40, 80. Only the index DIP differs, by 1 rad, at t = 40
    # (valid) and t = 80 (masked out); errors between sampled steps are ignored.
    dip = JOINT_NAMES.index("INDEX_DIP_FE")
    target = np.zeros((1, 20, 81), np.float32)
    pred = target.copy()
    pred[0, dip, 40] = pred[0, dip, 80] = 1.0
    pred[0, :, 1:40] = 2.0  # not sampled
    mask = np.ones((1, 81), bool)
    mask[0, 80] = False
    moved = _index_tip_error(1.0)
    assert 15 < moved < 25  # sanity: a ~20 mm distal phalanx turned by 1 rad
    # Two valid sampled frames (t = 0, 40); only the tip moves at t = 40.
    expected_tips = (moved / 5 + 0.0) / 2
    expected_landmarks = (moved / 17 + 0.0) / 2
    assert float(fingertip_distance(pred, target, mask, HAND)) == pytest.approx(expected_tips, rel=1e-4)
    assert float(landmark_distance(pred, target, mask, HAND)) == pytest.approx(expected_landmarks, rel=1e-4)
    # With every=1 the unsampled, large errors would dominate.
    assert float(fingertip_distance(pred, target, mask, HAND, every=1)) > 10 * expected_tips


def test_fingertip_distance_takes_a_hand_or_an_fk_function():
    # The one fingertip distance serves the metric (a hand model, every 40th sample) and the
    # training term (any FK function, every sample): both forms agree on the same FK.
    rng = np.random.default_rng(3)
    pred = rng.normal(scale=0.3, size=(2, 20, 9)).astype(np.float32)
    target = rng.normal(scale=0.3, size=(2, 20, 9)).astype(np.float32)
    mask = rng.random((2, 9)) > 0.3
    fk = functools.partial(forward_kinematics, hand=HAND)
    for every in (1, 4):
        by_hand = float(fingertip_distance(pred, target, mask, HAND, every=every))
        by_fk = float(jax.jit(lambda p, t, m, e=every: fingertip_distance(p, t, m, fk, every=e))(pred, target, mask))
        assert by_fk == pytest.approx(by_hand, rel=1e-5)
    # Hand-computed with every=1 and two chosen landmarks.
    tips = (5, 20)
    xyz_p = np.asarray(forward_kinematics(jnp.swapaxes(pred, 1, 2), HAND))[:, :, tips]
    xyz_t = np.asarray(forward_kinematics(jnp.swapaxes(target, 1, 2), HAND))[:, :, tips]
    expected = np.linalg.norm(xyz_p - xyz_t, axis=-1)[mask].mean()
    got = fingertip_distance(pred, target, mask, HAND, every=1, fingertips=tips)
    assert float(got) == pytest.approx(expected, rel=1e-4)


def test_masked_mean_without_mask_is_the_plain_mean():
    x = jnp.array([[1.0, 2.0], [3.0, 6.0]])
    assert float(masked_mean(x)) == pytest.approx(3.0)
    assert float(masked_mean(x, jnp.array([True, False]))) == pytest.approx(2.0)  # broadcast over rows


def test_landmark_distance_leaves_out_proximal_frames():
    # Pure MCP abduction moves nothing but the index finger beyond the MCP;
    # the MCP landmark itself (a proximal frame) never counts.
    aa = JOINT_NAMES.index("INDEX_MCP_AA")
    target = np.zeros((1, 20, 1), np.float32)
    pred = target.copy()
    pred[0, aa, 0] = 0.5
    mask = np.ones((1, 1), bool)
    diff = np.linalg.norm(
        np.asarray(forward_kinematics(pred[0, :, 0], HAND) - forward_kinematics(target[0, :, 0], HAND)), axis=-1
    )
    moving = [i for i in range(21) if i not in (8, 11, 14, 17)]
    assert float(landmark_distance(pred, target, mask, HAND)) == pytest.approx(diff[moving].mean(), rel=1e-5)


def test_emg2pose_metrics_keys_groups_and_jit():
    rng = np.random.default_rng(1)
    target = rng.uniform(-0.5, 1.0, size=(2, 20, 81)).astype(np.float32)
    pred = target.copy()
    pred[:, 0:4, :] += 0.2  # thumb joints only
    pred[:, 7, :] -= 0.4  # INDEX_DIP_FE
    mask = np.ones((2, 81), bool)
    mask[1, 50:] = False
    eager = emg2pose_metrics(pred, target, mask, HAND)
    assert tuple(eager) == EMG2POSE_METRIC_KEYS and len(EMG2POSE_METRIC_KEYS) == 15
    metrics = jax.jit(emg2pose_metrics)(pred, target, mask, HAND)  # also inside a user's jit
    assert set(metrics) == set(EMG2POSE_METRIC_KEYS)
    assert float(metrics["mae"]) == pytest.approx((4 * 0.2 + 0.4) / 20, rel=1e-4)
    assert float(metrics["mae_deg"]) == pytest.approx(float(metrics["mae"]) * 180 / math.pi, rel=1e-6)
    assert float(metrics["mae_thumb"]) == pytest.approx(0.2, rel=1e-4)
    assert float(metrics["mae_index"]) == pytest.approx(0.1, rel=1e-4)
    assert float(metrics["mae_middle"]) == pytest.approx(0.0, abs=1e-6)
    # proximal: thumb CMC_FE, CMC_AA among 10 joints; mid: thumb MCP among 5;
    # distal: thumb IP and index DIP among 5.
    assert float(metrics["mae_proximal"]) == pytest.approx(2 * 0.2 / 10, rel=1e-4)
    assert float(metrics["mae_mid"]) == pytest.approx(0.2 / 5, rel=1e-4)
    assert float(metrics["mae_distal"]) == pytest.approx((0.2 + 0.4) / 5, rel=1e-4)
    # vel/acc/jerk against the loop reference; landmark metrics against a
    # loop over the sampled, valid frames (FK one frame at a time, landmarks
    # chosen by name).
    for order, key in ((1, "vel"), (2, "acc"), (3, "jerk")):
        assert float(metrics[key]) == pytest.approx(_reference_motion(pred, mask, order, 2000.0), rel=1e-4)
    tips = [i for i, name in enumerate(LANDMARK_NAMES) if name.endswith("_fingertip")]
    moving = [i for i, name in enumerate(LANDMARK_NAMES) if not name.endswith("_proximal") or name.startswith("thumb")]
    tip_errors, moving_errors = [], []
    for b in range(pred.shape[0]):
        for t in range(0, pred.shape[2], 40):
            if mask[b, t]:
                error = np.linalg.norm(
                    np.asarray(forward_kinematics(pred[b, :, t], HAND) - forward_kinematics(target[b, :, t], HAND)),
                    axis=-1,
                )
                tip_errors += error[tips].tolist()
                moving_errors += error[moving].tolist()
    assert len(moving_errors) == 17 * 5  # t = 0, 40, 80 in window 0; t = 0, 40 in window 1
    assert float(metrics["fingertip_distance"]) == pytest.approx(np.mean(tip_errors), rel=1e-4)
    assert float(metrics["landmark_distance"]) == pytest.approx(np.mean(moving_errors), rel=1e-4)
    assert float(metrics["fingertip_distance"]) > 1.0
    # The eager call gives the same numbers.
    for key in EMG2POSE_METRIC_KEYS:
        np.testing.assert_allclose(eager[key], metrics[key], rtol=1e-5, atol=1e-7)


def test_all_masked_is_zero_and_finite_with_finite_gradients():
    pred = jnp.full((1, 20, 41), jnp.nan)  # garbage predictions at IK failures
    target = jnp.zeros((1, 20, 41))
    mask = jnp.zeros((1, 41), bool)
    metrics = emg2pose_metrics(pred, target, mask, HAND)
    for key, value in metrics.items():
        assert float(value) == 0.0, key

    def loss(p):
        return angle_mae(p, target, mask) + 0.01 * fingertip_distance(p, target, mask, HAND)

    assert np.all(np.isfinite(jax.jit(jax.grad(loss))(jnp.zeros((1, 20, 41)))))


def test_nan_outside_mask_does_not_leak_and_exact_match_has_finite_grad():
    target = jnp.zeros((1, 20, 41))
    pred = target.at[0, :, 40].set(jnp.nan)
    mask = jnp.ones((1, 41), bool).at[0, 40].set(False)
    metrics = emg2pose_metrics(pred, target, mask, HAND)
    assert all(np.isfinite(float(v)) for v in metrics.values())
    # pred == target: distances are 0 and their gradient must be 0, not NaN.
    grad = jax.jit(jax.grad(lambda p: fingertip_distance(p, target, mask, HAND)))(target)
    assert np.all(np.isfinite(grad))


def test_mpjpe_hand_computed():
    target = np.zeros((2, 3, 4, 3), np.float32)
    pred = target + np.array([3.0, 4.0, 0.0], np.float32)  # 5 mm everywhere
    pred[1, 2] += 100.0
    mask = np.ones((2, 3), bool)
    mask[1, 2] = False
    assert float(mpjpe(pred, target, mask)) == pytest.approx(5.0, rel=1e-6)
    assert float(mpjpe(pred[0], target[0])) == pytest.approx(5.0, rel=1e-6)
    assert float(mpjpe(pred, target, np.zeros((2, 3), bool))) == 0.0


def test_pa_mpjpe_removes_similarity_transforms_but_not_reflections():
    rng = np.random.default_rng(2)
    target = rng.normal(scale=40.0, size=(5, 21, 3)).astype(np.float32)
    rotations = Rotation.random(5, random_state=3).as_matrix()
    pred = (1.7 * np.einsum("fab,fjb->fja", rotations, target) + rng.normal(size=(5, 1, 3)) * 100).astype(np.float32)
    assert float(mpjpe(pred, target)) > 10
    assert float(jax.jit(pa_mpjpe)(pred, target)) == pytest.approx(0.0, abs=1e-2)
    # A mirror image cannot be reached by a rotation: the reflection fix must
    # keep the error large.
    mirrored = target * np.array([-1.0, 1.0, 1.0], np.float32)
    assert float(pa_mpjpe(mirrored, target)) > 5
    # Alignment only helps.
    noisy = target + rng.normal(scale=3.0, size=target.shape).astype(np.float32)
    assert float(pa_mpjpe(noisy, target)) <= float(mpjpe(noisy, target)) + 1e-4


def test_pa_mpjpe_matches_brute_force_optimum_on_noisy_case():
    # Compare with a direct least-squares optimisation of s, R, t for one frame.
    from scipy.optimize import minimize

    rng = np.random.default_rng(4)
    target = rng.normal(scale=30.0, size=(21, 3))
    pred = 0.8 * Rotation.from_rotvec([0.3, -0.2, 0.5]).apply(target) + 7.0 + rng.normal(scale=4.0, size=(21, 3))

    def squared_error(params):
        s, rotvec, t = params[0], params[1:4], params[4:7]
        aligned = s * Rotation.from_rotvec(rotvec).apply(pred) + t
        return np.sum((aligned - target) ** 2)

    best = minimize(squared_error, x0=np.r_[1.0, np.zeros(6)], method="BFGS")
    s, rotvec, t = best.x[0], best.x[1:4], best.x[4:7]
    expected = np.linalg.norm(s * Rotation.from_rotvec(rotvec).apply(pred) + t - target, axis=-1).mean()
    got = float(pa_mpjpe(pred[None].astype(np.float32), target[None].astype(np.float32)))
    assert got == pytest.approx(expected, rel=2e-3)


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (
            lambda: angle_mae(np.zeros((2, 16, 5)), np.zeros((2, 16, 5)), np.ones((2, 5))),
            r"\(batch, 20, time\).*\(2, 16, 5\)",
        ),
        (
            lambda: angle_mae(np.zeros((2, 20, 5)), np.zeros((2, 20, 4)), np.ones((2, 5))),
            r"target.*\(2, 20, 5\).*\(2, 20, 4\)",
        ),
        (
            lambda: angle_mae(np.zeros((2, 20, 5)), np.zeros((2, 20, 5)), np.ones((2, 20, 5))),
            r"mask.*\(2, 5\).*\(2, 20, 5\)",
        ),
        (
            lambda: fingertip_distance(np.zeros((1, 20, 5)), np.zeros((1, 20, 5)), np.ones((1, 5)), HAND, every=0),
            r"every.*positive.*0",
        ),
        (
            lambda: motion_magnitudes(np.zeros((1, 20, 5)), np.ones((1, 5)), sample_rate=-1.0),
            r"sample_rate.*positive.*-1",
        ),
        (lambda: mpjpe(np.zeros((4, 21, 3)), np.zeros((4, 21, 2))), r"target_joints.*\(4, 21, 3\).*\(4, 21, 2\)"),
        (lambda: mpjpe(np.zeros((4, 21, 3)), np.zeros((4, 21, 3)), np.ones((21,))), r"mask.*\(4,\).*\(21,\)"),
        (lambda: pa_mpjpe(np.zeros((4, 2, 3)), np.zeros((4, 2, 3))), r"at least 3 joints.*2"),
    ],
)
def test_bad_inputs_are_clear_errors(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()
