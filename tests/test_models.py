"""emgjax.models: configs, shapes, input errors, LSTM scan, interpolation, train-mode layers."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emgjax.bundle import Emg2PoseModel
from emgjax.models import configs as C
from emgjax.models import pose_modules as pm
from emgjax.models.lstm import LSTM, LSTMCarry, LSTMLayerWeights, lstm_sequence, lstm_step, zero_carry


def small_tds(out_channels: int = 8, channels: int = 2, width: int = 4) -> C.TdsNetworkConfig:
    """Published kernels and strides (left context 1790) at a tiny width."""
    c = channels * width
    return C.TdsNetworkConfig(
        conv_blocks=(C.Conv1dBlockConfig(16, c, 11, 5), C.Conv1dBlockConfig(c, c, 5, 2)),
        tds_stages=(
            C.TdsStageConfig(c, 17, 4, 2, channels, width, 9),
            C.TdsStageConfig(c, 9, 2, 2, channels, width, 5, out_channels=out_channels),
        ),
    )


def small_state_model(kind="state", decoder="lstm", predict_vel=True) -> C.PoseModelConfig:
    tds = small_tds()
    out = 40 if kind == "vemg2pose" else 20
    if decoder == "lstm":
        dec = C.LSTMDecoderConfig(tds.out_channels + 20, out, hidden_size=8, num_layers=2, scale=0.01)
    else:
        dec = C.MLPDecoderConfig(tds.out_channels + 20, (8, 8), out, layer_norm=True, scale=0.01)
    return C.PoseModelConfig(kind, tds, dec, predict_vel=predict_vel)


# ----------------------------------------------------------------------------- configs


def test_published_left_context_and_stride():
    tds = C.EXPERIMENTS["tracking_vemg2pose"].model.network
    assert tds.left_context == 1790
    assert tds.stride == 80
    assert C.EXPERIMENTS["regression_neuropose"].model.left_context == 0
    # One output step needs exactly left_context + 1 samples.
    assert tds.output_length(1790) == 0 and tds.output_length(1791) == 1


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("tracking_vemg2pose", 5_970_068),
        ("regression_vemg2pose", 5_980_328),
        ("tracking_emg2pose", 2_952_340),
        ("regression_emg2pose", 2_952_340),
        ("regression_neuropose", 6_354_903),
    ],
)
def test_published_parameter_counts(name, expected):
    """emg2pose's released configs: 5.97M / 5.98M / 2.95M / 2.95M / 6.35M parameters."""
    config = C.EXPERIMENTS[name].model
    shapes = jax.eval_shape(lambda: pm.init_variables(config, jax.random.key(0)))
    assert sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(shapes["params"])) == expected


# emg2pose's config/experiment/*.yaml (+ config/datamodule/default.yaml: skip_ik_failures True), field by field:
# (pose module kind, decoder, predict_vel, provide_initial_pos, window_length, val_test_window_length,
#  gradient_clip_val)
PUBLISHED_YAML = {
    "tracking_vemg2pose": ("state", C.LSTMDecoderConfig, True, True, 11_790, 11_790, 1.0),
    "regression_vemg2pose": ("vemg2pose", C.LSTMDecoderConfig, False, False, 11_790, 11_790, 0.0),
    "tracking_emg2pose": ("state", C.MLPDecoderConfig, False, True, 5_790, 11_790, 1.0),
    "regression_emg2pose": ("state", C.MLPDecoderConfig, False, False, 5_790, 11_790, 1.0),
    "regression_neuropose": ("pose", type(None), False, False, 4_000, 10_000, 0.0),
}


@pytest.mark.parametrize("name", list(PUBLISHED_YAML))
def test_experiment_settings_match_the_published_yaml(name):
    kind, decoder, predict_vel, provide, window, val_window, clip = PUBLISHED_YAML[name]
    e = C.EXPERIMENTS[name]
    assert e.name == name
    assert (e.model.kind, type(e.model.decoder), e.model.predict_vel) == (kind, decoder, predict_vel)
    assert (e.provide_initial_pos, e.window_length, e.val_window_length) == (provide, window, val_window)
    assert e.gradient_clip_val == clip and e.learning_rate == 1e-3 and e.batch_size == 64
    assert e.skip_ik_failures is True
    assert e.loss_weights == C.LossWeights(angle_mae=1.0, fingertip_distance=0.01)
    if kind != "pose":
        assert e.model.state_condition and e.model.left_context == 1790 and e.model.rollout_freq == 50


def test_experiment_list_and_shared_networks():
    e = C.EXPERIMENTS
    assert list(e) == list(PUBLISHED_YAML)
    assert e["regression_vemg2pose"].model.num_position_rollout_steps == 12  # round(12.5) == 12
    # regression_emg2pose is tracking_emg2pose's network and decoder trained without the initial pose.
    assert e["regression_emg2pose"].model == e["tracking_emg2pose"].model
    assert e["regression_emg2pose"] != e["tracking_emg2pose"]


@pytest.mark.parametrize("name", list(C.EXPERIMENTS))
def test_config_json_round_trip(name):
    experiment = C.EXPERIMENTS[name]
    text = json.dumps(experiment.to_dict())
    restored = C.Emg2PoseExperiment.from_dict(json.loads(text))
    assert restored == experiment
    assert hash(restored.model) == hash(experiment.model)  # usable as a static jit argument


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match=r"tds_stages\[0\].in_channels: expected 8, found 16"):
        C.TdsNetworkConfig((C.Conv1dBlockConfig(16, 8, 3, 1),), (C.TdsStageConfig(16, 3, 1, 1, 2, 8, 3),))
    with pytest.raises(ValueError, match="expected decoder in_channels 28"):
        C.PoseModelConfig("state", small_tds(), C.LSTMDecoderConfig(20, 20, 8, 1))
    with pytest.raises(ValueError, match="expects decoder out_channels 40"):
        C.PoseModelConfig("vemg2pose", small_tds(), C.LSTMDecoderConfig(28, 20, 8, 1))
    with pytest.raises(ValueError, match="kind: expected one of"):
        C.PoseModelConfig("tracking", small_tds())
    with pytest.raises(ValueError, match="expected a 'type' key"):
        C.config_from_dict({"kind": "pose"})
    with pytest.raises(ValueError, match="unknown"):
        C.PoseModelConfig.from_dict({**C.EXPERIMENTS["tracking_vemg2pose"].model.to_dict(), "extra": 1})
    with pytest.raises(ValueError, match="expected one of"):
        C.get_experiment("tracking")


# ----------------------------------------------------------------------------- shapes


@st.composite
def tds_configs(draw):
    channels = draw(st.integers(1, 3))
    width = draw(st.integers(1, 3))
    c = channels * width
    blocks = []
    in_ch = 16
    for _ in range(draw(st.integers(0, 2))):
        out = draw(st.integers(1, 6))
        blocks.append(
            C.Conv1dBlockConfig(
                in_ch,
                out,
                draw(st.integers(1, 7)),
                draw(st.integers(1, 3)),
                norm_type=draw(st.sampled_from(["layer", "batch", "none"])),
            )
        )
        in_ch = out
    stages = []
    for _i in range(draw(st.integers(0 if blocks else 1, 2))):
        out = draw(st.sampled_from([None, 5]))
        stages.append(
            C.TdsStageConfig(
                in_ch,
                draw(st.integers(1, 5)),
                draw(st.integers(1, 3)),
                draw(st.integers(0, 2)),
                channels,
                width,
                draw(st.integers(1, 4)),
                out_channels=out,
            )
        )
        in_ch = c if out is None else out
    return C.TdsNetworkConfig(tuple(blocks), tuple(stages))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=tds_configs(), extra=st.integers(0, 40), batch=st.integers(1, 3))
def test_tds_output_length_property(config, extra, batch):
    """The traced network's output length equals output_length(T); left_context + 1 samples give one step."""
    time = config.left_context + 1 + extra
    net = pm.TdsNetwork(config)
    x = jax.ShapeDtypeStruct((batch, time, 16), jnp.float32)
    variables = jax.eval_shape(lambda: net.init(jax.random.key(0), jnp.zeros((batch, time, 16))))
    out = jax.eval_shape(net.apply, variables, x)
    assert out.shape == (batch, config.output_length(time), config.out_channels)
    assert config.output_length(config.left_context + 1) == 1
    assert config.output_length(config.left_context) == 0


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["state", "vemg2pose"]),
    decoder=st.sampled_from(["lstm", "mlp"]),
    extra=st.integers(21, 400),
    batch=st.integers(1, 3),
    provide=st.booleans(),
)
def test_pose_forward_shapes_property(kind, decoder, extra, batch, provide):
    """pose_forward returns (B, 20, T − left) predictions/targets and a (B, T − left) bool mask."""
    config = small_state_model(kind, decoder)
    time = config.left_context + extra
    variables = jax.eval_shape(lambda: pm.init_variables(config, jax.random.key(0)))
    emg = jax.ShapeDtypeStruct((batch, 16, time), jnp.float32)
    angles = jax.ShapeDtypeStruct((batch, 20, time), jnp.float32)
    mask = jax.ShapeDtypeStruct((batch, time), jnp.bool_)
    pred, target, out_mask = jax.eval_shape(
        lambda v, e, a, m: pm.pose_forward(config, v, e, a, m, provide), variables, emg, angles, mask
    )
    assert pred.shape == target.shape == (batch, 20, extra)
    assert out_mask.shape == (batch, extra) and out_mask.dtype == jnp.bool_
    raw = jax.eval_shape(lambda v, e: pm.predict_pose(config, v, e, jnp.zeros((batch, 20))), variables, emg)
    assert raw.shape == (batch, 20, config.rollout_steps(time))


def test_min_window_length():
    config = small_state_model()
    minimum = config.min_window_length()
    assert minimum == 1790 + 21  # round(20 / 40) == 0 rollout steps, round(21 / 40) == 1
    assert config.rollout_steps(minimum) == 1 and config.rollout_steps(minimum - 1) == 0
    assert C.EXPERIMENTS["regression_neuropose"].model.min_window_length() == 320


# ----------------------------------------------------------------------------- a small model end to end


def random_variables(config: C.PoseModelConfig, seed: int = 0, scale: float = 0.3) -> dict:
    """Random variables of the right shapes without compiling `init` (traced shapes only)."""
    shapes = jax.eval_shape(lambda: pm.init_variables(config, jax.random.key(0)))
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(lambda s: jnp.asarray(scale * rng.standard_normal(s.shape), jnp.float32), shapes)


@pytest.fixture(scope="module")
def small_model():
    config = small_state_model()
    return Emg2PoseModel(config, random_variables(config), "tracking_vemg2pose", True)


def _batch(time=1790 + 400, batch=2, channels=16, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((batch, channels, time)).astype(np.float32),
        rng.standard_normal((batch, 20, time)).astype(np.float32),
        np.ones((batch, time), bool),
    )


def test_small_model_runs_and_uses_initial_pose(small_model):
    emg, angles, mask = _batch()
    pred, target, _out_mask = small_model(emg, angles, mask)
    assert pred.shape == target.shape == (2, 20, 400)
    np.testing.assert_array_equal(np.asarray(target), angles[:, :, 1790:])
    # predict_vel with the true start pose: the first step stays close to it, and zeros differ.
    pred_zero, _, _ = small_model(emg, angles, mask, provide_initial_pos=False)
    assert np.abs(np.asarray(pred)[:, :, 0] - angles[:, :, 1790]).max() < 0.1
    assert np.abs(np.asarray(pred) - np.asarray(pred_zero)).max() > 0.1
    feats = small_model.features(jnp.asarray(emg))
    assert feats.shape == (2, 8, small_model.config.network.output_length(emg.shape[-1]))


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (
            lambda e, a, m: (e[:, :8], a, m),
            r"emg: expected 16 channels \(axis 1 of \(batch, channels, time\)\), found 8",
        ),
        (lambda e, a, m: (e[:, :, :1800], a[:, :, :1800], m[:, :1800]), r"emg: expected at least 1811 samples"),
        (lambda e, a, m: (e[0], a, m), r"emg: expected a 3-d array \(batch, channels, time\), found 2-d"),
        (lambda e, a, m: (e.astype(np.int32), a, m), r"emg: expected a floating-point array.*found dtype int32"),
        (
            lambda e, a, m: (np.where(np.arange(e.shape[-1]) == 5, np.nan, e).astype(np.float32), a, m),
            r"emg: expected only finite values, found 32 NaN/Inf value\(s\), first at index \(0, 0, 5\)",
        ),
        (
            lambda e, a, m: (e, np.where(np.arange(a.shape[-1]) == 7, np.inf, a).astype(np.float32), m),
            r"joint_angles: expected only finite values",
        ),
        (lambda e, a, m: (e, a[:, :19], m), r"joint_angles: expected 20 joint angles"),
        (lambda e, a, m: (e, a[:1], m), r"joint_angles: expected batch size 2 to match emg"),
        (lambda e, a, m: (e, a[:, :, :-1], m), r"joint_angles: expected time length 2190 to match emg"),
        (lambda e, a, m: (e, a, m.astype(np.float32)), r"no_ik_failure: expected a boolean array, found dtype float32"),
        (lambda e, a, m: (e, a, m[:, :-3]), r"no_ik_failure: expected time length 2190"),
        (lambda e, a, m: (e.tolist(), a, m), r"emg: expected a NumPy or JAX array, found builtins.list"),
    ],
)
def test_input_errors(small_model, mutate, match):
    emg, angles, mask = mutate(*_batch())
    with pytest.raises(ValueError, match=match):
        small_model(emg, angles, mask)


def test_sample_rate_and_flag_errors(small_model):
    emg, angles, mask = _batch()
    with pytest.raises(ValueError, match=r"sample_rate: expected 2000 Hz \(the model's\), found 500 Hz"):
        small_model(emg, angles, mask, sample_rate=500)
    with pytest.raises(ValueError, match="provide_initial_pos: expected a bool, found str"):
        small_model(emg, angles, mask, provide_initial_pos="yes")
    with pytest.raises(ValueError, match="emg: expected 16 channels"):
        small_model.features(emg[:, :4])


def test_float64_inputs_are_accepted(small_model):
    emg, angles, mask = _batch()
    pred32, _, _ = small_model(emg, angles, mask)
    pred64, _, _ = small_model(emg.astype(np.float64), angles.astype(np.float64), mask)
    np.testing.assert_allclose(np.asarray(pred64), np.asarray(pred32), atol=1e-6)


# ----------------------------------------------------------------------------- LSTM


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def reference_lstm(layers: list[LSTMLayerWeights], x: np.ndarray) -> np.ndarray:
    """Step-by-step float64 LSTM with PyTorch's equations, written independently of lstm.py."""
    batch, time, _ = x.shape
    hidden = layers[0].kernel_hh.shape[0]
    sequence = x.astype(np.float64)
    for w in layers:
        w_ih, w_hh = np.asarray(w.kernel_ih, np.float64).T, np.asarray(w.kernel_hh, np.float64).T  # (4H, in)
        b = np.asarray(w.bias_ih, np.float64) + np.asarray(w.bias_hh, np.float64)
        h = np.zeros((batch, hidden))
        c = np.zeros((batch, hidden))
        outputs = []
        for t in range(time):
            z = sequence[:, t] @ w_ih.T + h @ w_hh.T + b
            i, f, g, o = z[:, :hidden], z[:, hidden : 2 * hidden], z[:, 2 * hidden : 3 * hidden], z[:, 3 * hidden :]
            c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
            h = _sigmoid(o) * np.tanh(c)
            outputs.append(h)
        sequence = np.stack(outputs, axis=1)
    return sequence


def test_lstm_scan_equals_step_by_step_reference():
    module = LSTM(in_features=5, hidden_size=7, num_layers=2)
    x = np.random.default_rng(0).standard_normal((3, 11, 5)).astype(np.float32)
    variables = module.init(jax.random.key(1), x)
    out, carry = module.apply(variables, x)
    layers = module.apply(variables, method=LSTM.weights)
    expected = reference_lstm(layers, x)
    np.testing.assert_allclose(np.asarray(out), expected, atol=1e-5)
    np.testing.assert_allclose(np.asarray(carry.h[-1]), expected[:, -1], atol=1e-5)
    # Continuing from the carry equals running the concatenated sequence.
    out2, _ = lstm_sequence(layers, x[:, 6:], None)
    _first, carry6 = lstm_sequence(layers, x[:, :6], None)
    rest, _ = lstm_sequence(layers, x[:, 6:], carry6)
    np.testing.assert_allclose(np.asarray(rest), expected[:, 6:], atol=1e-5)
    assert not np.allclose(np.asarray(out2), expected[:, 6:], atol=1e-3)  # the state matters


def test_lstm_step_equals_sequence():
    """The rollout's per-step API and the scanned sequence are the same recurrence, carry included."""
    module = LSTM(in_features=4, hidden_size=6, num_layers=3)
    rng = np.random.default_rng(5)
    x = jnp.asarray(rng.standard_normal((2, 9, 4)).astype(np.float32))
    start = LSTMCarry(*(jnp.asarray(rng.standard_normal((3, 2, 6)).astype(np.float32)) for _ in range(2)))
    layers = module.apply(module.init(jax.random.key(0), x), method=LSTM.weights)
    expected, expected_carry = lstm_sequence(layers, x, start)
    carry, outputs = start, []
    for t in range(x.shape[1]):
        # The first layer's input projection is the caller's; split in two to exercise extra_gates.
        gates = jnp.dot(x[:, t, :3], layers[0].kernel_ih[:3]) + layers[0].bias_ih + layers[0].bias_hh
        carry, h = lstm_step(layers, carry, gates, jnp.dot(x[:, t, 3:], layers[0].kernel_ih[3:]))
        outputs.append(h)
    np.testing.assert_allclose(np.stack(outputs, axis=1), expected, atol=1e-5)
    np.testing.assert_allclose(carry.h, expected_carry.h, atol=1e-5)
    np.testing.assert_allclose(carry.c, expected_carry.c, atol=1e-5)
    zero = zero_carry(3, 2, 6)
    assert zero.h.shape == zero.c.shape == (3, 2, 6) and not np.any(zero.h)


def test_lstm_refuses_a_carry_of_the_wrong_shape():
    module = LSTM(in_features=4, hidden_size=6, num_layers=2)
    x = jnp.zeros((3, 5, 4))
    variables = module.init(jax.random.key(0), x)
    bad = (jnp.zeros((2, 3, 5)), jnp.zeros((2, 3, 5)))
    with pytest.raises(
        ValueError, match=r"initial_carry: expected \(h, c\) each of shape \(2, 3, 6\), found \(2, 3, 5\)"
    ):
        module.apply(variables, x, bad)
    with pytest.raises(ValueError, match=r"initial_carry: expected \(h, c\) each of shape \(2, 3, 6\), found Array"):
        module.apply(variables, x, jnp.zeros((2, 3, 6)))


def test_lstm_matches_torch():
    torch = pytest.importorskip("torch")
    lstm = torch.nn.LSTM(6, 9, num_layers=2, batch_first=True)
    x = np.random.default_rng(2).standard_normal((2, 13, 6)).astype(np.float32)
    with torch.no_grad():
        expected, _ = lstm(torch.from_numpy(x))
    sd = {k: v.numpy() for k, v in lstm.state_dict().items()}
    layers = [
        LSTMLayerWeights(sd[f"weight_ih_l{n}"].T, sd[f"weight_hh_l{n}"].T, sd[f"bias_ih_l{n}"], sd[f"bias_hh_l{n}"])
        for n in range(2)
    ]
    out, _ = lstm_sequence(layers, jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(out), expected.numpy(), atol=1e-5)


# ----------------------------------------------------------------------------- interpolation


@settings(max_examples=25, deadline=None)
@given(in_len=st.integers(1, 60), out_len=st.integers(1, 300), align_corners=st.booleans())
def test_linear_interpolation_matches_torch(in_len, out_len, align_corners):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(in_len * 1000 + out_len).standard_normal((2, 3, in_len)).astype(np.float32)
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(x), size=out_len, mode="linear", align_corners=align_corners
    ).numpy()
    found = np.asarray(pm.resample_linear(jnp.asarray(x), out_len, axis=-1, align_corners=align_corners))
    np.testing.assert_allclose(found, expected, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(in_len=st.integers(1, 80), out_len=st.integers(1, 300))
def test_nearest_mask_alignment_matches_torch(in_len, out_len):
    torch = pytest.importorskip("torch")
    mask = np.random.default_rng(in_len + 7 * out_len).random((2, in_len)) > 0.5
    expected = (
        torch.nn.functional.interpolate(torch.from_numpy(mask)[:, None].float(), size=out_len, mode="nearest")[:, 0]
        .bool()
        .numpy()
    )
    np.testing.assert_array_equal(np.asarray(pm.align_mask(jnp.asarray(mask), out_len)), expected)


# ----------------------------------------------------------------------------- train mode


def test_dropout_uses_explicit_rng_and_train_flag():
    config = C.PoseModelConfig("pose", C.neuropose_network(), None)
    config = dataclasses.replace(
        config,
        network=dataclasses.replace(
            config.network,
            encoder_blocks=(
                C.EncoderBlockConfig(1, 2, (3, 2), (10, 2), 0.5),
                C.EncoderBlockConfig(2, 2, (3, 2), (8, 2), 0.5),
                C.EncoderBlockConfig(2, 2, (3, 2), (4, 4), 0.5),
            ),
            residual_blocks=(C.ResidualBlockConfig(2, 2, (3, 2), 1, 0.5),),
            decoder_blocks=(
                C.DecoderBlockConfig(2, 2, (3, 2), (10, 4), 0.5),
                C.DecoderBlockConfig(2, 2, (3, 2), (8, 4), 0.5),
                C.DecoderBlockConfig(2, 1, (3, 2), (4, 2), 0.5),
            ),
        ),
    )
    variables = random_variables(config)
    variables["batch_stats"] = jax.tree_util.tree_map(jnp.abs, variables["batch_stats"])  # variances > 0
    emg, angles, mask = _batch(time=320)
    forward = jax.jit(pm.pose_forward, static_argnums=(0, 5))
    forward_train = jax.jit(pm.pose_forward_train, static_argnums=(0, 5))
    eval_a = forward(config, variables, emg, angles, mask, False)[0]
    eval_b = forward(config, variables, emg, angles, mask, False)[0]
    np.testing.assert_array_equal(np.asarray(eval_a), np.asarray(eval_b))
    (train_a, _, _), stats_a = forward_train(
        config, variables, emg, angles, mask, False, {"dropout": jax.random.key(1)}
    )
    (train_b, _, _), _ = forward_train(config, variables, emg, angles, mask, False, {"dropout": jax.random.key(2)})
    assert not np.allclose(np.asarray(train_a), np.asarray(train_b))
    # BatchNorm statistics moved, and pose_forward refuses train=True for a BatchNorm model.
    before = jax.tree_util.tree_leaves(variables["batch_stats"])
    after = jax.tree_util.tree_leaves(stats_a)
    assert any(not np.allclose(b, a) for b, a in zip(before, after, strict=True))
    with pytest.raises(ValueError, match="use pose_forward_train"):
        pm.pose_forward(config, variables, emg, angles, mask, False, train=True, rngs={"dropout": jax.random.key(0)})


def test_batchnorm_matches_torch_in_train_and_eval():
    torch = pytest.importorskip("torch")
    from emgjax.models.layers import BatchNorm

    x = np.random.default_rng(4).standard_normal((4, 10, 3)).astype(np.float32) * 2 + 1
    bn_torch = torch.nn.BatchNorm1d(3)
    with torch.no_grad():
        bn_torch.weight.copy_(torch.tensor([0.5, 1.5, -1.0]))
        bn_torch.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
        bn_torch.train()
        y_train = bn_torch(torch.from_numpy(x).transpose(1, 2)).transpose(1, 2).numpy()
    bn = BatchNorm(3)
    variables = bn.init(jax.random.key(0), jnp.asarray(x), False)
    variables = {
        "params": {"scale": jnp.array([0.5, 1.5, -1.0]), "bias": jnp.array([0.1, -0.2, 0.3])},
        "batch_stats": variables["batch_stats"],
    }
    y, updates = bn.apply(variables, jnp.asarray(x), True, mutable=["batch_stats"])
    np.testing.assert_allclose(np.asarray(y), y_train, atol=1e-5)
    np.testing.assert_allclose(np.asarray(updates["batch_stats"]["mean"]), bn_torch.running_mean.numpy(), atol=1e-6)
    np.testing.assert_allclose(np.asarray(updates["batch_stats"]["var"]), bn_torch.running_var.numpy(), atol=1e-6)
    bn_torch.eval()
    with torch.no_grad():
        y_eval = bn_torch(torch.from_numpy(x).transpose(1, 2)).transpose(1, 2).numpy()
    y2 = bn.apply({"params": variables["params"], "batch_stats": updates["batch_stats"]}, jnp.asarray(x), False)
    np.testing.assert_allclose(np.asarray(y2), y_eval, atol=1e-5)
