"""emg2pose's evaluation metrics, MPJPE and PA-MPJPE (jittable, masked).

Angles are channel-first as in emg2pose batches: ``pred``/``target`` (B, 20, T)
radians, ``mask`` (B, T) bool (emg2pose's ``no_ik_failure``).

Every metric is ONE mean over all valid elements of the batch (sum over valid
elements / number of valid elements), not a mean of per-window means: windows
with more valid samples weigh more. When nothing is valid the result is 0, not
NaN (``sum / max(count, 1)``), so a loss built on these stays finite on an
all-IK-failure batch; :func:`masked_sum_and_count` gives the pieces for exact
means across devices or batches.

Elements outside the mask are selected away with ``jnp.where`` before any sum,
so NaN or inf there (e.g. garbage predictions at IK failures) never leak into a
metric or its gradient.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

from emgjax.kinematics.fk import forward_kinematics
from emgjax.kinematics.hand_model import (
    DISTAL_JOINT_INDICES,
    FINGER_JOINT_INDICES,
    FINGERTIP_INDICES,
    MID_JOINT_INDICES,
    MOVING_LANDMARK_INDICES,
    NUM_JOINT_ANGLES,
    PROXIMAL_JOINT_INDICES,
    HandModel,
)

# Forward kinematics as a function: angles (..., 20) -> landmarks (..., L, 3).
ForwardKinematics = Callable[[jax.Array], jax.Array]

EMG2POSE_SAMPLE_RATE = 2000.0
LANDMARK_EVERY = 40  # emg2pose runs FK on every 40th sample (50 Hz at 2 kHz)

EMG2POSE_METRIC_KEYS: tuple[str, ...] = (
    "mae",
    "mae_deg",
    "vel",
    "acc",
    "jerk",
    "mae_thumb",
    "mae_index",
    "mae_middle",
    "mae_ring",
    "mae_pinky",
    "mae_proximal",
    "mae_mid",
    "mae_distal",
    "landmark_distance",
    "fingertip_distance",
)


# ---------------------------------------------------------------------------
# Masked reductions
# ---------------------------------------------------------------------------


def masked_sum_and_count(x: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Sum of ``x`` over the valid elements and their number.

    Args:
        x: any shape.
        mask: bool (or 0/1) broadcastable to ``x.shape`` (NumPy rules: align
            trailing axes; add singleton axes yourself, e.g. ``mask[:, None, :]``).

    Returns:
        (sum, count) scalars; count is float, in x's float dtype.
    """
    x = jnp.asarray(x)
    mask = jnp.asarray(mask).astype(bool)
    try:
        mask = jnp.broadcast_to(mask, x.shape)
    except ValueError:
        raise ValueError(
            f"mask: expected a shape broadcastable to values {tuple(x.shape)}, found {tuple(mask.shape)}"
        ) from None
    dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32
    total = jnp.sum(jnp.where(mask, x, 0), dtype=dtype)
    count = jnp.sum(mask, dtype=dtype)
    return total, count


def masked_mean(x: jax.Array, mask: jax.Array | None = None, *, axis_name: str | None = None) -> jax.Array:
    """Mean of ``x`` over the valid elements; 0 when none is valid.

    The one masked mean of the package: the metrics here and the losses of
    `emgjax.train.losses` are built on it.

    Args:
        x: any shape.
        mask: broadcastable to ``x.shape`` (see :func:`masked_sum_and_count`), or None for all elements.
        axis_name: inside a data-parallel step (``shard_map``/``pmap`` over this named
            axis), the count is averaged over the axis (``local_sum / pmean(local_count)``),
            so that the ``pmean`` of the result over devices is exactly the global masked
            mean, however the valid elements are spread. None: an ordinary masked mean.

    Returns:
        () scalar ``sum(x[mask]) / count``, 0 when count is 0.
    """
    total, count = masked_sum_and_count(x, jnp.ones((), bool) if mask is None else mask)
    if axis_name is not None:
        # The averaged count may be fractional (e.g. 0.5), so no max(count, 1) floor.
        count = jax.lax.pmean(count, axis_name)
    valid = count > 0
    return jnp.where(valid, total / jnp.where(valid, count, 1), 0)


def _safe_norm(x: jax.Array) -> jax.Array:
    """Euclidean norm over the last axis with a zero (not NaN) gradient at 0.

    The plain sqrt has an infinite derivative at 0, which turns into NaN as
    soon as a prediction equals its target exactly (or a masked-out element is
    multiplied by zero).
    """
    squared = jnp.sum(x * x, axis=-1)
    positive = squared > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, squared, 1.0)), 0.0)


# ---------------------------------------------------------------------------
# Input checks (static shapes: they run while tracing, before any compute)
# ---------------------------------------------------------------------------


def _check_angles_and_mask(pred, target, mask) -> tuple[jax.Array, jax.Array, jax.Array]:
    pred, target, mask = jnp.asarray(pred), jnp.asarray(target), jnp.asarray(mask)
    if pred.ndim != 3 or pred.shape[1] != NUM_JOINT_ANGLES:
        raise ValueError(
            f"pred: expected channel-first joint angles (batch, {NUM_JOINT_ANGLES}, time), "
            f"found shape {tuple(pred.shape)}"
        )
    if target.shape != pred.shape:
        raise ValueError(f"target: expected the shape of pred {tuple(pred.shape)}, found {tuple(target.shape)}")
    expected_mask = (pred.shape[0], pred.shape[2])
    if mask.shape != expected_mask:
        raise ValueError(
            f"mask (no_ik_failure): expected shape (batch, time) = {expected_mask}, found {tuple(mask.shape)}"
        )
    return pred, target, mask.astype(bool)


def _check_sample_rate(sample_rate: float) -> None:
    if (
        isinstance(sample_rate, bool)
        or not isinstance(sample_rate, numbers.Real)
        or not math.isfinite(sample_rate)
        or sample_rate <= 0
    ):
        raise ValueError(f"sample_rate: expected a positive number of Hz, found {sample_rate!r}")


def _check_every(every: int) -> int:
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"every: expected a positive integer sample step, found {every!r}")
    return every


# ---------------------------------------------------------------------------
# Angle metrics
# ---------------------------------------------------------------------------


def angle_mae(pred: jax.Array, target: jax.Array, mask: jax.Array, joints=None) -> jax.Array:
    """Mean absolute joint-angle error (radians) over valid samples and joints.

    Args:
        pred, target: (B, 20, T) radians.
        mask: (B, T) bool, True where the target is valid.
        joints: optional sequence of joint indices to average over (default all 20).

    Returns:
        () radians.
    """
    pred, target, mask = _check_angles_and_mask(pred, target, mask)
    error = jnp.abs(pred - target)
    if joints is not None:
        error = error[:, jnp.asarray(tuple(joints)), :]
    return masked_mean(error, mask[:, None, :])


def derivative_masks(mask: jax.Array, order: int) -> list[jax.Array]:
    """Masks for the 1st..order-th forward differences along the last axis.

    A difference at t counts only if the mask of the order below holds at t
    and t + 1, so no difference ever spans an invalid sample.

    Args:
        mask: (..., T) bool.

    Returns:
        list of ``order`` masks, the k-th (..., T - k).
    """
    masks = []
    current = jnp.asarray(mask).astype(bool)
    for _ in range(order):
        current = current[..., 1:] & current[..., :-1]
        masks.append(current)
    return masks


def motion_magnitudes(
    pred: jax.Array, mask: jax.Array, sample_rate: float = EMG2POSE_SAMPLE_RATE
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """emg2pose's mean |velocity|, |acceleration| and |jerk| of predicted angles.

    As emg2pose does, each is the mean absolute 1st / 2nd / 3rd forward
    difference of the predictions multiplied once by the sample rate (so
    ``vel`` is rad/s; ``acc`` and ``jerk`` are per-sample differences of the
    lower order times the rate, not divided by dt^2 or dt^3).

    Args:
        pred: (B, 20, T) radians.
        mask: (B, T) bool; the difference masks shrink (see :func:`derivative_masks`).
        sample_rate: Hz.

    Returns:
        (vel, acc, jerk) scalars.
    """
    pred = jnp.asarray(pred)
    if pred.ndim != 3 or pred.shape[1] != NUM_JOINT_ANGLES:
        raise ValueError(
            f"pred: expected channel-first joint angles (batch, {NUM_JOINT_ANGLES}, time), "
            f"found shape {tuple(pred.shape)}"
        )
    mask = jnp.asarray(mask)
    if mask.shape != (pred.shape[0], pred.shape[2]):
        raise ValueError(
            f"mask: expected shape (batch, time) = {(pred.shape[0], pred.shape[2])}, found {tuple(mask.shape)}"
        )
    _check_sample_rate(sample_rate)
    return _motion_magnitudes_jit(pred, mask.astype(bool), float(sample_rate))


@functools.partial(jax.jit, static_argnums=2)
def _motion_magnitudes_jit(pred, mask, sample_rate):
    results = []
    difference = pred
    for order_mask in derivative_masks(mask, 3):
        difference = difference[..., 1:] - difference[..., :-1]
        results.append(masked_mean(jnp.abs(difference) * sample_rate, order_mask[:, None, :]))
    return tuple(results)


# ---------------------------------------------------------------------------
# Landmark metrics (FK on every `every`-th sample)
# ---------------------------------------------------------------------------


def _landmark_errors(
    pred, target, mask, hand: HandModel | ForwardKinematics, every: int
) -> tuple[jax.Array, jax.Array]:
    """Per-landmark distances (B, T', L) on every `every`-th sample, and the mask (B, T')."""
    pred, target, mask = _check_angles_and_mask(pred, target, mask)
    every = _check_every(every)
    # One FK call for both (a smaller program to compile); (2, B, 20, T') ->
    # (2, B, T', 20) since FK wants the angles last.
    both = jnp.swapaxes(jnp.stack([pred[..., ::every], target[..., ::every]]), -1, -2)
    landmarks = forward_kinematics(both, hand) if isinstance(hand, HandModel) else hand(both)
    return _safe_norm(landmarks[0] - landmarks[1]), mask[:, ::every]


def landmark_distance(
    pred: jax.Array, target: jax.Array, mask: jax.Array, hand: HandModel, every: int = LANDMARK_EVERY
) -> jax.Array:
    """Mean Euclidean landmark distance (hand-model units, mm) via FK.

    FK runs on samples 0, every, 2*every, ... with the mask sampled at the same
    steps; the 4 proximal frames of index..pinky (never moved by FK) are left
    out, so the mean is over 17 landmarks.

    Args:
        pred, target: (B, 20, T) radians; mask: (B, T) bool; hand: the hand model.

    Returns:
        () distance.
    """
    pred, target, mask = _check_angles_and_mask(pred, target, mask)
    return _landmark_mean_jit(pred, target, mask, hand, _check_every(every), MOVING_LANDMARK_INDICES, None)


def fingertip_distance(
    pred: jax.Array,
    target: jax.Array,
    mask: jax.Array,
    hand: HandModel | ForwardKinematics,
    every: int = LANDMARK_EVERY,
    *,
    fingertips: Sequence[int] = FINGERTIP_INDICES,
    axis_name: str | None = None,
) -> jax.Array:
    """Mean Euclidean distance of the 5 fingertips (mm) via FK on every `every`-th sample.

    emg2pose's evaluation metric with the defaults, and its training term (the
    loss of `emgjax.train.losses.emg2pose_loss`) with ``every=1``.

    Args:
        pred, target: (B, 20, T) radians; mask: (B, T) bool.
        hand: the hand model, or any jittable forward kinematics
            ``fk(angles (..., 20)) -> landmarks (..., L, 3)`` (in mm for a distance in mm).
        every: FK sample step (the mask is sampled at the same steps).
        fingertips: landmark indices of the fingertips in FK's output (default: the hand model's).
        axis_name: data-parallel axis for an exact global mean (see :func:`masked_mean`).

    Returns:
        () distance.
    """
    pred, target, mask = _check_angles_and_mask(pred, target, mask)
    args = (pred, target, mask, hand, _check_every(every), tuple(int(i) for i in fingertips), axis_name)
    # A hand model is traced data, so one compiled program serves every hand; an FK function
    # is compiled into the caller's program instead.
    return _landmark_mean_jit(*args) if isinstance(hand, HandModel) else _landmark_mean(*args)


def _landmark_mean(pred, target, mask, hand, every, landmark_indices, axis_name=None):
    distances, sampled_mask = _landmark_errors(pred, target, mask, hand, every)
    return masked_mean(distances[..., jnp.asarray(landmark_indices)], sampled_mask[..., None], axis_name=axis_name)


_landmark_mean_jit = jax.jit(_landmark_mean, static_argnums=(4, 5, 6))


# ---------------------------------------------------------------------------
# All of emg2pose's metrics
# ---------------------------------------------------------------------------


def emg2pose_metrics(
    pred: jax.Array,
    target: jax.Array,
    no_ik_failure: jax.Array,
    hand: HandModel,
    *,
    landmark_every: int = LANDMARK_EVERY,
    sample_rate: float = EMG2POSE_SAMPLE_RATE,
) -> dict[str, jax.Array]:
    """emg2pose's metric set for one batch.

    Args:
        pred, target: (B, 20, T) joint angles, radians.
        no_ik_failure: (B, T) bool, True where the target is valid.
        hand: hand model for the landmark metrics.
        landmark_every: FK sample step for the landmark metrics (40 at 2 kHz).
        sample_rate: Hz, scales vel/acc/jerk.

    Returns:
        dict with exactly the keys of :data:`EMG2POSE_METRIC_KEYS`: mae (rad),
        mae_deg, vel/acc/jerk of the predictions, mae per finger
        (thumb..pinky) and per joint group (proximal/mid/distal), and
        landmark_distance / fingertip_distance in the hand's units (mm).
        Each value is a () array; 0 when no sample is valid.
    """
    pred, target, mask = _check_angles_and_mask(pred, target, no_ik_failure)
    _check_every(landmark_every)
    _check_sample_rate(sample_rate)
    metrics = _emg2pose_metrics_jit(pred, target, mask, hand, landmark_every, float(sample_rate))
    return {key: metrics[key] for key in EMG2POSE_METRIC_KEYS}  # jit returns keys sorted


@functools.partial(jax.jit, static_argnums=(4, 5))
def _emg2pose_metrics_jit(pred, target, mask, hand, landmark_every, sample_rate) -> dict[str, jax.Array]:
    error = jnp.abs(pred - target)
    joint_mask = mask[:, None, :]

    def group_mae(joints) -> jax.Array:
        return masked_mean(error[:, jnp.asarray(joints), :], joint_mask)

    metrics = {"mae": masked_mean(error, joint_mask)}
    metrics["mae_deg"] = metrics["mae"] * (180.0 / math.pi)
    metrics["vel"], metrics["acc"], metrics["jerk"] = motion_magnitudes(pred, mask, sample_rate)
    for finger, joints in FINGER_JOINT_INDICES.items():
        metrics[f"mae_{finger}"] = group_mae(joints)
    metrics["mae_proximal"] = group_mae(PROXIMAL_JOINT_INDICES)
    metrics["mae_mid"] = group_mae(MID_JOINT_INDICES)
    metrics["mae_distal"] = group_mae(DISTAL_JOINT_INDICES)

    # One FK pass serves both landmark metrics.
    distances, sampled_mask = _landmark_errors(pred, target, mask, hand, landmark_every)
    metrics["landmark_distance"] = masked_mean(
        distances[..., jnp.asarray(MOVING_LANDMARK_INDICES)], sampled_mask[..., None]
    )
    metrics["fingertip_distance"] = masked_mean(distances[..., jnp.asarray(FINGERTIP_INDICES)], sampled_mask[..., None])
    return {key: metrics[key] for key in EMG2POSE_METRIC_KEYS}


# ---------------------------------------------------------------------------
# 3-D joint errors
# ---------------------------------------------------------------------------


def _check_joints(pred_joints, target_joints, mask):
    pred_joints, target_joints = jnp.asarray(pred_joints), jnp.asarray(target_joints)
    if pred_joints.ndim < 2 or pred_joints.shape[-1] != 3:
        raise ValueError(f"pred_joints: expected shape (..., J, 3), found {tuple(pred_joints.shape)}")
    if target_joints.shape != pred_joints.shape:
        raise ValueError(
            f"target_joints: expected the shape of pred_joints {tuple(pred_joints.shape)}, "
            f"found {tuple(target_joints.shape)}"
        )
    frames = pred_joints.shape[:-2]
    if mask is None:
        mask = jnp.ones(frames, dtype=bool)
    mask = jnp.asarray(mask)
    if mask.shape != frames:
        raise ValueError(f"mask: expected one flag per frame, shape {tuple(frames)}, found {tuple(mask.shape)}")
    return pred_joints, target_joints, mask.astype(bool)


def mpjpe(pred_joints: jax.Array, target_joints: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """Mean per-joint position error: mean Euclidean distance over valid frames and joints.

    Args:
        pred_joints, target_joints: (..., J, 3), e.g. mm.
        mask: (...) bool per frame, or None for all frames.

    Returns:
        () error in the inputs' units.
    """
    pred_joints, target_joints, mask = _check_joints(pred_joints, target_joints, mask)
    return masked_mean(_safe_norm(pred_joints - target_joints), mask[..., None])


def procrustes_align(pred_joints: jax.Array, target_joints: jax.Array) -> jax.Array:
    """Align each frame of ``pred_joints`` to ``target_joints`` by the best similarity transform.

    Least-squares scale s, rotation R and translation t minimising
    sum_j |s R x_j + t - y_j|^2 (Umeyama): SVD of the cross-covariance, with
    the sign of the last singular direction flipped when needed so R is a
    proper rotation (det +1), never a reflection.

    Args:
        pred_joints, target_joints: (..., J, 3).

    Returns:
        (..., J, 3) aligned prediction. Meant for evaluation; the SVD's
        gradient is undefined at repeated singular values.
    """
    pred_centre = jnp.mean(pred_joints, axis=-2, keepdims=True)
    target_centre = jnp.mean(target_joints, axis=-2, keepdims=True)
    x = pred_joints - pred_centre
    y = target_joints - target_centre
    covariance = jnp.einsum("...ja,...jb->...ab", y, x)  # sum_j y_j x_j^T
    u, singular, vt = jnp.linalg.svd(covariance)
    sign = jnp.sign(jnp.linalg.det(u) * jnp.linalg.det(vt))
    sign = jnp.where(sign == 0, 1.0, sign)  # rank-deficient frames: keep a rotation
    ones = jnp.ones_like(sign)
    flip = jnp.stack([ones, ones, sign], axis=-1)  # diag(1, 1, sign)
    rotation = u @ (flip[..., :, None] * vt)
    spread = jnp.sum(x * x, axis=(-2, -1))
    scale = jnp.sum(singular * flip, axis=-1) / jnp.maximum(spread, jnp.finfo(x.dtype).tiny)
    aligned = scale[..., None, None] * jnp.einsum("...ab,...jb->...ja", rotation, x)
    return aligned + target_centre


def pa_mpjpe(pred_joints: jax.Array, target_joints: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """Procrustes-aligned MPJPE: MPJPE after the per-frame best similarity transform.

    Args:
        pred_joints, target_joints: (..., J, 3); mask: (...) bool per frame or None.

    Returns:
        () error in the inputs' units; invariant to rotating, scaling and
        translating the prediction.
    """
    pred_joints, target_joints, mask = _check_joints(pred_joints, target_joints, mask)
    if pred_joints.shape[-2] < 3:
        raise ValueError(
            f"pred_joints: Procrustes alignment needs at least 3 joints per frame, found {pred_joints.shape[-2]}"
        )
    aligned = procrustes_align(pred_joints, target_joints)
    return masked_mean(_safe_norm(aligned - target_joints), mask[..., None])
