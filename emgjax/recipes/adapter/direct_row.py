"""The adapter benchmark's direct reference row: ``DirectModel`` on the 8 ch / 500 Hz view, no emg2pose.

The original project's Conv1D + LSTM, re-targeted to emg2pose's labels: the
same ``emgjax.models.direct.DirectModel`` that ``emgjax.recipes.direct``
trains, with the "angles" output in "sequence" mode (20 joint angles per LSTM
step). Its per-step predictions are interpolated onto the 2 kHz samples
emg2pose predicts (``[left_context, window - right_context)``), trained with
emg2pose's angle L1 on the adapters' batches and step budget, with its own
learning rate (``benchmark``'s sweep), every seed at once with the vmapped
train step (``stack.train_stack``), and scored like every other row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from emgjax.models.configs import PoseModelConfig
from emgjax.models.direct import DirectConfig, DirectModel, sequence_sample_index
from emgjax.recipes.adapter.bench_config import BenchmarkConfig
from emgjax.train.losses import angle_l1

__all__ = [
    "direct_config",
    "direct_alignment",
    "direct_predict",
    "make_direct_angles_loss_fn",
    "direct_family_parts",
    "interpolation_alignment",
    "interpolate",
]

Alignment = tuple[np.ndarray, np.ndarray, np.ndarray]


def direct_config(config: BenchmarkConfig) -> DirectConfig:
    """The direct row's model: two convolutions (32, 64), a 2-layer LSTM of ``config.direct_hidden``, 20 angles."""
    return DirectConfig(
        conv_channels=(32, 64),
        kernel_size=5,
        lstm_hidden=config.direct_hidden,
        lstm_layers=2,
        head_hidden=64,
        dropout=0.1,
        output="angles",
        mode="sequence",
    )


def direct_alignment(num_input: int, config: DirectConfig, left_context: int, stop: int) -> Alignment:
    """Static linear-interpolation weights (i0, i1, w) from LSTM steps to 2 kHz samples ``[left_context, stop)``.

    num_input: 500 Hz samples per window. Step i is aligned with its last
    500 Hz input sample (``sequence_sample_index``), i.e. 2 kHz sample 4 x that.
    """
    steps = num_input // config.time_stride
    step_2k = 4 * sequence_sample_index(steps, config)
    position = np.interp(np.arange(left_context, stop), step_2k, np.arange(steps))
    return interpolation_alignment(position, steps)


def interpolation_alignment(position: np.ndarray, n: int) -> Alignment:
    """(i0, i1, w) that linearly interpolate a length-``n`` series at the fractional ``position``s."""
    i0 = np.floor(position).astype(np.int32)
    i1 = np.minimum(i0 + 1, n - 1)
    return i0, i1, (position - i0).astype(np.float32)


def interpolate(values: jax.Array, alignment: Alignment) -> jax.Array:
    """values (..., n) at the alignment's positions: (..., len(alignment))."""
    i0, i1, w = alignment
    return values[..., i0] * (1.0 - w) + values[..., i1] * w


def direct_predict(
    model: DirectModel,
    variables: dict[str, Any],
    emg: jax.Array,
    alignment: Alignment,
    train: bool = False,
    rng: jax.Array | None = None,
) -> tuple[jax.Array, Any]:
    """emg (B, 8, T) -> (angles (B, 20, len(alignment)) at 2 kHz, new batch_stats)."""
    if train:
        if rng is None:
            raise ValueError("direct_predict: train=True needs a dropout rng, found None")
        (steps, _), updates = model.apply(variables, emg, train=True, rngs={"dropout": rng}, mutable=["batch_stats"])
        batch_stats = updates["batch_stats"]
    else:
        (steps, _), batch_stats = model.apply(variables, emg, train=False), variables["batch_stats"]
    return interpolate(steps, alignment), batch_stats


def make_direct_angles_loss_fn(model: DirectModel, alignment: Alignment, left: int, stop: int) -> Callable:
    """Angle L1 of the interpolated predictions in the train-step interface; batches as ``sample_batch``'s."""

    def loss_fn(params: Any, batch_stats: Any, batch: dict, rng: jax.Array, train: bool) -> tuple:
        variables = {"params": params, "batch_stats": batch_stats}
        pred, new_stats = direct_predict(model, variables, batch["emg"], alignment, train=train, rng=rng)
        loss = angle_l1(pred, batch["joint_angles"][..., left:stop], batch["no_ik_failure"][..., left:stop])
        return loss, ({}, new_stats)

    return loss_fn


def direct_family_parts(
    config: BenchmarkConfig, window: int, emg2pose_config: PoseModelConfig
) -> tuple[DirectModel, Alignment, Callable]:
    """(model, alignment, loss_fn) of the direct row: trained by ``stack.train_stack`` like every trained row."""
    cfg = direct_config(config)
    model = DirectModel(cfg)
    left, stop = emg2pose_config.left_context, window - emg2pose_config.right_context
    alignment = direct_alignment(window // 4, cfg, left, stop)
    return model, alignment, make_direct_angles_loss_fn(model, alignment, left, stop)
