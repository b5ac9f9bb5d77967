"""MediaPipe Hands' 21-landmark layout and its correspondence to the hand model.

MediaPipe Hands orders its landmarks wrist, then 4 per finger from the base
to the tip (thumb: CMC, MCP, IP, tip; other fingers: MCP, PIP, DIP, tip). The
hand model (UmeTrack layout) has 5 fingertips first, then the wrist, the
thumb's intermediate and distal frames, the proximal/intermediate/distal
frames of index..pinky and the palm centre. Twenty landmarks correspond by
anatomy; MediaPipe's thumb CMC has no hand-model landmark.

Caveats when comparing the two (e.g. FK of predicted angles against
MediaPipe world landmarks):

- MediaPipe world landmarks are in metres with the origin near the hand's
  centre; the hand model is in millimetres with its origin at the wrist joint.
  Convert units and align (e.g. :func:`emgjax.metrics.pa_mpjpe`) first.
- Landmarks mark joints on different skeletons: MediaPipe's points are fitted
  to images, the hand model's are rotation centres. Expect offsets of a few
  millimetres even for a perfect pose.
- The hand model is a right hand; mirror it (``mirror_hand_model``) for left
  hands, and check MediaPipe's handedness label (it assumes a mirrored,
  selfie-view image unless told otherwise).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

import jax
import jax.numpy as jnp
import numpy as np

from emgjax.kinematics.hand_model import NUM_LANDMARKS, HandModel

MEDIAPIPE_LANDMARK_NAMES: tuple[str, ...] = (
    "wrist",
    "thumb_cmc",
    "thumb_mcp",
    "thumb_ip",
    "thumb_tip",
    "index_mcp",
    "index_pip",
    "index_dip",
    "index_tip",
    "middle_mcp",
    "middle_pip",
    "middle_dip",
    "middle_tip",
    "ring_mcp",
    "ring_pip",
    "ring_dip",
    "ring_tip",
    "pinky_mcp",
    "pinky_pip",
    "pinky_dip",
    "pinky_tip",
)
MEDIAPIPE_THUMB_CMC_INDEX = 1


@dataclasses.dataclass(frozen=True)
class LandmarkCorrespondence:
    """Which hand-model landmark stands in for each MediaPipe landmark.

    Attributes:
        indices: (21,) hand-model landmark index for each MediaPipe landmark,
            so ``hand_landmarks[..., indices, :]`` is in MediaPipe order.
        exact: (21,) True where both name the same anatomical point.
        notes: MediaPipe landmark name -> what differs, for inexact ones.
    """

    indices: tuple[int, ...]
    exact: tuple[bool, ...]
    notes: Mapping[str, str]

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.indices, dtype=dtype or np.int64)

    @property
    def exact_mask(self) -> np.ndarray:
        """(21,) bool: the MediaPipe landmarks with an exact counterpart."""
        return np.asarray(self.exact, dtype=bool)


def _build_correspondence() -> LandmarkCorrespondence:
    indices = [5, 20, 6, 7, 0]  # wrist; thumb: CMC (palm centre stand-in), MCP, IP, tip
    for finger in range(1, 5):  # index..pinky: MCP, PIP, DIP, tip
        base = 8 + 3 * (finger - 1)
        indices += [base, base + 1, base + 2, finger]
    exact = [i != MEDIAPIPE_THUMB_CMC_INDEX for i in range(NUM_LANDMARKS)]
    notes = MappingProxyType(
        {
            "thumb_cmc": (
                "no hand-model landmark: the palm centre (hand-model landmark 20) stands in; "
                "it lies ~2-4 cm from the thumb CMC. Pass hand= to hand_model_to_mediapipe to "
                "use the hand model's thumb CMC rotation centre (fixed, since the wrist is fixed)."
            ),
            "wrist": (
                "hand model: wrist joint rotation centre; MediaPipe: wrist landmark fitted to the "
                "image (near the wrist crease). Same anatomical point, a few mm apart."
            ),
        }
    )
    return LandmarkCorrespondence(tuple(indices), tuple(exact), notes)


HAND_MODEL_TO_MEDIAPIPE = _build_correspondence()


def hand_model_to_mediapipe(landmarks: jax.Array, hand: HandModel | None = None) -> jax.Array:
    """Reorder hand-model landmarks into MediaPipe's order.

    Args:
        landmarks: (..., 21, 3) in hand-model order (e.g. ``forward_kinematics`` output).
        hand: optional; when given, MediaPipe's thumb CMC slot gets the hand
            model's thumb CMC rotation centre (joint 0's rest point, which FK
            never moves) instead of the palm centre.

    Returns:
        (..., 21, 3) in :data:`MEDIAPIPE_LANDMARK_NAMES` order, same units.
    """
    landmarks = jnp.asarray(landmarks)
    if landmarks.ndim < 2 or landmarks.shape[-2:] != (NUM_LANDMARKS, 3):
        raise ValueError(
            f"landmarks: expected shape (..., {NUM_LANDMARKS}, 3) in hand-model order, found {tuple(landmarks.shape)}"
        )
    reordered = landmarks[..., np.asarray(HAND_MODEL_TO_MEDIAPIPE), :]
    if hand is not None:
        cmc = hand.joint_rest_positions[0].astype(reordered.dtype)
        cmc = jnp.broadcast_to(cmc, reordered[..., MEDIAPIPE_THUMB_CMC_INDEX, :].shape)
        reordered = reordered.at[..., MEDIAPIPE_THUMB_CMC_INDEX, :].set(cmc)
    return reordered
