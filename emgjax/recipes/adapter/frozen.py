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


def evaluate_vs_mean(
    config: PoseModelConfig, variables: Mapping, batches: Iterable[Mapping], mean_pose: np.ndarray
) -> dict[str, float]:
    """Held-out angle MAE (degrees) of the model and of predicting ``mean_pose`` (20,) everywhere."""
    from emgjax.metrics import masked_sum_and_count

    forward = jax.jit(pose_modules.pose_forward, static_argnums=(0, 5))
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
    log: Callable[[str], None] | None = None,
) -> tuple[dict, dict]:
    """Train emg2pose on 16 ch / 2 kHz windows; returns (variables, report).

    sample_batch(rng) -> {"emg_2k" (B, 16, T), "joint_angles" (B, 20, T), "no_ik_failure" (B, T)}.
    rotate_channels: emg2pose's ring-rotation augmentation (each window's 16 electrodes rolled by -1, 0
    or +1), because the band sits differently in every session and held-out sessions are unseen.
    Raises FrozenModelError unless held-out MAE <= (1 - min_gain) x the predict-the-mean MAE
    (min_gain=None skips the check and only reports both numbers: for smoke tests on toy data).
    """
    if steps < 1:
        raise ValueError(f"steps: expected >= 1, found {steps}")
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
    losses = []
    for i in range(steps):
        batch = sample_batch(rng)
        if rotate_channels:
            batch = dict(batch, emg_2k=_rotate_ring(np.asarray(batch["emg_2k"]), rng))
        state, metrics = step(state, batch)
        losses.append(metrics["loss"])
        if log is not None and (i + 1) % max(1, steps // 5) == 0:
            log(f"emg2pose step {i + 1}/{steps}: train L1 {float(np.mean(losses[-20:])):.4f} rad")
    trained = {"params": state.params}
    report = evaluate_vs_mean(config, trained, heldout_batches, mean_pose)
    report.update(
        steps=steps,
        train_seconds=time.perf_counter() - start,
        final_train_l1_rad=float(np.mean(jnp.stack(losses[-20:]))),
    )
    report["beats_mean_baseline"] = bool(report["mae_deg"] < report["mean_baseline_mae_deg"])
    if min_gain is not None and not report["mae_deg"] <= (1.0 - min_gain) * report["mean_baseline_mae_deg"]:
        raise FrozenModelError(
            f"trained emg2pose held-out MAE {report['mae_deg']:.2f} deg does not beat the predict-the-mean baseline "
            f"{report['mean_baseline_mae_deg']:.2f} deg by {min_gain:.0%}; not worth freezing (train longer)"
        )
    return trained, report


def _rotate_ring(emg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Roll each window's electrodes around the ring by -1, 0 or +1. emg: (B, C, T)."""
    shifts = rng.integers(-1, 2, size=emg.shape[0])
    return np.stack([np.roll(window, shift, axis=0) for window, shift in zip(emg, shifts, strict=True)])


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
