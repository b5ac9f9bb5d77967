"""emgjax.train: optimiser, losses, the one train step, Orbax checkpoints, training loop.

The train step (``emgjax.train.step``) comes sharded over a mesh, on one device and
vmapped over a stack of models; it is the only place in the package that takes gradients.

Light modules (state, optim, losses, step, mesh) import eagerly; the
checkpoint/loop/logging names (which pull in Orbax and matplotlib) are
resolved lazily on first use, so ``import emgjax.train.losses`` stays cheap.
"""

from typing import Any

from emgjax.train.losses import (
    angle_l1,
    emg2pose_loss,
    fingertip_distance,
    joint_distance,
    joint_l1,
    joint_mse,
    masked_mean,
)
from emgjax.train.mesh import (
    DATA_AXIS,
    initialize_distributed,
    initialize_distributed_from_environment,
    make_data_mesh,
    pad_batch,
    replicate,
    shard_batch,
)
from emgjax.train.optim import OptimConfig, make_optimizer, make_schedule, trainable_mask
from emgjax.train.state import TrainState, create_train_state
from emgjax.train.step import (
    make_eval_step,
    make_local_eval_step,
    make_local_train_step,
    make_per_device_eval_step,
    make_per_device_train_step,
    make_train_step,
    make_vmapped_train_step,
    stack_trees,
    step_rng,
    unstack_tree,
)

_LAZY = {
    "Checkpointer": "emgjax.train.checkpoint",
    "EarlyStopping": "emgjax.train.checkpoint",
    "abstract_like": "emgjax.train.checkpoint",
    "fit": "emgjax.train.loop",
    "FitResult": "emgjax.train.loop",
    "evaluate": "emgjax.train.loop",
    "MetricsLog": "emgjax.train.logging",
    "read_metrics": "emgjax.train.logging",
    "plot_curves": "emgjax.train.logging",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'emgjax.train' has no attribute {name!r}")


__all__ = [
    "DATA_AXIS",
    "OptimConfig",
    "TrainState",
    "angle_l1",
    "create_train_state",
    "emg2pose_loss",
    "fingertip_distance",
    "initialize_distributed",
    "initialize_distributed_from_environment",
    "joint_distance",
    "joint_l1",
    "joint_mse",
    "make_data_mesh",
    "make_eval_step",
    "make_local_eval_step",
    "make_local_train_step",
    "make_optimizer",
    "make_per_device_eval_step",
    "make_per_device_train_step",
    "make_schedule",
    "make_train_step",
    "make_vmapped_train_step",
    "masked_mean",
    "pad_batch",
    "replicate",
    "shard_batch",
    "stack_trees",
    "step_rng",
    "trainable_mask",
    "unstack_tree",
    # the lazily imported names (the keys of _LAZY), spelt out so static tools can read __all__
    "Checkpointer",
    "EarlyStopping",
    "abstract_like",
    "fit",
    "FitResult",
    "evaluate",
    "MetricsLog",
    "read_metrics",
    "plot_curves",
]
