"""emgjax.models: Flax Linen ports of Meta's emg2pose networks, decoders and pose modules.

Configs are frozen dataclasses (`configs`); `pose_modules` holds the pure API
(`pose_forward`, `predict_pose`, `features`, `init_variables`, alignment helpers).
"""

from emgjax.models.configs import (
    EXPERIMENTS,
    Conv1dBlockConfig,
    DecoderBlockConfig,
    Emg2PoseExperiment,
    EncoderBlockConfig,
    LossWeights,
    LSTMDecoderConfig,
    MLPDecoderConfig,
    NeuroPoseConfig,
    PoseModelConfig,
    ResidualBlockConfig,
    TdsNetworkConfig,
    TdsStageConfig,
    get_experiment,
)
from emgjax.models.pose_modules import (
    Emg2PoseNet,
    align_mask,
    align_predictions,
    check_pose_inputs,
    features,
    init_variables,
    pose_forward,
    pose_forward_train,
    predict_pose,
)

__all__ = [
    "EXPERIMENTS",
    "Conv1dBlockConfig",
    "DecoderBlockConfig",
    "Emg2PoseExperiment",
    "EncoderBlockConfig",
    "LossWeights",
    "LSTMDecoderConfig",
    "MLPDecoderConfig",
    "NeuroPoseConfig",
    "PoseModelConfig",
    "ResidualBlockConfig",
    "TdsNetworkConfig",
    "TdsStageConfig",
    "get_experiment",
    "Emg2PoseNet",
    "align_mask",
    "align_predictions",
    "check_pose_inputs",
    "features",
    "init_variables",
    "pose_forward",
    "pose_forward_train",
    "predict_pose",
]
