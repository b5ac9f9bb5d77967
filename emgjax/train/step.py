"""One data-parallel train step for every model, written per device.

The task interface (what a model + loss provides):

    loss_fn(params, batch_stats, batch, rng, train: bool)
        -> (loss, (metrics: dict[str, scalar], new_batch_stats))

``loss_fn`` runs *per device* on that device's rows of the batch, inside a
named mapped axis (``axis_name``, default "data"). The step then combines
devices with explicit collectives:

- gradients: ``lax.pmean`` over the axis;
- metrics and the loss: ``lax.pmean`` -- a per-device *mean* averaged over
  devices equals the global mean only if every device's mean has the same
  count, so masked quantities should be computed with the ``axis_name``-aware
  functions of ``emgjax.train.losses`` (``local_sum / pmean(local_count)``),
  which makes the result exact for any mask distribution;
- BatchNorm statistics: ``lax.pmean`` of the new ``batch_stats``. Note that
  the *normalisation inside the forward pass* uses per-device batch
  statistics unless the model's BatchNorm is given the same ``axis_name``
  (``DirectModel(cfg, bn_axis_name="data")``); do that, and the sharded step
  equals the single-device step on the global batch exactly (up to float
  rounding). Averaging the running statistics afterwards keeps replicas
  identical either way.
- dropout: each device folds the step number and ``lax.axis_index`` into
  the state's base key, so devices draw different masks and a resumed run
  redraws the same ones.

``make_train_step`` runs the per-device function with ``jax.shard_map`` over
a 1-D mesh under ``jax.jit`` (batch split along axis 0, state replicated).
``check_vma=False`` keeps gradients of the replicated parameters per device
(as under ``pmap``), so the explicit ``pmean`` is the only reduction; the very
same per-device function therefore also runs under
``jax.pmap(fn, axis_name="data")`` (see ``make_per_device_train_step``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import optax
from jax.sharding import Mesh, PartitionSpec

from emgjax.train.state import TrainState

__all__ = [
    "LossFn",
    "make_per_device_train_step",
    "make_per_device_eval_step",
    "make_train_step",
    "make_eval_step",
    "step_rng",
]

LossFn = Callable[[Any, Any, Mapping[str, jax.Array], jax.Array, bool], tuple[jax.Array, tuple[dict, Any]]]


def step_rng(state: TrainState, axis_name: str | None = None) -> jax.Array:
    """The dropout key of this step (and of this device, given ``axis_name``)."""
    key = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
    if axis_name is not None:
        key = jax.random.fold_in(key, jax.lax.axis_index(axis_name))
    return key


def _with_loss(metrics: Mapping[str, jax.Array], loss: jax.Array) -> dict[str, jax.Array]:
    out = dict(metrics)
    out.setdefault("loss", loss)
    return out


def make_per_device_train_step(loss_fn: LossFn, optimizer: optax.GradientTransformation, *, axis_name: str = "data"):
    """``(state, local_batch) -> (new_state, metrics)`` with collectives over ``axis_name``.

    Must run inside a mapped axis of that name (shard_map or pmap). Metrics
    include "loss" (added if ``loss_fn`` does not report it).
    """

    def per_device_step(state: TrainState, batch):
        rng = step_rng(state, axis_name)

        def objective(params):
            loss, (metrics, new_batch_stats) = loss_fn(params, state.batch_stats, batch, rng, True)
            return loss, (metrics, new_batch_stats)

        (loss, (metrics, new_batch_stats)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        grads = jax.lax.pmean(grads, axis_name)
        metrics = jax.lax.pmean(_with_loss(metrics, loss), axis_name)
        new_batch_stats = jax.lax.pmean(new_batch_stats, axis_name)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        new_state = state.replace(step=state.step + 1, params=params, batch_stats=new_batch_stats, opt_state=opt_state)
        return new_state, metrics

    return per_device_step


def make_per_device_eval_step(loss_fn: LossFn, *, axis_name: str = "data"):
    """``(state, local_batch) -> metrics`` (train=False), metrics ``pmean``-ed over ``axis_name``."""

    def per_device_eval(state: TrainState, batch):
        rng = step_rng(state, axis_name)
        loss, (metrics, _) = loss_fn(state.params, state.batch_stats, batch, rng, False)
        return jax.lax.pmean(_with_loss(metrics, loss), axis_name)

    return per_device_eval


def _check_mesh(mesh: Mesh, axis_name: str) -> int:
    if tuple(mesh.axis_names) != (axis_name,):
        raise ValueError(f"expected a 1-D mesh with axis {axis_name!r}, found axes {tuple(mesh.axis_names)}")
    return mesh.devices.size


def _check_batch(batch, num_devices: int) -> None:
    if not isinstance(batch, Mapping):
        raise ValueError(f"expected the batch to be a dict of arrays, found {type(batch).__name__}")
    for key, value in batch.items():
        shape = getattr(value, "shape", None)
        if shape is None or len(shape) == 0 or shape[0] % num_devices:
            raise ValueError(
                f"expected batch entry {key!r} to have a leading batch axis divisible by {num_devices} devices, "
                f"found shape {shape}"
            )


def make_train_step(
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    mesh: Mesh,
    *,
    axis_name: str = "data",
    donate: bool = False,
):
    """A jitted ``step(state, batch) -> (new_state, metrics)`` over ``mesh``.

    state: a ``TrainState`` replicated over the mesh (``mesh.replicate``);
    batch: dict of global arrays, axis 0 split over the mesh
    (``mesh.shard_batch``), global batch size divisible by the device count.
    metrics: dict of replicated scalars (global means). ``donate=True``
    donates the old state's buffers (saves memory on accelerators; do not
    reuse the old state afterwards).
    """
    num_devices = _check_mesh(mesh, axis_name)
    sharded = jax.shard_map(
        make_per_device_train_step(loss_fn, optimizer, axis_name=axis_name),
        mesh=mesh,
        in_specs=(PartitionSpec(), PartitionSpec(axis_name)),
        out_specs=(PartitionSpec(), PartitionSpec()),
        check_vma=False,
    )
    jitted = jax.jit(sharded, donate_argnums=(0,) if donate else ())

    def train_step(state: TrainState, batch):
        _check_batch(batch, num_devices)
        return jitted(state, batch)

    train_step.jitted = jitted  # type: ignore[attr-defined]  # the compiled function, for lowering/cost analysis
    return train_step


def make_eval_step(loss_fn: LossFn, mesh: Mesh, *, axis_name: str = "data"):
    """A jitted ``eval_step(state, batch) -> metrics`` (train=False) over ``mesh``."""
    num_devices = _check_mesh(mesh, axis_name)
    sharded = jax.shard_map(
        make_per_device_eval_step(loss_fn, axis_name=axis_name),
        mesh=mesh,
        in_specs=(PartitionSpec(), PartitionSpec(axis_name)),
        out_specs=PartitionSpec(),
        check_vma=False,
    )
    jitted = jax.jit(sharded)

    def eval_step(state: TrainState, batch):
        _check_batch(batch, num_devices)
        return jitted(state, batch)

    eval_step.jitted = jitted  # type: ignore[attr-defined]  # the compiled function, for lowering/cost analysis
    return eval_step
