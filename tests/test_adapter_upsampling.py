"""Upsamplers and channel adapters: shapes, pass-through, and the measurable
form of the seed's claim: below 250 Hz a 500 Hz signal can be upsampled almost
exactly (a learned upsampler learns it); above 250 Hz an upsampler can only add
images of the measured band, whose known amplitudes the tone test checks.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

from emgjax.models.adapter.channel_adapter import (
    ADAPTER_KINDS,
    ChannelAdapter,
    ChannelAdapterConfig,
    fixed_adapter_matrix,
    ring_interpolation_matrix,
)
from emgjax.models.adapter.upsampler import (
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

    def to_batch(truth):
        return (decimate(truth)[:, None, :], truth[:, None, :])  # channels as batch

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


# Textbook kernels at 2 kHz applied after zero-stuffing (x4): the known answer for each fixed upsampler.
# None: a band-limited interpolator, whose images must be suppressed instead.
TEXTBOOK_KERNELS = {
    "zero_stuff": np.array([4.0]),  # zeros between samples, times the factor
    "hold": np.ones(4),  # each sample repeated 4 times
    "linear": np.convolve(np.ones(4), np.ones(4)) / 4,  # triangle [1 2 3 4 3 2 1] / 4
    "sinc": None,
    "learned_residual": None,  # at init: the sinc interpolation (zero-initialised residual)
    "subpixel": None,  # at init: the sinc filter's polyphase decomposition
}


@pytest.mark.parametrize("kind", UPSAMPLER_KINDS)
def test_tone_images_match_the_known_answer(kind):
    """A 100 Hz tone at 500 Hz, upsampled x4: the output holds the tone plus its images at 400, 600 and
    900 Hz (k * 500 +- 100 Hz), weighted by the interpolation kernel's frequency response.

    Fixed upsamplers must match their textbook kernel's response exactly; band-limited ones (sinc, and the
    learned ones at init) must pass the tone at unit gain and suppress every image below -40 dB. A wrong
    kernel, a mis-set cut-off or any leaked / aliased content changes these amplitudes.
    """
    f0, images = 100.0, (400.0, 600.0, 900.0)
    n_in = 1000  # 2 s at 500 Hz
    x = np.cos(2 * np.pi * f0 * np.arange(n_in) / FS_LOW).astype(np.float32)[None, None]
    module, variables = init_apply(UpsamplerConfig(kind=kind, channels=1), x)
    y = np.asarray(module.apply(variables, x), np.float64)[0, 0]
    segment = y[1000:3000]  # 1 s away from the edges: 1 Hz DFT bins, every frequency here falls on a bin
    amplitude = np.abs(np.fft.rfft(segment)) * 2 / segment.size  # a unit cosine reads 1.0

    kernel = TEXTBOOK_KERNELS[kind]
    if kernel is not None:
        _, response = scipy.signal.freqz(kernel, worN=[f0, *images], fs=FS_HIGH)
        expected = np.abs(response) / 4  # zero-stuffing divides the amplitude of every image by the factor
        np.testing.assert_allclose(amplitude[[int(f) for f in (f0, *images)]], expected, rtol=1e-3, atol=1e-5)
    else:
        assert amplitude[int(f0)] == pytest.approx(1.0, abs=0.01)
        for f in images:
            assert 20 * np.log10(amplitude[int(f)] / amplitude[int(f0)]) < -40.0, f"{kind}: image at {f:g} Hz"
    # Nothing else: all output energy sits at the tone and its images (an LTI upsampler creates no other line).
    rest = np.delete(amplitude, [int(f) for f in (f0, *images)])
    assert rest.max() < 1e-3


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
        out, _ = module.apply(
            {**variables, "params": params},
            x,
            train=True,
            rngs={"dropout": jax.random.PRNGKey(1)},
            mutable=["batch_stats"],
        )
        return jnp.mean((out - 1.0) ** 2)

    grads = jax.grad(loss)(variables["params"])
    assert float(jnp.abs(grads["conv_out"]["kernel"]).max()) > 0
    with pytest.raises(ValueError, match="never trains"):
        ChannelAdapterConfig(kind="conv", final_activation=True, init="interpolation")
    original = ChannelAdapterConfig(kind="conv", final_activation=True, init="random")
    module, variables = init_apply(original, x, ChannelAdapter)
    assert np.asarray(module.apply(variables, x)).min() >= 0.0  # the original rectifies its output
