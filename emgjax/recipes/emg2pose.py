"""Train and evaluate the emg2pose port on emg2pose-format sessions, as library functions.

    from emgjax.recipes.common import SessionsConfig
    from emgjax.recipes.emg2pose import Emg2PoseTraining, train_emg2pose, evaluate_emg2pose

    run = train_emg2pose(Emg2PoseTraining(out_dir="runs/vemg2pose", sessions=SessionsConfig(data_dir="data/synth")))
    metrics = evaluate_emg2pose("runs/vemg2pose", run.splits["test"])

Defaults are the published experiments' (see ``emgjax.models.configs.EXPERIMENTS``):
Adam 1e-3, batch 64, gradient clipping 1 (0 for regression_vemg2pose and
regression_neuropose), loss = masked L1 angle error + 0.01 x fingertip distance
(mm, through forward kinematics), at most 500 epochs with early stopping after
50 epochs without a better validation loss, training windows of the
experiment's length (11,790 samples for the vemg2pose experiments, 5,790 for
the emg2pose ones, 4,000 for NeuroPose; jittered), validation and test windows
of 11,790 samples (10,000 for NeuroPose). ``size`` shrinks the networks (same
names as the PyTorch reference's overrides) for quick runs and tests.

IK failures, as emg2pose handles them:

- windows: train, validation and test windows lie inside runs of samples
  without IK failure (``skip_ik_failures=True``, emg2pose's datamodule default);
- masking: with ``provide_initial_pos`` (the tracking experiments) a window
  whose ``no_ik_failure`` is False at sample ``left_context`` -- the sample
  the rollout starts from -- is masked out entirely (`mask_missing_initial_state`),
  in training, validation and evaluation, as emg2pose's Lightning module does in
  every step; a batch with no valid sample left logs a warning on the
  ``emgjax.recipes.emg2pose`` logger (emg2pose's ``log.warning``).

EMG is not z-scored by default, as in emg2pose (its released weights expect
high-pass-filtered µV). With ``normalise=True`` per-channel statistics are
computed on the training sessions only, saved in ``statistics.json``, in the
checkpoints and in the exported model (``OUT/model/``, an `emgjax.bundle` that
``emgjax.load_model`` reads and whose ``predict`` applies them), and applied at evaluation.

The fingertip term needs a hand model: the one named by ``EMGJAX_HAND_MODEL``
(UmeTrack JSON, e.g. emg2pose's generic hand model) if set, else emgjax's
synthetic hand (the one the synthetic data was made with).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emgjax.models.configs import (
    COMPUTE_DTYPE_NAMES,
    EXPERIMENTS,
    NUM_JOINTS,
    Conv1dBlockConfig,
    LSTMDecoderConfig,
    MLPDecoderConfig,
    PoseModelConfig,
    TdsNetworkConfig,
    TdsStageConfig,
    neuropose_network,
)
from emgjax.recipes.common import (
    LoopConfig,
    SessionsConfig,
    check_batch_size,
    is_main_process,
    prepare_run_dir,
    read_json,
    resolve_sessions,
    run_fit,
    sync_processes,
    write_json,
)

__all__ = [
    "ModelSize",
    "Emg2PoseTraining",
    "Emg2PoseRun",
    "build_pose_config",
    "make_emg2pose_loss_fn",
    "mask_missing_initial_state",
    "ALL_MASKED_WARNING",
    "train_emg2pose",
    "evaluate_emg2pose",
    "load_emg2pose",
]

# The training-set statistics of a run (computed once, reused on resume); the model itself is OUT/model/.
STATISTICS_FILE = "statistics.json"
# How many training sessions the baseline's mean pose is computed from (reading
# every emg2pose session would mean reading the whole dataset once more).
_BASELINE_SESSIONS = 200

log = logging.getLogger(__name__)
# Logged (WARNING) for a batch with no valid sample left, as emg2pose's Lightning module does.
ALL_MASKED_WARNING = "every sample of the batch is masked out (IK failures, or no valid initial state): it adds nothing"


@dataclasses.dataclass(frozen=True)
class ModelSize:
    """Network sizes (the published ones by default; names as in tests/torch_reference.py).

    TDS: ``tds_channels`` x ``feature_width`` channels (also the width of both
    conv blocks), ``num_blocks`` per stage, ``tds_out_channels`` features;
    LSTM decoder: ``hidden_size``, ``num_layers``; MLP decoder: ``mlp_hidden``.
    The kernels and strides (hence the 1790-sample left context) never change.
    NeuroPose (regression_neuropose) keeps its published size.
    """

    tds_channels: int = 16
    feature_width: int = 16
    num_blocks: int = 2
    tds_out_channels: int = 64
    hidden_size: int = 512
    num_layers: int = 2
    mlp_hidden: int = 512

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ModelSize.{f.name}: expected a positive integer, found {value!r}")


@dataclasses.dataclass(frozen=True)
class Emg2PoseTraining:
    """Train one of the published emg2pose experiments (defaults: its published setup).

    ``window_length``/``stride``: None = the experiment's window (no overlap).
    ``val_window_length``: None = the experiment's validation/test window.
    ``skip_ik_failures``: train and validation windows only inside runs without IK
    failure (emg2pose's default; False = every window, IK failures masked).
    ``learning_rate``/``gradient_clip``: None = the experiment's.
    ``fingertip_weight``: weight of the fingertip-distance term (mm); 0 = L1 only.
    ``compute_dtype``: "float32", or "bfloat16" operands for the TDS network's and the decoder's
    convolutions and matmuls (`PoseModelConfig.compute_dtype`; float32 accumulation and parameters).
    """

    out_dir: str = "runs/emg2pose_training"
    experiment: str = "tracking_vemg2pose"
    sessions: SessionsConfig = SessionsConfig()
    size: ModelSize = ModelSize()
    window_length: int | None = None
    stride: int | None = None
    val_window_length: int | None = None
    jitter: bool = True
    skip_ik_failures: bool = True
    normalise: bool = False
    learning_rate: float | None = None
    gradient_clip: float | None = None
    fingertip_weight: float = 0.01
    compute_dtype: str = "float32"
    loop: LoopConfig = LoopConfig(
        batch_size=64, num_epochs=500, early_stopping_patience=50, checkpoint_every_steps=1000
    )

    def __post_init__(self):
        if self.experiment not in EXPERIMENTS:
            raise ValueError(
                f"Emg2PoseTraining.experiment: expected one of {sorted(EXPERIMENTS)}, found {self.experiment!r}"
            )
        for name in ("window_length", "stride", "val_window_length"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"Emg2PoseTraining.{name}: expected None or a positive integer, found {value!r}")
        if self.fingertip_weight < 0:
            raise ValueError(f"Emg2PoseTraining.fingertip_weight: expected >= 0, found {self.fingertip_weight}")
        if self.compute_dtype not in COMPUTE_DTYPE_NAMES:
            raise ValueError(
                f"Emg2PoseTraining.compute_dtype: expected one of {list(COMPUTE_DTYPE_NAMES)}, "
                f"found {self.compute_dtype!r}"
            )
        if self.compute_dtype != "float32" and self.experiment == "regression_neuropose":
            raise ValueError(
                f"Emg2PoseTraining.compute_dtype: {self.compute_dtype!r} is supported for the TDS experiments, "
                "found regression_neuropose (NeuroPose runs float32)"
            )


def build_pose_config(experiment: str, size: ModelSize = ModelSize()) -> PoseModelConfig:
    """The experiment's ``PoseModelConfig`` at ``size`` (the published one for the default size)."""
    if experiment not in EXPERIMENTS:
        raise ValueError(f"experiment: expected one of {sorted(EXPERIMENTS)}, found {experiment!r}")
    published = EXPERIMENTS[experiment].model
    if experiment == "regression_neuropose":
        return dataclasses.replace(published, network=neuropose_network())
    width = size.tds_channels * size.feature_width
    network = TdsNetworkConfig(
        conv_blocks=(Conv1dBlockConfig(16, width, 11, 5), Conv1dBlockConfig(width, width, 5, 2)),
        tds_stages=(
            TdsStageConfig(width, 17, 4, size.num_blocks, size.tds_channels, size.feature_width, 9),
            TdsStageConfig(
                width,
                9,
                2,
                size.num_blocks,
                size.tds_channels,
                size.feature_width,
                5,
                out_channels=size.tds_out_channels,
            ),
        ),
    )
    decoder_in = size.tds_out_channels + NUM_JOINTS
    decoder = published.decoder
    if isinstance(decoder, LSTMDecoderConfig):
        decoder = dataclasses.replace(
            decoder, in_channels=decoder_in, hidden_size=size.hidden_size, num_layers=size.num_layers
        )
    elif isinstance(decoder, MLPDecoderConfig):
        decoder = dataclasses.replace(
            decoder, in_channels=decoder_in, layer_sizes=(size.mlp_hidden,) * len(decoder.layer_sizes)
        )
    return dataclasses.replace(published, network=network, decoder=decoder)


def _hand():
    from emgjax.kinematics import HAND_MODEL_ENV, load_hand_model, synthetic_hand_model

    return load_hand_model() if os.environ.get(HAND_MODEL_ENV) else synthetic_hand_model()


def mask_missing_initial_state(no_ik_failure, left_context: int, provide_initial_pos: bool):
    """emg2pose's ``update_ik_failure_mask``: mask out windows whose rollout would start from an IK failure.

    no_ik_failure: (B, T) bool over the whole window, left context included (NumPy or JAX,
    traced or not) -> (B, T) bool. With ``provide_initial_pos`` the initial pose is
    ``joint_angles[:, :, left_context]``, so a window whose mask is False at sample
    ``left_context`` (not sample 0) is False everywhere; without it the mask is unchanged.
    """
    if not isinstance(provide_initial_pos, (bool, np.bool_)):
        raise ValueError(f"provide_initial_pos: expected a bool, found {type(provide_initial_pos).__name__}")
    if not provide_initial_pos:
        return no_ik_failure
    return no_ik_failure & no_ik_failure[:, left_context : left_context + 1]


def _warn_all_masked() -> None:
    log.warning(ALL_MASKED_WARNING)


def _warn_if_all_masked_traced(mask) -> None:
    """Inside jit: log `ALL_MASKED_WARNING` from the host when ``mask`` (this device's rows) has no True.

    emg2pose checks each process's batch after `update_ik_failure_mask` (every step, any
    provide_initial_pos); here each device checks its rows. The callback only runs when the
    batch is all masked, so ordinary steps do not wait for the host.
    """
    import jax
    import jax.numpy as jnp

    jax.lax.cond(jnp.any(mask), lambda: None, lambda: jax.debug.callback(_warn_all_masked))


def make_emg2pose_loss_fn(
    config: PoseModelConfig,
    provide_initial_pos: bool,
    *,
    fingertip_weight: float = 0.01,
    hand=None,
    axis_name: str | None = "data",
):
    """emg2pose's training task in the train-step interface.

    ``loss_fn(params, batch_stats, batch, rng, train) -> (loss, (metrics, batch_stats))``
    for batches ``{"emg": (B, 16, T), "joint_angles": (B, 20, T), "no_ik_failure": (B, T)}``.
    The mask first goes through `mask_missing_initial_state` (a warning is logged when
    nothing valid is left), as in emg2pose's Lightning steps.
    Loss: masked L1 over angles (after the left context) + ``fingertip_weight``
    x fingertip distance in mm via forward kinematics with ``hand`` (default:
    see the module docstring). Metrics: "loss", "angle_l1" (rad),
    "fingertip_distance" (mm, when the weight is > 0).
    """
    from emgjax.kinematics import FINGERTIP_INDICES, forward_kinematics
    from emgjax.models.pose_modules import pose_forward, pose_forward_train
    from emgjax.train.losses import emg2pose_loss

    fk_fn = None
    if fingertip_weight > 0:
        fk_fn = functools.partial(forward_kinematics, hand=_hand() if hand is None else hand)

    def loss_fn(params, batch_stats, batch, rng, train: bool):
        variables = {"params": params}
        if batch_stats:
            variables["batch_stats"] = batch_stats
        no_ik_failure = mask_missing_initial_state(batch["no_ik_failure"], config.left_context, provide_initial_pos)
        _warn_if_all_masked_traced(no_ik_failure)
        args = (config, variables, batch["emg"], batch["joint_angles"], no_ik_failure, provide_initial_pos)
        if train:
            (pred, target, mask), new_stats = pose_forward_train(*args, rngs={"dropout": rng})
        else:
            (pred, target, mask), new_stats = pose_forward(*args, train=False), batch_stats
        loss, metrics = emg2pose_loss(
            pred,
            target,
            mask,
            fk_fn=fk_fn,
            fingertip_weight=fingertip_weight,
            fingertips=FINGERTIP_INDICES,
            axis_name=axis_name,
        )
        return loss, (metrics, new_stats if new_stats else batch_stats)

    return loss_fn


@dataclasses.dataclass(frozen=True)
class _ZScore:
    """Per-channel z-score with training statistics, as a window transform (emg (C, T), rng) -> emg."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, emg: np.ndarray, rng=None) -> np.ndarray:
        return ((emg - np.asarray(self.mean, np.float32)[:, None]) / np.asarray(self.std, np.float32)[:, None]).astype(
            np.float32
        )


def _windows(paths, info: dict, *, window_length: int, stride: int, jitter: bool, skip_ik_failures: bool):
    from emgjax.data.windows import Emg2PoseWindows

    transforms = ()
    if info.get("normalisation") is not None:
        transforms = (_ZScore(tuple(info["normalisation"]["mean"]), tuple(info["normalisation"]["std"])),)
    return Emg2PoseWindows(
        [str(p) for p in paths],
        window_length,
        stride=stride,
        jitter=jitter,
        skip_ik_failures=skip_ik_failures,
        transforms=transforms,
    )


def _train_statistics(paths: Sequence[Path], normalise: bool) -> tuple[dict | None, list[float]]:
    """(EMG normalisation statistics or None, mean joint angles over valid samples) of the training sessions."""
    from emgjax.data.emg2pose import Emg2PoseSession
    from emgjax.data.signal import compute_norm_stats

    angle_sum, angle_count = np.zeros(NUM_JOINTS), 0
    for path in list(paths)[:_BASELINE_SESSIONS]:
        with Emg2PoseSession(path) as session:
            data = session.read()
        good = data["joint_angles"][:, data["no_ik_failure"]].astype(np.float64)
        angle_sum += good.sum(axis=1)
        angle_count += good.shape[1]
    if angle_count == 0:
        raise ValueError("training sessions: expected samples without IK failure, found none")
    norm = None
    if normalise:

        def emg_of_sessions():
            for path in paths:
                with Emg2PoseSession(path) as session:
                    yield session.read()["emg"]

        norm = compute_norm_stats(emg_of_sessions()).to_dict()
    return norm, (angle_sum / angle_count).tolist()


@dataclasses.dataclass
class Emg2PoseRun:
    """What ``train_emg2pose`` returns."""

    out_dir: Path
    splits: dict[str, list[Path]]
    history: list[dict]
    resumed_from_step: int | None
    steps: int
    train_seconds: float


def train_emg2pose(exp: Emg2PoseTraining, *, verbose: bool = True) -> Emg2PoseRun:
    """Train ``exp`` (resuming from ``exp.out_dir`` if it holds checkpoints); export the model."""
    import jax

    from emgjax.config import config_to_dict
    from emgjax.models.pose_modules import init_variables
    from emgjax.train import (
        OptimConfig,
        create_train_state,
        make_data_mesh,
        make_optimizer,
        replicate,
    )

    check_batch_size(exp.loop)
    out = prepare_run_dir(exp.out_dir, exp)
    splits = resolve_sessions(exp.sessions, "emg2pose")
    if not splits["train"]:
        raise ValueError("sessions: expected at least one training session, found none")
    published = EXPERIMENTS[exp.experiment]
    config = dataclasses.replace(build_pose_config(exp.experiment, exp.size), compute_dtype=exp.compute_dtype)
    window = exp.window_length or published.window_length
    val_window = exp.val_window_length or published.val_window_length
    minimum = config.min_window_length()
    for name, value in (("window_length", window), ("val_window_length", val_window)):
        if value < minimum:
            raise ValueError(
                f"{name}: expected at least {minimum} samples for {exp.experiment} (left context "
                f"{config.left_context} + one output step), found {value}"
            )
    statistics = out / STATISTICS_FILE
    if statistics.exists() and (out / "checkpoints").is_dir():
        info = read_json(statistics, f"emg2pose run statistics ({STATISTICS_FILE})")
    else:
        norm, mean_angles = _train_statistics(splits["train"], exp.normalise)
        info = {
            "experiment": exp.experiment,
            "model": config.to_dict(),
            "provide_initial_pos": published.provide_initial_pos,
            "normalisation": norm,
            "mean_joint_angles": mean_angles,
            "val_window_length": val_window,
            "trained_on": [str(p) for p in splits["train"]],
        }
        write_json(statistics, info)
    train_ds = _windows(
        splits["train"],
        info,
        window_length=window,
        stride=exp.stride or window,
        jitter=exp.jitter,
        skip_ik_failures=exp.skip_ik_failures,
    )
    val_ds = None
    if splits["val"]:
        val_ds = _windows(
            splits["val"],
            info,
            window_length=val_window,
            stride=val_window,
            jitter=False,
            skip_ik_failures=exp.skip_ik_failures,
        )

    optim = OptimConfig(
        learning_rate=exp.learning_rate if exp.learning_rate is not None else published.learning_rate,
        grad_clip_norm=exp.gradient_clip if exp.gradient_clip is not None else published.gradient_clip_val,
    )
    optimizer = make_optimizer(optim)
    variables = init_variables(config, jax.random.key(exp.loop.seed))
    mesh = make_data_mesh()
    state = replicate(
        create_train_state(
            variables["params"], optimizer, jax.random.key(exp.loop.seed + 1), variables.get("batch_stats")
        ),
        mesh,
    )
    loss_fn = make_emg2pose_loss_fn(config, published.provide_initial_pos, fingertip_weight=exp.fingertip_weight)
    extra = {"normalisation": info["normalisation"], "config": config_to_dict(exp)}
    started = time.perf_counter()
    result, best = run_fit(
        out,
        state=state,
        loss_fn=loss_fn,
        optimizer=optimizer,
        mesh=mesh,
        train_dataset=train_ds,
        val_dataset=val_ds,
        loop=exp.loop,
        extra=extra,
        verbose=verbose,
    )
    seconds = time.perf_counter() - started
    exported = {"params": best.params}
    if best.batch_stats:
        exported["batch_stats"] = best.batch_stats
    if is_main_process():  # one writer; the other processes wait, then read it (evaluation)
        _export(out / "model", config, exported, info, int(jax.device_get(best.step)))
    sync_processes("emgjax: model exported")
    return Emg2PoseRun(
        out, splits, result.history, result.resumed_from_step, int(jax.device_get(result.state.step)), seconds
    )


def _export(directory: Path, config: PoseModelConfig, variables: dict, info: dict, step: int) -> Path:
    """Write the trained model as an `emgjax.bundle` (kind emg2pose) with the run's statistics."""
    from emgjax.bundle import emg2pose_specs, save_model

    input_spec, output_spec = emg2pose_specs(config, info["normalisation"])
    metadata = {k: info[k] for k in ("experiment", "provide_initial_pos", "mean_joint_angles", "val_window_length")}
    metadata.update(
        trained_on=info["trained_on"],
        exported_step=step,
        source={"trained_by": "emgjax.recipes.emg2pose.train_emg2pose"},
    )
    return save_model(
        directory, "emg2pose", config, variables, input_spec=input_spec, output_spec=output_spec, metadata=metadata
    )


def load_emg2pose(run_dir: str | Path) -> tuple[PoseModelConfig, dict, dict]:
    """``(config, variables, info)`` of the model ``train_emg2pose`` exported (``run_dir`` or ``run_dir/model``).

    ``info``: the model's metadata plus ``model`` (config dict) and ``normalisation`` (or None).
    """
    from emgjax.bundle import load_model, resolve_model_dir

    model = load_model(resolve_model_dir(run_dir), kind="emg2pose")
    missing = {"mean_joint_angles", "val_window_length"} - set(model.metadata)
    if missing:
        raise ValueError(
            f"{model.path}: expected an emg2pose model trained by train_emg2pose (metadata {sorted(missing)}), "
            "found a model without them (e.g. a converted checkpoint)"
        )
    info = {
        **model.metadata,
        "model": model.config.to_dict(),
        "normalisation": model.input_spec.preprocessing.normalisation,
    }
    return model.config, model.params, info


def evaluate_emg2pose(
    run_dir: str | Path,
    sessions: Sequence[str | Path],
    *,
    window_length: int | None = None,
    batch_size: int = 8,
    skip_ik_failures: bool = True,
) -> dict[str, dict[str, float]]:
    """emg2pose's metrics on held-out ``sessions``, model vs predict-the-mean-angles baseline.

    Windows of ``window_length`` (default: the run's validation length,
    11,790 samples) without overlap, only inside runs without IK failure
    unless ``skip_ik_failures=False`` (emg2pose's test set skips them too).
    Masks go through `mask_missing_initial_state` as in training. Each metric
    is a mean over valid samples, batches weighted by their valid-sample counts. Returns
    ``{"model": {...}, "baseline": {...}, "windows": {"count": n}}`` with the
    keys of ``emgjax.metrics.EMG2POSE_METRIC_KEYS``.
    """
    import jax
    import jax.numpy as jnp

    from emgjax.metrics import emg2pose_metrics
    from emgjax.models.pose_modules import pose_forward

    config, variables, info = load_emg2pose(run_dir)
    if not sessions:
        raise ValueError("evaluate_emg2pose: expected at least one held-out session, found none")
    window = window_length or int(info["val_window_length"])
    data = _windows(
        sessions, info, window_length=window, stride=window, jitter=False, skip_ik_failures=skip_ik_failures
    )
    provide_initial_pos = bool(info["provide_initial_pos"])
    forward = jax.jit(functools.partial(pose_forward, config), static_argnums=(4,))
    hand = _hand()
    mean_angles = jnp.asarray(info["mean_joint_angles"], jnp.float32)[None, :, None]
    sums = {"model": {}, "baseline": {}}
    total = 0.0
    for first in range(0, len(data), batch_size):
        items = [data[i] for i in range(first, min(first + batch_size, len(data)))]
        batch = {k: np.stack([item[k] for item in items]) for k in items[0]}
        no_ik_failure = mask_missing_initial_state(batch["no_ik_failure"], config.left_context, provide_initial_pos)
        if not no_ik_failure.any():
            _warn_all_masked()
            continue
        pred, target, mask = forward(variables, batch["emg"], batch["joint_angles"], no_ik_failure, provide_initial_pos)
        weight = float(np.asarray(mask).sum())
        if weight == 0:
            continue
        for name, guess in (("model", pred), ("baseline", jnp.broadcast_to(mean_angles, target.shape))):
            metrics = jax.device_get(emg2pose_metrics(guess, target, mask, hand))
            for key, value in metrics.items():
                sums[name][key] = sums[name].get(key, 0.0) + float(value) * weight
        total += weight
    if total == 0:
        raise ValueError(f"evaluate_emg2pose: no valid (IK-failure-free) sample in {[str(s) for s in sessions]}")
    result = {name: {k: v / total for k, v in values.items()} for name, values in sums.items()}
    result["windows"] = {"count": len(data), "valid_samples": total}
    for key in ("vel", "acc", "jerk"):  # the baseline is constant: its motion metrics say nothing
        result["baseline"].pop(key, None)
    return result
