"""One process of a two-process data-parallel run on localhost (used by tests/test_distributed.py).

    python train_distributed.py --port P --process-id I --out OUT.npz [--steps 3]

Each process joins the coordinator at 127.0.0.1:P (with ``--from-environment``: as
the JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID variables say), feeds only its own half of
the global batch (``train_tiny.global_batch``) and trains the tiny direct
model; it writes its final parameters and the per-step losses to OUT.npz.
The parent sets XLA_FLAGS so each process has 2 CPU devices.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--process-id", type=int, required=True)
    parser.add_argument("--num-processes", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--out", required=True)
    parser.add_argument(
        "--from-environment", action="store_true", help="join via JAX_COORDINATOR_ADDRESS/NUM_PROCESSES/PROCESS_ID"
    )
    args = parser.parse_args()

    from emgjax.train import initialize_distributed, initialize_distributed_from_environment, shard_batch

    if args.from_environment:
        initialize_distributed_from_environment()
    else:
        initialize_distributed(f"127.0.0.1:{args.port}", args.num_processes, args.process_id)

    import jax
    import train_tiny

    assert jax.process_count() == args.num_processes, jax.process_count()
    _, mesh, _, state, _, train_step, _ = train_tiny.build(jax.devices())
    batch = train_tiny.global_batch()
    rows = len(batch["emg"]) // args.num_processes
    mine = {k: v[args.process_id * rows : (args.process_id + 1) * rows] for k, v in batch.items()}
    sharded = shard_batch(mine, mesh)  # global (16, ...) arrays built from each process's 8 rows
    assert sharded["emg"].shape[0] == len(batch["emg"])
    losses = []
    for _ in range(args.steps):
        state, metrics = train_step(state, sharded)
        losses.append(float(np.asarray(metrics["loss"].addressable_data(0))))
    local = jax.tree_util.tree_map(
        lambda x: np.asarray(x.addressable_data(0)), {"params": state.params, "batch_stats": state.batch_stats}
    )
    np.savez(args.out, losses=np.array(losses), **train_tiny.flat_params(local))
    print(
        f"process {args.process_id}: devices {jax.device_count()} local {jax.local_device_count()} losses {losses}",
        flush=True,
    )


if __name__ == "__main__":
    main()
