"""Device mesh, batch sharding and multi-process start-up for data parallelism.

One 1-D mesh axis ("data") spans every device of every process. A batch is
split along its first axis over that mesh; the training state is replicated.
In a multi-process run each process passes only *its own* rows (its share of
the global batch, e.g. from a loader that shards by process) and
``shard_batch`` assembles the global array without moving data between hosts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = [
    "DATA_AXIS",
    "make_data_mesh",
    "batch_sharding",
    "shard_batch",
    "replicate",
    "pad_batch",
    "initialize_distributed",
    "initialize_distributed_from_environment",
]

DATA_AXIS = "data"


def make_data_mesh(devices: Sequence[jax.Device] | None = None, *, axis_name: str = DATA_AXIS) -> Mesh:
    """A 1-D mesh over ``devices`` (default: all devices of all processes)."""
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("make_data_mesh: expected at least one device, found none")
    return Mesh(np.array(devices), (axis_name,))


def _axis(mesh: Mesh) -> str:
    if len(mesh.axis_names) != 1:
        raise ValueError(f"expected a 1-D data mesh, found axes {mesh.axis_names}")
    return mesh.axis_names[0]


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Sharding of a batch: first axis split over the mesh axis."""
    return NamedSharding(mesh, PartitionSpec(_axis(mesh)))


def shard_batch(batch: Mapping[str, Any], mesh: Mesh) -> dict[str, jax.Array]:
    """Put this process's rows of a batch onto its devices as global arrays.

    batch: dict of arrays, each (B_local, ...) with the same B_local, which
    must be a multiple of this process's device count in ``mesh``. Returns
    arrays of global shape (B_local * num_processes, ...) sharded along axis 0,
    built with ``jax.make_array_from_process_local_data`` (no cross-host copy).
    """
    if not isinstance(batch, Mapping) or not batch:
        raise ValueError(f"shard_batch: expected a non-empty dict of arrays, found {type(batch).__name__}")
    sharding = batch_sharding(mesh)
    local_devices = len(sharding.addressable_devices)
    sizes = {}
    out = {}
    for key, value in batch.items():
        array = np.asarray(value)
        if array.dtype == object or array.ndim == 0:
            raise ValueError(
                f"shard_batch: expected every entry to be an array with a batch axis, found {key!r} "
                f"with dtype {array.dtype} and shape {array.shape}"
            )
        sizes[key] = array.shape[0]
        if array.shape[0] % local_devices:
            raise ValueError(
                f"shard_batch: expected the local batch size to be a multiple of {local_devices} local devices, "
                f"found {key!r} with {array.shape[0]} rows (pad with pad_batch or drop the remainder)"
            )
        out[key] = jax.make_array_from_process_local_data(sharding, array)
    if len(set(sizes.values())) > 1:
        raise ValueError(f"shard_batch: expected the same batch size for every entry, found {sizes}")
    return out


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Copy a pytree onto every device of the mesh (replicated sharding).

    Works across processes: every process must pass the same values (e.g. the
    same seed-initialised parameters); each builds only its addressable shards.
    """
    sharding = NamedSharding(mesh, PartitionSpec())

    def put(leaf: Any) -> jax.Array:
        host = np.asarray(leaf)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree_util.tree_map(put, tree)


def pad_batch(
    batch: Mapping[str, Any], multiple: int, *, mask_keys: Sequence[str] = ("valid", "no_ik_failure")
) -> tuple[dict[str, Any], int]:
    """Pad every entry along axis 0 to a multiple of ``multiple`` rows.

    Padded rows are zeros, and the entries named in ``mask_keys`` are False
    there, so masked losses and metrics ignore them (evaluation of a final
    partial batch). Returns ``(padded_batch, num_real_rows)``.
    """
    rows = {key: np.shape(value)[0] for key, value in batch.items()}
    if len(set(rows.values())) != 1:
        raise ValueError(f"pad_batch: expected the same batch size for every entry, found {rows}")
    n = next(iter(rows.values()))
    extra = (-n) % multiple
    if extra == 0:
        return dict(batch), n
    if not any(key in batch for key in mask_keys):
        raise ValueError(
            f"pad_batch: expected a mask entry among {list(mask_keys)} to hide {extra} padded rows, "
            f"found keys {sorted(batch)}"
        )
    padded = {}
    for key, value in batch.items():
        value = np.asarray(value)
        filler = np.zeros((extra, *value.shape[1:]), value.dtype)
        padded[key] = np.concatenate([value, filler], axis=0)
    return padded, n


def initialize_distributed(coordinator_address: str, num_processes: int, process_id: int, **kwargs: Any) -> None:
    """Join a multi-process JAX run (thin wrapper over ``jax.distributed.initialize``).

    Call before any other JAX call in the process. ``coordinator_address`` is
    "host:port" of process 0. Raises ValueError on inconsistent arguments and
    RuntimeError naming the coordinator if the connection fails.
    """
    if not isinstance(coordinator_address, str) or ":" not in coordinator_address:
        raise ValueError(
            f"initialize_distributed: expected coordinator_address 'host:port', found {coordinator_address!r}"
        )
    if num_processes < 1:
        raise ValueError(f"initialize_distributed: expected num_processes >= 1, found {num_processes}")
    if not 0 <= process_id < num_processes:
        raise ValueError(f"initialize_distributed: expected 0 <= process_id < {num_processes}, found {process_id}")
    try:
        jax.distributed.initialize(
            coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id, **kwargs
        )
    except Exception as err:
        raise RuntimeError(
            f"initialize_distributed: process {process_id}/{num_processes} could not join the coordinator at "
            f"{coordinator_address}: {err}"
        ) from err


def initialize_distributed_from_environment(environ: Mapping[str, str] | None = None) -> None:
    """Join the multi-process run this process was launched into; call before any other JAX call.

    With ``JAX_COORDINATOR_ADDRESS`` ("host:port" of process 0), ``JAX_NUM_PROCESSES`` and
    ``JAX_PROCESS_ID`` set, joins through ``initialize_distributed``; otherwise lets
    ``jax.distributed.initialize()`` detect the cluster itself (SLURM, Open MPI, Cloud TPU, ...).
    Raises ValueError naming the variable when only some of the three are set or one is not an integer,
    RuntimeError when neither way finds the run.
    """
    env = os.environ if environ is None else environ
    names = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")
    given = [name for name in names if env.get(name)]
    if given and len(given) < len(names):
        missing = [name for name in names if name not in given]
        raise ValueError(f"distributed run: expected {', '.join(names)} all set, found {', '.join(missing)} unset")
    if given:
        numbers = {}
        for name in names[1:]:
            try:
                numbers[name] = int(env[name])
            except ValueError:
                raise ValueError(f"distributed run: expected {name} to be an integer, found {env[name]!r}") from None
        initialize_distributed(env[names[0]], numbers[names[1]], numbers[names[2]])
        return
    try:
        jax.distributed.initialize()
    except Exception as err:
        raise RuntimeError(
            "distributed run: found no cluster to join (set JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and "
            f"JAX_PROCESS_ID, or launch under SLURM / Open MPI): {err}"
        ) from err
