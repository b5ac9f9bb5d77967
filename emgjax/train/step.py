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

The same step, without collectives (``axis_name=None``), serves one device
(``make_local_train_step``) and a stack of models trained at once
(``make_vmapped_train_step``: ``jax.vmap`` over models that differ in initial
parameters, dropout seed and per-model batch entries such as objective
weights, all fed the same data). This module is the only place in the
package that takes gradients.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, PartitionSpec

from emgjax.train.state import TrainState

__all__ = [
    "LossFn",
    "TrainStep",
    "EvalStep",
    "VmappedTrainStep",
    "make_per_device_train_step",
    "make_per_device_eval_step",
    "make_train_step",
    "make_eval_step",
    "make_local_train_step",
    "make_local_eval_step",
    "make_vmapped_train_step",
    "stack_trees",
    "unstack_tree",
    "step_rng",
]

LossFn = Callable[[Any, Any, Mapping[str, Any], jax.Array, bool], tuple[jax.Array, tuple[dict, Any]]]
Metrics = dict[str, jax.Array]
TrainStep = Callable[[TrainState, Mapping[str, Any]], tuple[TrainState, Metrics]]
EvalStep = Callable[[TrainState, Mapping[str, Any]], Metrics]
VmappedTrainStep = Callable[[TrainState, Mapping[str, Any], Mapping[str, Any]], tuple[TrainState, Metrics]]


def step_rng(state: TrainState, axis_name: str | None = None) -> jax.Array:
    """The dropout key of this step (and of this device, given ``axis_name``)."""
    key = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
    if axis_name is not None:
        key = jax.random.fold_in(key, jax.lax.axis_index(axis_name))
    return key


def _with_loss(metrics: Mapping[str, jax.Array], loss: jax.Array) -> Metrics:
    out = dict(metrics)
    out.setdefault("loss", loss)
    return out


def make_per_device_train_step(
    loss_fn: LossFn, optimizer: optax.GradientTransformation, *, axis_name: str | None = "data"
) -> TrainStep:
    """``(state, local_batch) -> (new_state, metrics)`` with collectives over ``axis_name``.

    Must run inside a mapped axis of that name (shard_map or pmap), or with
    ``axis_name=None`` outside any (one device, or one model under
    ``jax.vmap``): then nothing is averaged. Metrics include "loss" (added if
    ``loss_fn`` does not report it).
    """

    def per_device_step(state: TrainState, batch: Mapping[str, Any]) -> tuple[TrainState, Metrics]:
        rng = step_rng(state, axis_name)

        def objective(params: Any) -> tuple[jax.Array, tuple[dict, Any]]:
            return loss_fn(params, state.batch_stats, batch, rng, True)

        (loss, (metrics, new_batch_stats)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        metrics = _with_loss(metrics, loss)
        if axis_name is not None:
            grads = jax.lax.pmean(grads, axis_name)
            metrics = jax.lax.pmean(metrics, axis_name)
            new_batch_stats = jax.lax.pmean(new_batch_stats, axis_name)
        return state.apply_gradients(grads, optimizer, batch_stats=new_batch_stats), metrics

    return per_device_step


def make_per_device_eval_step(loss_fn: LossFn, *, axis_name: str | None = "data") -> EvalStep:
    """``(state, local_batch) -> metrics`` (train=False), metrics ``pmean``-ed over ``axis_name`` (None: not)."""

    def per_device_eval(state: TrainState, batch: Mapping[str, Any]) -> Metrics:
        rng = step_rng(state, axis_name)
        loss, (metrics, _) = loss_fn(state.params, state.batch_stats, batch, rng, False)
        metrics = _with_loss(metrics, loss)
        return metrics if axis_name is None else jax.lax.pmean(metrics, axis_name)

    return per_device_eval


def make_local_train_step(
    loss_fn: LossFn, optimizer: optax.GradientTransformation, *, donate: bool = False
) -> TrainStep:
    """A jitted single-device ``step(state, batch) -> (new_state, metrics)``: no mesh, no collectives.

    The per-device step with ``axis_name=None``; ``loss_fn`` must not use an
    axis name either (e.g. ``make_direct_loss_fn(model, axis_name=None)``).
    """
    return jax.jit(
        make_per_device_train_step(loss_fn, optimizer, axis_name=None), donate_argnums=(0,) if donate else ()
    )


def make_local_eval_step(loss_fn: LossFn) -> EvalStep:
    """A jitted single-device ``eval_step(state, batch) -> metrics`` (train=False)."""
    return jax.jit(make_per_device_eval_step(loss_fn, axis_name=None))


def make_vmapped_train_step(loss_fn: LossFn, optimizer: optax.GradientTransformation) -> VmappedTrainStep:
    """A jitted ``step(states, shared_batch, per_model_batch) -> (new_states, metrics)`` for N models at once.

    ``jax.vmap`` of the single-device step over a stack of models (seeds,
    variants) that share one optimiser and loss: ``states`` is a TrainState
    whose leaves carry a leading model axis (``stack_trees`` of N states);
    ``shared_batch`` (dict of arrays, no model axis) feeds every model;
    ``per_model_batch`` (dict of pytrees with a leading axis N, e.g.
    ``{"objective_weights": {term: (N,)}}``; may be empty) gives each model
    its own entries. Model i's ``loss_fn`` sees the merged dict
    ``{**shared_batch, **per_model_batch[i]}``; the two must not share keys.
    Metrics: dict of (N,) arrays. Equals running ``make_local_train_step``
    per model (up to float rounding of batched matmuls).
    """
    step = make_per_device_train_step(loss_fn, optimizer, axis_name=None)

    def one_model(state: TrainState, shared: Mapping[str, Any], own: Mapping[str, Any]) -> tuple[TrainState, Metrics]:
        return step(state, {**shared, **own})

    jitted = jax.jit(jax.vmap(one_model, in_axes=(0, None, 0)))

    def vmapped_step(
        states: TrainState, shared_batch: Mapping[str, Any], per_model_batch: Mapping[str, Any]
    ) -> tuple[TrainState, Metrics]:
        overlap = sorted(set(shared_batch) & set(per_model_batch))
        if overlap:
            raise ValueError(f"expected disjoint shared and per-model batch keys, found both holding {overlap}")
        return jitted(states, shared_batch, per_model_batch)

    vmapped_step.jitted = jitted  # type: ignore[attr-defined]  # the compiled function, for lowering/cost analysis
    return vmapped_step


def stack_trees(trees: Sequence[Any]) -> Any:
    """Stack equally-shaped pytrees (e.g. N TrainStates) along a new leading axis, as the vmapped step takes them."""
    if not trees:
        raise ValueError("stack_trees: expected at least one tree, found none")
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


def unstack_tree(tree: Any, index: int) -> Any:
    """Model ``index`` of a stacked pytree (the inverse of ``stack_trees`` for one entry)."""
    return jax.tree_util.tree_map(lambda x: x[index], tree)


def _check_mesh(mesh: Mesh, axis_name: str) -> int:
    if tuple(mesh.axis_names) != (axis_name,):
        raise ValueError(f"expected a 1-D mesh with axis {axis_name!r}, found axes {tuple(mesh.axis_names)}")
    return mesh.devices.size


def _check_batch(batch: Any, num_devices: int) -> None:
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
) -> TrainStep:
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

    def train_step(state: TrainState, batch: Mapping[str, Any]) -> tuple[TrainState, Metrics]:
        _check_batch(batch, num_devices)
        return jitted(state, batch)

    train_step.jitted = jitted  # type: ignore[attr-defined]  # the compiled function, for lowering/cost analysis
    return train_step


def make_eval_step(loss_fn: LossFn, mesh: Mesh, *, axis_name: str = "data") -> EvalStep:
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

    def eval_step(state: TrainState, batch: Mapping[str, Any]) -> Metrics:
        _check_batch(batch, num_devices)
        return jitted(state, batch)

    eval_step.jitted = jitted  # type: ignore[attr-defined]  # the compiled function, for lowering/cost analysis
    return eval_step
