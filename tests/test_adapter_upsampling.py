"""Upsamplers and channel adapters: shapes, pass-through, and the measurable
form of the seed's claim: below 250 Hz a 500 Hz signal can be upsampled almost
exactly (a learned upsampler learns it), above 250 Hz nothing is recoverable.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.signal
from hypothesis import given, settings, strategies as st

from emgjax.adapter.channel_adapter import (
    ADAPTER_KINDS,
    ChannelAdapter,
    ChannelAdapterConfig,
    fixed_adapter_matrix,
    ring_interpolation_matrix,
)
from emgjax.adapter.upsampler import (
    UPSAMPLER_KINDS,
    FrequencyUpsampler,
    UpsamplerConfig,
    check_rates,
)

FS_HIGH, FS_LOW = 2000.0, 500.0


def band_limited_noise(rng, n, low_hz, high_hz, fs=FS_HIGH, channels=1):
    """(channels, n) Gaussian noise band-passed to [low_hz, high_hz], unit variance."""
    sos = scipy.signal.butter(8, [max(low_hz, 1.0), high_hz], btype="band", fs=fs, output="sos")
    x = scipy.signal.sosfiltfilt(sos, rng.standard_normal((channels, n + 400)), axis=-1)[:, 200:-200]
    return (x / x.std(axis=-1, keepdims=True)).astype(np.float32)


def decimate(x):
    """2 kHz -> 500 Hz with an anti-alias filter (what the armband's ADC chain does)."""
    return scipy.signal.resample_poly(x, 1, 4, axis=-1).astype(np.float32)


def snr_db(estimate, truth):
    err = estimate - truth
    return 10 * np.log10(np.mean(truth**2) / np.mean(err**2))


def init_apply(config, x, module_cls=FrequencyUpsampler):
    module = module_cls(config)
    variables = module.init(jax.random.PRNGKey(0), x)
    return module, variables


@pytest.mark.parametrize("kind", UPSAMPLER_KINDS)
def test_upsampler_shapes_and_pass_through(kind):
    x = np.random.default_rng(0).standard_normal((2, 16, 40)).astype(np.float32)
    module, variables = init_apply(UpsamplerConfig(kind=kind), x)
    y = np.asarray(module.apply(variables, x))
    assert y.shape == (2, 16, 160)
    if kind != "zero_stuff":
        # Input sample n sits at output 4n; interpolators keep it unchanged at init.
        np.testing.assert_allclose(y[..., ::4], x, atol=2e-6)


def test_subpixel_starts_as_sinc():
    x = np.random.default_rng(1).standard_normal((1, 16, 64)).astype(np.float32)
    sinc = FrequencyUpsampler(UpsamplerConfig(kind="sinc")).apply({}, x)
    module, variables = init_apply(UpsamplerConfig(kind="subpixel"), x)
    np.testing.assert_allclose(module.apply(variables, x), sinc, atol=1e-5)


def test_sinc_recovers_band_limited_signal_linear_does_not():
    rng = np.random.default_rng(2)
    truth = band_limited_noise(rng, 8000, 20, 200)
    low = decimate(truth)
    sinc = np.asarray(FrequencyUpsampler(UpsamplerConfig(kind="sinc", channels=1)).apply({}, low[None]))[0]
    linear = np.asarray(FrequencyUpsampler(UpsamplerConfig(kind="linear", channels=1)).apply({}, low[None]))[0]
    edge = 200
    assert snr_db(sinc[:, edge:-edge], truth[:, edge:-edge]) > 30.0
    assert snr_db(linear[:, edge:-edge], truth[:, edge:-edge]) < 25.0


def test_learned_upsampler_learns_band_limited_interpolation_from_random_init():
    """A sub-pixel upsampler from random weights learns to recover <200 Hz content."""
    rng = np.random.default_rng(3)
    train_truth = band_limited_noise(rng, 4000, 10, 200, channels=8)
    test_truth = band_limited_noise(rng, 4000, 10, 200, channels=8)
    config = UpsamplerConfig(kind="subpixel", channels=1, init="random", hidden_channels=8)
    to_batch = lambda truth: (decimate(truth)[:, None, :], truth[:, None, :])  # channels as batch
    train_x, train_y = to_batch(train_truth)
    module, variables = init_apply(config, train_x)
    params = variables["params"]
    optimizer = optax.adam(3e-3)
    opt_state = optimizer.init(params)
    edge = 100

    def loss_fn(p, x, y):
        return jnp.mean((module.apply({"params": p}, x) - y)[..., edge:-edge] ** 2)

    @jax.jit
    def step(p, s):
        loss, grads = jax.value_and_grad(loss_fn)(p, train_x, train_y)
        updates, s = optimizer.update(grads, s, p)
        return optax.apply_updates(p, updates), s, loss

    initial = float(loss_fn(params, train_x, train_y))
    for _ in range(600):
        params, opt_state, loss = step(params, opt_state)
    test_x, test_y = to_batch(test_truth)
    estimate = np.asarray(module.apply({"params": params}, test_x))
    snr = snr_db(estimate[..., edge:-edge], test_y[..., edge:-edge])
    assert float(loss) < initial / 100
    assert snr > 25.0, f"learned upsampler reached only {snr:.1f} dB on held-out band-limited signals"


@pytest.mark.parametrize("kind", UPSAMPLER_KINDS)
def test_no_upsampler_recovers_content_above_250_hz(kind):
    """The 250-1000 Hz band of the truth is independent of the 500 Hz samples:
    no variant's output correlates with it beyond chance."""
    rng = np.random.default_rng(4)
    n = 16000
    low_band = band_limited_noise(rng, n, 20, 200)
    high_band = band_limited_noise(rng, n, 300, 900)
    truth = low_band + high_band
    x = decimate(truth)[None]
    module, variables = init_apply(UpsamplerConfig(kind=kind, channels=1), x)
    if kind in ("learned_residual", "subpixel"):
        # Perturb the learned weights: whatever they are, they only see the 500 Hz samples.
        variables = jax.tree_util.tree_map(
            lambda v: v + 0.1 * jax.random.normal(jax.random.PRNGKey(5), v.shape), variables
        )
    y = np.asarray(module.apply(variables, x))[0, 0]
    sos = scipy.signal.butter(8, [300, 900], btype="band", fs=FS_HIGH, output="sos")
    estimate_high = scipy.signal.sosfiltfilt(sos, y)[500:-500]
    truth_high = high_band[0, 500:-500]
    corr = np.corrcoef(estimate_high, truth_high)[0, 1]
    # ~600 Hz of bandwidth over 7.5 s: ~9000 effective samples; chance |r| ~ 0.01.
    assert abs(corr) < 0.05, f"{kind}: correlation {corr:.3f} with unmeasurable >250 Hz content"


def test_check_rates():
    check_rates(500.0, 2000.0, 4)
    with pytest.raises(ValueError, match="factor 3 does not match"):
        check_rates(500.0, 2000.0, 3)


def test_bad_upsampler_config_and_input():
    with pytest.raises(ValueError, match="unknown upsampler kind"):
        UpsamplerConfig(kind="cubic")
    with pytest.raises(ValueError, match="align_corners"):
        UpsamplerConfig(kind="sinc", align_corners=True)
    module = FrequencyUpsampler(UpsamplerConfig(kind="sinc"))
    with pytest.raises(ValueError, match=r"expects emg shaped \(batch, 16, time\); found \(1, 8, 10\)"):
        module.apply({}, np.zeros((1, 8, 10), np.float32))


@pytest.mark.parametrize("kind", ADAPTER_KINDS)
def test_channel_adapter_starts_from_interpolation_or_fixed_matrix(kind):
    x = np.random.default_rng(6).standard_normal((3, 8, 30)).astype(np.float32)
    module, variables = init_apply(ChannelAdapterConfig(kind=kind), x, ChannelAdapter)
    y = np.asarray(module.apply(variables, x))
    assert y.shape == (3, 16, 30)
    expected_kind = kind if kind in ("zero_fill", "duplicate") else "interpolation"
    expected = np.einsum("oi,bit->bot", fixed_adapter_matrix(expected_kind), x)
    np.testing.assert_allclose(y, expected, atol=1e-5)


def test_ring_interpolation_matrix_properties():
    m = ring_interpolation_matrix(8, 16)
    np.testing.assert_allclose(m.sum(axis=1), 1.0)
    np.testing.assert_array_equal(m[::2], np.eye(8))
    # The last synthesised electrode wraps around the ring to electrode 0.
    assert m[15, 7] == 0.5 and m[15, 0] == 0.5


@settings(max_examples=15, deadline=None)
@given(ratio=st.sampled_from([1, 2, 4]), in_channels=st.integers(1, 8))
def test_fixed_matrices_keep_measured_electrodes(ratio, in_channels):
    for kind in ("zero_fill", "duplicate", "interpolation"):
        m = fixed_adapter_matrix(kind, in_channels, in_channels * ratio)
        np.testing.assert_array_equal(m[::ratio], np.eye(in_channels))


def test_bad_channel_adapter_config():
    with pytest.raises(ValueError, match="unknown channel adapter kind"):
        ChannelAdapterConfig(kind="magic")
    with pytest.raises(ValueError, match="multiple of in_channels"):
        ChannelAdapterConfig(in_channels=8, out_channels=12)
    module = ChannelAdapter(ChannelAdapterConfig(kind="linear"))
    with pytest.raises(ValueError, match=r"\(batch, 8, time\); found \(2, 16, 5\)"):
        module.init(jax.random.PRNGKey(0), np.zeros((2, 16, 5), np.float32))


def test_conv_adapter_residual_branch_receives_gradients():
    """Regression: a final ReLU on the zero-initialised residual branch froze it."""
    x = np.random.default_rng(7).standard_normal((4, 8, 32)).astype(np.float32)
    module, variables = init_apply(ChannelAdapterConfig(kind="conv"), x, ChannelAdapter)

    def loss(params):
        out, _ = module.apply({**variables, "params": params}, x, train=True,
                              rngs={"dropout": jax.random.PRNGKey(1)}, mutable=["batch_stats"])
        return jnp.mean((out - 1.0) ** 2)

    grads = jax.grad(loss)(variables["params"])
    assert float(jnp.abs(grads["conv_out"]["kernel"]).max()) > 0
    with pytest.raises(ValueError, match="never trains"):
        ChannelAdapterConfig(kind="conv", final_activation=True, init="interpolation")
    original = ChannelAdapterConfig(kind="conv", final_activation=True, init="random")
    module, variables = init_apply(original, x, ChannelAdapter)
    assert np.asarray(module.apply(variables, x)).min() >= 0.0  # the original rectifies its output
