"""Train a stack of models at once: every (data seed, init seed, objective, learning rate) of one row family.

The package's vmapped train step (``emgjax.train.make_vmapped_train_step``)
runs N models of one architecture in one compiled step. The benchmark puts
everything that differs between them in the per-model part of the batch or
state: the training windows (models of different data seeds see different
users), the objective weights, and the learning rate. The learning rate lives
in the optimiser state (``with_learning_rates``: the row's schedule, relative,
times ``optax.inject_hyperparams(optax.scale)``), so a learning-rate sweep is
one vmapped job too.

Batches are drawn per data seed from a generator seeded with
``(BATCH_SEED, data_seed)``: models of one data seed see the same windows in
every row family, which makes the comparison between rows paired (matched
data seed x init seed).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from emgjax.data.sessions import SessionArrays, sample_batch
from emgjax.train.state import TrainState
from emgjax.train.step import make_vmapped_train_step, stack_trees

__all__ = ["BATCH_SEED", "StackModel", "with_learning_rates", "set_learning_rates", "train_stack"]

BATCH_SEED = 1234
BATCH_KEYS = ("emg", "emg_2k", "joint_angles", "no_ik_failure")


@dataclasses.dataclass(frozen=True)
class StackModel:
    """One model of a stack: its data seed (which training sessions), init seed, objective and learning rate."""

    data_seed: int
    seed: int
    objective: str
    learning_rate: float


def with_learning_rates(optimizer: optax.GradientTransformation) -> optax.GradientTransformation:
    """``optimizer`` (a relative schedule, peak 1) followed by a per-model step size held in the state."""
    return optax.chain(optimizer, optax.inject_hyperparams(optax.scale)(step_size=1.0))


def set_learning_rates(states: TrainState, learning_rates: Sequence[float]) -> TrainState:
    """Stacked states of a ``with_learning_rates`` optimiser with model i's step size set to learning_rates[i]."""
    base, scale = states.opt_state
    hyperparams = dict(scale.hyperparams, step_size=jnp.asarray(learning_rates, jnp.float32))
    return states.replace(opt_state=(base, scale._replace(hyperparams=hyperparams)))


def train_stack(
    loss_fn: Callable,
    optimizer: optax.GradientTransformation,
    states: Sequence[TrainState],
    models: Sequence[StackModel],
    train_sessions: Mapping[int, Sequence[SessionArrays]],
    *,
    steps: int,
    batch_size: int,
    window: int,
    per_model: Mapping[str, Any] | None = None,
    input_key: str = "emg",
    phase2: tuple[optax.GradientTransformation, int] | None = None,
    step_cache: dict[int, Callable] | None = None,
) -> tuple[TrainState, dict[str, Any]]:
    """Train ``states`` (one per model, from a ``with_learning_rates`` optimiser) for ``steps`` steps at once.

    train_sessions: data seed -> its prepared training sessions. per_model: extra per-model batch entries
    with a leading axis N (e.g. ``phases.objective_batch``). input_key: the batch entry fed as "emg"
    ("emg": the 8 ch / 500 Hz view; "emg_2k": the true input). phase2: (optimizer, steps) continued after
    phase 1 with fresh moments (same learning rates). step_cache: a dict kept by the caller across calls with
    the same loss_fn and optimizers, so stacks of the same size reuse one compiled step (e.g. a learning-rate
    sweep and the test runs). Returns the stacked states and the last metrics ((N,) each).
    """
    if len(states) != len(models):
        raise ValueError(f"train_stack: expected one state per model ({len(models)}), found {len(states)}")
    data_seeds = sorted({m.data_seed for m in models})
    missing = [d for d in data_seeds if d not in train_sessions]
    if missing:
        raise ValueError(f"train_stack: expected training sessions for data seeds {missing}, found none")
    rngs = {d: np.random.default_rng([BATCH_SEED, d]) for d in data_seeds}
    index = np.asarray([data_seeds.index(m.data_seed) for m in models])
    learning_rates = [m.learning_rate for m in models]

    def batches() -> dict[str, Any]:
        drawn = [sample_batch(train_sessions[d], rngs[d], batch_size, window) for d in data_seeds]
        batch = {key: np.stack([b[key] for b in drawn])[index] for key in BATCH_KEYS}
        if input_key != "emg":
            batch["emg"] = batch[input_key]
        return {**batch, **dict(per_model or {})}

    cache = {} if step_cache is None else step_cache  # phase index -> compiled vmapped step
    stacked = set_learning_rates(stack_trees(list(states)), learning_rates)
    metrics: dict[str, Any] = {}
    phases = [(optimizer, steps)] + ([phase2] if phase2 is not None and phase2[1] > 0 else [])
    for i, (tx, n_steps) in enumerate(phases):
        if i > 0:  # phase 2: a new trainable mask, fresh moments, the same per-model learning rates
            stacked = stacked.replace(opt_state=jax.vmap(tx.init)(stacked.params))
            stacked = set_learning_rates(stacked, learning_rates)
        if i not in cache:
            cache[i] = make_vmapped_train_step(loss_fn, tx)
        step = cache[i]
        for _ in range(n_steps):
            stacked, metrics = step(stacked, {}, batches())
    jax.block_until_ready(stacked.params)
    return stacked, metrics
