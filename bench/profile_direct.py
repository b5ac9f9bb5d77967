"""Where the direct joints model's train step spends its time, JAX beside its PyTorch twin.

    python bench/profile_direct.py                  # batch 64, 50-sample windows, 30 rounds
    python bench/profile_direct.py --rounds 60 --batch 64

Times each part on its own (jitted separately, so the parts add up to more than
the fused step; the split says which part dominates), interleaving JAX and
PyTorch round by round and reporting medians in ms:

- ``step``: the whole train step as ``bench/train_step.py`` runs it
  (``make_train_step``: forward, backward, Adam + BatchNorm statistics);
- ``fwd+bwd``: ``value_and_grad`` of the loss only (no optimiser);
- ``convs fwd+bwd``: the two Conv1d + BatchNorm + ReLU + max-pool blocks;
- ``lstm fwd`` / ``lstm fwd+bwd``: the 2-layer LSTM over the 12 steps;
- ``adam``: the optimiser update alone (clip + Adam on ~1 M parameters);
- ``dispatch``: a jitted no-op over the same train state (per-call overhead of
  passing ~100 buffers in and out);
- ``infer b1``: batch-1 inference on one 100 ms window (50 samples).

Prints the load average beside the figures: on a shared machine they move.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "bench"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))


def _timer(
    fn: Callable[[], object], block: Callable[[object], object], inner: int
) -> Callable[[], tuple[float, float]]:
    """A function timing ``inner`` calls of ``fn``: (wall ms, process CPU ms) per call."""

    def run() -> tuple[float, float]:
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(inner):
            out = fn()
        block(out)
        return 1000 * (time.perf_counter() - started) / inner, 1000 * (time.process_time() - cpu) / inner

    return run


def jax_parts(batch: int, window: int, inner: int) -> dict[str, Callable[[], tuple[float, float]]]:
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import optax

    from emgjax.models.direct import DirectConfig, DirectModel
    from emgjax.models.lstm import LSTMLayerWeights, lstm_sequence
    from emgjax.recipes.direct import make_direct_loss_fn
    from emgjax.train import (
        OptimConfig,
        create_train_state,
        make_data_mesh,
        make_optimizer,
        make_train_step,
        replicate,
        shard_batch,
    )

    rng = np.random.default_rng(0)
    data = {
        "emg": rng.normal(size=(batch, 8, window)).astype(np.float32),
        "target": rng.normal(size=(batch, 21, 3)).astype(np.float32),
        "valid": np.ones(batch, bool),
    }
    cfg = DirectConfig()
    mesh = make_data_mesh(jax.devices()[:1])
    optimizer = make_optimizer(OptimConfig(learning_rate=1e-3))
    variables = DirectModel(cfg).init_variables(jax.random.key(0), window)
    loss_fn = make_direct_loss_fn(DirectModel(cfg, bn_axis_name="data"))
    local_loss = make_direct_loss_fn(DirectModel(cfg), axis_name=None)
    state = replicate(create_train_state(variables["params"], optimizer, 1, variables.get("batch_stats")), mesh)
    step = make_train_step(loss_fn, optimizer, mesh, donate=True)
    device_batch = shard_batch(data, mesh)
    holder = {"state": state}

    def run_step():
        holder["state"], metrics = step.jitted(holder["state"], device_batch)
        return metrics

    params, stats = variables["params"], variables["batch_stats"]
    key = jax.random.key(1)
    grad = jax.jit(jax.value_and_grad(lambda p, b: local_loss(p, stats, b, key, True), has_aux=True))
    batch_j = {k: jnp.asarray(v) for k, v in data.items()}

    model = DirectModel(cfg)

    class Convs(nn.Module):
        @nn.compact
        def __call__(self, emg):
            x = jnp.swapaxes(emg, 1, 2)
            for index, width in enumerate(cfg.conv_channels):
                x = nn.Conv(width, (cfg.kernel_size,), padding="SAME", use_bias=False, name=f"conv_{index}")(x)
                x = nn.BatchNorm(use_running_average=False, momentum=0.9, epsilon=1e-5, name=f"bn_{index}")(x)
                x = nn.max_pool(nn.relu(x), (cfg.pool_size,), strides=(cfg.pool_size,))
            return x

    conv_vars = Convs().init(jax.random.key(2), jnp.asarray(data["emg"]))

    def convs(p, emg):
        out, _ = Convs().apply({"params": p, "batch_stats": conv_vars["batch_stats"]}, emg, mutable=["batch_stats"])
        return jnp.sum(out)

    conv_grad = jax.jit(jax.grad(convs))
    lstm_layers = [LSTMLayerWeights(**params["lstm"][f"layer_{n}"]) for n in range(cfg.lstm_layers)]
    seq = jnp.asarray(rng.normal(size=(batch, window // 4, cfg.conv_channels[-1])).astype(np.float32))
    lstm_fwd = jax.jit(lambda w, x: lstm_sequence(w, x)[0][:, -1])
    lstm_grad = jax.jit(jax.grad(lambda w, x: jnp.sum(lstm_sequence(w, x)[0][:, -1]), argnums=(0, 1)))
    grads = jax.tree_util.tree_map(jnp.ones_like, params)
    opt_state = optimizer.init(params)

    def adam(p, s, g):
        updates, s = optimizer.update(g, s, p)
        return optax.apply_updates(p, updates), s

    adam_j = jax.jit(adam)
    noop = jax.jit(lambda s, b: (s, {"loss": jnp.zeros(())}), donate_argnums=(0,))
    holder2 = {"state": replicate(create_train_state(params, optimizer, 1, stats), mesh)}

    def run_noop():
        holder2["state"], metrics = noop(holder2["state"], device_batch)
        return metrics

    infer = jax.jit(lambda v, emg: model.apply(v, emg, train=False)[0])
    one = jnp.asarray(data["emg"][:1])
    block = jax.block_until_ready
    parts = {
        "step": _timer(run_step, block, inner),
        "fwd+bwd": _timer(lambda: grad(params, batch_j), block, inner),
        "convs fwd+bwd": _timer(lambda: conv_grad(conv_vars["params"], batch_j["emg"]), block, inner),
        "lstm fwd": _timer(lambda: lstm_fwd(lstm_layers, seq), block, inner),
        "lstm fwd+bwd": _timer(lambda: lstm_grad(lstm_layers, seq), block, inner),
        "adam": _timer(lambda: adam_j(params, opt_state, grads), block, inner),
        "dispatch": _timer(run_noop, block, inner),
        "infer b1": _timer(lambda: infer(variables, one), block, inner * 20),
    }
    for run in parts.values():  # compile and warm up
        run()
        run()
    return parts


def torch_parts(batch: int, window: int, inner: int) -> dict[str, Callable[[], tuple[float, float]]]:
    import torch
    from torch_direct_reference import TorchDirectModel

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    emg = torch.from_numpy(rng.normal(size=(batch, 8, window)).astype(np.float32))
    target = torch.from_numpy(rng.normal(size=(batch, 21, 3)).astype(np.float32))
    net = TorchDirectModel().train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = ((net(emg) - target) ** 2).mean()
        loss.backward()
        optimizer.step()
        return loss

    def fwd_bwd():
        net.zero_grad(set_to_none=True)
        loss = ((net(emg) - target) ** 2).mean()
        loss.backward()
        return loss

    def convs():
        net.zero_grad(set_to_none=True)
        out = net.conv(emg).sum()
        out.backward()
        return out

    seq = torch.from_numpy(rng.normal(size=(batch, window // 4, 128)).astype(np.float32)).requires_grad_(True)

    def lstm_fwd():
        with torch.no_grad():
            return net.lstm(seq)[0][:, -1]

    def lstm_grad():
        net.zero_grad(set_to_none=True)
        out = net.lstm(seq)[0][:, -1].sum()
        out.backward()
        return out

    for p in net.parameters():
        p.grad = torch.ones_like(p)

    def adam():
        optimizer.step()

    one = emg[:1]
    evalnet = TorchDirectModel().eval()

    def infer():
        with torch.no_grad():
            return evalnet(one)

    def none(_):
        return None

    parts = {
        "step": _timer(step, none, inner),
        "fwd+bwd": _timer(fwd_bwd, none, inner),
        "convs fwd+bwd": _timer(convs, none, inner),
        "lstm fwd": _timer(lstm_fwd, none, inner),
        "lstm fwd+bwd": _timer(lstm_grad, none, inner),
        "adam": _timer(adam, none, inner),
        "infer b1": _timer(infer, none, inner * 20),
    }
    for run in parts.values():
        run()
    return parts


def _matmul_gflops(size: int = 1024) -> float:
    """This machine's float32 matmul rate right now (numpy, best of 3), the yardstick for the parts."""
    a = np.ones((size, size), np.float32)
    best = min(_timer(lambda: a @ a, lambda _: None, 3)()[0] for _ in range(3))
    return 2 * size**3 / best / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=30, help="interleaved rounds; medians are reported")
    parser.add_argument("--inner", type=int, default=5, help="calls per timing (batch-1 inference: 20x this)")
    parser.add_argument("--skip-torch", action="store_true")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    jparts = jax_parts(args.batch, args.window, args.inner)
    tparts = {} if args.skip_torch else torch_parts(args.batch, args.window, args.inner)
    times: dict[tuple[str, str], list[tuple[float, float]]] = {}
    peak: list[float] = []
    for _ in range(args.rounds):
        peak.append(_matmul_gflops())
        for side, parts in (("jax", jparts), ("torch", tparts)):
            for name, run in parts.items():
                times.setdefault((side, name), []).append(run())
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f}; batch {args.batch}, window {args.window}, {args.rounds} rounds")
    print(f"float32 matmul (1024^2, numpy): median {statistics.median(peak):.0f} GFLOP/s, best {max(peak):.0f}")
    print("medians (best) in ms; CPU = process CPU time per call (both threads), steadier than wall on a busy machine")
    print(f"{'part':<15}{'JAX wall':>17}{'JAX CPU':>9}{'PyTorch wall':>19}{'PyTorch CPU':>12}{'speed':>8}")

    def cell(values: list[tuple[float, float]]) -> tuple[float, float, float]:
        return (
            statistics.median(v[0] for v in values),
            min(v[0] for v in values),
            statistics.median(v[1] for v in values),
        )

    for name in jparts:
        jw, jb, jc = cell(times[("jax", name)])
        line = f"{name:<15}{jw:>9.3f} ({jb:6.3f}){jc:>9.3f}"
        if ("torch", name) in times:
            tw, tb, tc = cell(times[("torch", name)])
            line += f"{tw:>11.3f} ({tb:6.3f}){tc:>12.3f}{tw / jw:>7.2f}x"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
