"""Masked losses whose data-parallel mean equals the single-device mean exactly.

Every loss here is a masked mean (`emgjax.metrics.masked_mean`). Inside a
data-parallel step (``shard_map`` or ``pmap`` over a named axis) pass
``axis_name``: the per-device value is then
``local_sum / pmean(local_count)``, so that the step's ``pmean`` over devices
gives ``global_sum / global_count`` -- exactly the single-device loss on the
whole batch, however the mask is spread across devices -- and the ``pmean`` of
the per-device gradients is exactly the single-device gradient. Without
``axis_name`` the functions are ordinary masked means.

Conventions: angles are channel-first ``(B, 20, T)`` with a mask ``(B, T)``;
joints are ``(..., J, 3)`` with a mask of the leading shape ``(...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

# The package's one masked mean and fingertip distance live with the metrics (which never
# import the training package); re-exported here as part of the losses' API.
from emgjax.metrics import fingertip_distance, masked_mean

__all__ = [
    "masked_mean",
    "angle_l1",
    "joint_mse",
    "joint_l1",
    "joint_distance",
    "fingertip_distance",
    "MEDIAPIPE_FINGERTIPS",
    "emg2pose_loss",
]

# Landmark indices of the five fingertips in the MediaPipe 21-point layout.
MEDIAPIPE_FINGERTIPS = (4, 8, 12, 16, 20)


def _check_same_shape(name: str, pred: jax.Array, target: jax.Array) -> None:
    if pred.shape != target.shape:
        raise ValueError(
            f"{name}: expected pred and target of the same shape, found {tuple(pred.shape)} and {tuple(target.shape)}"
        )


def angle_l1(
    pred: jax.Array, target: jax.Array, mask: jax.Array | None = None, *, axis_name: str | None = None
) -> jax.Array:
    """Masked mean absolute angle error (radians).

    pred, target: (B, A, T) channel-first; mask: (B, T) (True = valid sample),
    applied to every angle.
    """
    _check_same_shape("angle_l1", pred, target)
    if mask is not None:
        mask = jnp.asarray(mask)
        if pred.ndim != 3 or mask.shape != (pred.shape[0], pred.shape[2]):
            raise ValueError(
                f"angle_l1: expected pred (B, A, T) and mask (B, T), found {tuple(pred.shape)} and {tuple(mask.shape)}"
            )
        mask = mask[:, None, :]
    return masked_mean(jnp.abs(pred - target), mask, axis_name=axis_name)


def _joint_mask(name: str, pred: jax.Array, mask) -> jax.Array | None:
    if pred.ndim < 2 or pred.shape[-1] != 3:
        raise ValueError(f"{name}: expected joints of shape (..., J, 3), found {tuple(pred.shape)}")
    if mask is None:
        return None
    mask = jnp.asarray(mask)
    if mask.shape != pred.shape[:-2]:
        raise ValueError(f"{name}: expected mask of shape {tuple(pred.shape[:-2])}, found {tuple(mask.shape)}")
    return mask[..., None, None]


def joint_mse(pred, target, mask=None, *, scale: float = 1.0, axis_name: str | None = None) -> jax.Array:
    """Masked mean squared joint-coordinate error, in (units x scale)^2.

    pred, target: (..., J, 3); mask: (...). ``scale=1000`` turns metres into mm.
    """
    _check_same_shape("joint_mse", pred, target)
    mask = _joint_mask("joint_mse", pred, mask)
    return masked_mean(jnp.square((pred - target) * scale), mask, axis_name=axis_name)


def joint_l1(pred, target, mask=None, *, scale: float = 1.0, axis_name: str | None = None) -> jax.Array:
    """Masked mean absolute joint-coordinate error; shapes as ``joint_mse``."""
    _check_same_shape("joint_l1", pred, target)
    mask = _joint_mask("joint_l1", pred, mask)
    return masked_mean(jnp.abs(pred - target) * scale, mask, axis_name=axis_name)


def joint_distance(pred, target, mask=None, *, scale: float = 1.0, axis_name: str | None = None) -> jax.Array:
    """Masked mean Euclidean distance per joint (MPJPE when scale gives mm).

    pred, target: (..., J, 3); mask: (...). The norm's gradient is made finite
    at zero distance (a perfect prediction would otherwise give NaN grads).
    """
    _check_same_shape("joint_distance", pred, target)
    mask = _joint_mask("joint_distance", pred, mask)
    squared = jnp.sum(jnp.square((pred - target) * scale), axis=-1)
    safe = jnp.where(squared > 0, squared, 1.0)
    distance = jnp.where(squared > 0, jnp.sqrt(safe), 0.0)
    return masked_mean(distance, None if mask is None else mask[..., 0], axis_name=axis_name)


def emg2pose_loss(
    pred_angles: jax.Array,
    target_angles: jax.Array,
    mask: jax.Array,
    *,
    fk_fn: Callable[[jax.Array], jax.Array] | None = None,
    fingertip_weight: float = 0.01,
    fingertips: Sequence[int] = MEDIAPIPE_FINGERTIPS,
    axis_name: str | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """emg2pose's training loss: masked angle L1 + ``fingertip_weight`` x fingertip distance (mm).

    Shapes as ``angle_l1``. ``fk_fn(angles (..., 20)) -> landmarks (..., L, 3)`` is any
    jittable forward kinematics (e.g. ``functools.partial(forward_kinematics, hand=hand)``),
    returning millimetres for a term in mm; ``fingertips`` are landmark indices in its
    output. The term is `emgjax.metrics.fingertip_distance` on every sample. Without
    ``fk_fn`` the loss is the angle L1 alone.
    Returns ``(loss, {"loss", "angle_l1"[, "fingertip_distance"]})``.
    """
    l1 = angle_l1(pred_angles, target_angles, mask, axis_name=axis_name)
    metrics = {"angle_l1": l1}
    loss = l1
    if fk_fn is not None:
        # Every sample (the evaluation metric uses every 40th).
        tip = fingertip_distance(
            pred_angles, target_angles, mask, fk_fn, every=1, fingertips=fingertips, axis_name=axis_name
        )
        metrics["fingertip_distance"] = tip
        loss = loss + fingertip_weight * tip
    metrics["loss"] = loss
    return loss, metrics
