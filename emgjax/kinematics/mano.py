"""MANO hand model from user-supplied files, read without unpickling, and MANO theta labels.

MANO's model files are licence-restricted (register at https://mano.is.tue.mpg.de)
and emgjax ships none. The official release is a Python pickle
(``MANO_RIGHT.pkl``, with chumpy and scipy.sparse objects inside); emgjax never
unpickles files, because unpickling runs code. Convert it once, in your own
environment, to a plain ``.npz`` of arrays::

    # mano_to_npz.py -- run once where you trust the file (needs numpy, scipy and chumpy installed)
    import pickle, sys
    import numpy as np, scipy.sparse

    with open(sys.argv[1], "rb") as f:          # e.g. MANO_RIGHT.pkl
        data = pickle.load(f, encoding="latin1")

    def array(x):
        x = x.toarray() if scipy.sparse.issparse(x) else getattr(x, "r", x)   # sparse / chumpy -> numpy
        return np.asarray(x)

    keys = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table",
            "hands_mean", "hands_components", "f")
    np.savez(sys.argv[2], **{k: array(data[k]) for k in keys if k in data})   # e.g. MANO_RIGHT.npz

then ``mano = load_mano("MANO_RIGHT.npz")``. The ``.npz`` is read with
``allow_pickle=False``: object arrays are refused.

Keys used (MANO's own names; 778 vertices, 16 joints)::

    v_template    (V, 3)       rest-pose vertices, metres
    shapedirs     (V, 3, S)    shape blend shapes (S = 10 betas)
    posedirs      (V, 3, 135)  pose-corrective blend shapes (15 joints x 9 entries of R - I)
    J_regressor   (16, V)      joints from vertices
    weights       (V, 16)      linear-blend-skinning weights
    kintree_table (2, 16)      row 0: parent of each joint (the root's is ignored)
    hands_mean    (45,)        optional: MANO's mean finger pose (kept, see below)

Joints: 0 wrist, then index (1-3), middle (4-6), little (7-9), ring (10-12),
thumb (13-15), each from the base; MediaPipe's fingertips are the vertices
:data:`MANO_FINGERTIP_VERTICES` (thumb, index, middle, ring, little; the usual
choice for MANO's topology). :func:`mano_landmarks` gives the 21 points in
MediaPipe order, in millimetres.

Theta: the 45 axis-angle values of joints 1-15 (3 per joint), applied to the
template as they are (MANO's ``flat_hand_mean=True`` convention: theta = 0 is the
flat template hand). For the convention of the original project / MANO's
``flat_hand_mean=False``, subtract ``mano.hands_mean``.

:func:`fit_mano_theta` fits theta per frame to MediaPipe-ordered landmarks with
the same solver as :func:`emgjax.kinematics.fit_angles` (Levenberg-Marquardt,
palm Kabsch start, global rotation/translation, one scale per call, optional
smoothness along axis -3, NaN frames masked), with a forward-mode Jacobian
through the MANO forward pass. 45 parameters against 21 landmarks leave the
twist of each bone unobserved: ``prior_weight`` (default 10 mm^2/rad^2) pulls
them toward the flat hand, and theta is a label for MANO's joints, not a unique
decomposition; the fit error (mean landmark distance, mm) is what is comparable
with the original project's 9.7 mm.
"""

from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from emgjax.kinematics.ik import DEFAULT_MAX_FIT_ERROR_MM, HandFit, fit_model, rotation_from_vector

NUM_MANO_JOINTS = 16
NUM_MANO_THETA = 45
MANO_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14)
MANO_FINGERTIP_VERTICES: tuple[int, ...] = (745, 317, 444, 556, 673)  # thumb, index, middle, ring, little
# MediaPipe order (wrist, thumb CMC/MCP/IP/tip, index, middle, ring, pinky MCP/PIP/DIP/tip):
# joint index, or -(1 + k) for fingertip vertex k.
MANO_TO_MEDIAPIPE: tuple[int, ...] = (0, 13, 14, 15, -1, 1, 2, 3, -2, 4, 5, 6, -3, 10, 11, 12, -4, 7, 8, 9, -5)
_REQUIRED = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table")
_METRES_TO_MM = 1000.0
_MAX_FILE_BYTES = 200 * 1024 * 1024


class ManoModelError(ValueError):
    """A MANO model file that cannot be used (wrong format, keys or shapes)."""


@struct.dataclass
class ManoModel:
    """A MANO model with its shape (betas) applied, as a JAX pytree (millimetres).

    Attributes:
        shaped_vertices: (V, 3) template plus shape blend shapes, mm.
        joints: (16, 3) rest joints regressed from them, mm.
        posedirs: (V, 3, 135) pose-corrective blend shapes, mm.
        weights: (V, 16) skinning weights.
        hands_mean: (45,) MANO's mean finger pose (zeros when the file has none).
        prior_centre: (45,) the theta the fit starts from and is pulled toward (zeros: flat hand).
    """

    shaped_vertices: jax.Array
    joints: jax.Array
    posedirs: jax.Array
    weights: jax.Array
    hands_mean: jax.Array
    prior_centre: jax.Array

    if TYPE_CHECKING:

        def replace(self, **changes: Any) -> ManoModel: ...

    # The interface emgjax.kinematics.ik.fit_model fits through.
    def ik_bounds(self) -> tuple[jax.Array, jax.Array]:
        full = jnp.full((NUM_MANO_THETA,), math.pi, jnp.float32)
        return -full, full

    def ik_centre(self) -> jax.Array:
        return self.prior_centre

    def ik_points(self, theta: jax.Array) -> jax.Array:
        return mano_landmarks(theta, self)

    def ik_points_and_jacobian(self, theta: jax.Array) -> tuple[jax.Array, jax.Array]:
        flat = theta.reshape(-1, NUM_MANO_THETA)

        def f(t: jax.Array) -> tuple[jax.Array, jax.Array]:
            points = mano_landmarks(t, self)
            return points, points

        jacobian, points = jax.vmap(jax.jacfwd(f, has_aux=True))(flat)
        return points.reshape(*theta.shape[:-1], 21, 3), jacobian.reshape(*theta.shape[:-1], 21, 3, NUM_MANO_THETA)


def _shape_error(path: str, key: str, expected: str, found: tuple[int, ...]) -> ManoModelError:
    return ManoModelError(f"{path}: expected {key} of shape {expected}, found {found}")


def mano_from_arrays(arrays: dict[str, np.ndarray], betas: Any = None, *, source: str = "MANO arrays") -> ManoModel:
    """A :class:`ManoModel` from MANO's arrays (the ``.npz`` keys) and optional betas (S,)."""
    missing = [key for key in _REQUIRED if key not in arrays]
    if missing:
        raise ManoModelError(f"{source}: expected MANO keys {', '.join(_REQUIRED)}, missing {', '.join(missing)}")
    try:
        data = {key: np.asarray(arrays[key], dtype=np.float64) for key in (*_REQUIRED, "hands_mean") if key in arrays}
    except (TypeError, ValueError) as error:
        raise ManoModelError(f"{source}: expected numeric arrays, found {error}") from None
    template = data["v_template"]
    if template.ndim != 2 or template.shape[1] != 3 or template.shape[0] <= max(MANO_FINGERTIP_VERTICES):
        raise _shape_error(source, "v_template", f"(V, 3) with V > {max(MANO_FINGERTIP_VERTICES)}", template.shape)
    count = template.shape[0]
    shapedirs = data["shapedirs"]
    if shapedirs.ndim != 3 or shapedirs.shape[:2] != (count, 3):
        raise _shape_error(source, "shapedirs", f"({count}, 3, S)", shapedirs.shape)
    checks = {
        "posedirs": (count, 3, 9 * (NUM_MANO_JOINTS - 1)),
        "J_regressor": (NUM_MANO_JOINTS, count),
        "weights": (count, NUM_MANO_JOINTS),
        "kintree_table": (2, NUM_MANO_JOINTS),
    }
    for key, shape in checks.items():
        if data[key].shape != shape:
            raise _shape_error(source, key, str(shape), data[key].shape)
    parents = tuple(int(p) for p in data["kintree_table"][0, 1:])
    if parents != MANO_PARENTS[1:]:
        raise ManoModelError(f"{source}: expected MANO's joint tree (parents {MANO_PARENTS[1:]}), found {parents}")
    hands_mean = data.get("hands_mean", np.zeros(NUM_MANO_THETA))
    if hands_mean.shape != (NUM_MANO_THETA,):
        raise _shape_error(source, "hands_mean", f"({NUM_MANO_THETA},)", hands_mean.shape)
    for key, value in data.items():
        if not np.all(np.isfinite(value)):
            raise ManoModelError(f"{source}: expected finite values in {key}, found NaN/Inf")
    if betas is None:
        beta = np.zeros(shapedirs.shape[2])
    else:
        beta = np.asarray(betas, dtype=np.float64)
        if beta.shape != (shapedirs.shape[2],) or not np.all(np.isfinite(beta)):
            raise ManoModelError(f"betas: expected {shapedirs.shape[2]} finite values, found shape {beta.shape}")
    shaped = (template + shapedirs @ beta) * _METRES_TO_MM
    joints = data["J_regressor"] @ shaped
    f32 = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    return ManoModel(
        shaped_vertices=f32(shaped),
        joints=f32(joints),
        posedirs=f32(data["posedirs"] * _METRES_TO_MM),
        weights=f32(data["weights"]),
        hands_mean=f32(hands_mean),
        prior_centre=jnp.zeros((NUM_MANO_THETA,), jnp.float32),
    )


def load_mano(path: str | os.PathLike, betas: Any = None) -> ManoModel:
    """Read a MANO model from a plain ``.npz`` export (see the module doc), without unpickling.

    Args:
        path: the ``.npz`` file.
        betas: optional (S,) shape coefficients (S = 10 for MANO); default zeros (the mean shape).
    """
    file = Path(path).expanduser()
    if file.suffix.lower() in (".pkl", ".pickle"):
        raise ManoModelError(
            f"{file}: expected a plain .npz export of the MANO model, found a pickle; emgjax never unpickles "
            "files (it can run code). Convert it once in your own environment with the script in "
            "emgjax.kinematics.mano's documentation (docs/api/kinematics.md), then load the .npz"
        )
    if not file.exists():
        raise FileNotFoundError(
            f"MANO model file not found: {file} (MANO is licence-restricted and not shipped: download it from "
            "https://mano.is.tue.mpg.de and convert it to .npz as emgjax.kinematics.mano documents)"
        )
    if not file.is_file() or file.stat().st_size > _MAX_FILE_BYTES:
        raise ManoModelError(f"{file}: expected a MANO .npz file of at most {_MAX_FILE_BYTES} bytes")
    if not zipfile.is_zipfile(file):  # np.load would take any other file for a pickle (and refuse it)
        raise ManoModelError(f"{file}: expected an .npz (a zip of .npy arrays), found an unreadable file")
    try:
        with np.load(file, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except ValueError as error:  # object arrays need pickle: refused
        raise ManoModelError(f"{file}: expected plain numeric arrays, found {error}") from None
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ManoModelError(
            f"{file}: expected an .npz (zip of .npy arrays), found an unreadable file ({error})"
        ) from None
    return mano_from_arrays(arrays, betas, source=str(file))


def mano_landmarks(theta: jax.Array, mano: ManoModel) -> jax.Array:
    """MANO's 21 landmarks in MediaPipe order for theta (..., 45): (..., 21, 3) mm, root at rest.

    MANO's forward pass: pose-corrective blend shapes, the joint chain, linear blend skinning; the
    root (wrist) joint is not rotated (the fit adds its own global rotation and translation).
    """
    theta = jnp.asarray(theta, jnp.float32)
    lead = theta.shape[:-1]
    rotations = rotation_from_vector(theta.reshape(*lead, NUM_MANO_JOINTS - 1, 3))  # (..., 15, 3, 3)
    pose_feature = (rotations - jnp.eye(3)).reshape(*lead, 9 * (NUM_MANO_JOINTS - 1))
    vertices = mano.shaped_vertices + jnp.einsum("vcp,...p->...vc", mano.posedirs, pose_feature)
    eye = jnp.broadcast_to(jnp.eye(3), (*lead, 1, 3, 3))
    local = jnp.concatenate([eye, rotations], axis=-3)  # (..., 16, 3, 3)
    world_rot: list[jax.Array] = []
    world_trans: list[jax.Array] = []
    for joint, parent in enumerate(MANO_PARENTS):
        offset = mano.joints[joint] - (mano.joints[parent] if parent >= 0 else 0.0)
        if parent < 0:
            world_rot.append(local[..., joint, :, :])
            world_trans.append(jnp.broadcast_to(mano.joints[joint], (*lead, 3)))
        else:
            world_rot.append(world_rot[parent] @ local[..., joint, :, :])
            world_trans.append(world_trans[parent] + jnp.einsum("...ab,b->...a", world_rot[parent], offset))
    rot = jnp.stack(world_rot, axis=-3)  # (..., 16, 3, 3)
    trans = jnp.stack(world_trans, axis=-2)  # (..., 16, 3) posed joints
    # Skinning transforms move rest points: x -> R (x - j_rest) + j_posed.
    skin_trans = trans - jnp.einsum("...kab,kb->...ka", rot, mano.joints)
    blended_rot = jnp.einsum("vk,...kab->...vab", mano.weights, rot)
    blended_trans = jnp.einsum("vk,...ka->...va", mano.weights, skin_trans)
    tips = np.asarray(MANO_FINGERTIP_VERTICES)
    tip_points = jnp.einsum("...vab,...vb->...va", blended_rot[..., tips, :, :], vertices[..., tips, :])
    tip_points = tip_points + blended_trans[..., tips, :]
    order = [trans[..., i, :] if i >= 0 else tip_points[..., -i - 1, :] for i in MANO_TO_MEDIAPIPE]
    return jnp.stack(order, axis=-2)


def fit_mano_theta(
    landmarks: np.ndarray | jax.Array,
    mano: ManoModel,
    *,
    units: str = "m",
    scale: float | None = None,
    smoothness: float = 0.0,
    prior_weight: float = 10.0,
    init_theta: np.ndarray | jax.Array | None = None,
    iterations: int = 8,
    refine_iterations: int = 4,
    smooth_iterations: int = 4,
) -> HandFit:
    """MANO theta (..., 45) fitted to MediaPipe-ordered landmarks (..., 21, 3).

    Same arguments and model as :func:`emgjax.kinematics.fit_hand` (``HandFit.angles`` holds theta);
    theta is unbounded (|theta_i| <= pi). ``fit.mask()`` applies the default threshold
    (:data:`~emgjax.kinematics.ik.DEFAULT_MAX_FIT_ERROR_MM`).
    """
    if not isinstance(mano, ManoModel):
        raise ValueError(f"mano: expected a ManoModel (from load_mano), found {type(mano).__name__}")
    return fit_model(
        landmarks,
        mano,
        units=units,
        scale=scale,
        smoothness=smoothness,
        prior_weight=prior_weight,
        init_angles=init_theta,
        landmark_weights=None,
        iterations=iterations,
        refine_iterations=refine_iterations,
        smooth_iterations=smooth_iterations,
    )


__all__ = [
    "DEFAULT_MAX_FIT_ERROR_MM",
    "MANO_FINGERTIP_VERTICES",
    "MANO_PARENTS",
    "MANO_TO_MEDIAPIPE",
    "NUM_MANO_THETA",
    "ManoModel",
    "ManoModelError",
    "fit_mano_theta",
    "load_mano",
    "mano_from_arrays",
    "mano_landmarks",
]
