"""Forward kinematics: emg2pose's 20 joint angles -> 21 hand landmarks.

The chain follows emg2pose's use of UmeTrack's model. Every joint j < 20 is a
rotation by angle_j about its unit axis a_j through its rest point p_j, both
given in the rest-pose hand frame; as a rigid transform
``L_j = [R_j | p_j - R_j p_j]`` with ``R_j = exp(angle_j [a_j]_x)``. The wrist
transform W is the identity (emg2pose appends two zero wrist angles). For
finger f with joints 4f..4f+3::

    M1 = W L0,  M2 = M1 L1,  M3 = M2 L2,  M4 = M3 L3

and the finger contributes frames M2 (proximal), M3 (intermediate) and M4
(distal). Frames 0 (root) and 1 (wrist) are W. Because every L_j is written in
rest-pose coordinates, composing them this way moves each bone with all the
joints above it. Landmarks come from linear blend skinning of the rest
landmarks: ``x_i = sum_k w_ik (F[b_ik] x_i_rest)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from emgjax.kinematics.hand_model import NUM_FRAMES, NUM_JOINT_ANGLES, HandModel


def _skew(axes: jax.Array) -> jax.Array:
    """Cross-product matrices: axes (..., 3) -> (..., 3, 3) with K v = axis x v."""
    x, y, z = axes[..., 0], axes[..., 1], axes[..., 2]
    zero = jnp.zeros_like(x)
    return jnp.stack(
        [
            jnp.stack([zero, -z, y], axis=-1),
            jnp.stack([z, zero, -x], axis=-1),
            jnp.stack([-y, x, zero], axis=-1),
        ],
        axis=-2,
    )


def axis_angle_rotation(axes: jax.Array, angles: jax.Array) -> jax.Array:
    """The rotations exp(angle * [axis]_x) (Rodrigues' formula), as UmeTrack's skinning computes them.

    For a unit axis this turns by ``angle`` about it. Like UmeTrack (which
    takes the exponential map of ``axis * angle``), a slightly non-unit axis
    turns by ``|axis| * angle``, so both agree on any hand model file.

    Args:
        axes: (J, 3) axes (unit, up to rounding).
        angles: (..., J) radians.

    Returns:
        (..., J, 3, 3) rotation matrices R = I + sin(p) / n K + (1 - cos(p)) / n^2 K^2
        with K = [axis]_x, n = |axis| and p = n * angle.
    """
    k = _skew(axes)
    k2 = k @ k
    norm = jnp.linalg.norm(axes, axis=-1)
    # A zero axis (only in hand-made pytrees) gives K = 0 and R = I; avoid 0 / 0.
    norm = jnp.where(norm > 0, norm, 1.0)
    turn = angles * norm
    sin = (jnp.sin(turn) / norm)[..., None, None]
    # 1 - cos(p) as 2 sin^2(p / 2): no cancellation for small angles in float32.
    one_minus_cos = (2.0 * jnp.sin(0.5 * turn) ** 2 / norm**2)[..., None, None]
    return jnp.eye(3, dtype=k.dtype) + sin * k + one_minus_cos * k2


def _check_angles(joint_angles) -> jax.Array:
    angles = jnp.asarray(joint_angles)
    if angles.ndim == 0 or angles.shape[-1] != NUM_JOINT_ANGLES:
        raise ValueError(
            f"joint_angles: expected shape (..., {NUM_JOINT_ANGLES}) (emg2pose's 20 joint angles "
            f"last; transpose channel-first (B, 20, T) arrays first), found {tuple(angles.shape)}"
        )
    if not jnp.issubdtype(angles.dtype, jnp.floating):
        angles = angles.astype(jnp.float32)
    return angles


def joint_frames(joint_angles: jax.Array, hand: HandModel) -> tuple[jax.Array, jax.Array]:
    """The 17 skinning frames as rigid transforms from the rest pose.

    Args:
        joint_angles: (..., 20) radians.
        hand: the hand model.

    Returns:
        rotations (..., 17, 3, 3) and translations (..., 17, 3): frame i maps a
        rest-pose point x to rotations[i] @ x + translations[i].
    """
    angles = _check_angles(joint_angles)
    dtype = jnp.result_type(angles.dtype, hand.joint_rotation_axes.dtype)
    angles = angles.astype(dtype)
    axes = hand.joint_rotation_axes[:NUM_JOINT_ANGLES].astype(dtype)
    pivots = hand.joint_rest_positions[:NUM_JOINT_ANGLES].astype(dtype)

    rot = axis_angle_rotation(axes, angles)  # (..., 20, 3, 3)
    trans = pivots - jnp.einsum("...jab,jb->...ja", rot, pivots)  # p - R p
    lead = angles.shape[:-1]
    # Group by finger: (..., 5 fingers, 4 joints, ...), so the four chained
    # products run for all fingers at once.
    rot = rot.reshape(*lead, 5, 4, 3, 3)
    trans = trans.reshape(*lead, 5, 4, 3)

    # W is the identity, so M1 = L0. Composition (R1, t1) o (R2, t2) = (R1 R2, R1 t2 + t1).
    chain_rot, chain_trans = rot[..., 0, :, :], trans[..., 0, :]
    finger_rots, finger_trans = [], []
    for k in (1, 2, 3):
        chain_trans = jnp.einsum("...ab,...b->...a", chain_rot, trans[..., k, :]) + chain_trans
        chain_rot = chain_rot @ rot[..., k, :, :]
        finger_rots.append(chain_rot)
        finger_trans.append(chain_trans)
    # (..., 5, 3 segments, ...) -> (..., 15, ...), finger-major as in the frame order.
    finger_rots = jnp.stack(finger_rots, axis=-3).reshape(*lead, 15, 3, 3)
    finger_trans = jnp.stack(finger_trans, axis=-2).reshape(*lead, 15, 3)

    wrist_rot = jnp.broadcast_to(jnp.eye(3, dtype=dtype), (*lead, 2, 3, 3))
    wrist_trans = jnp.zeros((*lead, 2, 3), dtype=dtype)
    rotations = jnp.concatenate([wrist_rot, finger_rots], axis=-3)
    translations = jnp.concatenate([wrist_trans, finger_trans], axis=-2)
    assert rotations.shape[-3] == NUM_FRAMES
    return rotations, translations


def skin_landmarks(rotations: jax.Array, translations: jax.Array, hand: HandModel) -> jax.Array:
    """Linear blend skinning of the rest landmarks.

    Args:
        rotations: (..., 17, 3, 3); translations: (..., 17, 3) from :func:`joint_frames`.
        hand: the hand model (rest landmarks, bone indices and weights).

    Returns:
        (..., 21, 3) landmarks.
    """
    bone_index = np.asarray(hand.landmark_rest_bone_indices, dtype=np.int32)  # (21, K), static
    rest = hand.landmark_rest_positions.astype(rotations.dtype)  # (21, 3)
    weights = hand.landmark_rest_bone_weights.astype(rotations.dtype)  # (21, K)
    bone_rot = rotations[..., bone_index, :, :]  # (..., 21, K, 3, 3)
    bone_trans = translations[..., bone_index, :]  # (..., 21, K, 3)
    moved = jnp.einsum("...lkab,lb->...lka", bone_rot, rest) + bone_trans
    return jnp.einsum("...lka,lk->...la", moved, weights)


def forward_kinematics(joint_angles: jax.Array, hand: HandModel) -> jax.Array:
    """Landmarks of the hand for emg2pose's joint angles.

    Args:
        joint_angles: (..., 20) radians, in :data:`JOINT_NAMES` order, any
            leading dimensions (e.g. (B, T, 20); move the angle axis of a
            channel-first (B, 20, T) array last first).
        hand: a :class:`HandModel` (a pytree: can be a jit argument).

    Returns:
        (..., 21, 3) landmarks in :data:`LANDMARK_NAMES` order, in the hand
        model's units (mm). Jittable and differentiable in angles and geometry.
    """
    # Check the shape here, then run one compiled function: called eagerly,
    # FK would otherwise dispatch a few dozen tiny ops one by one.
    return _forward_kinematics_jit(_check_angles(joint_angles), hand)


@jax.jit
def _forward_kinematics_jit(joint_angles: jax.Array, hand: HandModel) -> jax.Array:
    rotations, translations = joint_frames(joint_angles, hand)
    return skin_landmarks(rotations, translations, hand)
