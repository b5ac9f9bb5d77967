"""Hand kinematics: hand model (UmeTrack schema), forward kinematics, MediaPipe layout, inverse kinematics
(``fit_angles``), and MANO theta labels from user-supplied MANO files (``emgjax.kinematics.mano``).

emgjax ships no third-party hand model: load yours with ``load_hand_model(path)``
(or set ``EMGJAX_HAND_MODEL``), or use ``synthetic_hand_model()``, our own
made-up right hand.
"""

from emgjax.data.emg2pose import JOINT_NAMES  # emg2pose's joint order, defined once
from emgjax.kinematics.fk import (
    axis_angle_rotation,
    forward_kinematics,
    joint_frames,
    skin_landmarks,
)
from emgjax.kinematics.hand_model import (
    DISTAL_JOINT_INDICES,
    FINGER_JOINT_INDICES,
    FINGER_NAMES,
    FINGERTIP_INDICES,
    HAND_MODEL_ENV,
    LANDMARK_NAMES,
    MID_JOINT_INDICES,
    MOVING_LANDMARK_INDICES,
    NONE_INDEX,
    NUM_FRAMES,
    NUM_JOINT_ANGLES,
    NUM_LANDMARKS,
    NUM_MODEL_JOINTS,
    PALM_CENTER_INDEX,
    PROXIMAL_JOINT_INDICES,
    PROXIMAL_LANDMARK_INDICES,
    WRIST_INDEX,
    HandModel,
    HandModelError,
    finger_frame_index,
    hand_model_from_dict,
    hand_model_to_dict,
    load_hand_model,
    mirror_hand_model,
    save_hand_model,
    synthetic_hand_model,
)
from emgjax.kinematics.ik import (
    DEFAULT_MAX_FIT_ERROR_MM,
    HandFit,
    fit_angles,
    fit_hand,
    fit_mask,
)

__all__ = [
    "DEFAULT_MAX_FIT_ERROR_MM",
    "DISTAL_JOINT_INDICES",
    "FINGERTIP_INDICES",
    "FINGER_JOINT_INDICES",
    "FINGER_NAMES",
    "HAND_MODEL_ENV",
    "JOINT_NAMES",
    "LANDMARK_NAMES",
    "MID_JOINT_INDICES",
    "MOVING_LANDMARK_INDICES",
    "NONE_INDEX",
    "NUM_FRAMES",
    "NUM_JOINT_ANGLES",
    "NUM_LANDMARKS",
    "NUM_MODEL_JOINTS",
    "PALM_CENTER_INDEX",
    "PROXIMAL_JOINT_INDICES",
    "PROXIMAL_LANDMARK_INDICES",
    "WRIST_INDEX",
    "HandFit",
    "HandModel",
    "HandModelError",
    "axis_angle_rotation",
    "finger_frame_index",
    "fit_angles",
    "fit_hand",
    "fit_mask",
    "forward_kinematics",
    "hand_model_from_dict",
    "hand_model_to_dict",
    "joint_frames",
    "load_hand_model",
    "mirror_hand_model",
    "save_hand_model",
    "skin_landmarks",
    "synthetic_hand_model",
]
