"""Held-out evaluation of the adapter benchmark's rows: pose, reconstruction, size and speed.

Every row of one data seed is scored on the same held-out windows (sessions of
users never seen in training): angle MAE and landmark distance with
``emgjax.metrics`` (landmarks through the synthetic hand model's forward
kinematics), reconstruction SNR overall and per band (Welch) and per-channel
correlation with ``emgjax.recipes.adapter.objectives``, all on emg2pose's
output span (its left context excluded: the pose there is never predicted),
parameter count and throughput.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from emgjax.metrics import angle_mae, landmark_distance
from emgjax.models.adapter.pipeline import AdapterPipeline
from emgjax.models.configs import PoseModelConfig
from emgjax.recipes.adapter import objectives as obj
from emgjax.recipes.adapter.bench_config import MEASURED_CHANNELS, SYNTHESISED_CHANNELS

__all__ = ["Evaluator", "evaluate_pipeline", "pipeline_forward", "count_params", "throughput"]


def count_params(tree: Any) -> int:
    """Number of scalars in a pytree."""
    return int(sum(np.size(x) for x in jax.tree_util.tree_leaves(tree)))


def throughput(fn: Callable[[], Any], batch: int) -> float:
    """Windows per second of a compiled forward ``fn()`` (median of 3 timed calls after a warm-up)."""
    jax.block_until_ready(fn())
    times = []
    for _ in range(3):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return batch / float(np.median(times))


class Evaluator:
    """Held-out metrics shared by every row (one landmark-metric compile for all).

    batches: held-out batches (``emgjax.data.sessions.heldout_batches``); the
    targets are their joint angles over emg2pose's prediction span
    ``[left_context, window - right_context)``: ``target`` (N, 20, T'),
    ``mask`` (N, T'), ``true_emg`` (N, 16, window).
    """

    def __init__(self, batches: Sequence[Mapping[str, np.ndarray]], emg2pose_config: PoseModelConfig):
        from emgjax.kinematics import synthetic_hand_model

        self.batches = list(batches)
        self.hand = synthetic_hand_model()
        left = emg2pose_config.left_context
        stop = self.batches[0]["joint_angles"].shape[-1] - emg2pose_config.right_context
        self.target = np.concatenate([b["joint_angles"][..., left:stop] for b in self.batches])
        self.mask = np.concatenate([b["no_ik_failure"][..., left:stop] for b in self.batches])
        self.span = (left, stop)  # the reconstruction metrics score the samples whose pose is predicted
        self.true_emg = np.concatenate([b["emg_2k"][..., left:stop] for b in self.batches])

    def pose_metrics(self, angles: np.ndarray) -> dict[str, float]:
        """angles (N, 20, T') radians -> angle MAE (degrees) and landmark distance (mm) over valid samples."""
        pred, target, mask = jnp.asarray(angles, jnp.float32), jnp.asarray(self.target), jnp.asarray(self.mask)
        return {
            "angle_mae_deg": float(np.degrees(float(angle_mae(pred, target, mask)))),
            "landmark_mm": float(landmark_distance(pred, target, mask, self.hand)),
        }

    def recon_metrics(self, emg_2k: np.ndarray) -> dict[str, float]:
        """emg_2k (N, 16, window) synthesised -> SNR (overall, 0-250 Hz, 250-1000 Hz) and channel correlations.

        Scored on the output span only (``self.span``): the left context only feeds emg2pose's first output.
        """
        emg_2k = np.asarray(emg_2k)[..., self.span[0] : self.span[1]]
        low, high = obj.band_snr_db(emg_2k, self.true_emg, 2000.0)
        corr = obj.channel_correlation(emg_2k, self.true_emg)
        return {
            "snr_db": obj.snr_db(emg_2k, self.true_emg),
            "snr_0_250_db": low,
            "snr_250_1000_db": high,
            "corr_measured": float(np.mean(corr[list(MEASURED_CHANNELS)])),
            "corr_synthesised": float(np.mean(corr[list(SYNTHESISED_CHANNELS)])),
        }

    def forward_metrics(
        self, forward: Callable[[Any, Any], Any], variables: Any, input_key: str, timed: bool = True
    ) -> dict[str, float]:
        """Pose metrics (and with ``timed`` throughput) of ``forward(variables, batch[input_key]) -> angles``."""
        angles = np.concatenate([np.asarray(forward(variables, b[input_key])) for b in self.batches])
        metrics = self.pose_metrics(angles)
        if timed:
            first = self.batches[0][input_key]
            metrics["windows_per_s"] = throughput(functools.partial(forward, variables, first), first.shape[0])
        return metrics


def pipeline_forward(pipeline: AdapterPipeline) -> Callable[[Any, Any], Any]:
    """The jitted ``forward(variables, emg) -> outputs`` ({"emg_2k", "angles", ...}) of an adapter pipeline."""
    return jax.jit(lambda v, emg: pipeline(v, emg)[0])


def evaluate_pipeline(
    pipeline: AdapterPipeline,
    variables_list: Sequence[Any],
    evaluator: Evaluator,
    input_key: str = "emg",
    timed: Sequence[bool] | None = None,
    forward: Callable[[Any, Any], Any] | None = None,
) -> list[dict[str, Any]]:
    """Metrics of each of ``variables_list`` (one dict per model) on the held-out batches.

    input_key: the batch entry fed to the pipeline ("emg": the 8 ch / 500 Hz view; "emg_2k": the truth).
    timed: per model, whether to measure its throughput (default: every model).
    forward: ``pipeline_forward(pipeline)``, compiled once by a caller that evaluates the pipeline repeatedly.
    """
    forward = forward or pipeline_forward(pipeline)
    results = []
    for i, variables in enumerate(variables_list):
        emg_out, angles = [], []
        for batch in evaluator.batches:
            out = forward(variables, batch[input_key])
            emg_out.append(np.asarray(out["emg_2k"]))
            angles.append(np.asarray(out["angles"]))
        metrics: dict[str, Any] = evaluator.recon_metrics(np.concatenate(emg_out))
        metrics.update(evaluator.pose_metrics(np.concatenate(angles)))
        if timed is None or timed[i]:
            inputs = evaluator.batches[0][input_key]
            metrics["windows_per_s"] = throughput(functools.partial(forward, variables, inputs), inputs.shape[0])
        params = variables["params"]
        metrics["params"] = count_params(params["adapter"]) + count_params(params.get("mano_head", {}))
        results.append(metrics)
    return results
