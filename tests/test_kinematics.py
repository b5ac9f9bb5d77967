"""Tests for emgjax.kinematics: hand model files, forward kinematics, MediaPipe layout."""

import importlib.util
import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from jax.test_util import check_grads

from emgjax.kinematics import (
    FINGER_NAMES,
    FINGERTIP_INDICES,
    HAND_MODEL_ENV,
    JOINT_NAMES,
    LANDMARK_NAMES,
    MOVING_LANDMARK_INDICES,
    PROXIMAL_LANDMARK_INDICES,
    HandModel,
    HandModelError,
    forward_kinematics,
    hand_model_from_dict,
    hand_model_to_dict,
    load_hand_model,
    mirror_hand_model,
    save_hand_model,
    synthetic_hand_model,
)
from emgjax.kinematics.mediapipe import (
    HAND_MODEL_TO_MEDIAPIPE,
    MEDIAPIPE_LANDMARK_NAMES,
    hand_model_to_mediapipe,
)

# ---------------------------------------------------------------------------
# A tiny hand whose FK we can do by hand: every finger straight along +y,
# flexion axes -x (a positive angle turns +y toward -z), abduction axes +z.
# The index finger has MCP at (0, 100, 0), PIP at y = 140, DIP at y = 165 and
# its tip at y = 185.
# ---------------------------------------------------------------------------


def straight_hand_dict() -> dict:
    axes = np.zeros((22, 3))
    rest = np.zeros((22, 3))
    landmarks = np.zeros((21, 3))
    bones = np.zeros((21, 2), dtype=int)
    weights = np.zeros((21, 2))
    weights[:, 0] = 1.0
    for f in range(5):
        x = 20.0 * (f - 1)  # index at x = 0
        mcp, pip, dip, tip = ([x, y, 0.0] for y in (100.0, 140.0, 165.0, 185.0))
        axes[4 * f] = (0.0, 0.0, 1.0)
        axes[4 * f + 1 : 4 * f + 4] = (-1.0, 0.0, 0.0)
        rest[4 * f] = rest[4 * f + 1] = mcp
        rest[4 * f + 2], rest[4 * f + 3] = pip, dip
        proximal, intermediate, distal = 2 + 3 * f, 3 + 3 * f, 4 + 3 * f
        landmarks[f], bones[f] = tip, distal
        if f == 0:  # thumb: intermediate and distal frame landmarks
            landmarks[6], bones[6] = pip, intermediate
            landmarks[7], bones[7] = dip, distal
        else:
            base = 8 + 3 * (f - 1)
            landmarks[base], bones[base] = mcp, proximal
            landmarks[base + 1], bones[base + 1] = pip, intermediate
            landmarks[base + 2], bones[base + 2] = dip, distal
    axes[20], axes[21] = (1.0, 0.0, 0.0), (0.0, 0.0, 1.0)
    landmarks[20], bones[20] = (0.0, 50.0, 0.0), 1
    bones[:, 1] = bones[:, 0]
    return {
        "joint_rotation_axes": axes.tolist(),
        "joint_rest_positions": rest.tolist(),
        "landmark_rest_positions": landmarks.tolist(),
        "landmark_rest_bone_indices": bones.tolist(),
        "landmark_rest_bone_weights": weights.tolist(),
        "joint_parent": [-1] * 22,
        "joint_first_child": [-1] * 22,
        "joint_next_sibling": [-1] * 22,
        "joint_frame_index": [0] * 22,
        "hand_scale": 1.0,
        "mesh_vertices": [[0.0, 0.0, 0.0]],  # ignored like UmeTrack's mesh fields
    }


def index_angles(**named) -> jnp.ndarray:
    angles = np.zeros(20, dtype=np.float32)
    for name, value in named.items():
        angles[JOINT_NAMES.index(name)] = value
    return jnp.asarray(angles)


INDEX_TIP, INDEX_DISTAL, INDEX_INTERMEDIATE = 1, 10, 9


def test_names_and_index_groups():
    assert len(JOINT_NAMES) == 20 and JOINT_NAMES[0] == "THUMB_CMC_FE" and JOINT_NAMES[-1] == "PINKY_DIP_FE"
    assert len(LANDMARK_NAMES) == 21 and len(set(LANDMARK_NAMES)) == 21
    assert [LANDMARK_NAMES[i] for i in FINGERTIP_INDICES][1] == "index_fingertip"
    assert [LANDMARK_NAMES[i] for i in PROXIMAL_LANDMARK_INDICES] == [
        "index_proximal",
        "middle_proximal",
        "ring_proximal",
        "pinky_proximal",
    ]
    assert len(MOVING_LANDMARK_INDICES) == 17


def test_zero_angles_give_rest_landmarks():
    for hand in (synthetic_hand_model(), hand_model_from_dict(straight_hand_dict())):
        landmarks = forward_kinematics(jnp.zeros(20), hand)
        np.testing.assert_allclose(landmarks, hand.landmark_rest_positions, atol=1e-5)


def test_hand_computed_flexion():
    hand = hand_model_from_dict(straight_hand_dict())
    # PIP at 90 degrees: the distal part folds down around (0, 140, 0).
    out = np.asarray(forward_kinematics(index_angles(INDEX_PIP_FE=math.pi / 2), hand))
    np.testing.assert_allclose(out[INDEX_INTERMEDIATE], [0, 140, 0], atol=1e-4)
    np.testing.assert_allclose(out[INDEX_DISTAL], [0, 140, -25], atol=1e-4)
    np.testing.assert_allclose(out[INDEX_TIP], [0, 140, -45], atol=1e-4)
    # MCP and PIP at 90 degrees: a hook around (0, 100, 0).
    out = np.asarray(forward_kinematics(index_angles(INDEX_MCP_FE=math.pi / 2, INDEX_PIP_FE=math.pi / 2), hand))
    np.testing.assert_allclose(out[INDEX_INTERMEDIATE], [0, 100, -40], atol=1e-4)
    np.testing.assert_allclose(out[INDEX_DISTAL], [0, 75, -40], atol=1e-4)
    np.testing.assert_allclose(out[INDEX_TIP], [0, 55, -40], atol=1e-4)
    # Other fingers do not move.
    np.testing.assert_allclose(out[2], [20, 185, 0], atol=1e-4)


def test_hand_computed_abduction_and_chain_order():
    hand = hand_model_from_dict(straight_hand_dict())
    out = np.asarray(forward_kinematics(index_angles(INDEX_MCP_AA=math.pi / 2), hand))
    np.testing.assert_allclose(out[INDEX_TIP], [-85, 100, 0], atol=1e-4)
    # M2 = L_AA L_FE: the flexion acts first in rest coordinates, then the
    # abduction turns the flexed finger about the palm normal (+z), which
    # leaves a finger pointing straight down where it is.
    both = index_angles(INDEX_MCP_AA=math.pi / 2, INDEX_MCP_FE=math.pi / 2)
    out = np.asarray(forward_kinematics(both, hand))
    np.testing.assert_allclose(out[INDEX_TIP], [0, 100, -85], atol=1e-4)


def test_linear_blend_skinning_weights():
    data = straight_hand_dict()
    # Index tip skinned half to the proximal frame, half to the distal frame.
    data["landmark_rest_bone_indices"][INDEX_TIP] = [5, 7]
    data["landmark_rest_bone_weights"][INDEX_TIP] = [0.5, 0.5]
    hand = hand_model_from_dict(data)
    out = np.asarray(forward_kinematics(index_angles(INDEX_DIP_FE=math.pi / 2), hand))
    # proximal frame: (0, 185, 0); distal frame: (0, 165, -20); average.
    np.testing.assert_allclose(out[INDEX_TIP], [0, 175, -10], atol=1e-4)


def test_jacobian_matches_hand_computed_velocity():
    hand = hand_model_from_dict(straight_hand_dict())
    pip = JOINT_NAMES.index("INDEX_PIP_FE")
    jac = jax.jacfwd(lambda a: forward_kinematics(a, hand))(jnp.zeros(20))  # (21, 3, 20)
    # Tip velocity = axis x (tip - pivot) = (-x) x (0, 45, 0) = (0, 0, -45) per radian.
    np.testing.assert_allclose(jac[INDEX_TIP, :, pip], [0, 0, -45], atol=1e-4)
    np.testing.assert_allclose(jac[INDEX_INTERMEDIATE, :, pip], [0, 0, 0], atol=1e-5)


def test_batching_over_leading_dims_matches_single_calls():
    hand = synthetic_hand_model()
    angles = jax.random.uniform(jax.random.key(0), (2, 3, 20), minval=-1.0, maxval=1.5)
    batched = forward_kinematics(angles, hand)
    assert batched.shape == (2, 3, 21, 3)
    for i in range(2):
        for t in range(3):
            np.testing.assert_allclose(batched[i, t], forward_kinematics(angles[i, t], hand), atol=1e-4)


def _as_float64(hand: HandModel) -> HandModel:
    return jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float64), hand)


def test_gradients_match_finite_differences_in_angles_and_geometry():
    # Derivatives of FK, through the hand as a (jit) argument, agree with
    # central finite differences (float64 so that differences are accurate),
    # at a random pose and at exactly zero angles.
    with jax.enable_x64(True):
        hand = _as_float64(synthetic_hand_model())
        angles = jax.random.uniform(jax.random.key(1), (2, 20), jnp.float64, minval=-0.5, maxval=1.5)

        def spread(a, h):  # forward_kinematics runs its jitted core with the hand as an argument
            return jnp.sum(forward_kinematics(a, h) ** 2) / 1e4

        for point in (angles, jnp.zeros_like(angles)):
            check_grads(spread, (point, hand), order=1, modes=("rev",), eps=1e-4, atol=1e-4, rtol=1e-4)


def test_hand_model_is_a_pytree_and_fk_scales_with_the_geometry():
    hand = synthetic_hand_model()
    leaves = jax.tree_util.tree_leaves(hand)
    assert all(jnp.issubdtype(leaf.dtype, jnp.floating) for leaf in leaves)
    assert isinstance(hand.landmark_rest_bone_indices, tuple)
    # Rotations about axes through the pivots commute with scaling about the
    # origin: a hand twice as large (every position doubled, axes kept) gives
    # landmarks exactly twice as far out, for any pose.
    doubled = jax.tree_util.tree_map(lambda x: 2 * x, hand).replace(
        joint_rotation_axes=hand.joint_rotation_axes, landmark_rest_bone_weights=hand.landmark_rest_bone_weights
    )
    angles = jax.random.uniform(jax.random.key(4), (3, 20), minval=-0.5, maxval=1.5)
    np.testing.assert_allclose(
        forward_kinematics(angles, doubled), 2 * forward_kinematics(angles, hand), rtol=1e-5, atol=1e-3
    )


def test_wrong_angle_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"\(\.\.\., 20\).*found \(2, 20, 5\)"):
        forward_kinematics(jnp.zeros((2, 20, 5)), synthetic_hand_model())


# ---------------------------------------------------------------------------
# Rigid motion: with one-hot weights, consecutive landmarks along a finger
# lie on one rigid bone (or on the joint between two), so their distance
# never changes whatever the angles.
# ---------------------------------------------------------------------------

_BONES = [(6, 7), (7, 0), (5, 20)] + [
    pair
    for f in range(1, 5)
    for pair in (
        (8 + 3 * (f - 1), 9 + 3 * (f - 1)),
        (9 + 3 * (f - 1), 10 + 3 * (f - 1)),
        (10 + 3 * (f - 1), f),
        (5, 8 + 3 * (f - 1)),
    )
]
_SYNTHETIC = synthetic_hand_model()
_FK_JIT = jax.jit(forward_kinematics)


@settings(max_examples=30, deadline=None)
@given(arrays(np.float32, (20,), elements=st.floats(-3.125, 3.125, width=32)))
def test_bone_lengths_are_invariant_under_random_angles(angles):
    rest = np.asarray(_SYNTHETIC.landmark_rest_positions)
    moved = np.asarray(_FK_JIT(jnp.asarray(angles), _SYNTHETIC))
    for a, b in _BONES:
        rest_length = np.linalg.norm(rest[a] - rest[b])
        assert abs(np.linalg.norm(moved[a] - moved[b]) - rest_length) < 1e-3 * max(rest_length, 1.0)
    # The proximal frames never move (emg2pose leaves them out of metrics).
    np.testing.assert_allclose(moved[list(PROXIMAL_LANDMARK_INDICES)], rest[list(PROXIMAL_LANDMARK_INDICES)], atol=1e-3)


# ---------------------------------------------------------------------------
# The synthetic hand is anatomically sensible
# ---------------------------------------------------------------------------


def test_synthetic_hand_is_plausible():
    hand = synthetic_hand_model()
    rest = np.asarray(hand.landmark_rest_positions)
    hand_length = np.linalg.norm(rest[2] - rest[5])  # wrist to middle fingertip
    assert 170 < hand_length < 200
    breadth = np.linalg.norm(rest[8] - rest[17])  # index to little MCP centres
    assert 50 < breadth < 75

    # Positive flexion curls every finger toward the palm (-z) and the wrist.
    grasp = np.zeros(20, dtype=np.float32)
    grasp[[5, 9, 13, 17]], grasp[[6, 10, 14, 18]], grasp[[7, 11, 15, 19]] = 0.8, 0.9, 0.5
    grasp[[0, 2, 3]] = 0.4, 0.5, 0.6
    moved = np.asarray(forward_kinematics(jnp.asarray(grasp), hand))
    assert np.all(moved[1:5, 2] < rest[1:5, 2] - 40) and np.all(moved[1:5, 1] < rest[1:5, 1] - 20)
    displacement = np.linalg.norm(moved[:5] - rest[:5], axis=-1)
    assert np.all((displacement > 50) & (displacement < 120)), displacement
    # Thumb flexion brings its tip toward the little finger side (+x).
    assert moved[0, 0] > rest[0, 0] + 15

    # Positive abduction spreads away from the middle finger.
    spread = np.zeros(20, dtype=np.float32)
    spread[[4, 12, 16]] = 0.3
    moved = np.asarray(forward_kinematics(jnp.asarray(spread), hand))
    assert moved[1, 0] < rest[1, 0] - 10  # index toward the thumb (-x)
    assert moved[3, 0] > rest[3, 0] + 10 and moved[4, 0] > rest[4, 0] + 10

    limits = np.asarray(hand.joint_limits)
    assert limits.shape == (20, 2) and np.all(limits[:, 0] < limits[:, 1])


def test_mirror_hand_mirrors_fk():
    hand = synthetic_hand_model()
    angles = jax.random.uniform(jax.random.key(2), (3, 20), minval=-0.5, maxval=1.5)
    right = np.asarray(forward_kinematics(angles, hand))
    left = np.asarray(forward_kinematics(angles, mirror_hand_model(hand)))
    np.testing.assert_allclose(left, right * np.array([-1.0, 1.0, 1.0]), atol=1e-4)


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------


def test_save_load_round_trip(tmp_path, monkeypatch):
    hand = synthetic_hand_model()
    path = tmp_path / "hand.json"
    save_hand_model(hand, path)
    loaded = load_hand_model(path)
    for a, b in zip(jax.tree_util.tree_leaves(hand), jax.tree_util.tree_leaves(loaded), strict=True):
        np.testing.assert_array_equal(a, b)
    assert loaded.landmark_rest_bone_indices == hand.landmark_rest_bone_indices
    assert loaded.joint_parent == hand.joint_parent and loaded.joint_frame_index == hand.joint_frame_index
    # Through the environment variable too.
    monkeypatch.setenv("EMGJAX_HAND_MODEL", str(path))
    from_env = load_hand_model()
    np.testing.assert_array_equal(from_env.joint_rest_positions, hand.joint_rest_positions)
    assert hand_model_to_dict(from_env) == hand_model_to_dict(hand)


def test_no_path_and_no_env_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("EMGJAX_HAND_MODEL", raising=False)
    with pytest.raises(ValueError, match=r"EMGJAX_HAND_MODEL.*synthetic_hand_model"):
        load_hand_model()


def test_missing_file_names_path_and_origin(tmp_path, monkeypatch):
    missing = tmp_path / "nope.json"
    with pytest.raises(FileNotFoundError, match=r"nope\.json"):
        load_hand_model(missing)
    monkeypatch.setenv("EMGJAX_HAND_MODEL", str(missing))
    with pytest.raises(FileNotFoundError, match=r"nope\.json.*EMGJAX_HAND_MODEL"):
        load_hand_model()


def _write(tmp_path, content) -> str:
    path = tmp_path / "bad_hand.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def _mutated(**changes) -> dict:
    data = straight_hand_dict()
    for key, value in changes.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    return data


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        ("{not json", r"bad_hand.json.*invalid JSON"),
        ("[1, 2, 3]", r"bad_hand.json.*JSON object.*found list"),
        (_mutated(joint_rest_positions=None), r"bad_hand.json.*'joint_rest_positions' is missing"),
        (_mutated(landmark_rest_positions=[[0.0, 0.0, 0.0]] * 20), r"'landmark_rest_positions'.*\(21, 3\).*\(20, 3\)"),
        (_mutated(joint_parent=[0] * 21), r"'joint_parent'.*\(22,\).*\(21,\)"),
        (_mutated(joint_rotation_axes=[[1.0, 0.0]] * 22), r"'joint_rotation_axes'.*\(22, 3\).*\(22, 2\)"),
        (_mutated(joint_rotation_axes=[[2.0, 0.0, 0.0]] * 22), r"'joint_rotation_axes'.*unit vectors.*norm 2"),
        (_mutated(joint_rest_positions=[[0.0, 1.0]] + [[0.0, 0.0, 0.0]] * 21), r"'joint_rest_positions'.*rectangular"),
        (_mutated(landmark_rest_bone_indices=[[17, 0]] * 21), r"'landmark_rest_bone_indices'.*\[0, 16\].*17"),
        (_mutated(landmark_rest_bone_indices=[[0, 0, 0]] * 21), r"'landmark_rest_bone_indices'.*\(21, 2\).*\(21, 3\)"),
        (_mutated(joint_frame_index=[0.5] * 22), r"'joint_frame_index'.*integer frame indices.*found.*0\.5"),
        (_mutated(hand_scale=-1.0), r"'hand_scale'.*> 0"),
        (_mutated(joint_limits=[[0.0, 1.0]] * 5), r"'joint_limits'.*\(>=20, 2\)"),
    ],
)
def test_bad_files_give_errors_naming_file_and_field(tmp_path, content, pattern):
    with pytest.raises(HandModelError, match=pattern) as info:
        load_hand_model(_write(tmp_path, content))
    assert "bad_hand.json" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_nan_and_truncated_files(tmp_path):
    text = json.dumps(straight_hand_dict())
    with pytest.raises(HandModelError, match=r"bad_hand\.json.*invalid JSON"):
        load_hand_model(_write(tmp_path, text[: len(text) // 2]))
    nan_text = text.replace("185.0", "NaN", 1)
    with pytest.raises(HandModelError, match=r"'landmark_rest_positions'.*NaN"):
        load_hand_model(_write(tmp_path, nan_text))
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(HandModelError, match=r"binary\.json"):
        load_hand_model(tmp_path / "binary.json")
    with pytest.raises(HandModelError, match="directory"):
        load_hand_model(tmp_path)


# ---------------------------------------------------------------------------
# UmeTrack's released encoding (generic_hand_model.json): indices as floats,
# 255 for "none", mesh fields. The file is generated from our synthetic hand
# by tests/fixtures/hand_model_released.py (bench/kinematics_parity.py checks
# that its encoding matches the released file key for key).
# ---------------------------------------------------------------------------


def _released_fixture_module():
    path = Path(__file__).parent / "fixtures" / "hand_model_released.py"
    spec = importlib.util.spec_from_file_location("hand_model_released", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RELEASED = _released_fixture_module()
TOPOLOGY_FIELDS = ("joint_parent", "joint_first_child", "joint_next_sibling", "joint_frame_index")


@pytest.fixture
def released_file(tmp_path) -> Path:
    return RELEASED.write_released_encoding(tmp_path / "generic_hand_model.json")


def test_released_encoding_fixture_has_the_encoding(released_file):
    # Guards the generator: if it drifted back to ints and -1, the loading
    # tests below would no longer exercise the released encoding.
    raw = json.loads(released_file.read_text())
    assert tuple(raw) == RELEASED.RELEASED_KEYS
    for field in (*TOPOLOGY_FIELDS, "mesh_triangles"):
        values = np.ravel(raw[field]).tolist()
        assert all(type(v) is float for v in values), field
    for field in TOPOLOGY_FIELDS:
        assert 255.0 in raw[field] and -1 not in raw[field], field
    assert all(type(v) is int for v in np.ravel(raw["landmark_rest_bone_indices"]).tolist())
    assert type(raw["hand_scale"]) is float
    assert np.shape(raw["joint_limits"]) == (22, 2) and np.shape(raw["dense_bone_weights"])[1] == 17


def test_released_encoding_loads_as_the_synthetic_hand(released_file):
    loaded = load_hand_model(released_file)
    hand = synthetic_hand_model()
    for a, b in zip(jax.tree_util.tree_leaves(hand), jax.tree_util.tree_leaves(loaded), strict=True):
        np.testing.assert_array_equal(a, b)
    raw = json.loads(released_file.read_text())
    for field in TOPOLOGY_FIELDS:
        # 255.0 in the file is "none" (-1) once loaded, other values the same ints.
        assert getattr(loaded, field) == tuple(-1 if v == 255.0 else int(v) for v in raw[field])
        assert getattr(loaded, field) == getattr(hand, field)
    assert loaded.landmark_rest_bone_indices == hand.landmark_rest_bone_indices
    assert np.asarray(loaded.joint_limits).shape == (20, 2)  # the two wrist joints' limits are dropped


def test_released_encoding_through_the_environment_variable(released_file, monkeypatch):
    monkeypatch.setenv(HAND_MODEL_ENV, str(released_file))
    from_env = load_hand_model()
    assert hand_model_to_dict(from_env) == hand_model_to_dict(load_hand_model(released_file))


def _joints_moving(landmark: str) -> set[int]:
    """Joints whose angle moves a landmark of our synthetic hand (its rest point lies on the next joint's axis)."""
    fingers = [f for f, name in enumerate(FINGER_NAMES) if landmark.startswith(name)]
    if not fingers:  # wrist, palm centre: skinned to the wrist frame
        return set()
    count = {"proximal": 0, "intermediate": 2, "distal": 3, "fingertip": 4}[landmark.split("_")[-1]]
    return set(range(4 * fingers[0], 4 * fingers[0] + count))


def test_fk_on_released_encoding_is_finite_with_the_hands_topology(released_file):
    hand = load_hand_model(released_file)
    angles = jax.random.uniform(jax.random.key(5), (64, 20), minval=-0.8, maxval=1.5)
    landmarks = np.asarray(forward_kinematics(angles, hand))
    assert landmarks.shape == (64, 21, 3) and np.all(np.isfinite(landmarks))
    # Topology: each landmark moves with exactly the joints above it on its
    # own finger's chain, none of another finger's. Read off the Jacobian at
    # a pose with every angle away from zero.
    pose = jnp.linspace(0.3, 0.9, 20)
    jac = np.abs(np.asarray(jax.jacfwd(lambda a: forward_kinematics(a, hand))(pose)))  # (21, 3, 20)
    moves = jac.max(axis=1) > 1e-2  # mm per radian
    still = jac.max(axis=1) < 1e-4
    for i, name in enumerate(LANDMARK_NAMES):
        expected = _joints_moving(name)
        assert {j for j in range(20) if moves[i, j]} == expected, name
        assert all(still[i, j] for j in range(20) if j not in expected), name


@pytest.mark.parametrize(
    ("field", "value", "pattern"),
    [
        ("joint_parent", 254.0, r"'joint_parent'.*joint indices in \[0, 21\] or -1 / 255 for none.*found 254"),
        ("joint_parent", 22.0, r"'joint_parent'.*\[0, 21\].*found 22"),
        ("joint_first_child", -2.0, r"'joint_first_child'.*\[0, 21\].*found -2"),
        ("joint_next_sibling", 1.5, r"'joint_next_sibling'.*integer joint indices.*found non-integer value 1\.5"),
        ("joint_frame_index", 17.0, r"'joint_frame_index'.*frame indices in \[0, 16\] or -1 / 255.*found 17"),
        ("joint_frame_index", 254.0, r"'joint_frame_index'.*found 254"),
        ("landmark_rest_bone_indices", 255, r"'landmark_rest_bone_indices'.*\[0, 16\], found 255"),
        ("mesh_triangles", 42.0, r"'mesh_triangles'.*vertex indices in \[0, 41\], found 42"),
        ("mesh_triangles", 2.5, r"'mesh_triangles'.*integer vertex indices.*2\.5"),
    ],
)
def test_released_encoding_out_of_range_indices_are_refused(tmp_path, field, value, pattern):
    data = RELEASED.released_encoding_dict()
    row = data[field] if np.ndim(data[field]) == 1 else data[field][2]  # 2-D fields: in their third row
    row[1] = value
    with pytest.raises(HandModelError, match=pattern) as info:
        load_hand_model(_write(tmp_path, data))
    assert "bad_hand.json" in str(info.value)


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [
        ({"mesh_vertices": [[0.0, 0.0]] * 42}, r"'mesh_vertices'.*\(V, 3\).*\(42, 2\)"),
        ({"dense_bone_weights": [[0.0] * 16] * 42}, r"'dense_bone_weights'.*\(42, 17\).*\(42, 16\)"),
        ({"dense_bone_weights": [[0.0] * 17] * 41}, r"'dense_bone_weights'.*\(42, 17\).*\(41, 17\)"),
        ({"mesh_vertices": None}, r"'mesh_triangles'.*found no 'mesh_vertices'"),
        ({"mesh_vertices": [[float("nan"), 0.0, 0.0]] * 42}, r"'mesh_vertices'.*NaN"),
    ],
)
def test_released_encoding_bad_mesh_is_refused(tmp_path, changes, pattern):
    data = RELEASED.released_encoding_dict()
    for key, value in changes.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    with pytest.raises(HandModelError, match=pattern):
        load_hand_model(_write(tmp_path, data))


def test_minus_one_and_255_mix_and_a_file_without_mesh_load(tmp_path):
    data = RELEASED.released_encoding_dict()
    data["joint_parent"] = [-1 if v == 255.0 else int(v) for v in data["joint_parent"]]  # ints, -1
    for key in ("mesh_vertices", "mesh_triangles", "dense_bone_weights"):
        del data[key]
    loaded = load_hand_model(_write(tmp_path, data))
    assert loaded.joint_parent == synthetic_hand_model().joint_parent


def test_slightly_non_unit_axis_turns_by_its_norm_as_in_umetrack():
    # Axes are kept as written and FK takes exp(angle * axis), as UmeTrack's
    # skinning does: an axis 0.5 % long turns its joint 0.5 % further.
    hand = synthetic_hand_model()
    pip = JOINT_NAMES.index("INDEX_PIP_FE")
    longer = hand.replace(joint_rotation_axes=hand.joint_rotation_axes.at[pip].multiply(1.005))
    reloaded = hand_model_from_dict(hand_model_to_dict(longer))
    np.testing.assert_array_equal(reloaded.joint_rotation_axes, longer.joint_rotation_axes)
    angles = jnp.full(20, 0.4)
    np.testing.assert_allclose(
        forward_kinematics(angles, reloaded), forward_kinematics(angles.at[pip].multiply(1.005), hand), atol=1e-4
    )
    assert np.abs(np.asarray(forward_kinematics(angles, reloaded) - forward_kinematics(angles, hand))).max() > 1e-2


# ---------------------------------------------------------------------------
# MediaPipe
# ---------------------------------------------------------------------------


def test_mediapipe_correspondence_by_name():
    assert len(MEDIAPIPE_LANDMARK_NAMES) == 21
    indices = np.asarray(HAND_MODEL_TO_MEDIAPIPE)
    assert sorted(indices.tolist()) == list(range(21))  # a permutation
    exact = HAND_MODEL_TO_MEDIAPIPE.exact_mask
    assert exact.sum() == 20 and not exact[MEDIAPIPE_LANDMARK_NAMES.index("thumb_cmc")]
    assert "thumb_cmc" in HAND_MODEL_TO_MEDIAPIPE.notes
    # Translate names: MediaPipe's base/middle joints and tips per finger.
    expected = {
        "wrist": "wrist",
        "thumb_mcp": "thumb_intermediate",
        "thumb_ip": "thumb_distal",
        "thumb_tip": "thumb_fingertip",
        "thumb_cmc": "palm_center",
    }
    for finger in ("index", "middle", "ring", "pinky"):
        expected.update(
            {
                f"{finger}_mcp": f"{finger}_proximal",
                f"{finger}_pip": f"{finger}_intermediate",
                f"{finger}_dip": f"{finger}_distal",
                f"{finger}_tip": f"{finger}_fingertip",
            }
        )
    for mp_index, mp_name in enumerate(MEDIAPIPE_LANDMARK_NAMES):
        assert LANDMARK_NAMES[indices[mp_index]] == expected[mp_name]


def test_hand_model_to_mediapipe_reorders_and_uses_thumb_cmc():
    hand = synthetic_hand_model()
    angles = jax.random.uniform(jax.random.key(3), (2, 5, 20), minval=-0.5, maxval=1.2)
    landmarks = forward_kinematics(angles, hand)
    mp = np.asarray(hand_model_to_mediapipe(landmarks))
    assert mp.shape == (2, 5, 21, 3)
    np.testing.assert_array_equal(mp[..., 8, :], np.asarray(landmarks)[..., 1, :])  # index tip
    np.testing.assert_array_equal(mp[..., 0, :], np.asarray(landmarks)[..., 5, :])  # wrist
    with_cmc = np.asarray(hand_model_to_mediapipe(landmarks, hand))
    np.testing.assert_allclose(with_cmc[..., 1, :], np.broadcast_to(hand.joint_rest_positions[0], (2, 5, 3)))
    # The thumb metacarpal keeps its length from the CMC centre under any pose.
    length = np.linalg.norm(with_cmc[..., 2, :] - with_cmc[..., 1, :], axis=-1)
    np.testing.assert_allclose(length, 44.0, rtol=1e-4)
    with pytest.raises(ValueError, match=r"\(\.\.\., 21, 3\).*found \(5, 20, 3\)"):
        hand_model_to_mediapipe(jnp.zeros((5, 20, 3)))
