"""emgjax.recipes: train, evaluate and fine-tune models as library functions.

The experiment scripts in ``experiments/`` and ``emgjax demo`` are thin
command lines over these functions:

- `emgjax.recipes.direct`: the MindRove direct models (Conv1D + LSTM):
  ``train_direct``, ``evaluate_direct``, ``finetune_direct``;
- `emgjax.recipes.emg2pose`: the emg2pose port on emg2pose-format data:
  ``train_emg2pose``, ``evaluate_emg2pose``;
- `emgjax.recipes.adapter`: the hardware adapter's objectives, phases,
  frozen-model training and batch benchmark;
- `emgjax.recipes.calibrate`: the calibration loop (``calibrate``, `emgjax calibrate`);
- `emgjax.recipes.common`: what they share (sessions, loop settings, run
  directories, ``run_fit``).

Configs come from the command line through `emgjax.config`.
"""

from typing import Any

_LAZY = {
    "DirectExperiment": "emgjax.recipes.direct",
    "FinetuneExperiment": "emgjax.recipes.direct",
    "train_direct": "emgjax.recipes.direct",
    "evaluate_direct": "emgjax.recipes.direct",
    "finetune_direct": "emgjax.recipes.direct",
    "Emg2PoseTraining": "emgjax.recipes.emg2pose",
    "train_emg2pose": "emgjax.recipes.emg2pose",
    "evaluate_emg2pose": "emgjax.recipes.emg2pose",
    "SessionsConfig": "emgjax.recipes.common",
    "LoopConfig": "emgjax.recipes.common",
    "resolve_sessions": "emgjax.recipes.common",
    "prepare_run_dir": "emgjax.recipes.common",
    "clear_dir": "emgjax.recipes.common",
    "write_json": "emgjax.recipes.common",
    "read_json": "emgjax.recipes.common",
    "run_fit": "emgjax.recipes.common",
    "run_length": "emgjax.recipes.common",
    "check_batch_size": "emgjax.recipes.common",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'emgjax.recipes' has no attribute {name!r}")


__all__ = [
    "DirectExperiment",
    "Emg2PoseTraining",
    "FinetuneExperiment",
    "LoopConfig",
    "SessionsConfig",
    "check_batch_size",
    "clear_dir",
    "evaluate_direct",
    "evaluate_emg2pose",
    "finetune_direct",
    "prepare_run_dir",
    "read_json",
    "resolve_sessions",
    "run_fit",
    "run_length",
    "train_direct",
    "train_emg2pose",
    "write_json",
]
