"""Optimiser: Adam/AdamW, learning-rate schedules, clipping and freezing (optax)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import optax

from emgjax.config import Config

__all__ = ["OptimConfig", "make_schedule", "make_optimizer", "trainable_mask", "path_names"]

_OPTIMIZERS = ("adam", "adamw")
_SCHEDULES = ("constant", "warmup_cosine", "step")

# A predicate on a parameter's path, e.g. ("lstm", "layer_1", "kernel_hh"), and its value.
TrainablePredicate = Callable[[tuple[str, ...], Any], bool]


@dataclasses.dataclass(frozen=True)
class OptimConfig(Config):
    """Optimiser settings.

    - ``optimizer``: "adam" or "adamw" (decoupled ``weight_decay``, applied
      only to parameters with ndim >= 2, i.e. not to biases or norm scales).
    - ``schedule``:
      "constant": ``learning_rate`` throughout;
      "warmup_cosine": linear warm-up from 0 over ``warmup_steps``, then cosine
      decay to ``end_learning_rate`` at ``decay_steps`` (total steps, warm-up
      included); ``decay_steps=0`` (the default) means the run's total number
      of updates, given to ``make_optimizer(..., total_steps=N)`` (the
      recipes pass their run length);
      "step": ``learning_rate * decay_rate ** (step // decay_steps)``, after an
      optional linear warm-up (the original project's 1e-3 -> 5e-4 is
      ``decay_rate=0.5``).
    - ``grad_clip_norm``: clip by global norm of the *trainable* gradients;
      0 turns clipping off.
    """

    learning_rate: float = 1e-3
    optimizer: str = "adam"
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_steps: int = 0
    decay_steps: int = 0
    decay_rate: float = 0.5
    end_learning_rate: float = 0.0
    grad_clip_norm: float = 0.0

    def __post_init__(self):
        if self.optimizer not in _OPTIMIZERS:
            raise ValueError(f"OptimConfig.optimizer: expected one of {list(_OPTIMIZERS)}, found {self.optimizer!r}")
        if self.schedule not in _SCHEDULES:
            raise ValueError(f"OptimConfig.schedule: expected one of {list(_SCHEDULES)}, found {self.schedule!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"OptimConfig.learning_rate: expected > 0, found {self.learning_rate!r}")
        if self.grad_clip_norm < 0:
            raise ValueError(f"OptimConfig.grad_clip_norm: expected >= 0 (0 = off), found {self.grad_clip_norm!r}")
        if self.warmup_steps < 0:
            raise ValueError(f"OptimConfig.warmup_steps: expected >= 0, found {self.warmup_steps!r}")
        if self.weight_decay < 0:
            raise ValueError(f"OptimConfig.weight_decay: expected >= 0, found {self.weight_decay!r}")
        if self.decay_steps < 0:
            raise ValueError(f"OptimConfig.decay_steps: expected >= 0, found {self.decay_steps!r}")
        if self.schedule == "warmup_cosine" and self.decay_steps and self.decay_steps <= self.warmup_steps:
            raise ValueError(
                "OptimConfig.decay_steps: the warmup_cosine schedule needs total decay_steps > warmup_steps "
                f"(or 0 for the run's length), found decay_steps={self.decay_steps}, warmup_steps={self.warmup_steps}"
            )
        if self.schedule == "step" and self.decay_steps <= 0:
            raise ValueError(
                f"OptimConfig.decay_steps: the step schedule needs decay_steps > 0, found {self.decay_steps}"
            )


def make_schedule(config: OptimConfig, total_steps: int | None = None) -> optax.Schedule:
    """The learning rate as a function of the update count.

    ``total_steps``: the run's number of updates; the "warmup_cosine"
    schedule decays over it when ``config.decay_steps`` is 0.
    """
    lr = config.learning_rate
    if config.schedule == "constant":
        return optax.constant_schedule(lr)
    if config.schedule == "warmup_cosine":
        decay_steps = config.decay_steps
        if decay_steps == 0:
            if total_steps is None:
                raise ValueError(
                    "OptimConfig.decay_steps: warmup_cosine with decay_steps=0 decays over the run's total steps; "
                    "expected make_optimizer(..., total_steps=N) or decay_steps > 0, found neither"
                )
            if (
                isinstance(total_steps, bool)
                or not isinstance(total_steps, (int, np.integer))
                or total_steps <= config.warmup_steps
            ):
                raise ValueError(
                    f"total_steps: expected an integer > warmup_steps={config.warmup_steps} for the warmup_cosine "
                    f"schedule, found {total_steps!r}"
                )
            decay_steps = int(total_steps)
        return optax.warmup_cosine_decay_schedule(
            init_value=0.0,
            peak_value=lr,
            warmup_steps=config.warmup_steps,
            decay_steps=decay_steps,
            end_value=config.end_learning_rate,
        )
    decay = optax.exponential_decay(
        lr, transition_steps=config.decay_steps, decay_rate=config.decay_rate, staircase=True
    )
    if config.warmup_steps == 0:
        return decay
    warmup = optax.linear_schedule(0.0, lr, config.warmup_steps)
    return optax.join_schedules([warmup, decay], [config.warmup_steps])


def path_names(path) -> tuple[str, ...]:
    """A jax key path as plain strings, e.g. ("lstm", "layer_0", "kernel_ih")."""
    names = []
    for entry in path:
        for attr in ("key", "name", "idx"):
            if hasattr(entry, attr):
                names.append(str(getattr(entry, attr)))
                break
        else:
            names.append(str(entry))
    return tuple(names)


def trainable_mask(params, trainable) -> Any:
    """A pytree of bools (True = trained) shaped like ``params``.

    ``trainable`` is None (everything trains), a pytree of bools with the
    structure of ``params`` (a prefix tree is allowed, e.g. ``{"head": True,
    "conv": False}`` for subtrees), or a predicate ``fn(path, leaf) -> bool``
    over key paths given as tuples of strings.
    """
    if trainable is None:
        return jax.tree_util.tree_map(lambda _: True, params)
    if callable(trainable):
        return jax.tree_util.tree_map_with_path(lambda p, leaf: bool(trainable(path_names(p), leaf)), params)
    try:
        # Broadcast a prefix tree of bools over params' leaves.
        return jax.tree_util.tree_map(
            lambda flag, sub: jax.tree_util.tree_map(lambda _: bool(flag), sub), trainable, params
        )
    except (ValueError, TypeError) as err:
        raise ValueError(
            "trainable: expected None, a predicate fn(path, leaf) -> bool or a pytree of bools matching the "
            f"parameter tree (or a prefix of it), found a tree that does not match: {err}"
        ) from None


def make_optimizer(
    config: OptimConfig, params=None, trainable=None, *, total_steps: int | None = None
) -> optax.GradientTransformation:
    """Build the optax transformation for ``params``.

    ``total_steps``: the run's number of updates (see `make_schedule`;
    needed by "warmup_cosine" with ``decay_steps=0``).

    With ``trainable`` given (see ``trainable_mask``), frozen leaves get
    ``optax.set_to_zero()`` through ``optax.multi_transform``: their updates
    are exactly zero (parameters stay bitwise equal) and the optimiser keeps
    no moments for them. Clipping only sees trainable gradients.
    ``params`` is needed only with ``trainable``.
    """
    schedule = make_schedule(config, total_steps)
    if config.optimizer == "adam":
        base = optax.adam(schedule, b1=config.b1, b2=config.b2, eps=config.eps)
    else:
        base = optax.adamw(
            schedule,
            b1=config.b1,
            b2=config.b2,
            eps=config.eps,
            weight_decay=config.weight_decay,
            mask=lambda tree: jax.tree_util.tree_map(lambda x: np.ndim(x) >= 2, tree),
        )
    tx = base if config.grad_clip_norm == 0 else optax.chain(optax.clip_by_global_norm(config.grad_clip_norm), base)
    if trainable is None:
        return tx
    if params is None:
        raise ValueError("make_optimizer: freezing parameters needs params (to label each leaf), found params=None")
    mask = trainable_mask(params, trainable)
    if not any(jax.tree_util.tree_leaves(mask)):
        raise ValueError("make_optimizer: expected at least one trainable parameter, found every parameter frozen")
    labels = jax.tree_util.tree_map(lambda flag: "trainable" if flag else "frozen", mask)
    return optax.multi_transform({"trainable": tx, "frozen": optax.set_to_zero()}, labels)
