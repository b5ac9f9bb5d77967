"""Inverse kinematics: MediaPipe-ordered hand landmarks -> emg2pose's 20 joint angles.

:func:`fit_angles` (and :func:`fit_hand`, which also returns the global pose
and the scale) fits, per frame, the hand model's 20 joint angles, a global
wrist rotation and translation, and one hand scale for the whole call (a
session), so that the hand model's landmarks (through our differentiable
forward kinematics, :func:`~emgjax.kinematics.forward_kinematics`) match the
given landmarks::

    minimise over theta_n, R_n, t_n (and s):
        sum_n sum_j |s R_n x_j(theta_n) + t_n - y_nj|^2                 landmarks, mm^2
      + prior_weight * sum_n |theta_n - theta_mean|^2                     weak pull to the mean pose
      + smoothness   * sum_t |theta_t - theta_{t-1}|^2                    along the sequence axis
    subject to lower <= theta_n <= upper                                 (the hand model's joint_limits)

with x_j the hand model's landmarks in MediaPipe order
(:func:`~emgjax.kinematics.mediapipe.hand_model_to_mediapipe` with the thumb
CMC at the CMC rotation centre) and y the given landmarks in millimetres.

Solver: batched, jitted Levenberg-Marquardt on the 26 parameters of each frame
(20 angles, a rotation increment, a translation) with the exact Jacobian (an
analytic one, checked against forward-mode autodiff in the tests), Marquardt's
diagonal scaling, a per-frame damping that adapts to whether a step lowered
the cost, and joint limits enforced by projecting every step onto the box
(projected LM; in the per-frame steps angles on a limit that the gradient
pushes past are held, an active set, so the others take full steps). The rotation is updated multiplicatively,
``R <- R exp([w]_x)``, so it has no singularities. Every frame is solved
independently and in parallel (``iterations + refine_iterations`` steps).

Initialisation: the six landmarks that FK never moves (wrist, thumb CMC and
the four MCPs) form a rigid palm; a per-frame Umeyama/Kabsch alignment of the
hand model's palm onto them gives the starting rotation, translation and scale,
and the angles start at the mean pose (the middle of the joint limits) or at
``init_angles`` (e.g. the previous fit of a stream: a warm start).

Scale: one scale factor per call (``s``, relative to the hand model) shared by
all frames. Unless ``scale`` is given, it starts at the median of the per-frame
palm alignments' scales, then after a first round of iterations is refitted in
closed form (least squares over every valid frame with the poses fixed) before
a second round. Pass a session's whole recording in one call, or pass the
scale found once (``fit_hand(...).scale``) to later calls.

Sequence axis and smoothness: landmarks ``(..., T, 21, 3)`` -- axis -3 is time
(consecutive frames); leading axes before it are independent sequences. With
``smoothness > 0`` (and T > 1), after the per-frame fit, ``smooth_iterations``
LM steps minimise the whole objective of each sequence: the pose parameters
of each frame are eliminated per frame (Schur complement), which leaves a
block-tridiagonal system in the angles, solved exactly along time (a block
Thomas recursion, a scan over T). Frames with missing landmarks have no
smoothness link to their neighbours. ``smoothness`` is in mm^2 per rad^2
(per frame pair and joint): a landmark moves ~20-80 mm per radian of its
joints, so ~1000-3000 suits 30 fps video with ~2 mm landmark noise (3000 on
40 s of synthetic gestures with 2 mm noise: mean angle error 5.1 -> 1.4
degrees, fit error 2.4 -> 2.8 mm, see ``bench/ik.py``); 0 (default) treats
the frames as unrelated.

Observability: with the hand model's joint axes (no twist about a bone) all
20 angles are determined by the 21 landmarks except near degenerate poses
(e.g. a finger's abduction when the MCP is flexed ~90 degrees, where the
proximal bone points along the abduction axis), where LM's damping keeps the
step finite and ``prior_weight`` (mm^2/rad^2, default 0.01, negligible against
the landmark terms of ~10^2-10^4 mm^2/rad^2 per joint, so noise-free
landmarks are fitted exactly) pulls the undetermined combination toward the
mean pose instead of letting it wander. ``bench/ik.py`` prints the per-joint
errors next to the Cramer-Rao bound of the landmark noise: on the synthetic
hand the per-frame fit reaches it for every joint (short distal bones make the
DIP/IP angles the least determined: ~8-10 degrees at 2 mm noise per
coordinate), so no joint is unobservable but single frames cannot do better.

Fit error and mask: per frame, the mean Euclidean distance in mm between the
fitted model's landmarks and the given ones (all 21). :func:`fit_mask` marks
frames as usable when that error is finite and at most ``max_error_mm``
(default :data:`DEFAULT_MAX_FIT_ERROR_MM` = 15 mm: the original project dropped
frames with an IK error >= 15 mm; on our synthetic hand a correct fit with
2 mm landmark noise lands near 2.5 mm and real MediaPipe landmarks sit a few mm
off any hand model, so 15 mm leaves room for both and still rejects wrong
hands and failed fits). Frames with any NaN/Inf landmark get NaN angles and a
NaN fit error (so they are masked) and do not take part in the fit; to store
labels in emg2pose's convention write zeros where the mask is False
(emg2pose treats all-zero angles as IK failures).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from emgjax.errors import check_array_like
from emgjax.kinematics.fk import axis_angle_rotation, forward_kinematics, joint_frames
from emgjax.kinematics.hand_model import NUM_FRAMES, NUM_JOINT_ANGLES, NUM_LANDMARKS, HandModel, finger_frame_index
from emgjax.kinematics.mediapipe import HAND_MODEL_TO_MEDIAPIPE, MEDIAPIPE_THUMB_CMC_INDEX, hand_model_to_mediapipe

# Millimetres per unit.
UNITS: Mapping[str, float] = {"m": 1000.0, "cm": 10.0, "mm": 1.0}

DEFAULT_MAX_FIT_ERROR_MM = 15.0

# MediaPipe indices of the landmarks FK never moves: wrist, thumb CMC, index/middle/ring/pinky MCP.
PALM_INDICES: tuple[int, ...] = (0, 1, 5, 9, 13, 17)

# A real adult hand's wrist-to-middle-MCP distance is ~70-110 mm; far outside this range means wrong units.
_PLAUSIBLE_PALM_MM = (20.0, 400.0)
# Angle ranges when a hand model carries no joint_limits: effectively unbounded.
_NO_LIMIT = math.pi


@dataclasses.dataclass(frozen=True)
class HandFit:
    """Everything :func:`fit_hand` found.

    Attributes:
        angles: (..., 20) radians in emg2pose's joint order; NaN for frames without finite landmarks.
        fit_error_mm: (...) mean landmark distance after the fit, mm; NaN for those frames.
        rotation: (..., 3, 3) global rotation of the hand model (landmarks = scale * R x + t).
        translation: (..., 3) global translation, mm.
        scale: () hand scale relative to the hand model, shared by all frames.
    """

    angles: jax.Array
    fit_error_mm: jax.Array
    rotation: jax.Array
    translation: jax.Array
    scale: jax.Array

    def mask(self, max_error_mm: float = DEFAULT_MAX_FIT_ERROR_MM) -> jax.Array:
        """(...) bool: frames whose fit is usable (see :func:`fit_mask`)."""
        return fit_mask(self.fit_error_mm, max_error_mm)


def fit_mask(fit_error_mm: jax.Array, max_error_mm: float = DEFAULT_MAX_FIT_ERROR_MM) -> jax.Array:
    """(...) bool: True where the fit error is finite and at most ``max_error_mm`` (default 15 mm, see module doc)."""
    error = jnp.asarray(fit_error_mm)
    return jnp.isfinite(error) & (error <= max_error_mm)


def joint_bounds(hand: HandModel) -> tuple[jax.Array, jax.Array]:
    """(lower, upper), each (20,) radians: the hand model's joint limits, or +-pi when it has none."""
    if hand.joint_limits is None:
        lower = jnp.full((NUM_JOINT_ANGLES,), -_NO_LIMIT, jnp.float32)
        return lower, -lower
    limits = jnp.asarray(hand.joint_limits, jnp.float32)
    return limits[:, 0], limits[:, 1]


def mean_pose(hand: HandModel) -> jax.Array:
    """(20,) the middle of the joint limits (zeros without limits): the initial pose and the prior's centre."""
    lower, upper = joint_bounds(hand)
    return 0.5 * (lower + upper)


def similarity_transform(source: jax.Array, target: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Least-squares similarity transform (Umeyama): ``target ~ scale * R source + t`` per frame.

    Args:
        source, target: (..., P, 3) corresponding points, P >= 3.

    Returns:
        rotation (..., 3, 3) (a proper rotation, det +1), scale (...), translation (..., 3).
    """
    source_centre = jnp.mean(source, axis=-2, keepdims=True)
    target_centre = jnp.mean(target, axis=-2, keepdims=True)
    x = source - source_centre
    y = target - target_centre
    covariance = jnp.einsum("...ja,...jb->...ab", y, x)  # sum_j y_j x_j^T
    u, singular, vt = jnp.linalg.svd(covariance)
    sign = jnp.sign(jnp.linalg.det(u) * jnp.linalg.det(vt))
    sign = jnp.where(sign == 0, 1.0, sign)  # rank-deficient: keep a rotation, never a reflection
    ones = jnp.ones_like(sign)
    flip = jnp.stack([ones, ones, sign], axis=-1)
    rotation = u @ (flip[..., :, None] * vt)
    spread = jnp.sum(x * x, axis=(-2, -1))
    scale = jnp.sum(singular * flip, axis=-1) / jnp.maximum(spread, jnp.finfo(x.dtype).tiny)
    translation = target_centre[..., 0, :] - scale[..., None] * jnp.einsum(
        "...ab,...b->...a", rotation, source_centre[..., 0, :]
    )
    return rotation, scale, translation


def model_landmarks(angles: jax.Array, hand: HandModel) -> jax.Array:
    """(..., 21, 3) the hand model's landmarks in MediaPipe order for ``angles`` (..., 20), mm, model frame.

    MediaPipe's thumb CMC is the hand model's CMC rotation centre (a fixed point), not the palm centre.
    """
    return hand_model_to_mediapipe(forward_kinematics(angles, hand), hand)


def _bones_moved_by_joints() -> np.ndarray:
    """(17, 20) 1 where joint j moves skinning frame b, in fk.py's chain: finger f's segment s
    (frame 2 + 3f + s) is M_{s+2} = L_{4f} ... L_{4f+s+1}; frames 0 and 1 (root, wrist) never move."""
    moved = np.zeros((NUM_FRAMES, NUM_JOINT_ANGLES), np.float32)
    for finger in range(5):
        for segment in range(3):
            moved[finger_frame_index(finger, segment), 4 * finger : 4 * finger + segment + 2] = 1.0
    return moved


_BONES_MOVED_BY_JOINTS = _bones_moved_by_joints()


def landmarks_and_jacobian(angles: jax.Array, hand: HandModel) -> tuple[jax.Array, jax.Array]:
    """The hand model's landmarks (MediaPipe order) and their exact Jacobian in the angles.

    Joint j turns everything after it about its axis: with ``a`` and ``p`` the joint's axis and
    pivot carried by the frames before it (M_k of fk.py's chain: the identity, L_{4f}, M2, M3),
    a point ``m`` of a bone below it moves as ``dm/dtheta_j = a x (m - p)``; a landmark is the
    blend of its bones' points. One pass instead of 20 forward-mode tangents (~10x faster on CPU).

    Args:
        angles: (..., 20) radians.
        hand: the hand model.

    Returns:
        landmarks (..., 21, 3) as :func:`model_landmarks`, Jacobian (..., 21, 3, 20).
    """
    rotations, translations = joint_frames(angles, hand)  # (..., 17, 3, 3), (..., 17, 3)
    dtype = rotations.dtype
    axes = hand.joint_rotation_axes[:NUM_JOINT_ANGLES].astype(dtype)  # (20, 3)
    pivots = hand.joint_rest_positions[:NUM_JOINT_ANGLES].astype(dtype)
    lead = rotations.shape[:-3]
    first = np.arange(0, NUM_JOINT_ANGLES, 4)  # each finger's first joint
    # Frames before each joint, (..., 5 fingers, 4 joints, 3, 3) / (..., 5, 4, 3).
    first_rot = axis_angle_rotation(axes[first], angles[..., first].astype(dtype))  # L_{4f}: (..., 5, 3, 3)
    first_trans = pivots[first] - jnp.einsum("...fab,fb->...fa", first_rot, pivots[first])
    segments = rotations[..., 2:, :, :].reshape(*lead, 5, 3, 3, 3)
    segment_trans = translations[..., 2:, :].reshape(*lead, 5, 3, 3)
    eye = jnp.broadcast_to(jnp.eye(3, dtype=dtype), (*lead, 5, 1, 3, 3))
    before_rot = jnp.concatenate([eye, first_rot[..., None, :, :], segments[..., :2, :, :]], axis=-3)
    zero = jnp.zeros((*lead, 5, 1, 3), dtype)
    before_trans = jnp.concatenate([zero, first_trans[..., None, :], segment_trans[..., :2, :]], axis=-2)
    before_rot = before_rot.reshape(*lead, NUM_JOINT_ANGLES, 3, 3)
    before_trans = before_trans.reshape(*lead, NUM_JOINT_ANGLES, 3)
    world_axes = jnp.einsum("...jab,jb->...ja", before_rot, axes)  # (..., 20, 3)
    world_pivots = jnp.einsum("...jab,jb->...ja", before_rot, pivots) + before_trans

    bone_index = np.asarray(hand.landmark_rest_bone_indices, dtype=np.int32)  # (21, K)
    rest = hand.landmark_rest_positions.astype(dtype)
    weights = hand.landmark_rest_bone_weights.astype(dtype)  # (21, K)
    moved = jnp.einsum("...lkab,lb->...lka", rotations[..., bone_index, :, :], rest) + translations[..., bone_index, :]
    landmarks = jnp.einsum("...lka,lk->...la", moved, weights)
    # (21, K, 20): the weight of bone k of landmark l where joint j moves it.
    influence = jnp.asarray(_BONES_MOVED_BY_JOINTS)[bone_index] * weights[..., None]
    # sum_k c_lkj a_j x (m_lk - p_j) = a_j x (sum_k c_lkj m_lk - (sum_k c_lkj) p_j): blend first, one cross.
    blended = sum(moved[..., :, k, None, :] * influence[:, k, :, None] for k in range(bone_index.shape[1]))
    blended = blended - jnp.sum(influence, axis=1)[..., None] * world_pivots[..., None, :, :]  # (..., 21, 20, 3)
    jacobian = jnp.swapaxes(jnp.cross(world_axes[..., None, :, :], blended), -1, -2)  # (..., 21, 3, 20)
    order = np.asarray(HAND_MODEL_TO_MEDIAPIPE)
    landmarks = landmarks[..., order, :]
    jacobian = jacobian[..., order, :, :]
    # MediaPipe's thumb CMC is the fixed CMC rotation centre (as in model_landmarks): no derivative.
    cmc = jnp.broadcast_to(
        hand.joint_rest_positions[0].astype(dtype), landmarks[..., MEDIAPIPE_THUMB_CMC_INDEX, :].shape
    )
    landmarks = landmarks.at[..., MEDIAPIPE_THUMB_CMC_INDEX, :].set(cmc)
    jacobian = jacobian.at[..., MEDIAPIPE_THUMB_CMC_INDEX, :, :].set(0.0)
    return landmarks, jacobian


def _check_landmarks(landmarks: Any) -> np.ndarray | jax.Array:
    array = check_array_like("landmarks", landmarks)
    if array.ndim < 2 or tuple(array.shape[-2:]) != (NUM_LANDMARKS, 3):
        raise ValueError(
            f"landmarks: expected shape (..., {NUM_LANDMARKS}, 3) in MediaPipe order (wrist, then 4 per finger), "
            f"found {tuple(array.shape)}"
        )
    if any(d == 0 for d in array.shape[:-2]):
        raise ValueError(f"landmarks: expected at least one frame, found shape {tuple(array.shape)}")
    kind = np.dtype(array.dtype).kind if str(array.dtype) != "bfloat16" else "f"
    if kind not in "fiu":
        raise ValueError(f"landmarks: expected a real numeric array, found dtype {array.dtype}")
    return array


def _units_factor(units: str) -> float:
    if not isinstance(units, str) or units not in UNITS:
        raise ValueError(f"units: expected one of {', '.join(repr(u) for u in UNITS)}, found {units!r}")
    return UNITS[units]


def _bucket(size: int, minimum: int) -> int:
    """The padded size for ``size`` rows or frames: ``minimum`` (1 or 8), then powers of two up to
    64, then multiples of a quarter of the power of two below (at most 25 % padding). Few sizes,
    few compilations; 8 frames cost about what 1 does."""
    if size <= minimum:
        return minimum
    if size <= 64:
        return 1 << (size - 1).bit_length()
    quantum = 1 << (size.bit_length() - 3)
    return -(-size // quantum) * quantum


def _check_plausible_size(landmarks_mm: np.ndarray, units: str) -> None:
    """Refuse landmarks whose palm is far too small or large for the declared units (a units mix-up)."""
    palm = np.linalg.norm(landmarks_mm[..., 9, :] - landmarks_mm[..., 0, :], axis=-1)  # wrist to middle MCP
    palm = palm[np.isfinite(palm)]
    if palm.size == 0:
        return
    size = float(np.median(palm))
    low, high = _PLAUSIBLE_PALM_MM
    if not low <= size <= high:
        raise ValueError(
            f"landmarks: expected a hand with a wrist-to-middle-MCP distance of {low:g}-{high:g} mm with "
            f"units={units!r}, found a median of {size:.4g} mm: are the landmarks in other units?"
        )


def fit_hand(
    landmarks: np.ndarray | jax.Array,
    hand: HandModel,
    *,
    units: str = "m",
    scale: float | None = None,
    smoothness: float = 0.0,
    prior_weight: float = 0.01,
    init_angles: np.ndarray | jax.Array | None = None,
    landmark_weights: np.ndarray | jax.Array | None = None,
    iterations: int = 6,
    refine_iterations: int = 3,
    smooth_iterations: int = 4,
) -> HandFit:
    """Fit joint angles, global pose and hand scale to landmarks (see the module doc for the model).

    Args:
        landmarks: (..., 21, 3) in MediaPipe order (e.g. MediaPipe's world landmarks, metres);
            axis -3, when present, is time for ``smoothness``. Frames with NaN/Inf are skipped.
        hand: the hand model (its ``joint_limits`` bound the angles).
        units: the landmarks' units, ``"m"`` (default, as MediaPipe's world landmarks), ``"cm"`` or ``"mm"``.
        scale: the hand scale relative to the hand model, if known (e.g. from an earlier call);
            None fits one scale for all frames of this call.
        smoothness: weight (mm^2/rad^2) of the squared angle change between consecutive frames; 0 = off.
        prior_weight: weight (mm^2/rad^2) of the pull toward the mean pose (for poorly observed angles).
        init_angles: (..., 20) starting angles (broadcast against the frames), e.g. a warm start
            from the previous frame's fit; default the mean pose. Clipped to the joint limits.
        landmark_weights: (21,) weights >= 0 of the landmarks' squared residuals (MediaPipe order),
            e.g. less weight on the thumb CMC, whose MediaPipe point sits off any rotation centre;
            default all 1. The fit error stays the unweighted mean distance.
        iterations: per-frame LM iterations before the scale is refitted (when ``scale`` is None).
        refine_iterations: per-frame LM iterations after it.
        smooth_iterations: whole-sequence LM iterations with the smoothness term (when
            ``smoothness > 0`` and there is a time axis).

    Returns:
        a :class:`HandFit`.
    """
    if not isinstance(hand, HandModel):
        raise ValueError(f"hand: expected a HandModel, found {type(hand).__name__}")
    return fit_model(
        landmarks,
        hand,
        units=units,
        scale=scale,
        smoothness=smoothness,
        prior_weight=prior_weight,
        init_angles=init_angles,
        landmark_weights=landmark_weights,
        iterations=iterations,
        refine_iterations=refine_iterations,
        smooth_iterations=smooth_iterations,
    )


def fit_model(
    landmarks: np.ndarray | jax.Array,
    model: Any,
    *,
    units: str,
    scale: float | None,
    smoothness: float,
    prior_weight: float,
    init_angles: np.ndarray | jax.Array | None,
    landmark_weights: np.ndarray | jax.Array | None,
    iterations: int,
    refine_iterations: int,
    smooth_iterations: int,
) -> HandFit:
    """:func:`fit_hand` for any model with a landmark function: a :class:`HandModel`, or a pytree with
    methods ``ik_bounds() -> (lower, upper)`` (P,) each, ``ik_centre() -> (P,)`` (start and prior centre),
    ``ik_points(params (..., P)) -> (..., 21, 3)`` mm in MediaPipe order and
    ``ik_points_and_jacobian(params) -> (points, (..., 21, 3, P))``, whose six palm landmarks
    (:data:`PALM_INDICES`) do not move with the parameters (e.g. :class:`emgjax.kinematics.mano.ManoModel`)."""
    array = _check_landmarks(landmarks)
    factor = _units_factor(units)
    num_params = int(_bounds(model)[0].shape[0])
    if scale is not None and not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale: expected a positive finite number or None, found {scale!r}")
    for name, value in (("smoothness", smoothness), ("prior_weight", prior_weight)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ValueError(f"{name}: expected a finite number >= 0, found {value!r}")
    counts = (
        ("iterations", iterations),
        ("refine_iterations", refine_iterations),
        ("smooth_iterations", smooth_iterations),
    )
    for name, count in counts:
        if not isinstance(count, int) or count < 0:
            raise ValueError(f"{name}: expected an integer >= 0, found {count!r}")

    lead = tuple(int(d) for d in array.shape[:-2])
    host = np.asarray(array, dtype=np.float32) * np.float32(factor)
    _check_plausible_size(host, units)
    # (B, T, 21, 3): axis -3 is time; everything before it is independent sequences.
    steps = lead[-1] if lead else 1
    target = host.reshape(-1, steps, NUM_LANDMARKS, 3)

    if init_angles is None:
        init = jnp.broadcast_to(_centre(model), (*lead, num_params))
    else:
        check_array_like("init_angles", init_angles)
        try:
            init = jnp.broadcast_to(jnp.asarray(init_angles, jnp.float32), (*lead, num_params))
        except ValueError:
            raise ValueError(
                f"init_angles: expected shape (..., {num_params}) broadcastable to {(*lead, num_params)}, "
                f"found {tuple(init_angles.shape)}"
            ) from None
    init = init.reshape(-1, steps, num_params)
    if landmark_weights is None:
        weights = jnp.ones((NUM_LANDMARKS,), jnp.float32)
    else:
        check_array_like("landmark_weights", landmark_weights)
        weights_host = np.asarray(landmark_weights, dtype=np.float64)
        if weights_host.shape != (NUM_LANDMARKS,) or not (
            np.all(np.isfinite(weights_host)) and np.all(weights_host >= 0)
        ):
            raise ValueError(
                f"landmark_weights: expected {NUM_LANDMARKS} finite weights >= 0 (MediaPipe order), "
                f"found shape {weights_host.shape} with values {weights_host.tolist()[:4]}..."
            )
        if np.count_nonzero(weights_host[list(PALM_INDICES)]) < 3 or np.count_nonzero(weights_host) < 10:
            raise ValueError(
                "landmark_weights: expected at least 3 palm landmarks and 10 landmarks in all with weight > 0"
            )
        weights = jnp.asarray(weights_host, jnp.float32)

    smooth = smoothness > 0 and steps > 1 and smooth_iterations > 0
    # Without smoothness every frame is its own problem: one row of frames. Then pad rows and
    # frames up to a few sizes with missing (NaN) frames, so that calls with other frame counts
    # reuse one compiled solver (compiling it takes seconds); the padding is sliced off below.
    sequences = target.shape[0]
    if not smooth:
        target, init = target.reshape(1, -1, NUM_LANDMARKS, 3), init.reshape(1, -1, num_params)
    rows, frames = target.shape[:2]
    padded_rows, padded_frames = _bucket(rows, 1), _bucket(frames, 8)
    target = np.pad(
        target, ((0, padded_rows - rows), (0, padded_frames - frames), (0, 0), (0, 0)), constant_values=np.nan
    )
    init = jnp.pad(init, ((0, padded_rows - rows), (0, padded_frames - frames), (0, 0)))

    angles, error, rotation, translation, fitted_scale = _fit(
        jnp.asarray(target),
        init,
        model,
        jnp.float32(scale if scale is not None else 0.0),
        jnp.float32(smoothness),
        jnp.float32(prior_weight),
        weights,
        jnp.bool_(scale is None),
        jnp.int32(iterations),
        jnp.int32(refine_iterations),
        jnp.int32(smooth_iterations),
        smooth=smooth,
    )
    angles, error, rotation, translation = (
        value[:rows, :frames].reshape(sequences, steps, *value.shape[2:])
        for value in (angles, error, rotation, translation)
    )
    return HandFit(
        angles=angles.reshape(*lead, num_params),
        fit_error_mm=error.reshape(lead),
        rotation=rotation.reshape(*lead, 3, 3),
        translation=translation.reshape(*lead, 3),
        scale=fitted_scale,
    )


def fit_angles(
    landmarks: np.ndarray | jax.Array,
    hand: HandModel,
    *,
    units: str = "m",
    scale: float | None = None,
    smoothness: float = 0.0,
    prior_weight: float = 0.01,
    init_angles: np.ndarray | jax.Array | None = None,
    landmark_weights: np.ndarray | jax.Array | None = None,
    iterations: int = 6,
    refine_iterations: int = 3,
    smooth_iterations: int = 4,
) -> tuple[jax.Array, jax.Array]:
    """emg2pose's 20 joint angles from MediaPipe-ordered landmarks: ``angles, fit_error_mm``.

    The arguments are :func:`fit_hand`'s. Returns angles (..., 20) radians and the per-frame fit
    error (...) in mm (NaN where the landmarks were not finite); ``fit_mask(fit_error_mm)`` marks
    the usable frames.
    """
    fit = fit_hand(
        landmarks,
        hand,
        units=units,
        scale=scale,
        smoothness=smoothness,
        prior_weight=prior_weight,
        init_angles=init_angles,
        landmark_weights=landmark_weights,
        iterations=iterations,
        refine_iterations=refine_iterations,
        smooth_iterations=smooth_iterations,
    )
    return fit.angles, fit.fit_error_mm


# ---------------------------------------------------------------------------
# The solver (jitted; all frames at once)
# ---------------------------------------------------------------------------


def rotation_from_vector(vectors: jax.Array) -> jax.Array:
    """Rotation matrices exp([w]_x) for axis-angle vectors w (..., 3) -> (..., 3, 3).

    Rodrigues' formula with ``|w|`` replaced by ``sqrt(|w|^2 + 1e-12)``: exact to float32 rounding,
    and smooth at w = 0 (identity), where forward- and reverse-mode derivatives stay finite.
    """
    angle = jnp.sqrt(jnp.sum(vectors**2, axis=-1) + 1e-12)[..., None, None]
    k = _cross_matrix(vectors)
    # (1 - cos a) / a^2 as 2 sin^2(a / 2) / a^2: no cancellation for small angles.
    return (
        jnp.eye(3, dtype=vectors.dtype)
        + jnp.sin(angle) / angle * k
        + 2.0 * jnp.sin(0.5 * angle) ** 2 / angle**2 * (k @ k)
    )


def _cross_matrix(points: jax.Array) -> jax.Array:
    """[x]_x for points (..., 3) -> (..., 3, 3)."""
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    zero = jnp.zeros_like(x)
    return jnp.stack(
        [jnp.stack([zero, -z, y], -1), jnp.stack([z, zero, -x], -1), jnp.stack([-y, x, zero], -1)],
        axis=-2,
    )


def _bounds(model: Any) -> tuple[jax.Array, jax.Array]:
    return joint_bounds(model) if isinstance(model, HandModel) else model.ik_bounds()


def _centre(model: Any) -> jax.Array:
    return mean_pose(model) if isinstance(model, HandModel) else model.ik_centre()


def _points(model: Any, params: jax.Array) -> jax.Array:
    return model_landmarks(params, model) if isinstance(model, HandModel) else model.ik_points(params)


def _points_and_jacobian(model: Any, params: jax.Array) -> tuple[jax.Array, jax.Array]:
    if isinstance(model, HandModel):
        return landmarks_and_jacobian(params, model)
    return model.ik_points_and_jacobian(params)


def _links(valid: jax.Array) -> jax.Array:
    """(B, T) 1.0 where frame t and t - 1 are both valid (a smoothness link), 0 at t = 0."""
    both = valid[:, 1:] & valid[:, :-1]
    return jnp.concatenate([jnp.zeros_like(valid[:, :1]), both], axis=1).astype(jnp.float32)


def _block_tridiagonal_solve(diagonal: jax.Array, coupling: jax.Array, rhs: jax.Array) -> jax.Array:
    """Solve the symmetric block-tridiagonal systems of all sequences (block Thomas algorithm).

    Row t reads ``diagonal_t x_t - coupling_t x_{t-1} - coupling_{t+1} x_{t+1} = rhs_t``.

    Args:
        diagonal: (B, T, D, D); coupling: (B, T) scalar coupling c_t (times the identity) between
            t - 1 and t (c_0 unused); rhs: (B, T, D).

    Returns:
        (B, T, D). Sequential in T (a scan), parallel over B and within each D x D block.
    """
    eye = jnp.eye(diagonal.shape[-1], dtype=diagonal.dtype)
    following = jnp.concatenate([coupling[:, 1:], jnp.zeros_like(coupling[:, :1])], axis=1)

    def forward(carry: tuple, inputs: tuple) -> tuple[tuple[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]:
        upper_prev, rhs_prev = carry  # C'_{t-1} (B, D, D), d'_{t-1} (B, D)
        block, c, c_next, r = inputs
        pivot = block - c[:, None, None] * upper_prev
        solved = jnp.linalg.solve(
            pivot, jnp.concatenate([eye * c_next[:, None, None], (r + c[:, None] * rhs_prev)[..., None]], -1)
        )
        upper, rhs_t = solved[..., :-1], solved[..., -1]  # C'_t = c_{t+1} pivot^-1, d'_t
        return (upper, rhs_t), (upper, rhs_t)

    time_major = (jnp.moveaxis(diagonal, 1, 0), coupling.T, following.T, jnp.moveaxis(rhs, 1, 0))
    batch, size = diagonal.shape[0], diagonal.shape[-1]
    start = (jnp.zeros((batch, size, size), diagonal.dtype), jnp.zeros((batch, size), diagonal.dtype))
    _, (uppers, rhss) = jax.lax.scan(forward, start, time_major)

    def backward(x_next: jax.Array, inputs: tuple) -> tuple[jax.Array, jax.Array]:
        upper, rhs_t = inputs
        x = rhs_t + jnp.einsum("nab,nb->na", upper, x_next)  # x_t = d'_t + C'_t x_{t+1}
        return x, x

    _, xs = jax.lax.scan(backward, jnp.zeros((batch, size), diagonal.dtype), (uppers, rhss), reverse=True)
    return jnp.moveaxis(xs, 0, 1)


class _Problem(NamedTuple):
    """One batch of fits inside :func:`_fit` (traced arrays; ``model`` a pytree).

    target (B, T, 21, 3) mm with missing frames replaced by the rest hand; valid (B, T); root_weights
    (21, 1) square roots of the landmark weights; lower, upper, centre (P,); links (B, T) smoothness
    links (see :func:`_links`); prior_weight, smoothness () weights.
    """

    model: Any
    target: jax.Array
    valid: jax.Array
    root_weights: jax.Array
    lower: jax.Array
    upper: jax.Array
    centre: jax.Array
    links: jax.Array
    prior_weight: jax.Array
    smoothness: jax.Array

    @property
    def n_angles(self) -> int:
        return int(self.lower.shape[0])


def _posed(p: _Problem, angles: jax.Array, rotation: jax.Array, translation: jax.Array, scale: jax.Array) -> jax.Array:
    """(B, T, 21, 3) the model's landmarks for ``angles`` placed by the global pose: s R x + t."""
    return scale * jnp.einsum("ntab,ntjb->ntja", rotation, _points(p.model, angles)) + translation[..., None, :]


def _data_cost(
    p: _Problem, angles: jax.Array, rotation: jax.Array, translation: jax.Array, scale: jax.Array
) -> jax.Array:
    """(B, T) weighted squared landmark residuals plus the prior."""
    world = _posed(p, angles, rotation, translation, scale)
    cost = jnp.sum(((world - p.target) * p.root_weights) ** 2, axis=(-2, -1))
    return cost + p.prior_weight * jnp.sum((angles - p.centre) ** 2, axis=-1)


def _smooth_cost(p: _Problem, angles: jax.Array) -> jax.Array:
    """(B,) the smoothness term of each sequence."""
    step = jnp.concatenate([jnp.zeros_like(angles[:, :1]), jnp.diff(angles, axis=1)], axis=1)
    return p.smoothness * jnp.sum(p.links * jnp.sum(step**2, axis=-1), axis=1)


def _initial_pose(p: _Problem, given_scale: jax.Array, fit_scale: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Rotation (B, T, 3, 3), translation (B, T, 3) and scale () from per-frame palm alignments: the
    median of their scales unless ``fit_scale`` is False (then ``given_scale``)."""
    rest = _points(p.model, p.centre).astype(jnp.float32)  # (21, 3); the palm does not depend on angles
    palm = jnp.asarray(PALM_INDICES)
    rest_palm = jnp.broadcast_to(rest[palm], p.target[..., palm, :].shape)
    rotation, palm_scale, _ = similarity_transform(rest_palm, p.target[..., palm, :])
    median_scale = jnp.nanmedian(jnp.where(p.valid, palm_scale, jnp.nan))
    median_scale = jnp.where(jnp.isfinite(median_scale), median_scale, 1.0)
    scale = jnp.where(fit_scale, median_scale, given_scale)
    translation = jnp.mean(p.target[..., palm, :], axis=-2) - scale * jnp.einsum(
        "...ab,b->...a", rotation, jnp.mean(rest[palm], axis=0)
    )
    return rotation, translation, scale


def _normal_equations(
    p: _Problem, angles: jax.Array, rotation: jax.Array, translation: jax.Array, scale: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Per frame: Gauss-Newton Hessian (B, T, 26, 26) and gradient (B, T, 26) of data_cost / 2."""
    n_angles = p.n_angles
    points, jac = _points_and_jacobian(p.model, angles)  # (B, T, 21, 3), (B, T, 21, 3, 20)
    world = scale * jnp.einsum("ntab,ntjb->ntja", rotation, points) + translation[..., None, :]
    residual = ((world - p.target) * p.root_weights).reshape(*world.shape[:2], -1)  # (B, T, 63)
    j_angles = scale * jnp.einsum("ntab,ntjbk->ntjak", rotation, jac)
    # d/dw of s R exp([w]_x) x at w = 0 is -s R [x]_x.
    j_rotation = -scale * jnp.einsum("ntab,ntjbc->ntjac", rotation, _cross_matrix(points))
    j_translation = jnp.broadcast_to(jnp.eye(3, dtype=points.dtype), (*points.shape[:3], 3, 3))
    jacobian = jnp.concatenate([j_angles, j_rotation, j_translation], axis=-1) * p.root_weights[..., None]
    jacobian = jacobian.reshape(*world.shape[:2], -1, n_angles + 6)  # (B, T, 63, 26)
    hessian = jnp.einsum("ntri,ntrj->ntij", jacobian, jacobian)
    gradient = jnp.einsum("ntri,ntr->nti", jacobian, residual)
    # The prior's Hessian is prior_weight on the angles' diagonal.
    prior_diagonal = jnp.concatenate([jnp.full((n_angles,), 1.0), jnp.zeros((6,))]) * p.prior_weight
    hessian = hessian + jnp.diag(prior_diagonal)
    gradient = gradient.at[..., :n_angles].add(p.prior_weight * (angles - p.centre))
    return hessian, gradient


def _apply(
    p: _Problem, delta: jax.Array, angles: jax.Array, rotation: jax.Array, translation: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The step ``delta`` (B, T, 26): angles projected onto the limits, the rotation updated multiplicatively."""
    n = p.n_angles
    new_angles = jnp.clip(angles + delta[..., :n], p.lower, p.upper)  # projection onto the limits
    new_rotation = rotation @ rotation_from_vector(delta[..., n : n + 3])
    return new_angles, new_rotation, translation + delta[..., n + 3 :]


def _fix_active(p: _Problem, angles: jax.Array, hessian: jax.Array, gradient: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Angles on a limit that the gradient pushes outward are held (active set): their rows and
    columns leave the system, so the others take a full Newton step instead of one the
    projection would cut short (projected Newton, Bertsekas 1982)."""
    n = p.n_angles
    g = gradient[..., :n]
    held = ((angles <= p.lower + 1e-6) & (g > 0)) | ((angles >= p.upper - 1e-6) & (g < 0))
    free = jnp.concatenate([~held, jnp.ones((*held.shape[:-1], 6), bool)], axis=-1).astype(hessian.dtype)
    hessian = hessian * free[..., :, None] * free[..., None, :] + (1.0 - free)[..., None] * jnp.eye(n + 6)
    return hessian, gradient * free


_Carry = tuple[jax.Array, jax.Array, jax.Array, jax.Array]  # angles, rotation, translation, damping


def _accept(better: jax.Array, new: tuple[jax.Array, ...], carry: _Carry) -> _Carry:
    """Keep the step where it lowered the cost (``better`` (B, T) or (B,)) and adapt the damping."""
    angles, rotation, translation, damping = carry
    new_angles, new_rotation, new_translation = new
    expand = (...,) + (None,) * (angles.ndim - better.ndim)
    keep = better[expand]
    angles = jnp.where(keep, new_angles, angles)
    translation = jnp.where(keep, new_translation, translation)
    rotation = jnp.where(keep[..., None], new_rotation, rotation)
    damping = jnp.clip(jnp.where(better, damping / 3.0, damping * 4.0), 1e-7, 1e7)
    return angles, rotation, translation, damping


def _frame_step(p: _Problem, carry: _Carry, scale: jax.Array) -> _Carry:
    """One LM iteration of every frame on its own (no smoothness)."""
    angles, rotation, translation, damping = carry
    n = p.n_angles
    hessian, gradient = _normal_equations(p, angles, rotation, translation, scale)
    hessian, gradient = _fix_active(p, angles, hessian, gradient)
    cost = _data_cost(p, angles, rotation, translation, scale)
    diagonal = jnp.diagonal(hessian, axis1=-2, axis2=-1)
    damped = hessian + (damping[..., None] * (diagonal + 1e-6))[..., None] * jnp.eye(n + 6)
    delta = -jnp.linalg.solve(damped, gradient[..., None])[..., 0]
    new = _apply(p, delta, angles, rotation, translation)
    return _accept(_data_cost(p, *new, scale) < cost, new, carry)


def _sequence_step(p: _Problem, carry: _Carry, scale: jax.Array) -> _Carry:
    """One LM iteration of each whole sequence with the smoothness term: the 26 parameters of
    every frame are coupled to the neighbours' angles only, so the pose parameters are
    eliminated per frame (Schur complement) and the angles solved exactly across time."""
    angles, rotation, translation, damping = carry  # damping (B,)
    n, links, smoothness = p.n_angles, p.links, p.smoothness
    hessian, gradient = _normal_equations(p, angles, rotation, translation, scale)
    step = jnp.diff(angles, axis=1)  # (B, T - 1, 20)
    link_next = links[:, 1:, None]
    smooth_gradient = jnp.zeros_like(angles).at[:, 1:].add(link_next * step).at[:, :-1].add(-link_next * step)
    gradient = gradient.at[..., :n].add(smoothness * smooth_gradient)
    cost = jnp.sum(_data_cost(p, angles, rotation, translation, scale), axis=1) + _smooth_cost(p, angles)
    diagonal = jnp.diagonal(hessian, axis1=-2, axis2=-1)
    hessian = hessian + (damping[:, None, None] * (diagonal + 1e-6))[..., None] * jnp.eye(n + 6)
    a_block, b_block, c_block = hessian[..., :n, :n], hessian[..., :n, n:], hessian[..., n:, n:]
    g_angles, g_pose = gradient[..., :n], gradient[..., n:]
    c_inv_bt = jnp.linalg.solve(c_block, jnp.concatenate([jnp.swapaxes(b_block, -1, -2), g_pose[..., None]], -1))
    reduced = a_block - b_block @ c_inv_bt[..., :n]
    reduced_gradient = g_angles - jnp.einsum("ntab,ntb->nta", b_block, c_inv_bt[..., n])
    neighbours = links + jnp.concatenate([links[:, 1:], jnp.zeros_like(links[:, :1])], axis=1)
    reduced = reduced + (smoothness * neighbours)[..., None, None] * jnp.eye(n)
    delta_angles = _block_tridiagonal_solve(reduced, smoothness * links, -reduced_gradient)
    delta_pose = -jnp.linalg.solve(c_block, (g_pose + jnp.einsum("ntab,nta->ntb", b_block, delta_angles))[..., None])[
        ..., 0
    ]
    new = _apply(p, jnp.concatenate([delta_angles, delta_pose], axis=-1), angles, rotation, translation)
    new_cost = jnp.sum(_data_cost(p, *new, scale), axis=1) + _smooth_cost(p, new[0])
    return _accept(new_cost < cost, new, carry)


def _refit_scale(p: _Problem, carry: _Carry, scale: jax.Array) -> tuple[_Carry, jax.Array]:
    """Closed-form scale over all valid frames with angles and rotations fixed, translations
    re-solved with it: s = sum <R x~, y~> / sum |x~|^2 with per-frame centred (weighted) points."""
    angles, rotation, translation, damping = carry
    moved = jnp.einsum("ntab,ntjb->ntja", rotation, _points(p.model, angles))
    moved_weighted, target_weighted = moved * p.root_weights, p.target * p.root_weights
    moved_centred = moved_weighted - jnp.mean(moved_weighted, axis=-2, keepdims=True)
    target_centred = target_weighted - jnp.mean(target_weighted, axis=-2, keepdims=True)
    weight = p.valid[..., None, None]
    numerator = jnp.sum(jnp.where(weight, moved_centred * target_centred, 0.0))
    denominator = jnp.sum(jnp.where(weight, moved_centred**2, 0.0))
    refined = numerator / jnp.maximum(denominator, jnp.finfo(p.target.dtype).tiny)
    scale = jnp.where(jnp.isfinite(refined) & (refined > 0), refined, scale)
    translation = jnp.mean(p.target - scale * moved, axis=-2)
    return (angles, rotation, translation, damping), scale


@functools.partial(jax.jit, static_argnames=("smooth",))
def _fit(
    target: jax.Array,
    init: jax.Array,
    model: Any,
    given_scale: jax.Array,
    smoothness: jax.Array,
    prior_weight: jax.Array,
    landmark_weights: jax.Array,
    fit_scale: jax.Array,
    iterations: jax.Array,
    refine_iterations: jax.Array,
    smooth_iterations: jax.Array,
    *,
    smooth: bool,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]:
    """target (B, T, 21, 3) mm, init (B, T, 20) -> angles, error (B, T), rotation, translation, scale ().

    Per-frame LM steps (the scale refitted once after ``iterations`` when ``fit_scale``), then, with
    ``smooth``, whole-sequence steps with the smoothness term."""
    valid = jnp.all(jnp.isfinite(target), axis=(-2, -1))  # (B, T)
    lower, upper = _bounds(model)
    centre = _centre(model)
    rest = _points(model, centre).astype(jnp.float32)
    # Missing frames get the rest hand as a stand-in target: everything stays finite, results are masked.
    target = jnp.where(valid[..., None, None], target, rest)
    p = _Problem(
        model=model,
        target=target,
        valid=valid,
        root_weights=jnp.sqrt(landmark_weights)[:, None],  # (21, 1): residual rows scaled by sqrt(w)
        lower=lower,
        upper=upper,
        centre=centre,
        links=_links(valid),
        prior_weight=prior_weight,
        smoothness=smoothness,
    )
    rotation, translation, scale = _initial_pose(p, given_scale, fit_scale)
    angles = jnp.clip(init, lower, upper)

    def frame_loop(i: jax.Array, state: tuple[_Carry, jax.Array]) -> tuple[_Carry, jax.Array]:
        carry, scale = state
        carry, scale = jax.lax.cond(
            fit_scale & (i == iterations), functools.partial(_refit_scale, p), lambda c, s: (c, s), carry, scale
        )
        return _frame_step(p, carry, scale), scale

    carry: _Carry = (angles, rotation, translation, jnp.full(valid.shape, 1e-3, target.dtype))
    carry, scale = jax.lax.fori_loop(0, iterations + refine_iterations, frame_loop, (carry, scale))
    if smooth:
        carry = (*carry[:3], jnp.full(valid.shape[:1], 1e-3, target.dtype))
        carry = jax.lax.fori_loop(0, smooth_iterations, lambda _, c: _sequence_step(p, c, scale), carry)
    angles, rotation, translation, _ = carry

    error = jnp.mean(jnp.linalg.norm(_posed(p, angles, rotation, translation, scale) - target, axis=-1), axis=-1)
    missing = ~valid
    angles = jnp.where(missing[..., None], jnp.nan, angles)
    error = jnp.where(missing, jnp.nan, error)
    return angles, error, rotation, translation, scale
