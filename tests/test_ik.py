"""Tests for emgjax.kinematics.ik (landmarks -> joint angles) and emgjax.kinematics.mano (MANO theta labels).

MANO itself is licence-restricted: the MANO tests build a made-up model in MANO's format (778
vertices, 16 joints, MANO's joint tree) from our synthetic hand's rest landmarks.
"""

import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from emgjax.kinematics import (
    DEFAULT_MAX_FIT_ERROR_MM,
    fit_angles,
    fit_hand,
    fit_mask,
    synthetic_hand_model,
)
from emgjax.kinematics.ik import (
    _block_tridiagonal_solve,
    joint_bounds,
    landmarks_and_jacobian,
    mean_pose,
    model_landmarks,
    similarity_transform,
)
from emgjax.kinematics.mano import (
    MANO_FINGERTIP_VERTICES,
    MANO_PARENTS,
    ManoModelError,
    fit_mano_theta,
    load_mano,
    mano_from_arrays,
    mano_landmarks,
)

HAND = synthetic_hand_model()
LOWER, UPPER = (np.asarray(b) for b in joint_bounds(HAND))


def random_poses(rng, n):
    return rng.uniform(LOWER, UPPER, size=(n, 20)).astype(np.float32)


def smooth_poses(rng, n, fps=30.0):
    """(n, 20) smooth motion inside the limits at 30 fps: a sine per joint at 0.1-0.5 Hz."""
    t = np.arange(n)[:, None] / fps
    frequency = rng.uniform(0.1, 0.5, 20)
    phase = rng.uniform(0, 2 * np.pi, 20)
    return (mean_pose(HAND) + 0.4 * (UPPER - LOWER) * np.sin(2 * np.pi * frequency * t + phase)).astype(np.float32)


def observe(angles, rng, *, scale=0.9, noise_mm=0.0, per_frame_pose=True):
    """MediaPipe-ordered landmarks (..., 21, 3) mm of the synthetic hand seen under a random global pose."""
    points = np.asarray(model_landmarks(jnp.asarray(angles), HAND))
    frames = points.shape[:-2]
    count = int(np.prod(frames)) if per_frame_pose else 1
    rotation = Rotation.random(count, random_state=rng.integers(1 << 31)).as_matrix().astype(np.float32)
    translation = rng.normal(0, 300, (count, 3)).astype(np.float32)
    if per_frame_pose:
        rotation = rotation.reshape(*frames, 3, 3)
        translation = translation.reshape(*frames, 3)
    else:
        rotation, translation = rotation[0], translation[0]
    world = scale * np.einsum("...ab,...jb->...ja", rotation, points) + translation[..., None, :]
    world = world + rng.normal(0, noise_mm, world.shape) if noise_mm else world
    return world.astype(np.float32), rotation, translation


def angle_error_deg(fitted, truth):
    return np.degrees(np.abs(np.asarray(fitted) - truth))


def test_analytic_jacobian_matches_autodiff():
    angles = jnp.asarray(random_poses(np.random.default_rng(0), 4))
    points, jacobian = jax.jit(landmarks_and_jacobian)(angles, HAND)
    reference = jax.jit(jax.vmap(jax.jacfwd(lambda a: model_landmarks(a, HAND))))(angles)
    np.testing.assert_allclose(points, model_landmarks(angles, HAND), atol=1e-4)
    np.testing.assert_allclose(jacobian, reference, atol=2e-3)  # entries up to ~100 mm/rad, float32


def test_block_tridiagonal_solve_matches_dense():
    rng = np.random.default_rng(1)
    batch, steps, size = 2, 5, 3
    blocks = rng.normal(size=(batch, steps, size, size))
    diagonal = blocks @ np.swapaxes(blocks, -1, -2) + 5 * np.eye(size)
    coupling = rng.uniform(0, 1, (batch, steps))
    rhs = rng.normal(size=(batch, steps, size))
    solved = _block_tridiagonal_solve(jnp.asarray(diagonal), jnp.asarray(coupling), jnp.asarray(rhs))
    for b in range(batch):
        dense = np.zeros((steps * size, steps * size))
        for t in range(steps):
            dense[t * size : (t + 1) * size, t * size : (t + 1) * size] = diagonal[b, t]
            if t:
                dense[t * size : (t + 1) * size, (t - 1) * size : t * size] = -coupling[b, t] * np.eye(size)
                dense[(t - 1) * size : t * size, t * size : (t + 1) * size] = -coupling[b, t] * np.eye(size)
        np.testing.assert_allclose(solved[b].reshape(-1), np.linalg.solve(dense, rhs[b].reshape(-1)), atol=1e-4)


def test_similarity_transform_recovers_a_known_transform():
    rng = np.random.default_rng(2)
    source = rng.normal(size=(4, 6, 3)).astype(np.float32)
    rotation = Rotation.random(4, random_state=3).as_matrix().astype(np.float32)
    target = 1.7 * np.einsum("nab,njb->nja", rotation, source) + np.float32([1, 2, 3])
    found_rotation, found_scale, found_translation = similarity_transform(jnp.asarray(source), jnp.asarray(target))
    np.testing.assert_allclose(found_rotation, rotation, atol=1e-4)
    np.testing.assert_allclose(found_scale, 1.7, rtol=1e-5)
    np.testing.assert_allclose(found_translation, np.broadcast_to([1, 2, 3], (4, 3)), atol=1e-4)


def test_noise_free_round_trip_is_exact_and_recovers_the_global_pose():
    rng = np.random.default_rng(3)
    truth = random_poses(rng, 64)
    landmarks, rotation, translation = observe(truth, rng, scale=1.12)
    fit = fit_hand(landmarks, HAND, units="mm")
    error = angle_error_deg(fit.angles, truth)
    assert error.mean() < 0.01 and error.max() < 0.5, (error.mean(), error.max())
    assert float(np.max(fit.fit_error_mm)) < 0.02
    np.testing.assert_allclose(float(fit.scale), 1.12, rtol=1e-4)
    np.testing.assert_allclose(fit.rotation, rotation, atol=1e-3)
    np.testing.assert_allclose(fit.translation, translation, atol=0.05)
    assert bool(np.all(fit.mask()))


def test_noisy_frames_fit_within_the_noise_and_the_goals():
    # Independent frames with 2 mm noise per coordinate: the fit error is the goal's <= 3 mm; the
    # angle error is set by the noise (Cramer-Rao ~5 degrees on this hand, see bench/ik.py), so
    # this bounds it loosely and checks no frame is lost to a wrong local minimum.
    rng = np.random.default_rng(4)
    truth = random_poses(rng, 200)
    landmarks, _, _ = observe(truth, rng, noise_mm=2.0)
    angles, fit_error = fit_angles(landmarks / 1000.0, HAND)  # metres, the default units
    error = angle_error_deg(angles, truth)
    assert error.mean() < 6.0, error.mean()
    assert float(np.mean(fit_error)) <= 3.0
    assert float(np.max(fit_error)) < 5.0  # a wrong local minimum costs centimetres


def test_smoothness_on_a_smooth_sequence_meets_the_angle_goal():
    rng = np.random.default_rng(5)
    truth = smooth_poses(rng, 200)
    landmarks, _, _ = observe(truth, rng, noise_mm=2.0, per_frame_pose=False)
    rough, _ = fit_angles(landmarks, HAND, units="mm")
    smooth, fit_error = fit_angles(landmarks, HAND, units="mm", smoothness=3000.0)
    rough_error, smooth_error = angle_error_deg(rough, truth).mean(), angle_error_deg(smooth, truth).mean()
    assert smooth_error <= 2.5, smooth_error
    assert smooth_error < 0.6 * rough_error, (smooth_error, rough_error)
    assert float(np.mean(fit_error)) <= 3.0


def test_joint_limits_are_respected():
    rng = np.random.default_rng(6)
    beyond = np.where(rng.random((2, 8, 20)) < 0.5, LOWER - 0.3, UPPER + 0.3).astype(np.float32)
    landmarks, _, _ = observe(beyond, rng)
    for smoothness in (0.0, 10.0):  # the per-frame and the whole-sequence steps
        angles = np.asarray(fit_angles(landmarks, HAND, units="mm", smoothness=smoothness)[0])
        assert np.all(angles >= LOWER - 1e-6) and np.all(angles <= UPPER + 1e-6)
        # Poses beyond the limits cannot be matched; the fit should still find the best feasible one:
        # no worse than a fit started from the clipped true angles.
        clipped = np.clip(beyond, LOWER, UPPER)
        _, reference = fit_angles(landmarks, HAND, units="mm", smoothness=smoothness, init_angles=clipped)
        _, error = fit_angles(landmarks, HAND, units="mm", smoothness=smoothness)
        assert float(np.mean(error)) <= float(np.mean(reference)) + 0.5, (np.mean(error), np.mean(reference))


def test_units_and_given_scale_and_warm_start_agree():
    rng = np.random.default_rng(7)
    truth = random_poses(rng, 16)
    landmarks, _, _ = observe(truth, rng, scale=0.95, noise_mm=1.0)
    fit_mm = fit_hand(landmarks, HAND, units="mm")
    fit_cm = fit_hand(landmarks / 10.0, HAND, units="cm")
    np.testing.assert_allclose(fit_cm.angles, fit_mm.angles, atol=5e-3)  # float32 rounding, not units
    np.testing.assert_allclose(fit_cm.fit_error_mm, fit_mm.fit_error_mm, atol=5e-3)
    given = fit_hand(landmarks, HAND, units="mm", scale=float(fit_mm.scale))
    np.testing.assert_allclose(given.angles, fit_mm.angles, atol=5e-3)
    # A warm start (e.g. the previous frame's fit) needs few iterations; a cold start does not get there.
    warm = fit_hand(
        landmarks, HAND, units="mm", init_angles=np.asarray(fit_mm.angles), iterations=2, refine_iterations=1
    )
    cold = fit_hand(landmarks, HAND, units="mm", iterations=2, refine_iterations=1)
    assert np.abs(np.asarray(warm.angles) - fit_mm.angles).max() < 0.02
    assert np.abs(np.asarray(cold.angles) - fit_mm.angles).max() > 0.05


def test_missing_frames_are_masked_and_do_not_disturb_the_rest():
    rng = np.random.default_rng(8)
    truth = smooth_poses(rng, 16).reshape(2, 1, 8, 20)  # two sequences of 8 frames, an extra batch axis
    landmarks, _, _ = observe(truth, rng, per_frame_pose=False)
    landmarks[0, 0, 3] = np.nan
    landmarks[1, 0, 7, 4, 1] = np.inf
    missing = np.zeros((2, 1, 8), bool)
    missing[0, 0, 3] = missing[1, 0, 7] = True
    for smoothness, tolerance_deg in ((0.0, 0.5), (100.0, 2.0)):  # smoothing biases noise-free frames a little
        angles, fit_error = fit_angles(landmarks, HAND, units="mm", smoothness=smoothness)
        assert angles.shape == (2, 1, 8, 20) and fit_error.shape == (2, 1, 8)
        assert np.all(np.isnan(np.asarray(angles)[missing])) and np.all(np.isnan(np.asarray(fit_error)[missing]))
        np.testing.assert_array_equal(fit_mask(fit_error), ~missing)
        assert angle_error_deg(np.asarray(angles)[~missing], truth[~missing]).max() < tolerance_deg
    angles, fit_error = fit_angles(np.full((3, 21, 3), np.nan, np.float32), HAND)
    assert np.all(np.isnan(np.asarray(angles))) and not np.any(fit_mask(fit_error))


def test_a_wrong_hand_is_masked_by_its_fit_error():
    rng = np.random.default_rng(9)
    truth = random_poses(rng, 8)
    landmarks, _, _ = observe(truth, rng)
    # Scramble the fingers' landmarks within each frame: no hand pose explains them.
    scrambled = landmarks.copy()
    scrambled[:, 2:] = landmarks[:, 2:][:, rng.permutation(19)]
    _, fit_error = fit_angles(np.concatenate([landmarks, scrambled]), HAND, units="mm", scale=0.9)
    mask = np.asarray(fit_mask(fit_error))
    assert mask[:8].all() and not mask[8:].any(), np.asarray(fit_error)
    assert np.array_equal(mask, np.asarray(fit_error) <= DEFAULT_MAX_FIT_ERROR_MM)
    assert not fit_mask(np.float32(np.nan)) and fit_mask(np.float32(3.0), max_error_mm=5.0)


@pytest.mark.parametrize(
    ("landmarks", "kwargs", "message"),
    [
        (np.zeros((4, 21, 2), np.float32), {}, r"expected shape \(\.\.\., 21, 3\)"),
        (np.zeros((4, 20, 3), np.float32), {}, r"expected shape \(\.\.\., 21, 3\)"),
        (np.zeros((21,), np.float32), {}, r"expected shape \(\.\.\., 21, 3\)"),
        (np.zeros((0, 21, 3), np.float32), {}, "at least one frame"),
        ([[0.0] * 3] * 21, {}, "NumPy or JAX array"),
        (np.zeros((21, 3), bool), {}, "real numeric array"),
        (None, {"units": "inch"}, "units: expected one of 'm', 'cm', 'mm'"),
        (None, {"units": "m"}, "are the landmarks in other units"),  # millimetres declared as metres
        (None, {"scale": -1.0, "units": "mm"}, "scale: expected a positive"),
        (None, {"smoothness": float("nan"), "units": "mm"}, "smoothness: expected a finite number"),
        (None, {"iterations": 1.5, "units": "mm"}, "iterations: expected an integer"),
        (None, {"init_angles": np.zeros((3, 19)), "units": "mm"}, r"init_angles: expected shape \(\.\.\., 20\)"),
        (None, {"landmark_weights": np.ones(20), "units": "mm"}, "landmark_weights: expected 21"),
    ],
)
def test_bad_inputs_are_refused_clearly(landmarks, kwargs, message):
    if landmarks is None:
        landmarks, _, _ = observe(random_poses(np.random.default_rng(10), 2), np.random.default_rng(11))
    with pytest.raises(ValueError, match=message):
        fit_angles(landmarks, HAND, **kwargs)


def test_small_landmarks_in_metres_declared_as_millimetres_are_refused():
    landmarks, _, _ = observe(random_poses(np.random.default_rng(12), 2), np.random.default_rng(13))
    with pytest.raises(ValueError, match=r"median of 0\.0"):
        fit_angles(landmarks / 1000.0, HAND, units="mm")


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lead=st.lists(st.integers(1, 2), min_size=0, max_size=3), seed=st.integers(0, 2**16))
def test_batch_axes_are_kept_and_frames_are_independent(lead, seed):
    # Small sizes: each new padded frame count compiles the solver again (seconds).
    rng = np.random.default_rng(seed)
    shape = tuple(lead)
    truth = random_poses(rng, int(np.prod(shape, dtype=int))).reshape(*shape, 20)
    landmarks, _, _ = observe(truth, rng)
    fit = fit_hand(landmarks, HAND, units="mm", scale=0.9)
    assert fit.angles.shape == (*shape, 20) and fit.fit_error_mm.shape == shape
    assert fit.rotation.shape == (*shape, 3, 3) and fit.translation.shape == (*shape, 3)
    assert fit.scale.shape == ()
    assert angle_error_deg(fit.angles, truth).max() < 1.0
    if shape:
        # The first frame alone gives the same answer as inside the batch.
        first = fit_hand(landmarks[(0,) * len(shape)], HAND, units="mm", scale=0.9)
        np.testing.assert_allclose(first.angles, fit.angles[(0,) * len(shape)], atol=1e-3)


# ---------------------------------------------------------------------------
# MANO
# ---------------------------------------------------------------------------

# MediaPipe index of each MANO joint (0 wrist, index 1-3, middle 4-6, little 7-9, ring 10-12, thumb 13-15).
JOINT_TO_MEDIAPIPE = (0, 5, 6, 7, 9, 10, 11, 17, 18, 19, 13, 14, 15, 1, 2, 3)
TIPS_MEDIAPIPE = (4, 8, 12, 16, 20)  # thumb, index, middle, ring, little
TIP_PARENT_JOINT = (15, 3, 6, 12, 9)


def fake_mano_arrays(seed=0):
    """MANO-format arrays (metres) of a made-up hand: joints and tips from the synthetic hand."""
    rng = np.random.default_rng(seed)
    hand = synthetic_hand_model()
    rest = np.asarray(model_landmarks(mean_pose(hand) * 0.0, hand), np.float64) / 1000.0  # flat hand, MediaPipe order
    vertices = np.zeros((778, 3))
    weights = np.zeros((778, 16))
    owner = rng.integers(0, 16, 778)
    vertices[:] = rest[np.asarray(JOINT_TO_MEDIAPIPE)[owner]] + rng.normal(0, 0.004, (778, 3))
    weights[np.arange(778), owner] = 1.0
    for joint, point in enumerate(JOINT_TO_MEDIAPIPE):
        vertices[joint] = rest[point]
    for vertex, point, parent in zip(MANO_FINGERTIP_VERTICES, TIPS_MEDIAPIPE, TIP_PARENT_JOINT, strict=True):
        vertices[vertex] = rest[point]
        weights[vertex] = 0.0
        weights[vertex, parent] = 1.0
    regressor = np.zeros((16, 778))
    regressor[np.arange(16), np.arange(16)] = 1.0
    return {
        "v_template": vertices,
        "shapedirs": rng.normal(0, 1e-3, (778, 3, 10)),
        "posedirs": rng.normal(0, 1e-5, (778, 3, 135)),
        "J_regressor": regressor,
        "weights": weights,
        "kintree_table": np.stack([np.asarray([2**32 - 1, *MANO_PARENTS[1:]]), np.arange(16)]),
        "hands_mean": rng.normal(0, 0.1, 45),
        "f": rng.integers(0, 778, (1538, 3)),
    }


def test_load_mano_reads_a_plain_npz(tmp_path):
    arrays = fake_mano_arrays()
    np.savez(tmp_path / "mano.npz", **arrays)
    mano = load_mano(tmp_path / "mano.npz")
    np.testing.assert_allclose(mano.shaped_vertices, arrays["v_template"] * 1000, atol=1e-3)
    np.testing.assert_allclose(mano.hands_mean, arrays["hands_mean"], atol=1e-6)
    shaped = load_mano(tmp_path / "mano.npz", betas=np.ones(10))
    expected = (arrays["v_template"] + arrays["shapedirs"].sum(-1)) * 1000
    np.testing.assert_allclose(shaped.shaped_vertices, expected, atol=1e-3)
    # At theta = 0 the landmarks are the rest joints and fingertip vertices, in MediaPipe order, mm.
    points = np.asarray(mano_landmarks(jnp.zeros(45), mano))
    np.testing.assert_allclose(points[list(JOINT_TO_MEDIAPIPE)], arrays["v_template"][:16] * 1000, atol=1e-3)
    np.testing.assert_allclose(
        points[list(TIPS_MEDIAPIPE)], arrays["v_template"][list(MANO_FINGERTIP_VERTICES)] * 1000, atol=1e-3
    )


def test_pickles_and_bad_files_are_refused_clearly(tmp_path):
    arrays = fake_mano_arrays()
    pickled = tmp_path / "MANO_RIGHT.pkl"
    pickled.write_bytes(pickle.dumps(arrays))
    with pytest.raises(ManoModelError, match="never unpickles"):
        load_mano(pickled)
    with pytest.raises(FileNotFoundError, match="licence-restricted"):
        load_mano(tmp_path / "absent.npz")
    np.savez(tmp_path / "objects.npz", v_template=np.array([object()], dtype=object))
    with pytest.raises(ManoModelError, match="plain numeric arrays"):
        load_mano(tmp_path / "objects.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ManoModelError, match="unreadable"):
        load_mano(tmp_path / "text.npz")
    missing = {k: v for k, v in arrays.items() if k != "posedirs"}
    with pytest.raises(ManoModelError, match="missing posedirs"):
        mano_from_arrays(missing)
    with pytest.raises(ManoModelError, match=r"expected weights of shape \(778, 16\)"):
        mano_from_arrays({**arrays, "weights": arrays["weights"][:, :15]})
    with pytest.raises(ManoModelError, match="joint tree"):
        mano_from_arrays({**arrays, "kintree_table": np.zeros((2, 16))})
    with pytest.raises(ManoModelError, match="betas: expected 10"):
        mano_from_arrays(arrays, betas=np.ones(3))
    with pytest.raises(ValueError, match="expected a ManoModel"):
        fit_mano_theta(np.zeros((21, 3)), synthetic_hand_model())


def test_fit_mano_theta_reproduces_mano_landmarks():
    rng = np.random.default_rng(1)
    mano = mano_from_arrays(fake_mano_arrays())
    theta = rng.uniform(-0.35, 0.35, (8, 45)).astype(np.float32)
    points = np.asarray(mano_landmarks(jnp.asarray(theta), mano))
    rotation = Rotation.random(8, random_state=2).as_matrix()
    landmarks = 1.05 * np.einsum("nab,njb->nja", rotation, points) + rng.normal(0, 100, (8, 1, 3))
    landmarks[5] = np.nan
    fit = fit_mano_theta(landmarks / 1000.0, mano)
    assert fit.angles.shape == (8, 45) and fit.fit_error_mm.shape == (8,)
    error = np.asarray(fit.fit_error_mm)
    assert np.isnan(error[5]) and not bool(fit.mask()[5])
    # 45 values against 21 landmarks: theta is not unique (bone twist), the landmarks are.
    assert np.nanmax(error) < 1.0, error
    np.testing.assert_allclose(float(fit.scale), 1.05, rtol=1e-2)
