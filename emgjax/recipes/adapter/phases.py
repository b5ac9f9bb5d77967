"""Training phases of the adapter pipeline and its loss (trained with ``emgjax.train.step``).

Phase 1 trains the adapter front end (channel adapter + upsampler) and the
Mode-2 MANO head with emg2pose frozen. Phase 2 also unfreezes emg2pose's last
layers: its decoder, and with ``unfreeze_last_tds_stage`` the network's last
stage. Freezing is an optax mask (``make_optimizer(..., trainable=...)``:
``optax.multi_transform`` with ``set_to_zero`` for frozen leaves), so frozen
parameters stay bitwise unchanged and carry no optimiser moments.

The loss is a weighted sum of the objective terms of
``emgjax.recipes.adapter.objectives`` whose weights are *traced*: they travel in
the batch (``batch["objective_weights"]``, a dict term -> float32 scalar), so one
compiled step serves every objective combination. The package's train step
trains one model (``make_local_train_step``) or a stack of models at once
(``make_vmapped_train_step(loss_fn, optimizer)(states, shared_batch,
objective_batch(weights))``: models that differ in initial parameters, dropout
seed and objective weights, all fed the same data).

Batch (dict of arrays, channel-first):
  "emg": (B, 8, T) input at 500 Hz;
  "joint_angles": (B, 20, 4T), "no_ik_failure": (B, 4T) bool: labels at 2 kHz
      (the rollout starts from zeros, emg2pose's regression setting);
  "emg_2k": (B, 16, 4T) the true emg2pose-format EMG (reconstruction terms);
  "landmarks": (B, L, 21, 3) MediaPipe landmarks (mm) at every ``landmark_every``-th
      aligned sample, with "no_ik_failure" marking valid samples (landmark term);
  "mano_theta": (B, 45, 4T), "mano_mask": (B, 4T) bool (MANO term);
  "objective_weights": {term: () float32} (``objective_batch``; per model under vmap).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
import optax

from emgjax.models.adapter.pipeline import AdapterPipeline
from emgjax.recipes.adapter import objectives as obj
from emgjax.train.optim import OptimConfig, make_optimizer
from emgjax.train.state import TrainState, create_train_state
from emgjax.train.step import stack_trees

__all__ = [
    "PHASES",
    "trainable_predicate",
    "make_phase_optimizer",
    "check_objective_batch",
    "make_adapter_loss_fn",
    "WEIGHTS_KEY",
    "objective_batch",
    "init_states",
]

PHASES = (1, 2)
WEIGHTS_KEY = "objective_weights"  # the batch entry holding the traced objective weights

_BATCH_KEYS = {
    "reconstruction": ("emg_2k",),
    "spectral": ("emg_2k",),
    "pose": ("joint_angles", "no_ik_failure"),
    "landmarks": ("landmarks", "no_ik_failure"),
    "mano": ("mano_theta", "mano_mask"),
    "amplitude_prior": (),
    "smoothness_prior": (),
}


def trainable_predicate(
    phase: int, pipeline: AdapterPipeline, *, unfreeze_last_tds_stage: bool = False
) -> Callable[[tuple[str, ...], Any], bool]:
    """fn(path, leaf) -> True for the leaves a phase trains (paths as tuples of strings, params-relative)."""
    if phase not in PHASES:
        raise ValueError(f"phase: expected one of {PHASES}, found {phase!r}")
    if unfreeze_last_tds_stage and phase != 2:
        raise ValueError("unfreeze_last_tds_stage applies to phase 2 only; found phase 1")
    network = pipeline.emg2pose_config.network
    last_stage = None
    if unfreeze_last_tds_stage:
        stages = getattr(network, "tds_stages", None)
        if not stages:
            raise ValueError(
                f"unfreeze_last_tds_stage: expected a TDS network with stages, found {type(network).__name__}"
            )
        # TdsNetwork names its layers layers_0.. (conv blocks first, then the stages).
        last_stage = f"layers_{len(network.conv_blocks) + len(stages) - 1}"
    if phase == 2 and pipeline.emg2pose_config.decoder is None:
        raise ValueError(
            f"phase 2 unfreezes the emg2pose decoder, but this emg2pose model (kind "
            f"{pipeline.emg2pose_config.kind!r}) has none"
        )

    def predicate(path: tuple[str, ...], leaf) -> bool:
        if path[0] in ("adapter", "mano_head"):
            return True
        if phase == 2 and path[0] == "emg2pose":
            if path[1] == "decoder":
                return True
            if last_stage is not None and path[1] == "network" and path[2] == last_stage:
                return True
        return False

    return predicate


def make_phase_optimizer(
    phase: int, optim: OptimConfig, params, pipeline: AdapterPipeline, *, unfreeze_last_tds_stage: bool = False
) -> optax.GradientTransformation:
    """The optax transformation of a phase: ``make_optimizer`` with the phase's trainable mask."""
    predicate = trainable_predicate(phase, pipeline, unfreeze_last_tds_stage=unfreeze_last_tds_stage)
    if not any(predicate(tuple(_names(p)), x) for p, x in jax.tree_util.tree_leaves_with_path(params)):
        raise ValueError(
            f"phase {phase}: expected something to train, found no trainable parameter (variant "
            f"{pipeline.config.name} has no parameters; evaluate it without training)"
        )
    return make_optimizer(optim, params, trainable=predicate)


def _names(path) -> list[str]:
    from emgjax.train.optim import path_names

    return list(path_names(path))


def check_objective_batch(weights: obj.ObjectiveWeights, batch: Mapping[str, Any], pipeline: AdapterPipeline) -> None:
    """Host-side check that the batch carries what each positive-weight term needs."""
    for term in obj.OBJECTIVE_TERMS:
        if getattr(weights, term) > 0:
            missing = [k for k in _BATCH_KEYS[term] if k not in batch]
            if missing:
                raise ValueError(
                    f"objective term {term!r} has weight {getattr(weights, term)} but the batch lacks "
                    f"{missing}; found keys {sorted(batch)}"
                )
    if weights.mano > 0 and pipeline.mano_head is None:
        raise ValueError(
            "objective term 'mano' needs a pipeline with a MANO head (PipelineConfig.mano_head), found none"
        )
    emg = batch.get("emg")
    if emg is None:
        raise ValueError(f"batch: expected an 'emg' entry, found keys {sorted(batch)}")
    pipeline.check_emg(emg)
    t2 = pipeline.factor * np.shape(emg)[2]
    for key in ("emg_2k", "joint_angles", "mano_theta"):
        if key in batch and np.shape(batch[key])[-1] != t2:
            raise ValueError(
                f"batch[{key!r}]: expected {t2} samples (4 x the 500 Hz window), found {np.shape(batch[key])[-1]}"
            )
    if "emg_2k" in batch and np.shape(batch["emg_2k"])[1] != pipeline.config.adapter.out_channels:
        raise ValueError(
            f"batch['emg_2k']: expected {pipeline.config.adapter.out_channels} channels, found "
            f"{np.shape(batch['emg_2k'])[1]}"
        )


def objective_batch(weights: obj.ObjectiveWeights | Sequence[obj.ObjectiveWeights]) -> dict[str, Any]:
    """The batch entry of the objective weights: ``{WEIGHTS_KEY: {term: float32}}``.

    One ``ObjectiveWeights``: scalars, to merge into a single model's batch. A
    sequence of N: each term stacked to (N,), the ``per_model_batch`` of the
    vmapped train step.
    """
    if isinstance(weights, obj.ObjectiveWeights):
        return {WEIGHTS_KEY: weights.as_array_dict()}
    return {WEIGHTS_KEY: stack_trees([w.as_array_dict() for w in weights])}


def make_adapter_loss_fn(pipeline: AdapterPipeline, batch_keys: Sequence[str], *, hand=None, landmark_every: int = 40):
    """loss_fn(params, batch_stats, batch, rng, train) -> (loss, (metrics, new_batch_stats)), the train-step interface.

    batch_keys: the data keys the batches will carry (static: terms whose data is absent are left out of the
    program). The objective weights come in ``batch[WEIGHTS_KEY]`` (``objective_batch``); traced.
    """
    keys = set(batch_keys)
    cfg = pipeline.emg2pose_config
    if "landmarks" in keys and hand is None:
        raise ValueError("batches carry 'landmarks' but no hand model was given for FK; pass hand=")

    def loss_fn(params, batch_stats, batch, rng, train: bool):
        weights = batch[WEIGHTS_KEY]
        variables = {"params": params, "batch_stats": batch_stats}
        outputs, new_stats = pipeline(
            variables,
            batch["emg"],
            hand=hand if "landmarks" in keys else None,
            landmark_every=landmark_every,
            train=train,
            rng=rng,
        )
        emg_2k = outputs["emg_2k"]
        terms = {
            "amplitude_prior": obj.amplitude_prior(emg_2k),
            "smoothness_prior": obj.smoothness_prior(emg_2k),
        }
        if "emg_2k" in keys:
            terms["reconstruction"] = obj.time_mse(emg_2k, batch["emg_2k"])
            terms["spectral"] = obj.log_spectral_distance(emg_2k, batch["emg_2k"])
        stop = batch["emg"].shape[-1] * pipeline.factor - cfg.right_context
        if "joint_angles" in keys:
            target = batch["joint_angles"][..., cfg.left_context : stop]
            mask = batch["no_ik_failure"][..., cfg.left_context : stop]
            terms["pose"] = obj.angle_pose_loss(outputs["angles"], target, mask)
        if "landmarks" in keys:
            mask = batch["no_ik_failure"][..., cfg.left_context : stop]
            terms["landmarks"] = obj.landmark_distance_loss(
                outputs["landmarks"], batch["landmarks"], mask[:, ::landmark_every]
            )
        if "mano_theta" in keys and "mano_theta" in outputs:
            target = batch["mano_theta"][..., cfg.left_context : stop]
            terms["mano"] = obj.mano_theta_loss(
                outputs["mano_theta"], target, batch["mano_mask"][..., cfg.left_context : stop]
            )
        loss = sum(weights[name] * value for name, value in terms.items())
        metrics = dict(terms, loss=loss)
        return loss, (metrics, new_stats)

    return loss_fn


def init_states(
    pipeline: AdapterPipeline,
    emg2pose_variables: dict,
    optimizer: optax.GradientTransformation,
    seeds: Sequence[int],
    *,
    num_samples: int | None = None,
) -> list[TrainState]:
    """One fresh TrainState per seed (the seed draws the adapter's initial parameters and the dropout keys)."""
    states = []
    for seed in seeds:
        init_key, dropout_key = jax.random.split(jax.random.key(seed))
        variables = pipeline.init(init_key, emg2pose_variables, num_samples=num_samples)
        states.append(create_train_state(variables["params"], optimizer, dropout_key, variables["batch_stats"]))
    return states
