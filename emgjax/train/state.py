"""The training state: everything a step reads and writes, as one pytree."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

__all__ = ["TrainState", "create_train_state", "as_key_data"]


@flax.struct.dataclass
class TrainState:
    """Model parameters, BatchNorm statistics, optimiser state, step and rng.

    - ``step``: int32 scalar, number of optimiser updates applied.
    - ``params``: parameter pytree (the ``"params"`` collection).
    - ``batch_stats``: BatchNorm running statistics (``{}`` if the model has none).
    - ``opt_state``: the optax state for ``params``.
    - ``rng``: base PRNG key as raw uint32 key data (e.g. shape (2,)), so the
      state checkpoints as plain arrays. Each step derives its dropout key by
      folding in the step number (and the device index), so resuming from a
      checkpoint replays exactly the same randomness.

    The optimiser and the model's apply function are deliberately *not* in
    the state: they are code, passed to ``make_train_step`` (and to
    ``apply_gradients``), which keeps the state a pure array tree that Orbax
    saves and restores as is.
    """

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    rng: jax.Array

    if TYPE_CHECKING:
        # flax.struct.dataclass adds `replace` at run time; declared here for the type checker.
        def replace(self, **updates: Any) -> TrainState: ...

    def apply_gradients(self, grads: Any, optimizer: optax.GradientTransformation, **changes: Any) -> TrainState:
        """One optimiser update: ``step + 1``, new ``params`` and ``opt_state``.

        ``grads``: a pytree like ``params``. ``changes`` replace other fields
        at the same time (e.g. ``batch_stats=new_batch_stats``).
        """
        updates, opt_state = optimizer.update(grads, self.opt_state, self.params)
        params = optax.apply_updates(self.params, updates)
        return self.replace(step=self.step + 1, params=params, opt_state=opt_state, **changes)


def as_key_data(rng: Any) -> jax.Array:
    """Raw uint32 key data from a typed key, a legacy uint32 key or an int seed."""
    if isinstance(rng, int):
        return jax.random.key_data(jax.random.key(rng))
    rng = jnp.asarray(rng) if not isinstance(rng, jax.Array) else rng
    if jax.dtypes.issubdtype(rng.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(rng)
    if rng.dtype != jnp.uint32:
        raise ValueError(f"rng: expected a PRNG key, uint32 key data or an int seed, found dtype {rng.dtype}")
    return rng


def create_train_state(
    params: Any, optimizer: optax.GradientTransformation, rng: Any, batch_stats: Any = None
) -> TrainState:
    """A fresh state at step 0: ``optimizer.init(params)`` and the rng as key data."""
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats={} if batch_stats is None else batch_stats,
        opt_state=optimizer.init(params),
        rng=as_key_data(rng),
    )
