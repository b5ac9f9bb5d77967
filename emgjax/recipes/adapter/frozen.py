"""An emg2pose worth freezing when no converted Meta checkpoint is at hand.

Real users freeze a converted checkpoint (``emgjax.load_pretrained(dir)``).
Without one (this machine, the quick benchmark, tests), the benchmark trains
the emg2pose port itself on emg2pose-format (16 ch / 2 kHz) windows, checks
that it clearly beats predicting the training-set mean pose, and writes it in
the one model format (`emgjax.bundle`, as ``emgjax convert`` writes), so
``load_pretrained`` reads it back like any converted model. It is never a
randomly initialised network: ``train_frozen_emg2pose`` raises when the trained
model does not beat the mean baseline by ``min_gain``.

Reduced configs (same architecture family as Meta's "tds" + state decoder,
just smaller and with a shorter left context):
  ``quick_emg2pose_config()``: TDS with 8x8-channel stages, MLP decoder
      (hidden 64), left context 590 samples (0.3 s);
  ``tiny_emg2pose_config()``: for tests, left context 50 samples.
Both predict absolute angles from a zero initial pose (regression setting:
``provide_initial_pos=False``), so every bit of the pose has to come from EMG.
"""

from __future__ import annotations

import json
import pathlib
import time
from collections.abc import Callable, Iterable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from emgjax.data.windows import rotate_channels as ring_rotation
from emgjax.models import pose_modules
from emgjax.models.configs import (
    Conv1dBlockConfig,
    MLPDecoderConfig,
    PoseModelConfig,
    TdsNetworkConfig,
    TdsStageConfig,
)
from emgjax.train.losses import angle_l1
from emgjax.train.optim import OptimConfig, make_optimizer
from emgjax.train.state import create_train_state
from emgjax.train.step import make_local_train_step

__all__ = [
    "quick_emg2pose_config",
    "tiny_emg2pose_config",
    "save_pretrained",
    "train_frozen_emg2pose",
    "evaluate_vs_mean",
    "frozen_emg2pose",
    "FrozenModelError",
]

NUM_JOINTS = 20


class FrozenModelError(ValueError):
    """The trained emg2pose does not beat the predict-the-mean baseline: not worth freezing."""


def quick_emg2pose_config() -> PoseModelConfig:
    """Reduced emg2pose for the quick CPU benchmark (about 80 k parameters, left context 590)."""
    network = TdsNetworkConfig(
        conv_blocks=(Conv1dBlockConfig(16, 32, 11, 5), Conv1dBlockConfig(32, 32, 5, 2)),
        tds_stages=(TdsStageConfig(32, 9, 4, 1, 8, 8, 5), TdsStageConfig(64, 5, 2, 1, 8, 8, 3, out_channels=32)),
    )
    decoder = MLPDecoderConfig(32 + NUM_JOINTS, (64,), NUM_JOINTS, layer_norm=True, scale=1.0)
    return PoseModelConfig("state", network, decoder, predict_vel=False)


def tiny_emg2pose_config() -> PoseModelConfig:
    """A very small emg2pose for tests (left context 50 samples)."""
    network = TdsNetworkConfig(
        conv_blocks=(Conv1dBlockConfig(16, 16, 11, 5),),
        tds_stages=(TdsStageConfig(16, 5, 2, 1, 4, 4, 3, out_channels=16),),
    )
    decoder = MLPDecoderConfig(16 + NUM_JOINTS, (32,), NUM_JOINTS, layer_norm=True, scale=1.0)
    return PoseModelConfig("state", network, decoder, predict_vel=False)


def save_pretrained(
    directory,
    config: PoseModelConfig,
    variables: Mapping,
    *,
    provide_initial_pos: bool,
    experiment: str | None = None,
    extra: Mapping | None = None,
) -> pathlib.Path:
    """Write ``variables`` as an emg2pose model bundle (`emgjax.bundle.save_model`, as `emgjax convert` does).

    ``extra`` entries (e.g. training report) go into the bundle's metadata (``model.metadata``);
    an ``extra["emg_norm"]`` ({"mean", "std"}) also becomes the input normalisation ``predict`` applies.
    """
    from emgjax.bundle import emg2pose_specs, save_model

    extra = dict(extra or {})
    input_spec, output_spec = emg2pose_specs(config, extra.get("emg_norm"))
    return save_model(
        directory,
        "emg2pose",
        config,
        dict(variables),
        input_spec=input_spec,
        output_spec=output_spec,
        metadata={
            "experiment": experiment,
            "provide_initial_pos": bool(provide_initial_pos),
            "source": {"file": None, "trained_by": "emgjax.recipes.adapter.frozen (synthetic emg2pose-format data)"},
            **extra,
        },
        overwrite=True,
    )


def _pose_loss(config: PoseModelConfig):
    """emg2pose's angle L1 in the train-step interface; batches as ``train_frozen_emg2pose``'s sample_batch."""

    def loss_fn(params, batch_stats, batch, rng, train: bool):
        pred, target, mask = pose_modules.pose_forward(
            config,
            {"params": params},
            batch["emg_2k"],
            batch["joint_angles"],
            batch["no_ik_failure"],
            False,
            train=train,
            rngs={"dropout": rng},
        )
        return angle_l1(pred, target, mask), ({}, batch_stats)

    return loss_fn


# One compiled forward per (config, shapes) for every evaluation of the process (a validation check every
# eval_every steps must not recompile).
_JIT_POSE_FORWARD = jax.jit(pose_modules.pose_forward, static_argnums=(0, 5))


def evaluate_vs_mean(
    config: PoseModelConfig, variables: Mapping, batches: Iterable[Mapping], mean_pose: np.ndarray
) -> dict[str, float]:
    """Held-out angle MAE (degrees) of the model and of predicting ``mean_pose`` (20,) everywhere."""
    from emgjax.metrics import masked_sum_and_count

    forward = _JIT_POSE_FORWARD
    model_sum = mean_sum = count = 0.0
    for batch in batches:
        pred, target, mask = forward(
            config, dict(variables), batch["emg_2k"], batch["joint_angles"], batch["no_ik_failure"], False
        )
        mask = mask[:, None, :]  # every joint of a valid sample
        total, n = masked_sum_and_count(jnp.abs(pred - target), mask)
        baseline, _ = masked_sum_and_count(jnp.abs(jnp.asarray(mean_pose)[None, :, None] - target), mask)
        model_sum, mean_sum, count = model_sum + float(total), mean_sum + float(baseline), count + float(n)
    if count == 0:
        raise ValueError("evaluate_vs_mean: expected held-out batches with valid (no IK failure) samples, found none")
    return {
        "mae_deg": float(np.degrees(model_sum / count)),
        "mean_baseline_mae_deg": float(np.degrees(mean_sum / count)),
    }


def train_frozen_emg2pose(
    config: PoseModelConfig,
    sample_batch: Callable[[np.random.Generator], Mapping],
    heldout_batches: list[Mapping],
    mean_pose: np.ndarray,
    *,
    steps: int = 600,
    learning_rate: float = 3e-3,
    seed: int = 0,
    min_gain: float | None = 0.15,
    rotate_channels: bool = True,
    eval_every: int | None = None,
    patience: int | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[dict, dict]:
    """Train emg2pose on 16 ch / 2 kHz windows until its validation error stops improving; returns (variables, report).

    sample_batch(rng) -> {"emg_2k" (B, 16, T), "joint_angles" (B, 20, T), "no_ik_failure" (B, T)}.
    heldout_batches: validation windows (users the model does not train on). Every ``eval_every`` steps
    the validation MAE is measured (the learning curve, ``report["curve"]``); training stops after
    ``patience`` checks without a new best, or at ``steps``, and the best checkpoint is returned
    (eval_every None: one check at the end). The schedule is a warm-up and a cosine decay over ``steps``.
    rotate_channels: emg2pose's ring-rotation augmentation (each window's 16 electrodes rolled by -1, 0
    or +1, ``emgjax.data.windows.rotate_channels``), because the band sits differently in every session.
    Raises FrozenModelError unless the best validation MAE <= (1 - min_gain) x the predict-the-mean MAE
    (min_gain=None skips the check and only reports both numbers: for smoke tests on toy data).
    """
    if steps < 1:
        raise ValueError(f"steps: expected >= 1, found {steps}")
    if eval_every is not None and eval_every < 1:
        raise ValueError(f"eval_every: expected >= 1 or None, found {eval_every}")
    start = time.perf_counter()
    variables = pose_modules.init_variables(config, jax.random.key(seed))
    if "batch_stats" in variables:
        raise ValueError("train_frozen_emg2pose trains LayerNorm configs only; found BatchNorm statistics")
    optim = OptimConfig(
        learning_rate=learning_rate,
        schedule="warmup_cosine",
        warmup_steps=min(50, steps // 10),
        decay_steps=steps,
        end_learning_rate=learning_rate * 0.05,
        grad_clip_norm=1.0,
    )
    optimizer = make_optimizer(optim)
    state = create_train_state(variables["params"], optimizer, jax.random.key(seed + 1))
    step = make_local_train_step(_pose_loss(config), optimizer)

    rng = np.random.default_rng(seed)
    losses: list = []
    curve: list[dict[str, float]] = []
    best: tuple[float, dict] | None = None
    since_best = 0
    check = eval_every or steps
    for i in range(steps):
        batch = sample_batch(rng)
        if rotate_channels:
            emg = np.asarray(batch["emg_2k"])
            batch = dict(batch, emg_2k=np.stack([ring_rotation(window, rng) for window in emg]))
        state, metrics = step(state, batch)
        losses.append(metrics["loss"])
        if (i + 1) % check and i + 1 < steps:
            continue
        current = {"params": state.params}
        val = evaluate_vs_mean(config, current, heldout_batches, mean_pose)
        train_l1 = float(np.mean(jnp.stack(losses[-check:])))
        curve.append({"step": i + 1, "train_l1_deg": float(np.degrees(train_l1)), "val_mae_deg": val["mae_deg"]})
        if log is not None:
            log(
                f"emg2pose step {i + 1}/{steps}: train L1 {np.degrees(train_l1):.2f} deg, "
                f"val MAE {val['mae_deg']:.2f} deg"
            )
        if best is None or val["mae_deg"] < best[0]:
            best, since_best = (val["mae_deg"], jax.tree_util.tree_map(np.asarray, current)), 0
        else:
            since_best += 1
            if patience is not None and since_best >= patience:
                break
    assert best is not None  # the last step always checks
    trained = best[1]
    report = evaluate_vs_mean(config, trained, heldout_batches, mean_pose)
    best_step = min(curve, key=lambda point: point["val_mae_deg"])["step"]
    report.update(
        steps=len(losses),
        max_steps=steps,
        best_step=best_step,
        stopped_early=len(losses) < steps,
        train_seconds=time.perf_counter() - start,
        final_train_l1_rad=float(np.mean(jnp.stack(losses[-20:]))),
        curve=curve,
    )
    report["beats_mean_baseline"] = bool(report["mae_deg"] < report["mean_baseline_mae_deg"])
    if min_gain is not None and not report["mae_deg"] <= (1.0 - min_gain) * report["mean_baseline_mae_deg"]:
        raise FrozenModelError(
            f"trained emg2pose validation MAE {report['mae_deg']:.2f} deg does not beat the predict-the-mean "
            f"baseline {report['mean_baseline_mae_deg']:.2f} deg by {min_gain:.0%}; not worth freezing (train longer)"
        )
    return trained, report


def frozen_emg2pose(
    cache_dir,
    config: PoseModelConfig,
    sample_batch,
    heldout_batches,
    mean_pose,
    *,
    fingerprint: Mapping,
    log: Callable[[str], None] | None = None,
    extra_metadata: Mapping | None = None,
    **train_kwargs,
):
    """Load the cached frozen emg2pose from ``cache_dir`` if its fingerprint matches, else train and cache it.

    fingerprint: JSON-able description of the data and settings (a changed one retrains).
    extra_metadata: more metadata entries (e.g. {"emg_norm": {"mean": [...], "std": [...]}}).
    Returns (Emg2PoseModel, report).
    """
    from emgjax.bundle import BundleError, is_bundle, load_pretrained

    cache_dir = pathlib.Path(cache_dir)
    fingerprint = json.loads(json.dumps(dict(fingerprint)))
    if is_bundle(cache_dir):
        try:
            model = load_pretrained(cache_dir)
        except BundleError as exc:
            if log:
                log(f"cached emg2pose unreadable ({exc}); retraining")
        else:
            meta = model.metadata.get("frozen_training", {})
            if meta.get("fingerprint") == fingerprint and model.config == config:
                if log:
                    log(f"using cached frozen emg2pose from {cache_dir}")
                return model, dict(meta.get("report", {}), cached=True)
            if log:
                log("cached emg2pose was trained with other settings; retraining")
    variables, report = train_frozen_emg2pose(config, sample_batch, heldout_batches, mean_pose, log=log, **train_kwargs)
    save_pretrained(
        cache_dir,
        config,
        variables,
        provide_initial_pos=False,
        extra={**dict(extra_metadata or {}), "frozen_training": {"fingerprint": fingerprint, "report": report}},
    )
    return load_pretrained(cache_dir), dict(report, cached=False)
