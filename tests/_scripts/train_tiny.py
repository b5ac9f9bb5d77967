"""Tiny direct-model training setup shared by the training tests and their subprocesses.

Also a script: ``python train_tiny.py --ckpt DIR --out PARAMS.npz ...`` trains
with checkpoints (resuming if DIR holds one), printing ``SAVED <step>`` after
each checkpoint is fully written and ``RESUMED <step>`` when it resumed, and
writes the final parameters to ``--out``. The crash-resume test kills it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

TINY = dict(conv_channels=(8, 16), lstm_hidden=16, head_hidden=8)
WINDOW = 16  # samples per window: 4 LSTM steps


def tiny_config(dropout: float = 0.0, mode: str = "last", output: str = "joints"):
    from emgjax.models.direct import DirectConfig

    return DirectConfig(dropout=dropout, mode=mode, output=output, **TINY)


def make_dataset(num_windows: int, seed: int = 0):
    """Deterministic windows: emg (N, 8, WINDOW), a learnable joint target, a non-uniform valid mask."""
    rng = np.random.default_rng(seed)
    emg = rng.normal(size=(num_windows, 8, WINDOW)).astype(np.float32)
    mixing = rng.normal(size=(8, 63)).astype(np.float32) * 0.3
    target = (np.abs(emg).mean(axis=2) @ mixing).reshape(num_windows, 21, 3).astype(np.float32)
    valid = rng.random(num_windows) > 0.3
    return {"emg": emg, "target": target, "valid": valid}


def global_batch():
    """A fixed global batch of 16 windows whose valid rows are spread unevenly over 4 shards (4, 1, 0, 3)."""
    batch = make_dataset(16, seed=5)
    batch["valid"] = np.array([1, 1, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 1], bool)
    return batch


class IndexLoader:
    """Minimal resumable loader: a seeded per-epoch permutation, batches by index.

    ``state()`` is the position after the batches consumed so far.
    """

    def __init__(self, data, batch_size: int, epoch: int, position: dict | None = None, seed: int = 0):
        self.data = data
        self.batch_size = batch_size
        self.epoch = epoch
        n = len(next(iter(data.values())))
        self.order = np.random.default_rng([seed, epoch]).permutation(n)
        self.num_batches = n // batch_size  # drop the remainder, like a training loader
        self.next_batch = 0
        if position is not None:
            if position.get("epoch") != epoch:
                raise ValueError(f"IndexLoader: expected a position in epoch {epoch}, found {position}")
            self.next_batch = int(position["next_batch"])

    def __len__(self):
        return self.num_batches - self.next_batch

    def __iter__(self):
        while self.next_batch < self.num_batches:
            rows = self.order[self.next_batch * self.batch_size : (self.next_batch + 1) * self.batch_size]
            self.next_batch += 1
            yield {k: v[rows] for k, v in self.data.items()}

    def state(self):
        return {"epoch": self.epoch, "next_batch": self.next_batch}


_VARIABLES = {}
# Subprocesses load the parent's initial variables from this file instead of
# recompiling the initialiser (random-number code compiles slowly on CPU).
INIT_ENV = "EMGJAX_TEST_TINY_INIT"


def initial_variables(seed: int = 0):
    """Initial variables of the tiny model, computed once per process (or read from $EMGJAX_TEST_TINY_INIT)."""
    import jax
    import jax.numpy as jnp

    from emgjax.models.direct import DirectModel

    if seed not in _VARIABLES:
        model = DirectModel(tiny_config())
        path = os.environ.get(INIT_ENV)
        if path and seed == 0:
            skeleton = jax.eval_shape(
                lambda: model.init({"params": jax.random.PRNGKey(0)}, jnp.zeros((1, 8, WINDOW)), train=False)
            )
            with np.load(path) as saved:
                leaves = [saved[f"arr_{i}"] for i in range(len(saved.files))]
            _VARIABLES[seed] = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(skeleton), leaves)
        else:
            _VARIABLES[seed] = jax.device_get(model.init_variables(jax.random.PRNGKey(seed), WINDOW))
    return _VARIABLES[seed]


def save_initial_variables(path) -> str:
    """Write ``initial_variables(0)`` for subprocesses; returns the path to put in $EMGJAX_TEST_TINY_INIT."""
    import jax

    np.savez(path, *jax.tree_util.tree_leaves(initial_variables(0)))
    return str(path)


_BUILDS = {}


def build(devices, *, dropout: float = 0.0, learning_rate: float = 1e-2, seed: int = 0):
    """(model, mesh, optimizer, replicated initial state, loss_fn, train_step, eval_step).

    Memoised per process: tests that share a setup also share its compiled steps.
    """

    from emgjax.models.direct import DirectModel
    from emgjax.recipes.direct import make_direct_loss_fn
    from emgjax.train import (
        OptimConfig,
        create_train_state,
        make_data_mesh,
        make_eval_step,
        make_optimizer,
        make_train_step,
        replicate,
    )

    key = (tuple(d.id for d in devices), dropout, learning_rate, seed)
    if key not in _BUILDS:
        model = DirectModel(tiny_config(dropout), bn_axis_name="data")
        variables = initial_variables(seed)  # dropout does not change the parameter tree
        optimizer = make_optimizer(OptimConfig(learning_rate=learning_rate, grad_clip_norm=1.0))
        mesh = make_data_mesh(devices)
        state = replicate(create_train_state(variables["params"], optimizer, seed + 1, variables["batch_stats"]), mesh)
        loss_fn = make_direct_loss_fn(model, scale=10.0)
        _BUILDS[key] = (
            model,
            mesh,
            optimizer,
            state,
            loss_fn,
            make_train_step(loss_fn, optimizer, mesh),
            make_eval_step(loss_fn, mesh),
        )
    return _BUILDS[key]


_REFERENCE = {}


def single_device_reference(steps: int = 3):
    """``steps`` updates of the tiny model on ``global_batch()`` on one device.

    Returns (state, metrics per step, eval metrics).
    """
    import jax

    from emgjax.train import shard_batch

    if steps not in _REFERENCE:
        _, mesh, _, state, _, train_step, eval_step = build(jax.devices()[:1])
        sharded = shard_batch(global_batch(), mesh)
        history = []
        for _ in range(steps):
            state, metrics = train_step(state, sharded)
            history.append(jax.device_get(metrics))
        _REFERENCE[steps] = (jax.device_get(state), history, jax.device_get(eval_step(state, sharded)))
    return _REFERENCE[steps]


def flat_params(params) -> dict[str, np.ndarray]:
    import jax

    from emgjax.train.optim import path_names

    return {"/".join(path_names(p)): np.asarray(leaf) for p, leaf in jax.tree_util.tree_leaves_with_path(params)}


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--logs", default=None)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--every", type=int, default=2)
    parser.add_argument("--windows", type=int, default=24)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--slow-after", type=int, default=None, help="sleep 0.5 s per step after this step")
    args = parser.parse_args(argv)

    import jax

    from emgjax.train import Checkpointer, fit

    _, mesh, _, state, _, train_step, _ = build(jax.devices(), dropout=0.2)
    data = make_dataset(args.windows)

    def on_step(step, metrics):
        if args.slow_after is not None and step > args.slow_after:
            time.sleep(0.5)  # give the parent time to kill us between checkpoints

    def on_checkpoint(step):
        print(f"SAVED {step}", flush=True)

    with Checkpointer(args.ckpt, max_to_keep=2) as checkpointer:
        result = fit(
            state,
            train_step,
            lambda epoch, position: IndexLoader(data, args.batch, epoch, position),
            mesh=mesh,
            num_epochs=args.epochs,
            checkpointer=checkpointer,
            checkpoint_every_steps=args.every,
            extra={"normalisation": {"mean": [0.0] * 8, "std": [1.0] * 8}},
            log_dir=args.logs,
            progress=False,
            verbose=False,
            on_step=on_step,
            on_checkpoint=on_checkpoint,
        )
    if result.resumed_from_step is not None:
        print(f"RESUMED {result.resumed_from_step}", flush=True)
    np.savez(args.out, step=np.asarray(result.state.step), **flat_params(result.state.params))
    print("DONE", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
