"""The LSTM's hand-written backward (`jax.custom_vjp`) equals autodiff of the same forward."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emgjax.models import lstm as L


def _inputs(steps: int = 5, batch: int = 3, features: int = 4, hidden: int = 6):
    rng = np.random.default_rng(0)

    def uniform(*shape):
        return jnp.asarray(rng.uniform(-0.5, 0.5, shape).astype(np.float32))

    weights = L.LSTMLayerWeights(
        uniform(features, 4 * hidden), uniform(hidden, 4 * hidden), uniform(4 * hidden), uniform(4 * hidden)
    )
    return weights, uniform(steps, batch, features), uniform(batch, hidden), uniform(batch, hidden)


@pytest.mark.parametrize("unroll", [1, True])
def test_layer_gradients_match_autodiff(unroll):
    # Cotangents reach every output: the whole sequence, the final h and the final c.
    def loss_hand(weights, x, h0, c0):
        outputs, h, c = L.lstm_layer_scan(weights, x, h0, c0, unroll)
        return jnp.sum(outputs**2) + jnp.sum(jnp.sin(h)) + jnp.sum(c**3)

    def loss_autodiff(weights, x, h0, c0):
        outputs, cells, _ = L._layer_forward(weights, x, h0, c0, unroll)
        return jnp.sum(outputs**2) + jnp.sum(jnp.sin(outputs[-1])) + jnp.sum(cells[-1] ** 3)

    args = _inputs()
    assert float(loss_hand(*args)) == float(loss_autodiff(*args))
    hand = jax.grad(loss_hand, argnums=(0, 1, 2, 3))(*args)
    auto = jax.grad(loss_autodiff, argnums=(0, 1, 2, 3))(*args)
    for got, want in zip(jax.tree_util.tree_leaves(hand), jax.tree_util.tree_leaves(auto), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_unrolled_sequence_equals_rolled_loop():
    weights, x, h0, c0 = _inputs(steps=4)
    # Second layer: input H, so its kernel_ih has kernel_hh's shape (H, 4H).
    layers = [weights, weights._replace(kernel_ih=weights.kernel_hh)]
    carry = L.LSTMCarry(jnp.stack([h0, h0]), jnp.stack([c0, c0]))
    batch_first = jnp.swapaxes(x, 0, 1)
    rolled, rolled_carry = L.lstm_sequence(layers, batch_first, carry, unroll=1)
    unrolled, unrolled_carry = L.lstm_sequence(layers, batch_first, carry)  # 4 steps: unrolled by default
    np.testing.assert_allclose(unrolled, rolled, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(unrolled_carry.c, rolled_carry.c, rtol=1e-6, atol=1e-6)
    assert L.scan_unroll(L.FULL_UNROLL_MAX_STEPS) is True
    assert L.scan_unroll(L.FULL_UNROLL_MAX_STEPS + 1) == 1
    assert L.scan_unroll(100, 4) == 4
