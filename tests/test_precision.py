"""The bfloat16 precision option (direct models and emg2pose pose modules): close to float32, float32
outputs and state, gradients close to float32's, and clear errors."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_models import small_state_model

from emgjax.models import configs as C
from emgjax.models import pose_modules as pm
from emgjax.models.direct import DirectConfig, DirectModel

TINY = DirectConfig(conv_channels=(4, 8), lstm_hidden=8, head_hidden=8, output="angles")


def test_bfloat16_matches_float32_within_bfloat16_rounding():
    emg = np.random.default_rng(0).normal(size=(2, 8, 16)).astype(np.float32)
    variables = DirectModel(TINY).init_variables(jax.random.key(0), 16)
    full, _ = DirectModel(TINY).apply(variables, emg)
    half, carry = DirectModel(dataclasses.replace(TINY, compute_dtype="bfloat16")).apply(variables, emg)
    assert half.dtype == np.float32 and carry.c.dtype == np.float32
    # bfloat16 keeps 8 mantissa bits (relative rounding 2^-8): differences of that order, not zero.
    difference = np.abs(np.asarray(half) - np.asarray(full))
    assert 0.0 < difference.max() < 2e-2 * max(1.0, float(np.abs(full).max()))


def test_unknown_compute_dtype_is_refused():
    with pytest.raises(ValueError, match="compute_dtype: expected one of"):
        DirectConfig(compute_dtype="float16")


def test_emg2pose_bfloat16_is_close_to_float32_in_values_and_gradients():
    """TDS network, feature projection and rollout on bfloat16 operands: the poses and every parameter
    gradient stay within bfloat16 rounding of float32's (and differ from them: the option is used)."""
    full = small_state_model("vemg2pose", "lstm")
    half = dataclasses.replace(full, compute_dtype="bfloat16")
    variables = pm.init_variables(full, jax.random.PRNGKey(3))
    rng = np.random.default_rng(4)
    batch, time = 2, full.min_window_length() + 300
    emg = jnp.asarray(rng.normal(size=(batch, 16, time)).astype(np.float32))
    angles = jnp.asarray(rng.normal(size=(batch, 20, time)).astype(np.float32))
    mask = jnp.ones((batch, time), bool)

    def value_and_grad(config):
        def loss(params):
            pred, target, _ = pm.pose_forward(config, {**variables, "params": params}, emg, angles, mask, True)
            return jnp.mean(jnp.abs(pred - target)), pred

        return jax.jit(jax.value_and_grad(loss, has_aux=True))(variables["params"])

    (loss_full, pred_full), grads_full = value_and_grad(full)
    (loss_half, pred_half), grads_half = value_and_grad(half)
    assert pred_half.dtype == jnp.float32
    difference = np.abs(np.asarray(pred_half) - np.asarray(pred_full))
    assert 0.0 < difference.max() < 2e-2 * max(1.0, float(np.abs(pred_full).max()))
    assert abs(float(loss_half) - float(loss_full)) < 1e-2 * float(loss_full)
    leaves_full, leaves_half = jax.tree_util.tree_leaves(grads_full), jax.tree_util.tree_leaves(grads_half)
    squared_error = sum(float(jnp.sum((a - b) ** 2)) for a, b in zip(leaves_full, leaves_half, strict=True))
    squared_norm = sum(float(jnp.sum(a**2)) for a in leaves_full)
    assert 0.0 < np.sqrt(squared_error / squared_norm) < 0.1
    assert all(g.dtype == jnp.float32 for g in leaves_half)


def test_emg2pose_compute_dtype_is_checked():
    config = small_state_model("state", "lstm")
    with pytest.raises(ValueError, match="compute_dtype: expected one of"):
        dataclasses.replace(config, compute_dtype="float16")
    neuropose = C.PoseModelConfig("pose", C.neuropose_network(), None)
    with pytest.raises(ValueError, match="supported for TDS networks, found NeuroPoseConfig"):
        dataclasses.replace(neuropose, compute_dtype="bfloat16")
