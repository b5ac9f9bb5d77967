"""emgjax.models.hoisted_scan: the same values as `lax.scan`, and autodiff's gradients with the weight
gradients formed after the loop; the pose rollout that uses it, with and without hoisting."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from test_models import small_state_model

from emgjax.models import pose_modules as pm
from emgjax.models.hoisted_scan import scan_hoisted


class Weights(NamedTuple):
    recurrent: jax.Array  # (H, H): a planned product
    feedback: jax.Array  # (H, H): a planned product, and also used elementwise
    bias: jax.Array  # (H,): not a matrix
    scale: float  # a Python float leaf


def _step(weights: Weights, carry, x_t, dot):
    h, total = carry
    # A product with the transpose is not a leaf: it stays with plain autodiff.
    z = dot(h, weights.recurrent) + dot(jnp.tanh(h), weights.feedback) + x_t + jnp.dot(h, weights.recurrent.T)
    h = jnp.tanh(z * weights.scale + weights.bias + weights.feedback[0])
    return (h, total + jnp.sum(h)), h * h


def _plain(weights, carry, xs):
    return lax.scan(lambda c, x: _step(weights, c, x, jnp.dot), carry, xs)


def _problem(batch=3, hidden=5, steps=7, seed=0):
    rng = np.random.default_rng(seed)

    def normal(*shape):
        return jnp.asarray(rng.normal(size=shape).astype(np.float32) * 0.5)

    weights = Weights(normal(hidden, hidden), normal(hidden, hidden), normal(hidden), 0.7)
    carry = (normal(batch, hidden), jnp.zeros(()))
    return weights, carry, normal(steps, batch, hidden)


def test_values_are_those_of_lax_scan():
    weights, carry, xs = _problem()
    (h, total), ys = scan_hoisted(_step, weights, carry, xs)
    (h_ref, total_ref), ys_ref = _plain(weights, carry, xs)
    np.testing.assert_array_equal(np.asarray(ys), np.asarray(ys_ref))
    np.testing.assert_array_equal(np.asarray(h), np.asarray(h_ref))
    assert float(total) == float(total_ref)


@pytest.mark.parametrize("hoist", [True, False])
def test_gradients_match_autodiff_for_weights_carry_and_inputs(hoist):
    weights, carry, xs = _problem()
    arrays = (weights.recurrent, weights.feedback, weights.bias)

    def loss(run, arrays, carry, xs):
        w = Weights(*arrays, weights.scale)
        (h, total), ys = run(w, carry, xs)
        return jnp.sum(ys * jnp.arange(ys.size).reshape(ys.shape)) + jnp.sum(h) + total

    def hoisted(w, c, x):
        return scan_hoisted(_step, w, c, x, hoist=hoist)

    got = jax.jit(jax.grad(lambda *a: loss(hoisted, *a), argnums=(0, 1, 2)))(arrays, carry, xs)
    want = jax.grad(lambda *a: loss(_plain, *a), argnums=(0, 1, 2))(arrays, carry, xs)
    for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want), strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=2e-5, atol=2e-5)
    # The gradient is not trivially zero (a test that could not fail otherwise).
    assert float(jnp.abs(got[0][0]).max()) > 1e-3


def test_a_step_without_planned_products_is_a_plain_scan():
    weights, carry, xs = _problem()

    def step(w, c, x, dot):
        return _step(w, c, x, lambda a, m: jnp.dot(a, m + 0.0))  # never the leaf itself

    out = scan_hoisted(step, weights, carry, xs)
    ref = lax.scan(lambda c, x: step(weights, c, x, None), carry, xs)
    np.testing.assert_array_equal(np.asarray(out[1]), np.asarray(ref[1]))


@pytest.mark.parametrize(("kind", "decoder"), [("vemg2pose", "lstm"), ("state", "mlp")])
def test_pose_rollout_gradients_are_the_same_hoisted_or_not(kind, decoder, monkeypatch):
    """The windowed pose module's training gradients (every parameter) with the decoder's weight
    gradients hoisted out of the rollout (batch <= HOISTED_MAX_BATCH) equal those of plain autodiff."""
    config = small_state_model(kind, decoder)
    variables = pm.init_variables(config, jax.random.PRNGKey(1))
    rng = np.random.default_rng(2)
    batch, time = 2, config.min_window_length() + 400
    emg = jnp.asarray(rng.normal(size=(batch, 16, time)).astype(np.float32))
    angles = jnp.asarray(rng.normal(size=(batch, 20, time)).astype(np.float32))
    mask = jnp.ones((batch, time), bool)

    def loss(params):
        pred, target, m = pm.pose_forward(config, {**variables, "params": params}, emg, angles, mask, True)
        return jnp.mean(jnp.abs(pred - target) * m[:, None])

    def uses_hoisting() -> bool:
        return "custom_vjp_call" in str(jax.make_jaxpr(functools.partial(loss))(variables["params"]))  # a fresh trace

    assert uses_hoisting()
    hoisted = jax.jit(jax.value_and_grad(loss))(variables["params"])
    monkeypatch.setattr(pm, "HOISTED_MAX_BATCH", 0)
    assert not uses_hoisting()
    plain = jax.jit(jax.value_and_grad(loss))(variables["params"])
    assert float(hoisted[0]) == float(plain[0])
    decoder_grads = jax.tree_util.tree_leaves(hoisted[1]["decoder"])
    assert max(float(jnp.abs(g).max()) for g in decoder_grads) > 0.0
    for g, w in zip(jax.tree_util.tree_leaves(hoisted[1]), jax.tree_util.tree_leaves(plain[1]), strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-4, atol=1e-6)
