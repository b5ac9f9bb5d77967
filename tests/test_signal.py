"""Tests for emgjax.data.signal: filters, streaming state, norm stats, resampling."""

import itertools
import json

import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

from emgjax.data.signal import (
    CausalFilterState,
    NormStats,
    antialias_fir,
    causal_filter_apply,
    causal_filter_init,
    compute_norm_stats,
    decimate_channels,
    design_emg_filter,
    effective_magnitude_response,
    filter_causal,
    filter_offline,
    interpolate_to_times,
    normalize,
    offline_min_length,
    resample_poly_channels,
    simulate_mindrove_view,
)


def _tone_gain(y, x, settle):
    """Amplitude ratio of output to input after the filter has settled."""
    return np.sqrt(np.mean(y[..., settle:-settle] ** 2) / np.mean(x[..., settle:-settle] ** 2))


def _tone(freq, fs, seconds=4.0):
    t = np.arange(int(seconds * fs)) / fs
    return np.sin(2 * np.pi * freq * t)


# ---------------------------------------------------------------- design
@pytest.mark.parametrize("fs", [500.0, 2000.0])
def test_offline_filter_response_notch_pass_stop(fs):
    sos = design_emg_filter(fs)  # notch 60 Hz, band 10-200 Hz, order 2
    settle = int(fs)  # 1 s margin for the Q=30 notch to ring down
    gains = {f: _tone_gain(filter_offline(_tone(f, fs), sos), _tone(f, fs), settle) for f in (60, 80, 2, 240)}
    assert gains[60] < 0.01  # notch: > 40 dB down
    assert abs(gains[80] - 1.0) < 0.03  # pass band
    assert gains[2] < 0.05  # below the high-pass edge
    assert gains[240] < 0.5  # above the 200 Hz edge (|H|^2 of an order-2 band edge)
    # The measured gains follow the documented |H|^2.
    for f, g in gains.items():
        assert g == pytest.approx(effective_magnitude_response(sos, [f], fs)[0], abs=0.01)


def test_design_variants_and_50hz_notch():
    sos50 = design_emg_filter(2000.0, notch_hz=50.0)
    assert effective_magnitude_response(sos50, [50.0], 2000.0)[0] < 1e-6
    assert effective_magnitude_response(sos50, [60.0], 2000.0)[0] > 0.5
    no_notch = design_emg_filter(2000.0, notch_hz=None)
    assert no_notch.shape == (2, 6)
    assert effective_magnitude_response(no_notch, [60.0], 2000.0)[0] > 0.9
    hp = design_emg_filter(2000.0, notch_hz=None, band=(20.0, None))
    assert effective_magnitude_response(hp, [900.0], 2000.0)[0] == pytest.approx(1.0, abs=1e-3)
    lp = design_emg_filter(2000.0, notch_hz=None, band=(None, 100.0))
    assert effective_magnitude_response(lp, [0.5], 2000.0)[0] == pytest.approx(1.0, abs=1e-3)
    notch_only = design_emg_filter(2000.0, band=None)
    assert notch_only.shape == (1, 6)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(sample_rate=500.0, band=(10.0, 260.0)), "Nyquist frequency 250"),
        (dict(sample_rate=500.0, band=(200.0, 100.0)), "low < high"),
        (dict(sample_rate=500.0, notch_hz=300.0), "notch_hz"),
        (dict(sample_rate=-1.0), "sample_rate"),
        (dict(sample_rate=float("nan")), "sample_rate"),
        (dict(sample_rate=500.0, order=0), "order"),
        (dict(sample_rate=500.0, notch_q=0.0), "notch_q"),
        (dict(sample_rate=500.0, band=(10.0,)), "band"),
        (dict(sample_rate=500.0, notch_hz=None, band=None), "notch or a band"),
    ],
)
def test_design_errors(kwargs, match):
    fs = kwargs.pop("sample_rate")
    with pytest.raises(ValueError, match=match):
        design_emg_filter(fs, **kwargs)


def test_offline_errors():
    sos = design_emg_filter(500.0)
    need = offline_min_length(sos)
    assert need == 22  # 3 sections: padlen 3 * (2 * 3 + 1) = 21, plus one
    filter_offline(np.zeros((8, need)), sos)  # exactly the minimum is fine
    with pytest.raises(ValueError, match=f"at least {need} samples"):
        filter_offline(np.zeros((8, need - 1)), sos)
    x = np.zeros((8, 100))
    x[3, 7] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        filter_offline(x, sos)
    with pytest.raises(ValueError, match=r"\(n_sections, 6\)"):
        filter_offline(np.zeros((8, 100)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="axis"):
        filter_offline(np.zeros((8, 100)), sos, axis=2)


def test_offline_dtype_and_axis():
    sos = design_emg_filter(500.0)
    x = np.random.default_rng(0).standard_normal((3, 200, 8)).astype(np.float32)
    y = filter_offline(x, sos, axis=1)
    assert y.dtype == np.float32 and y.shape == x.shape
    y_ref = np.moveaxis(filter_offline(np.moveaxis(x, 1, -1), sos), -1, 1)
    np.testing.assert_allclose(y, y_ref, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- causal
@pytest.mark.parametrize("fs", [500.0, 2000.0])
def test_causal_magnitude_matches_offline(fs):
    sos = design_emg_filter(fs)
    settle = int(fs)
    for f in (5.0, 20.0, 45.0, 60.0, 80.0, 150.0, 230.0):
        x = _tone(f, fs)
        g_off = _tone_gain(filter_offline(x, sos), x, settle)
        g_causal = _tone_gain(filter_causal(x, sos), x, settle)
        assert g_causal == pytest.approx(g_off, abs=0.01, rel=0.02), f
    # The frequency responses themselves: |H_causal| over a grid equals |H|^2.
    freqs = np.linspace(1.0, fs / 2 - 1, 400)
    _, h_causal = scipy.signal.sosfreqz(causal_filter_init(sos, 1).sos, worN=freqs, fs=fs)
    np.testing.assert_allclose(np.abs(h_causal), effective_magnitude_response(sos, freqs, fs), atol=1e-9)


def test_causal_is_causal():
    sos = design_emg_filter(500.0)
    x = np.random.default_rng(1).standard_normal((4, 300))
    x2 = x.copy()
    x2[:, 200:] += 5.0  # change the future only
    np.testing.assert_array_equal(filter_causal(x, sos)[:, :200], filter_causal(x2, sos)[:, :200])


@settings(max_examples=30, deadline=None)
@given(
    cuts=st.lists(st.integers(min_value=0, max_value=257), min_size=0, max_size=8),
    channels=st.integers(min_value=1, max_value=5),
    steady=st.booleans(),
)
def test_chunked_streaming_equals_one_shot(cuts, channels, steady):
    sos = design_emg_filter(500.0)
    rng = np.random.default_rng(len(cuts) + 10 * channels)
    x = (rng.standard_normal((channels, 257)) + 3.0).astype(np.float32)
    state = causal_filter_init(sos, channels, steady_state_from=x[:, 0] if steady else None)
    bounds = [0, *sorted(cuts), x.shape[1]]
    pieces = []
    for a, b in itertools.pairwise(bounds):  # chunks of random length, some empty
        y, state = causal_filter_apply(x[:, a:b], state)
        assert y.shape == (channels, b - a)
        pieces.append(y)
    np.testing.assert_allclose(
        np.concatenate(pieces, axis=1), filter_causal(x, sos, steady_state=steady), rtol=1e-6, atol=1e-5
    )


def test_steady_state_removes_dc_transient():
    sos = design_emg_filter(500.0)
    x = np.full((2, 500), 1000.0)  # a DC offset, like raw electrode data
    cold = filter_causal(x, sos)
    warm = filter_causal(x, sos, steady_state=True)
    assert np.max(np.abs(cold)) > 100.0
    assert np.max(np.abs(warm)) < 1e-6
    state = causal_filter_init(sos, 2, steady_state_from=x)  # (C, T): first column
    y, _ = causal_filter_apply(x, state)
    np.testing.assert_allclose(y, warm, atol=1e-6)


def test_causal_state_is_pytree_of_arrays():
    jax = pytest.importorskip("jax")
    state = causal_filter_init(design_emg_filter(500.0), 8)
    leaves = jax.tree_util.tree_leaves(state)
    assert len(leaves) == 2 and all(isinstance(leaf, np.ndarray) for leaf in leaves)
    assert state.zi.shape == (6, 8, 2) and state.channels == 8


def test_causal_errors():
    sos = design_emg_filter(500.0)
    state = causal_filter_init(sos, 8)
    with pytest.raises(ValueError, match=r"\(8, T\)"):
        causal_filter_apply(np.zeros((7, 10)), state)
    with pytest.raises(ValueError, match=r"\(8, T\)"):
        causal_filter_apply(np.zeros(10), state)
    with pytest.raises(ValueError, match="NaN"):
        causal_filter_apply(np.full((8, 10), np.inf), state)
    with pytest.raises(ValueError, match="CausalFilterState"):
        causal_filter_apply(np.zeros((8, 10)), (state.sos, state.zi))
    with pytest.raises(ValueError, match="channels"):
        causal_filter_init(sos, 0)
    with pytest.raises(ValueError, match=r"\(8,\)"):
        causal_filter_init(sos, 8, steady_state_from=np.zeros(7))
    assert isinstance(state, CausalFilterState)


# ---------------------------------------------------------------- normalisation
@settings(max_examples=20, deadline=None)
@given(lengths=st.lists(st.integers(min_value=0, max_value=60), min_size=1, max_size=6).filter(lambda v: sum(v) > 1))
def test_norm_stats_equal_numpy_on_concatenation(lengths):
    rng = np.random.default_rng(sum(lengths))
    arrays = [(rng.standard_normal((3, n)) * [[1.0], [10.0], [0.1]] + [[5.0], [-200.0], [0.0]]) for n in lengths]
    stats = compute_norm_stats(iter(arrays))  # a one-pass iterator is enough
    cat = np.concatenate(arrays, axis=1)
    np.testing.assert_allclose(stats.mean, cat.mean(axis=1), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(stats.std, cat.std(axis=1), rtol=1e-9)
    assert stats.count == cat.shape[1]


def test_normalize_and_round_trip():
    rng = np.random.default_rng(2)
    train = [rng.standard_normal((4, 100)) * 3 + 7 for _ in range(3)]
    stats = compute_norm_stats(train)
    z = normalize(np.concatenate(train, axis=1).astype(np.float32), stats)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z.mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=1), 1.0, atol=1e-5)
    batch = normalize(np.stack(train), stats)  # (B, C, T)
    assert batch.shape == (3, 4, 100)
    restored = NormStats.from_dict(json.loads(json.dumps(stats.to_dict())))
    assert restored == stats
    with pytest.raises(ValueError, match="assignment destination is read-only"):
        restored.mean[0] = 1.0  # read-only: statistics cannot drift after saving


def test_norm_errors():
    with pytest.raises(ValueError, match="channels, expected 4"):
        compute_norm_stats([np.ones((4, 10)), np.ones((3, 10))])
    with pytest.raises(ValueError, match=r"channel\(s\) \[1\]"):
        compute_norm_stats([np.stack([np.arange(10.0), np.full(10, 3.0)])])
    with pytest.raises(ValueError, match="empty"):
        compute_norm_stats([])
    with pytest.raises(ValueError, match=r"\(C, T\)"):
        compute_norm_stats([np.ones(10)])
    with pytest.raises(ValueError, match="std must be > 0"):
        NormStats(mean=np.zeros(2), std=np.array([1.0, 0.0]))
    stats = NormStats(mean=np.zeros(8), std=np.ones(8))
    with pytest.raises(ValueError, match=r"7 channels.*8"):
        normalize(np.zeros((7, 10)), stats)
    with pytest.raises(ValueError, match="missing"):
        NormStats.from_dict({"mean": [0.0]})


# ---------------------------------------------------------------- resampling
def test_resample_poly_channels():
    fs = 500.0
    x = np.stack([_tone(10.0, fs, 2.0), _tone(30.0, fs, 2.0)]).astype(np.float32)
    y = resample_poly_channels(x, 4, 1)
    assert y.shape == (2, 4000) and y.dtype == np.float32
    np.testing.assert_allclose(
        y[:, 400:-400], np.stack([_tone(10.0, 2000.0, 2.0), _tone(30.0, 2000.0, 2.0)])[:, 400:-400], atol=2e-3
    )
    with pytest.raises(ValueError, match="up"):
        resample_poly_channels(x, 0, 1)
    with pytest.raises(ValueError, match="down"):
        resample_poly_channels(x, 1, 2.5)


def test_interpolate_to_times():
    times = np.array([0.0, 1.0, 3.0])
    values = np.array([[0.0, 10.0], [1.0, 20.0], [3.0, 0.0]])  # (M, D), time first
    out = interpolate_to_times(values, times, np.array([-1.0, 0.5, 2.0, 5.0]))
    np.testing.assert_allclose(out, [[0.0, 10.0], [0.5, 15.0], [2.0, 10.0], [3.0, 0.0]])
    nan_out = interpolate_to_times(values, times, np.array([-1.0, 0.5]), outside="nan")
    assert np.all(np.isnan(nan_out[0])) and np.allclose(nan_out[1], [0.5, 15.0])
    chan_first = interpolate_to_times(values.T, times, np.array([0.5]), axis=1)
    np.testing.assert_allclose(chan_first, [[0.5], [15.0]])
    with pytest.raises(ValueError, match="strictly increasing"):
        interpolate_to_times(values, np.array([0.0, 1.0, 1.0]), np.array([0.5]))
    with pytest.raises(ValueError, match=r"3 entries.*2 samples"):
        interpolate_to_times(values[:2], times, np.array([0.5]))
    with pytest.raises(ValueError, match="outside the sampled range"):
        interpolate_to_times(values, times, np.array([4.0]), outside="error")


def test_decimation_keeps_low_removes_high():
    fs = 2000.0
    taps = antialias_fir(4)
    _, h = scipy.signal.freqz(taps, worN=np.array([10.0, 100.0, 199.0, 250.0, 400.0, 900.0]), fs=fs)
    assert np.all(np.abs(np.abs(h[:3]) - 1) < 0.01)  # pass band to 200 Hz
    assert np.all(np.abs(h[3:]) < 1e-3)  # >= 60 dB down from 250 Hz
    settle = 200
    for f, keep in ((50.0, True), (180.0, True), (260.0, False), (300.0, False), (700.0, False)):
        x = np.tile(_tone(f, fs, 2.0), (16, 1))
        y = simulate_mindrove_view(x)
        assert y.shape == (8, 1000)
        g = np.sqrt(np.mean(y[:, settle:-settle] ** 2) / 0.5)
        assert (g > 0.98) if keep else (g < 1e-3), (f, g)


def test_mindrove_view_channels_axes_and_errors():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 16, 4003)).astype(np.float32)
    y = simulate_mindrove_view(x)
    assert y.shape == (2, 8, 1000) and y.dtype == np.float32  # 3 trailing samples trimmed
    # Channel i of the view is electrode 2i decimated; time-first input gives the same.
    np.testing.assert_allclose(y[1, 3], decimate_channels(x[1, 6], 4), atol=1e-6)
    np.testing.assert_allclose(simulate_mindrove_view(np.swapaxes(x, 1, 2), axis=1), np.swapaxes(y, 1, 2), atol=1e-6)
    odd = simulate_mindrove_view(x, keep_channels=(1, 3, 5, 7, 9, 11, 13, 15))
    np.testing.assert_allclose(odd[0, 0], decimate_channels(x[0, 1], 4), atol=1e-6)
    with pytest.raises(ValueError, match="16 emg2pose channels"):
        simulate_mindrove_view(np.zeros((8, 400)))
    with pytest.raises(ValueError, match="keep_channels"):
        simulate_mindrove_view(np.zeros((16, 400)), keep_channels=(0, 0, 2))
    with pytest.raises(ValueError, match="keep_channels"):
        simulate_mindrove_view(np.zeros((16, 400)), keep_channels=(0, 16))
    with pytest.raises(ValueError, match="at least 4 samples"):
        simulate_mindrove_view(np.zeros((16, 3)))
    with pytest.raises(ValueError, match="distinct"):
        simulate_mindrove_view(np.zeros((16, 400)), channel_axis=-1)
