"""Direct Conv1D + LSTM models: shapes, parameter count, LSTM semantics, streaming helpers, errors."""

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emgjax.models.direct import (
    DirectConfig,
    DirectModel,
    count_params,
    lookahead_samples,
    output_steps,
    sequence_sample_index,
)
from emgjax.models.lstm import LSTM, LSTMCarry
from emgjax.recipes.direct import make_direct_loss_fn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "_scripts"))
import train_tiny

TINY = train_tiny.TINY


def _abstract_variables(config, num_samples=50):
    """Variable shapes without compiling or running anything."""
    model = DirectModel(config)
    return jax.eval_shape(
        lambda: model.init(
            {"params": jax.random.PRNGKey(0)}, jnp.zeros((2, config.in_channels, num_samples)), train=False
        )
    )


@pytest.mark.parametrize("output", ["joints", "mano"])
def test_default_parameter_count_is_about_one_million(output):
    variables = _abstract_variables(DirectConfig(output=output))
    n = count_params(variables["params"])
    # Conv 8*64*5 + 64*128*5, BN 2*(64+128), LSTM 4*256*(128+256+2) + 4*256*(256+256+2),
    # head 256*128+128 + 128*P+P with P = 63 or 45.
    head_out = 128 * 63 + 63 if output == "joints" else 128 * 45 + 45
    expected = 8 * 64 * 5 + 64 * 128 * 5 + 2 * (64 + 128) + 1024 * 386 + 1024 * 514 + 256 * 128 + 128 + head_out
    assert n == expected
    assert 0.95e6 < n < 1.05e6
    assert set(variables["batch_stats"]) == {"bn_0", "bn_1"}


@pytest.mark.parametrize(
    ("output", "mode", "expected"),
    [
        ("joints", "last", (2, 21, 3)),
        ("mano", "last", (2, 45)),
        ("joints", "sequence", (2, 21, 3, 12)),
        ("mano", "sequence", (2, 45, 12)),
        ("angles", "last", (2, 20)),
        ("angles", "sequence", (2, 20, 12)),
    ],
)
def test_output_shapes(output, mode, expected):
    config = DirectConfig(output=output, mode=mode)
    model = DirectModel(config)
    variables = _abstract_variables(config)
    pose, (h, c) = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, jnp.zeros((2, 8, 50)))
    assert pose.shape == expected
    assert h.shape == c.shape == (2, 2, 256)
    assert output_steps(50, config) == 12


@pytest.fixture(scope="module")
def tiny_sequence():
    config = DirectConfig(mode="sequence", **TINY)
    model = DirectModel(config)
    variables = train_tiny.initial_variables(0)  # the tree does not depend on mode, dropout or T
    apply = jax.jit(lambda v, x: model.apply(v, x, train=False)[0])
    return config, variables, apply


def test_sequence_last_step_equals_last_mode(tiny_sequence):
    _config, variables, apply = tiny_sequence
    emg = jax.random.normal(jax.random.PRNGKey(2), (3, 8, 32))
    seq = apply(variables, emg)
    last_model = DirectModel(DirectConfig(mode="last", **TINY))
    last, _ = jax.jit(lambda v, x: last_model.apply(v, x, train=False))(variables, emg)  # same parameter tree
    np.testing.assert_allclose(seq[..., -1], last, rtol=1e-5, atol=1e-6)


def test_sequence_index_and_lookahead_match_the_network(tiny_sequence):
    """Step i must not change when samples past index(i) + lookahead change, and must change at it."""
    config, variables, apply = tiny_sequence
    assert lookahead_samples(config) == 6
    assert lookahead_samples(DirectConfig()) == 6
    index = sequence_sample_index(8, config)
    np.testing.assert_array_equal(index, [3, 7, 11, 15, 19, 23, 27, 31])
    emg = jax.random.normal(jax.random.PRNGKey(3), (1, 8, 32))
    base = np.asarray(apply(variables, emg))
    step = 2
    last_seen = index[step] + lookahead_samples(config)
    after = np.asarray(apply(variables, emg.at[:, :, last_seen + 1 :].add(5.0)))
    np.testing.assert_allclose(after[..., step], base[..., step], rtol=0, atol=1e-6)
    at = np.asarray(apply(variables, emg.at[:, :, last_seen].add(5.0)))
    assert np.max(np.abs(at[..., step] - base[..., step])) > 1e-4


def test_lstm_matches_torch_and_continues_from_carry():
    torch = pytest.importorskip("torch")
    hidden, features, batch, steps = 6, 5, 2, 7
    lstm = LSTM(features, hidden, 2, dropout=0.3)  # the direct model's LSTM; dropout is off outside training
    x = np.random.default_rng(0).normal(size=(batch, steps, features)).astype(np.float32)
    params = lstm.init(jax.random.PRNGKey(0), jnp.asarray(x))["params"]
    reference = torch.nn.LSTM(features, hidden, num_layers=2, batch_first=True)
    with torch.no_grad():
        for layer in range(2):
            weights = params[f"layer_{layer}"]
            for name in ("kernel_ih", "kernel_hh"):
                getattr(reference, f"weight_{name[-2:]}_l{layer}").copy_(
                    torch.from_numpy(np.asarray(weights[name]).T.copy())
                )
            for name in ("bias_ih", "bias_hh"):
                getattr(reference, f"{name}_l{layer}").copy_(torch.from_numpy(np.array(weights[name])))
        expected, (h_ref, c_ref) = reference(torch.from_numpy(x))
    apply = jax.jit(lambda p, x, carry: lstm.apply({"params": p}, x, carry))
    zeros = jnp.zeros((2, batch, hidden))
    out, (h, c) = apply(params, x, (zeros, zeros))
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(h, h_ref.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(c, c_ref.numpy(), rtol=1e-5, atol=1e-5)
    # Streaming: the first 4 steps, then the rest from the returned carry.
    first, carry = apply(params, x[:, :4], (zeros, zeros))
    assert isinstance(carry, LSTMCarry)
    rest, (h2, _) = apply(params, x[:, 4:], carry)
    np.testing.assert_allclose(np.concatenate([first, rest], axis=1), out, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(h2, h, rtol=1e-6, atol=1e-6)


def test_lstm_dropout_only_between_layers_in_training():
    hidden, features, batch, steps = 8, 5, 3, 6
    x = jnp.asarray(np.random.default_rng(1).normal(size=(batch, steps, features)).astype(np.float32))
    lstm = LSTM(features, hidden, 3, dropout=0.5)
    params = lstm.init(jax.random.PRNGKey(0), x)["params"]
    eval_out, eval_carry = lstm.apply({"params": params}, x)
    train_out, train_carry = lstm.apply({"params": params}, x, train=True, rngs={"dropout": jax.random.PRNGKey(2)})
    # Layer 0 sees the undropped input; layers 1 and 2 see dropped outputs of the layer below, as in PyTorch.
    np.testing.assert_array_equal(train_carry.h[0], eval_carry.h[0])
    assert not np.allclose(train_carry.h[1], eval_carry.h[1], atol=1e-3)
    assert not np.allclose(train_out, eval_out, atol=1e-3)
    no_dropout = LSTM(features, hidden, 3, dropout=0.0)
    same, _ = no_dropout.apply({"params": params}, x, train=True)  # rate 0: no rng needed, no change
    np.testing.assert_array_equal(same, eval_out)
    with pytest.raises(ValueError, match=r"LSTM x: expected shape \(batch, time, 5\), found \(3, 6, 4\)"):
        lstm.apply({"params": params}, x[..., :4])


def test_batchnorm_uses_pytorch_momentum():
    model = DirectModel(DirectConfig(dropout=0.0, **TINY))  # no dropout: no rng needed
    variables = train_tiny.initial_variables(0)
    emg = jax.random.normal(jax.random.PRNGKey(1), (4, 8, 16)) + 3.0
    train_apply = jax.jit(lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"]))
    _, updates = train_apply(variables, emg)
    # Running mean starts at 0; after one batch it is 0.1 x the batch mean (PyTorch momentum 0.1).
    conv = jax.jit(jax.lax.conv_general_dilated, static_argnums=(2, 3), static_argnames="dimension_numbers")(
        jnp.swapaxes(emg, 1, 2),
        variables["params"]["conv_0"]["kernel"],
        (1,),
        "SAME",
        dimension_numbers=("NWC", "WIO", "NWC"),
    )
    np.testing.assert_allclose(
        updates["batch_stats"]["bn_0"]["mean"], 0.1 * conv.mean(axis=(0, 1)), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(updates["batch_stats"]["bn_0"]["var"], 0.9 + 0.1 * conv.var(axis=(0, 1)), rtol=1e-4)


def test_bad_inputs_raise_clear_errors():
    config = DirectConfig(**TINY)
    model = DirectModel(config)
    variables = _abstract_variables(config, 16)
    with pytest.raises(ValueError, match=r"expected shape \(batch, 8, time\), found \(2, 16, 50\)"):
        jax.eval_shape(lambda v: model.apply(v, jnp.zeros((2, 16, 50)), train=False), variables)
    with pytest.raises(ValueError, match="expected at least 4 samples"):
        jax.eval_shape(lambda v: model.apply(v, jnp.zeros((2, 8, 3)), train=False), variables)
    bad_carry = (jnp.zeros((1, 2, 16)), jnp.zeros((1, 2, 16)))
    with pytest.raises(ValueError, match=r"initial_carry: expected \(h, c\) each of shape \(2, 2, 16\)"):
        jax.eval_shape(lambda v: model.apply(v, jnp.zeros((2, 8, 16)), train=False, initial_carry=bad_carry), variables)
    with pytest.raises(
        ValueError, match=r"output: expected one of \['angles', 'joints', 'mano'\], found 'quaternions'"
    ):
        DirectConfig(output="quaternions")
    with pytest.raises(ValueError, match="mode"):
        DirectConfig(mode="all")
    with pytest.raises(ValueError, match="dropout"):
        DirectConfig(dropout=1.0)
    with pytest.raises(ValueError, match="conv_channels"):
        DirectConfig(conv_channels=())
    with pytest.raises(ValueError, match="unknown"):
        DirectConfig.from_dict({"lstm_hiden": 3})


def test_config_round_trips_through_json():
    import json

    config = DirectConfig(output="mano", mode="sequence", conv_channels=(4, 8))
    assert DirectConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_loss_fn_checks_target_and_mask_shapes():
    config = DirectConfig(**TINY)
    model = DirectModel(config)
    variables = _abstract_variables(config, 16)
    loss_fn = make_direct_loss_fn(model, axis_name=None)
    emg = jnp.zeros((2, 8, 16))
    good = {"emg": emg, "target": jnp.zeros((2, 21, 3)), "valid": jnp.ones((2,), bool)}
    loss, (metrics, _) = jax.eval_shape(lambda v: loss_fn(v["params"], v["batch_stats"], good, None, False), variables)
    assert loss.shape == () and set(metrics) == {"loss", "joint_distance"}
    with pytest.raises(ValueError, match=r"target: expected shape \(2, 21, 3\), found \(2, 63\)"):
        jax.eval_shape(
            lambda v: loss_fn(v["params"], v["batch_stats"], {**good, "target": jnp.zeros((2, 63))}, None, False),
            variables,
        )
    with pytest.raises(ValueError, match=r"valid: expected shape \(2,\), found \(2, 16\)"):
        jax.eval_shape(
            lambda v: loss_fn(v["params"], v["batch_stats"], {**good, "valid": jnp.ones((2, 16), bool)}, None, False),
            variables,
        )
