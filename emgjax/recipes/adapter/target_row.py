"""The adapter benchmark's target-space baseline: the emg2pose architecture trained from scratch on 8 ch / 500 Hz.

The alternative to adapting the armband into a frozen emg2pose is to train
emg2pose's architecture directly on the armband's view
(``bench_config.target_space_config``: the same conv + TDS + state-decoder
family with its first strides adapted to 500 Hz). Its rollout predicts the
pose at 500 Hz over ``[left_context, T)`` of the 500 Hz window; those
predictions are interpolated onto the 2 kHz samples every other row predicts
(``[emg2pose left context, window)``) with static weights, trained with
emg2pose's angle L1 on the same batches, budget and learning-rate sweep as
every trained row, and scored the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from emgjax.models import pose_modules
from emgjax.models.configs import PoseModelConfig
from emgjax.recipes.adapter.direct_row import Alignment, interpolate, interpolation_alignment
from emgjax.train.losses import angle_l1

__all__ = ["target_alignment", "target_predict", "make_target_loss_fn"]


def target_alignment(config: PoseModelConfig, num_input: int, left: int, stop: int) -> Alignment:
    """Static (i0, i1, w): 2 kHz samples ``[left, stop)`` from the model's aligned 500 Hz predictions.

    The aligned predictions cover 500 Hz samples ``[config.left_context, num_input)``; 2 kHz sample n sits at
    500 Hz sample n / 4 (the MindRove view keeps every 4th sample after its anti-alias filter).
    """
    if left < 4 * config.left_context:
        raise ValueError(
            f"target_alignment: expected 2 kHz span to start at or after {4 * config.left_context}, found {left}"
        )
    n = num_input - config.left_context
    position = np.clip(np.arange(left, stop) / 4.0 - config.left_context, 0, n - 1)
    return interpolation_alignment(position, n)


def target_predict(
    config: PoseModelConfig,
    variables: dict[str, Any],
    emg: jax.Array,
    alignment: Alignment,
    train: bool = False,
    rng: jax.Array | None = None,
) -> jax.Array:
    """emg (B, 8, T) at 500 Hz -> angles (B, 20, len(alignment)) at 2 kHz (rollout from a zero pose)."""
    initial = jnp.zeros((emg.shape[0], config.num_joints), jnp.float32)
    rngs = {"dropout": rng} if rng is not None else None
    raw = pose_modules.predict_pose(config, variables, emg, initial, train=train, rngs=rngs)
    aligned = pose_modules.align_predictions(raw, emg.shape[-1] - config.left_context - config.right_context)
    return interpolate(aligned, alignment)


def make_target_loss_fn(config: PoseModelConfig, alignment: Alignment, left: int, stop: int) -> Callable:
    """Angle L1 on emg2pose's 2 kHz span in the train-step interface; batches as ``sample_batch``'s."""

    def loss_fn(params: Any, batch_stats: Any, batch: dict, rng: jax.Array, train: bool) -> tuple:
        pred = target_predict(config, {"params": params}, batch["emg"], alignment, train=train, rng=rng)
        loss = angle_l1(pred, batch["joint_angles"][..., left:stop], batch["no_ik_failure"][..., left:stop])
        return loss, ({}, batch_stats)

    return loss_fn
