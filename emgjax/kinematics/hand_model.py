"""Hand model for emg2pose's forward kinematics (UmeTrack's JSON schema).

emg2pose turns its 20 joint angles into 21 hand landmarks with UmeTrack's hand
model (``generic_hand_model.json``, CC-BY-NC-4.0). emgjax does not ship that
file: point :func:`load_hand_model` at your own copy (or set the environment
variable ``EMGJAX_HAND_MODEL``). :func:`synthetic_hand_model` builds a made-up,
plausible adult right hand in the same schema so that everything runs without
third-party data. It is *not* UmeTrack's model: its landmarks differ from
UmeTrack's by millimetres to centimetres, so distances computed with it are not
comparable with published emg2pose numbers.

Schema (JSON object; units are millimetres, angles radians)::

    joint_rotation_axes        (22, 3) float  rotation axis of each joint, rest-pose hand frame (unit)
    joint_rest_positions       (22, 3) float  a point on each joint's rotation axis (rest pose)
    landmark_rest_positions    (21, 3) float  landmarks in the rest pose (all angles zero)
    landmark_rest_bone_indices (21, K) int    frame (0..16) each landmark is skinned to
    landmark_rest_bone_weights (21, K) float  linear-blend-skinning weights
    joint_parent, joint_first_child, joint_next_sibling (22,)  joint index 0..21, or "none"
    joint_frame_index          (22,)          frame 0..16 each joint's rotation yields, or "none"
    hand_scale                 ()  float      optional, default 1 (carried, not applied by FK)
    joint_limits               (>=20, 2)      optional (lower, upper) radians; first 20 kept
    mesh_vertices              (V, 3) float   optional, checked, not kept (FK uses landmarks only)
    mesh_triangles             (F, 3) int     optional, vertex indices 0..V-1; checked, not kept
    dense_bone_weights         (V, 17) float  optional, per-vertex skinning weights; checked, not kept
    any other keys                            ignored

Index fields may be written as integers or as integer-valued floats, and
"none" as -1 or as 255: UmeTrack's released ``generic_hand_model.json`` (the
file emg2pose ships) stores every index as a float and "none" as 255 (a uint8
-1). Loaded models hold ints with -1 for none.

Joints 0..19 are emg2pose's 20 joint angles (:data:`JOINT_NAMES`); joints 20
and 21 are the two wrist joints, whose angles emg2pose always sets to zero.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

# ---------------------------------------------------------------------------
# Names and index groups (emg2pose's order)
# ---------------------------------------------------------------------------

FINGER_NAMES: tuple[str, ...] = ("thumb", "index", "middle", "ring", "pinky")

NUM_JOINT_ANGLES = 20  # the angles emg2pose predicts
NUM_MODEL_JOINTS = 22  # + two wrist joints, always at zero
NUM_LANDMARKS = 21
NUM_FRAMES = 17  # root, wrist, then proximal/intermediate/distal of 5 fingers

# Joints of each finger (4 per finger, thumb..pinky).
FINGER_JOINT_INDICES: dict[str, tuple[int, ...]] = {
    name: tuple(range(4 * f, 4 * f + 4)) for f, name in enumerate(FINGER_NAMES)
}
# emg2pose's proximal / mid / distal groups: first two joints of each finger,
# then the third, then the fourth.
PROXIMAL_JOINT_INDICES: tuple[int, ...] = tuple(j for f in range(5) for j in (4 * f, 4 * f + 1))
MID_JOINT_INDICES: tuple[int, ...] = tuple(4 * f + 2 for f in range(5))
DISTAL_JOINT_INDICES: tuple[int, ...] = tuple(4 * f + 3 for f in range(5))

LANDMARK_NAMES: tuple[str, ...] = (
    "thumb_fingertip",
    "index_fingertip",
    "middle_fingertip",
    "ring_fingertip",
    "pinky_fingertip",
    "wrist",
    "thumb_intermediate",
    "thumb_distal",
    "index_proximal",
    "index_intermediate",
    "index_distal",
    "middle_proximal",
    "middle_intermediate",
    "middle_distal",
    "ring_proximal",
    "ring_intermediate",
    "ring_distal",
    "pinky_proximal",
    "pinky_intermediate",
    "pinky_distal",
    "palm_center",
)
FINGERTIP_INDICES: tuple[int, ...] = (0, 1, 2, 3, 4)
WRIST_INDEX = 5
PALM_CENTER_INDEX = 20
# The proximal frames of index..pinky sit on the MCP rotation centres, so FK
# never moves them; emg2pose's landmark distance leaves them out.
PROXIMAL_LANDMARK_INDICES: tuple[int, ...] = (8, 11, 14, 17)
MOVING_LANDMARK_INDICES: tuple[int, ...] = tuple(i for i in range(NUM_LANDMARKS) if i not in PROXIMAL_LANDMARK_INDICES)


def finger_frame_index(finger: int, segment: int) -> int:
    """Index (0..16) of a finger's frame: segment 0 proximal, 1 intermediate, 2 distal."""
    return 2 + 3 * finger + segment


# ---------------------------------------------------------------------------
# The pytree
# ---------------------------------------------------------------------------


@struct.dataclass
class HandModel:
    """A hand model as a JAX pytree.

    Float geometry is made of array leaves (so a hand can be passed to jitted
    functions and differentiated); the integer topology is static (tuples),
    so it is part of the jit cache key and never traced.

    Attributes:
        joint_rotation_axes: (22, 3) unit rotation axes in the rest-pose hand frame.
        joint_rest_positions: (22, 3) a point on each rotation axis, mm.
        landmark_rest_positions: (21, 3) rest-pose landmarks, mm.
        landmark_rest_bone_weights: (21, K) skinning weights.
        hand_scale: () scale carried from the file (FK does not apply it).
        landmark_rest_bone_indices: static (21, K) tuple of frame indices 0..16.
        joint_parent, joint_first_child, joint_next_sibling, joint_frame_index:
            static (22,) tuples, -1 for none; FK uses emg2pose's fixed finger
            chains (as UmeTrack's skinning does), these are carried for the
            schema and validated for range.
        joint_limits: optional (20, 2) (lower, upper) radians, or None.
    """

    joint_rotation_axes: jax.Array
    joint_rest_positions: jax.Array
    landmark_rest_positions: jax.Array
    landmark_rest_bone_weights: jax.Array
    hand_scale: jax.Array
    landmark_rest_bone_indices: tuple[tuple[int, ...], ...] = struct.field(pytree_node=False)
    joint_parent: tuple[int, ...] = struct.field(pytree_node=False)
    joint_first_child: tuple[int, ...] = struct.field(pytree_node=False)
    joint_next_sibling: tuple[int, ...] = struct.field(pytree_node=False)
    joint_frame_index: tuple[int, ...] = struct.field(pytree_node=False)
    joint_limits: jax.Array | None = None

    @property
    def bones_per_landmark(self) -> int:
        """K, the number of skinning influences per landmark."""
        return len(self.landmark_rest_bone_indices[0])


class HandModelError(ValueError):
    """A hand model file or dict that does not follow the schema."""


# ---------------------------------------------------------------------------
# Validation and conversion
# ---------------------------------------------------------------------------

_FLOAT_FIELDS: dict[str, tuple[int | None, ...]] = {
    "joint_rotation_axes": (NUM_MODEL_JOINTS, 3),
    "joint_rest_positions": (NUM_MODEL_JOINTS, 3),
    "landmark_rest_positions": (NUM_LANDMARKS, 3),
    "landmark_rest_bone_weights": (NUM_LANDMARKS, None),
}
_TOPOLOGY_FIELDS = ("joint_parent", "joint_first_child", "joint_next_sibling")
REQUIRED_FIELDS: tuple[str, ...] = (
    *_FLOAT_FIELDS,
    "landmark_rest_bone_indices",
    *_TOPOLOGY_FIELDS,
    "joint_frame_index",
)
# Rotation axes should be unit vectors. They are kept as written: FK turns by
# exp(angle * axis) exactly as UmeTrack does (a slightly non-unit axis turns
# by |axis| * angle in both), and anything further from unit than rounding in
# a text file is refused as a broken file.
_AXIS_NORM_TOLERANCE = 1e-2
# "No joint / no frame" in index fields: -1, or 255 as in UmeTrack's released
# file (its indices were uint8 before being written as floats).
_NONE_INDICES = (-1, 255)
NONE_INDEX = -1  # what a loaded HandModel holds for "none"
# UmeTrack's optional mesh fields (checked by _check_mesh, not kept).
_MESH_FIELDS = ("mesh_vertices", "mesh_triangles", "dense_bone_weights")
_MAX_FILE_BYTES = 256 * 1024 * 1024  # a hand model with a mesh is a few MB


# Expected shapes: an int is a fixed size; a str (or None, shown as "K") a free one.
def _shape_text(shape: tuple[int | str | None, ...]) -> str:
    return "(" + ", ".join("K" if s is None else str(s) for s in shape) + (",)" if len(shape) == 1 else ")")


def _as_array(data: Mapping[str, Any], field: str, source: str) -> np.ndarray:
    if field not in data:
        raise HandModelError(f"{source}: required field '{field}' is missing (found fields: {sorted(data)[:20]})")
    try:
        array = np.asarray(data[field], dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise HandModelError(
            f"{source}: field '{field}' should be a rectangular numeric array, "
            f"found {type(data[field]).__name__} that is not ({error})"
        ) from None
    return array


def _check_shape(array: np.ndarray, expected: tuple[int | str | None, ...], field: str, source: str) -> None:
    ok = array.ndim == len(expected) and all(
        not isinstance(e, int) or e == s for e, s in zip(expected, array.shape, strict=True)
    )
    if not ok or any(s == 0 for s in array.shape):
        raise HandModelError(
            f"{source}: field '{field}' should have shape {_shape_text(expected)}, found {tuple(array.shape)}"
        )


def _check_finite(array: np.ndarray, field: str, source: str) -> None:
    if not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise HandModelError(f"{source}: field '{field}' should contain finite numbers, found {bad} NaN/inf value(s)")


def _as_indices(
    array: np.ndarray, field: str, source: str, count: int, what: str, allow_none: bool = False
) -> np.ndarray:
    """Integer indices in [0, count) (or "none": -1 / 255 -> -1 when allow_none) from a float array.

    JSON gives integers or integer-valued floats (UmeTrack writes 2.0); both are
    accepted, anything else is refused naming the first offending value.
    """
    _check_finite(array, field, source)
    flat = array.reshape(-1)
    fractional = np.flatnonzero(flat != np.round(flat))
    if fractional.size:
        first = int(fractional[0])
        raise HandModelError(
            f"{source}: field '{field}' should contain integer {what} indices, "
            f"found non-integer value {flat[first]:g} at flat position {first}"
        )
    ints = array.astype(np.int64)
    valid = (ints >= 0) & (ints < count)
    if allow_none:
        none = np.isin(ints, _NONE_INDICES)
        ints = np.where(none, NONE_INDEX, ints)
        valid |= none
    bad = np.flatnonzero(~valid.reshape(-1))
    if bad.size:
        first = int(bad[0])
        none_text = f" or {' / '.join(map(str, _NONE_INDICES))} for none" if allow_none else ""
        raise HandModelError(
            f"{source}: field '{field}' should hold {what} indices in [0, {count - 1}]{none_text}, "
            f"found {array.reshape(-1)[first]:g} at flat position {first} ({bad.size} bad value(s))"
        )
    return ints


def _check_mesh(data: Mapping[str, Any], source: str) -> None:
    """Check UmeTrack's optional mesh fields (not kept: FK and metrics use landmarks only).

    A hand model file whose mesh is malformed is most likely a broken or
    different file, so its mesh is checked even though nothing here uses it.
    """
    present = {field: data[field] for field in _MESH_FIELDS if data.get(field) is not None}
    num_vertices = None
    if "mesh_vertices" in present:
        vertices = _as_array(present, "mesh_vertices", source)
        _check_shape(vertices, ("V", 3), "mesh_vertices", source)
        _check_finite(vertices, "mesh_vertices", source)
        num_vertices = vertices.shape[0]
    if "mesh_triangles" in present:
        if num_vertices is None:
            raise HandModelError(f"{source}: field 'mesh_triangles' indexes 'mesh_vertices', found no 'mesh_vertices'")
        triangles = _as_array(present, "mesh_triangles", source)
        _check_shape(triangles, ("F", 3), "mesh_triangles", source)
        _as_indices(triangles, "mesh_triangles", source, num_vertices, "vertex")
    if "dense_bone_weights" in present:
        weights = _as_array(present, "dense_bone_weights", source)
        rows = num_vertices if num_vertices is not None else "V"
        _check_shape(weights, (rows, NUM_FRAMES), "dense_bone_weights", source)
        _check_finite(weights, "dense_bone_weights", source)


def hand_model_from_dict(data: Mapping[str, Any], source: str = "hand model dict") -> HandModel:
    """Validate a schema dict (as read from JSON) and build a :class:`HandModel`.

    Args:
        data: mapping with the fields listed in the module docstring, in
            either index encoding (ints with -1, or UmeTrack's floats with
            255 for none); mesh fields are checked and dropped, unknown keys
            ignored.
        source: what to call the data in error messages (e.g. the file path).

    Raises:
        HandModelError: (a ValueError) naming the source and the field when a
            field is missing, misshapen, non-numeric, non-finite, non-integer
            where indices are expected, or out of range.
    """
    if not isinstance(data, Mapping):
        raise HandModelError(f"{source}: expected a JSON object with hand model fields, found {type(data).__name__}")
    floats = {}
    for field, shape in _FLOAT_FIELDS.items():
        array = _as_array(data, field, source)
        _check_shape(array, shape, field, source)
        _check_finite(array, field, source)
        floats[field] = array

    norms = np.linalg.norm(floats["joint_rotation_axes"], axis=-1)
    worst = int(np.argmax(np.abs(norms - 1.0)))
    if abs(norms[worst] - 1.0) > _AXIS_NORM_TOLERANCE:
        raise HandModelError(
            f"{source}: field 'joint_rotation_axes' should hold unit vectors, "
            f"found norm {norms[worst]:.4g} for joint {worst}"
        )

    num_bones = floats["landmark_rest_bone_weights"].shape[1]
    indices = _as_array(data, "landmark_rest_bone_indices", source)
    _check_shape(indices, (NUM_LANDMARKS, num_bones), "landmark_rest_bone_indices", source)
    indices = _as_indices(indices, "landmark_rest_bone_indices", source, NUM_FRAMES, "frame")

    topology = {}
    for field in _TOPOLOGY_FIELDS:
        array = _as_array(data, field, source)
        _check_shape(array, (NUM_MODEL_JOINTS,), field, source)
        array = _as_indices(array, field, source, NUM_MODEL_JOINTS, "joint", allow_none=True)
        topology[field] = tuple(int(v) for v in array)
    frame_index = _as_array(data, "joint_frame_index", source)
    _check_shape(frame_index, (NUM_MODEL_JOINTS,), "joint_frame_index", source)
    frame_index = _as_indices(frame_index, "joint_frame_index", source, NUM_FRAMES, "frame", allow_none=True)

    scale = 1.0
    if data.get("hand_scale") is not None:
        scale_array = _as_array(data, "hand_scale", source).reshape(-1)
        if scale_array.shape != (1,):
            raise HandModelError(f"{source}: field 'hand_scale' should be one number, found shape {scale_array.shape}")
        _check_finite(scale_array, "hand_scale", source)
        if scale_array[0] <= 0:
            raise HandModelError(f"{source}: field 'hand_scale' should be > 0, found {scale_array[0]}")
        scale = float(scale_array[0])

    limits = None
    if data.get("joint_limits") is not None:
        limits = _as_array(data, "joint_limits", source)
        if limits.ndim != 2 or limits.shape[0] < NUM_JOINT_ANGLES or limits.shape[1] != 2:
            raise HandModelError(f"{source}: field 'joint_limits' should have shape (>=20, 2), found {limits.shape}")
        limits = limits[:NUM_JOINT_ANGLES]
        if np.any(np.isnan(limits)):
            raise HandModelError(f"{source}: field 'joint_limits' should not contain NaN")
        limits = jnp.asarray(limits, dtype=jnp.float32)

    _check_mesh(data, source)

    return HandModel(
        joint_rotation_axes=jnp.asarray(floats["joint_rotation_axes"], dtype=jnp.float32),
        joint_rest_positions=jnp.asarray(floats["joint_rest_positions"], dtype=jnp.float32),
        landmark_rest_positions=jnp.asarray(floats["landmark_rest_positions"], dtype=jnp.float32),
        landmark_rest_bone_weights=jnp.asarray(floats["landmark_rest_bone_weights"], dtype=jnp.float32),
        hand_scale=jnp.asarray(scale, dtype=jnp.float32),
        landmark_rest_bone_indices=tuple(tuple(int(v) for v in row) for row in indices),
        joint_parent=topology["joint_parent"],
        joint_first_child=topology["joint_first_child"],
        joint_next_sibling=topology["joint_next_sibling"],
        joint_frame_index=tuple(int(v) for v in frame_index),
        joint_limits=limits,
    )


def hand_model_to_dict(hand: HandModel) -> dict[str, Any]:
    """The JSON-ready schema dict of ``hand`` (nested lists of numbers)."""

    def floats(x):
        return np.asarray(x, dtype=np.float64).tolist()

    data = {
        "joint_rotation_axes": floats(hand.joint_rotation_axes),
        "joint_rest_positions": floats(hand.joint_rest_positions),
        "landmark_rest_positions": floats(hand.landmark_rest_positions),
        "landmark_rest_bone_indices": [list(row) for row in hand.landmark_rest_bone_indices],
        "landmark_rest_bone_weights": floats(hand.landmark_rest_bone_weights),
        "joint_parent": list(hand.joint_parent),
        "joint_first_child": list(hand.joint_first_child),
        "joint_next_sibling": list(hand.joint_next_sibling),
        "joint_frame_index": list(hand.joint_frame_index),
        "hand_scale": float(np.asarray(hand.hand_scale)),
    }
    if hand.joint_limits is not None:
        data["joint_limits"] = floats(hand.joint_limits)
    return data


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------

HAND_MODEL_ENV = "EMGJAX_HAND_MODEL"


def load_hand_model(path: str | os.PathLike | None = None) -> HandModel:
    """Read a UmeTrack-format JSON hand model.

    Args:
        path: the JSON file; when None, the path in the environment variable
            ``EMGJAX_HAND_MODEL``.

    Raises:
        ValueError: no path given and the variable is unset or empty.
        FileNotFoundError: the file does not exist.
        HandModelError (ValueError): not a readable JSON object, or a field is
            missing / misshapen / non-finite (the message names file and field).
    """
    origin = ""
    if path is None:
        path = os.environ.get(HAND_MODEL_ENV, "").strip()
        if not path:
            raise ValueError(
                "no hand model given: expected a path to a UmeTrack-format JSON hand model "
                f"(e.g. emg2pose's generic_hand_model.json) or the environment variable "
                f"{HAND_MODEL_ENV}, found neither. emgjax ships no hand model (licence); "
                "use emgjax.kinematics.synthetic_hand_model() for a made-up hand."
            )
        origin = f" (from {HAND_MODEL_ENV})"
    file = Path(path).expanduser()
    if not file.exists():
        raise FileNotFoundError(f"hand model file not found: {file}{origin}")
    if not file.is_file():
        raise HandModelError(f"{file}{origin}: expected a JSON file, found a directory or special file")
    size = file.stat().st_size
    if size > _MAX_FILE_BYTES:
        raise HandModelError(
            f"{file}: expected a hand model JSON of at most {_MAX_FILE_BYTES} bytes, found {size} bytes"
        )
    try:
        text = file.read_text(encoding="utf-8")
        data = json.loads(text)
    except UnicodeDecodeError as error:
        raise HandModelError(f"{file}: expected UTF-8 JSON text, found undecodable bytes ({error})") from None
    except json.JSONDecodeError as error:
        raise HandModelError(f"{file}: expected JSON, found invalid JSON ({error})") from None
    except RecursionError:
        raise HandModelError(f"{file}: expected JSON, found nesting too deep to parse") from None
    return hand_model_from_dict(data, source=str(file))


def save_hand_model(hand: HandModel, path: str | os.PathLike) -> None:
    """Write ``hand`` as a schema JSON file (atomically: temp file, then rename)."""
    file = Path(path)
    temp = file.with_name(file.name + ".tmp")
    temp.write_text(json.dumps(hand_model_to_dict(hand)) + "\n", encoding="utf-8")
    os.replace(temp, file)


def mirror_hand_model(hand: HandModel) -> HandModel:
    """The mirror image of ``hand`` across the plane x = 0 (right hand <-> left hand).

    Positions flip x. Rotation axes are pseudovectors: under a reflection they
    flip the other two components, so that a positive angle still flexes
    toward the palm of the mirrored hand.
    """
    flip_position = jnp.array([-1.0, 1.0, 1.0], dtype=jnp.float32)
    flip_axis = jnp.array([1.0, -1.0, -1.0], dtype=jnp.float32)
    return hand.replace(
        joint_rotation_axes=hand.joint_rotation_axes * flip_axis,
        joint_rest_positions=hand.joint_rest_positions * flip_position,
        landmark_rest_positions=hand.landmark_rest_positions * flip_position,
    )


# ---------------------------------------------------------------------------
# Our synthetic hand
# ---------------------------------------------------------------------------
# Coordinates (mm): origin at the wrist joint centre, +y along the fingers,
# +z toward the back of the hand (so the palm faces -z), +x toward the little
# finger (a right hand: the thumb is on the -x side). The numbers are our own
# rough adult-hand anatomy (hand length ~187 mm wrist to middle fingertip,
# breadth ~65 mm between index and little MCP centres); the rest pose is a
# flat hand with the thumb resting beside the index, slightly palmar.

# Per long finger: MCP centre, direction splay from +y in degrees (+ = toward
# the little finger), bone lengths proximal/middle/distal (distal to the tip).
_FINGER_GEOMETRY = {
    "index": ((-23.0, 90.0, -2.0), -6.0, (40.0, 23.0, 21.0)),
    "middle": ((0.0, 93.0, 0.0), 0.0, (45.0, 27.0, 22.0)),
    "ring": ((20.0, 89.0, -2.0), 5.0, (42.0, 26.0, 22.0)),
    "pinky": ((37.0, 80.0, -6.0), 11.0, (33.0, 19.0, 20.0)),
}
# Thumb: CMC centre, then the directions and lengths of metacarpal, proximal
# phalanx and distal phalanx (to the tip).
_THUMB_CMC = (-20.0, 26.0, -10.0)
_THUMB_BONES = (
    ((-0.62, 0.76, -0.15), 44.0),
    ((-0.42, 0.90, -0.05), 31.0),
    ((-0.30, 0.95, 0.0), 27.0),
)
# The thumb is pronated relative to the fingers: its pad faces toward the
# little finger and the palm, so it flexes toward +x and -z.
_THUMB_FLEXION_DIRECTION = (0.75, 0.0, -0.66)
_PALM_CENTER = (0.0, 48.0, -8.0)
_PALM_NORMAL = np.array([0.0, 0.0, -1.0])  # toward the palm side
# Our own plausible ranges of motion (radians), used for synthetic poses.
_FINGER_LIMITS = ((-0.35, 0.35), (-0.35, 1.57), (0.0, 1.75), (-0.1, 1.4))
_THUMB_LIMITS = ((-0.5, 0.9), (-0.2, 1.0), (-0.2, 1.0), (-0.3, 1.4))


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def _flexion_axis(bone_direction: np.ndarray, motion_direction: np.ndarray) -> np.ndarray:
    """Unit axis a such that a positive rotation about a moves the bone toward motion_direction.

    For a rotation about unit a, a point at d moves along a x d; with a = d x m
    (m orthogonalised against d), a x d = m.
    """
    m = motion_direction - np.dot(motion_direction, bone_direction) * bone_direction
    return _unit(np.cross(bone_direction, _unit(m)))


@functools.lru_cache(maxsize=1)
def _synthetic_arrays() -> dict[str, Any]:
    axes = np.zeros((NUM_MODEL_JOINTS, 3))
    rest = np.zeros((NUM_MODEL_JOINTS, 3))
    landmarks = np.zeros((NUM_LANDMARKS, 3))
    bones = np.zeros((NUM_LANDMARKS,), dtype=np.int64)

    # Thumb (finger 0): joints CMC_FE, CMC_AA at the CMC; MCP_FE; IP_FE.
    cmc = np.array(_THUMB_CMC)
    points = [cmc]
    directions = []
    for direction, length in _THUMB_BONES:
        d = _unit(direction)
        directions.append(d)
        points.append(points[-1] + length * d)
    flex = _unit(_THUMB_FLEXION_DIRECTION)
    # CMC flexion sweeps the thumb across the palm (toward +x, in the palm
    # plane); CMC abduction lifts it away from the palm (toward -z).
    axes[0] = _flexion_axis(directions[0], np.array([1.0, 0.0, 0.0]))
    axes[1] = _flexion_axis(directions[0], _PALM_NORMAL)
    axes[2] = _flexion_axis(directions[1], flex)
    axes[3] = _flexion_axis(directions[2], flex)
    rest[0] = rest[1] = points[0]
    rest[2], rest[3] = points[1], points[2]
    landmarks[0], bones[0] = points[3], finger_frame_index(0, 2)
    landmarks[6], bones[6] = points[1], finger_frame_index(0, 1)
    landmarks[7], bones[7] = points[2], finger_frame_index(0, 2)

    for f, name in enumerate(FINGER_NAMES[1:], start=1):
        mcp, splay_deg, lengths = _FINGER_GEOMETRY[name]
        splay = math.radians(splay_deg)
        d = np.array([math.sin(splay), math.cos(splay), 0.0])
        mcp = np.array(mcp)
        pip = mcp + lengths[0] * d
        dip = pip + lengths[1] * d
        tip = dip + lengths[2] * d
        # Positive abduction spreads away from the middle finger (index and
        # middle toward the thumb, ring and little finger away from it).
        spread = np.array([-1.0, 0.0, 0.0]) if f <= 2 else np.array([1.0, 0.0, 0.0])
        axes[4 * f] = _flexion_axis(d, spread)
        flexion_axis = _flexion_axis(d, _PALM_NORMAL)
        axes[4 * f + 1] = axes[4 * f + 2] = axes[4 * f + 3] = flexion_axis
        rest[4 * f] = rest[4 * f + 1] = mcp
        rest[4 * f + 2], rest[4 * f + 3] = pip, dip
        landmarks[f], bones[f] = tip, finger_frame_index(f, 2)
        base = 8 + 3 * (f - 1)
        for segment, point in enumerate((mcp, pip, dip)):
            landmarks[base + segment], bones[base + segment] = point, finger_frame_index(f, segment)

    # Wrist joints (angles always zero in emg2pose): flexion, radial deviation.
    axes[20], axes[21] = (-1.0, 0.0, 0.0), (0.0, 0.0, 1.0)
    landmarks[WRIST_INDEX], bones[WRIST_INDEX] = (0.0, 0.0, 0.0), 1
    landmarks[PALM_CENTER_INDEX], bones[PALM_CENTER_INDEX] = _PALM_CENTER, 1

    # Topology: 20 (wrist) -> 21 -> first joint of each finger -> chain.
    parent = [-1] * NUM_MODEL_JOINTS
    first_child = [-1] * NUM_MODEL_JOINTS
    next_sibling = [-1] * NUM_MODEL_JOINTS
    frame_index = [0] * NUM_MODEL_JOINTS
    parent[21], first_child[20], first_child[21] = 20, 21, 0
    frame_index[20], frame_index[21] = 0, 1
    for f in range(5):
        for k in range(4):
            j = 4 * f + k
            parent[j] = 21 if k == 0 else j - 1
            first_child[j] = j + 1 if k < 3 else -1
            # Joint k of a finger closes frame M(k+1) of fk.py's chain; the
            # first joint's M1 alone is not one of the 17 frames.
            frame_index[j] = finger_frame_index(f, k - 1) if k > 0 else NONE_INDEX
        next_sibling[4 * f] = 4 * (f + 1) if f < 4 else -1

    # K = 3 influences as in UmeTrack's files; our landmarks are rigid (one
    # bone, weight 1), the unused slots repeat the bone with weight 0.
    bone_indices = np.repeat(bones[:, None], 3, axis=1)
    bone_weights = np.zeros((NUM_LANDMARKS, 3))
    bone_weights[:, 0] = 1.0
    limits = np.array(_THUMB_LIMITS + _FINGER_LIMITS * 4)
    return {
        "joint_rotation_axes": axes,
        "joint_rest_positions": rest,
        "landmark_rest_positions": landmarks,
        "landmark_rest_bone_indices": bone_indices,
        "landmark_rest_bone_weights": bone_weights,
        "joint_parent": parent,
        "joint_first_child": first_child,
        "joint_next_sibling": next_sibling,
        "joint_frame_index": frame_index,
        "hand_scale": 1.0,
        "joint_limits": limits,
    }


def synthetic_hand_model() -> HandModel:
    """Our own made-up adult right hand (mm) in the UmeTrack schema.

    Not UmeTrack's generic hand model: a stand-in with realistic bone lengths
    so that FK, losses and metrics run without third-party files. Positive
    flexion (FE) angles curl toward the palm (-z), positive abduction (AA)
    spreads the fingers away from the middle finger (index, middle toward the
    thumb; ring, little finger away from it); the thumb's positive CMC_FE
    sweeps it across the palm and positive CMC_AA lifts it off the palm.
    Includes our own ``joint_limits`` (20, 2) ranges of motion.
    """
    return hand_model_from_dict(_synthetic_arrays(), source="synthetic hand model")
