"""EMG signal processing: filters, normalisation, resampling, the MindRove view.

Everything here is NumPy/SciPy (``scipy.signal``) and runs before any jitted
code, so input checks raise clear ``ValueError``s.

Filters
-------
``design_emg_filter`` returns one second-order-section (SOS) array: an optional
IIR notch for powerline hum followed by a Butterworth band-pass. The same SOS
is used two ways:

* **offline**, ``filter_offline``: zero-phase ``scipy.signal.sosfiltfilt``. The
  signal passes through the SOS forwards and then backwards, so the effective
  magnitude response is ``|H(f)|**2`` with zero phase delay.
* **streaming**, ``causal_filter_init`` / ``causal_filter_apply`` /
  ``filter_causal``: causal ``scipy.signal.sosfilt`` with carried state. To give
  the *same magnitude response* as the offline filter the causal filter runs
  the SOS twice in cascade: ``|H(f) * H(f)| = |H(f)|**2``. Only the phase
  differs (the causal filter delays, mostly near the band edges and the notch).

Normalisation
-------------
``compute_norm_stats`` computes global per-channel mean/std over a stream of
``(C, T)`` training arrays (Chan et al. parallel combine of per-chunk moments,
in float64), and ``NormStats`` is saved beside a model (``to_dict``) so that
inference uses exactly the training statistics, never per-window ones.

Layout: public arrays are channel-first, ``emg (..., C, T)``; functions take an
``axis`` for time where files are time-first.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np
import scipy.interpolate
import scipy.signal

from emgjax.config import Config

__all__ = [
    "ring_resample_matrix",
    "design_emg_filter",
    "offline_min_length",
    "filter_offline",
    "effective_magnitude_response",
    "CausalFilterState",
    "causal_filter_init",
    "causal_filter_apply",
    "filter_causal",
    "NormStats",
    "compute_norm_stats",
    "normalize",
    "resample_poly_channels",
    "interpolate_to_times",
    "antialias_fir",
    "decimate_channels",
    "simulate_mindrove_view",
    "MINDROVE_KEEP_CHANNELS",
]

# The 8 of the 16 emg2pose ring electrodes that the MindRove view keeps by
# default: every other one, so the 8 are evenly spaced around the forearm.
MINDROVE_KEEP_CHANNELS: tuple[int, ...] = (0, 2, 4, 6, 8, 10, 12, 14)


# --------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------
def _check_sample_rate(sample_rate) -> float:
    try:
        fs = float(sample_rate)
    except (TypeError, ValueError):
        raise ValueError(f"sample_rate must be a positive number of Hz, found {sample_rate!r}") from None
    if not math.isfinite(fs) or fs <= 0:
        raise ValueError(f"sample_rate must be a positive finite number of Hz, found {sample_rate!r}")
    return fs


def _check_sos(sos) -> np.ndarray:
    sos = np.asarray(sos, dtype=np.float64)
    if sos.ndim != 2 or sos.shape[1] != 6 or sos.shape[0] < 1:
        raise ValueError(f"sos must have shape (n_sections, 6) with n_sections >= 1, found shape {sos.shape}")
    if not np.all(np.isfinite(sos)):
        raise ValueError("sos contains NaN or infinite coefficients")
    if np.any(sos[:, 3] == 0):
        raise ValueError("sos has a section whose a0 coefficient (column 3) is 0; expected a0 != 0")
    return sos


def _check_finite_array(x, name: str, *, min_ndim: int = 1) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s), found shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise ValueError(f"{name} must be a real numeric array, found dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
        n_bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        raise ValueError(f"{name} must be finite, found {n_bad} NaN/infinite value(s)")
    return x


def _normalize_axis(axis: int, ndim: int, name: str = "axis") -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}={axis} is out of range for an array with {ndim} dimension(s)")
    return axis % ndim


def _output_dtype(x: np.ndarray):
    # float32 in, float32 out (the project convention); float64 stays float64;
    # integer input (raw ADC counts) becomes float32.
    return x.dtype if x.dtype in (np.float32, np.float64) else np.float32


# --------------------------------------------------------------------------
# filter design
# --------------------------------------------------------------------------
def design_emg_filter(
    sample_rate: float,
    *,
    notch_hz: float | None = 60.0,
    notch_q: float = 30.0,
    band: tuple[float | None, float | None] | None = (10.0, 200.0),
    order: int = 2,
) -> np.ndarray:
    """Design the EMG pre-filter as second-order sections.

    Args:
      sample_rate: sampling rate in Hz (500 for MindRove, 2000 for emg2pose).
      notch_hz: powerline frequency to notch out (60 or 50), or None for no notch.
      notch_q: quality factor of the notch (bandwidth = notch_hz / notch_q).
      band: (low_hz, high_hz) Butterworth band-pass edges. ``low_hz=None``
        gives a low-pass, ``high_hz=None`` a high-pass, ``band=None`` no
        band filter (notch only).
      order: Butterworth order (a band-pass of order n has 2n poles).

    Returns:
      sos: (n_sections, 6) float64, notch section first, for ``scipy.signal``.
    """
    fs = _check_sample_rate(sample_rate)
    nyquist = fs / 2.0
    sections = []
    if notch_hz is not None:
        notch_hz = float(notch_hz)
        if not (0.0 < notch_hz < nyquist):
            raise ValueError(
                f"notch_hz must lie strictly between 0 and the Nyquist frequency {nyquist:g} Hz "
                f"(sample_rate {fs:g} Hz), found {notch_hz:g}"
            )
        if not (math.isfinite(float(notch_q)) and float(notch_q) > 0):
            raise ValueError(f"notch_q must be a positive number, found {notch_q!r}")
        b, a = scipy.signal.iirnotch(notch_hz, float(notch_q), fs=fs)
        sections.append(scipy.signal.tf2sos(b, a))
    if band is not None:
        if not isinstance(order, (int, np.integer)) or isinstance(order, bool) or order < 1:
            raise ValueError(f"order must be a positive integer, found {order!r}")
        try:
            low, high = band
        except (TypeError, ValueError):
            raise ValueError(f"band must be a (low_hz, high_hz) pair or None, found {band!r}") from None
        for name, edge in (("low", low), ("high", high)):
            if edge is not None and not (math.isfinite(float(edge)) and 0.0 < float(edge) < nyquist):
                raise ValueError(
                    f"band {name} edge must lie strictly between 0 and the Nyquist frequency "
                    f"{nyquist:g} Hz (sample_rate {fs:g} Hz), found {edge!r}"
                )
        if low is not None and high is not None:
            if not float(low) < float(high):
                raise ValueError(f"band must satisfy low < high, found band=({low!r}, {high!r})")
            sections.append(
                scipy.signal.butter(int(order), [float(low), float(high)], btype="bandpass", fs=fs, output="sos")
            )
        elif low is not None:
            sections.append(scipy.signal.butter(int(order), float(low), btype="highpass", fs=fs, output="sos"))
        elif high is not None:
            sections.append(scipy.signal.butter(int(order), float(high), btype="lowpass", fs=fs, output="sos"))
    if not sections:
        raise ValueError("design_emg_filter needs a notch or a band; found notch_hz=None and band=None")
    return np.concatenate(sections, axis=0)


def offline_min_length(sos) -> int:
    """Fewest samples ``filter_offline`` accepts for this SOS.

    ``sosfiltfilt`` pads each end by reflecting ``padlen`` samples and needs the
    signal to be longer than the padding (the same rule SciPy applies).
    """
    sos = _check_sos(sos)
    n_sections = sos.shape[0]
    # SciPy's default padlen for sosfiltfilt: 3 * (2 * n_sections + 1 - trailing zeros).
    trailing_zeros = min(int(np.sum(sos[:, 2] == 0)), int(np.sum(sos[:, 5] == 0)))
    padlen = 3 * (2 * n_sections + 1 - trailing_zeros)
    return padlen + 1


def filter_offline(x, sos, axis: int = -1) -> np.ndarray:
    """Zero-phase filtering (forward-backward ``sosfiltfilt``) along ``axis``.

    Args:
      x: (..., T) along ``axis``; e.g. emg (C, T).
      sos: (n_sections, 6) from ``design_emg_filter``.
    Returns:
      y: same shape as x; float32 unless x is float64. Magnitude response
      ``|H|**2``, no phase delay. Not causal: for streaming use ``filter_causal``.
    """
    sos = _check_sos(sos)
    x = _check_finite_array(x, "x")
    ax = _normalize_axis(axis, x.ndim)
    need = offline_min_length(sos)
    if x.shape[ax] < need:
        raise ValueError(
            f"filter_offline needs at least {need} samples along axis {axis} for this "
            f"{sos.shape[0]}-section filter (sosfiltfilt edge padding), found {x.shape[ax]}"
        )
    y = scipy.signal.sosfiltfilt(sos, x.astype(np.float64, copy=False), axis=ax)
    return y.astype(_output_dtype(x), copy=False)


def effective_magnitude_response(sos, freqs_hz, sample_rate: float) -> np.ndarray:
    """``|H(f)|**2``: the magnitude response of both ``filter_offline`` and the causal filter.

    Args:
      freqs_hz: (F,) frequencies in Hz.
    Returns:
      (F,) float64 gain (1 = unchanged amplitude).
    """
    sos = _check_sos(sos)
    fs = _check_sample_rate(sample_rate)
    freqs = np.asarray(freqs_hz, dtype=np.float64)
    _, h = scipy.signal.sosfreqz(sos, worN=freqs, fs=fs)
    return np.abs(h) ** 2


# --------------------------------------------------------------------------
# causal streaming filter
# --------------------------------------------------------------------------
class CausalFilterState(NamedTuple):
    """Carried state of the streaming filter (a pytree: a NamedTuple of arrays).

    Attributes:
      sos: (2 * n_sections, 6) float64, the design SOS applied twice in cascade
        (so the magnitude response equals the zero-phase offline filter's).
      zi: (2 * n_sections, C, 2) float64 ``sosfilt`` delay-line state.
    """

    sos: np.ndarray
    zi: np.ndarray

    @property
    def channels(self) -> int:
        return int(self.zi.shape[1])


def _cascade(sos: np.ndarray) -> np.ndarray:
    # Running H twice gives H**2: |H|**2 magnitude, exactly what sosfiltfilt applies.
    return np.concatenate([sos, sos], axis=0)


def causal_filter_init(sos, channels: int, *, steady_state_from=None) -> CausalFilterState:
    """Initial state of the streaming filter for ``channels`` channels.

    Args:
      sos: (n_sections, 6) design SOS (as for ``filter_offline``).
      channels: number of channels C of the chunks that will be filtered.
      steady_state_from: None for a zero state (the filter starts at rest), or
        the first sample of the stream, (C,) (or a chunk (C, T), whose first
        column is used): the state is then the steady state for a constant
        input at that value, which avoids the start-up transient of a DC offset.
    Returns:
      CausalFilterState.
    """
    sos2 = _cascade(_check_sos(sos))
    if not isinstance(channels, (int, np.integer)) or isinstance(channels, bool) or channels < 1:
        raise ValueError(f"channels must be a positive integer, found {channels!r}")
    n = sos2.shape[0]
    if steady_state_from is None:
        zi = np.zeros((n, int(channels), 2), dtype=np.float64)
    else:
        first = _check_finite_array(steady_state_from, "steady_state_from").astype(np.float64)
        if first.ndim == 2:
            if first.shape[1] < 1:
                raise ValueError("steady_state_from chunk (C, T) has no samples (T = 0)")
            first = first[:, 0]
        if first.shape != (int(channels),):
            raise ValueError(
                f"steady_state_from must have shape ({channels},) or ({channels}, T), "
                f"found {np.shape(steady_state_from)}"
            )
        # sosfilt_zi: (n, 2) state for a unit step, already scaled by the DC gain
        # of the preceding sections; scale per channel by the starting value.
        zi = scipy.signal.sosfilt_zi(sos2)[:, None, :] * first[None, :, None]
    return CausalFilterState(sos=sos2, zi=zi)


def causal_filter_apply(x_chunk, state: CausalFilterState) -> tuple[np.ndarray, CausalFilterState]:
    """Filter one chunk causally and return the state to pass with the next chunk.

    Args:
      x_chunk: (C, T) chunk (T may be 0 or 1); channels must match the state.
      state: from ``causal_filter_init`` or the previous call.
    Returns:
      (y (C, T) float32 unless x is float64, new state). Concatenating the
      outputs of consecutive chunks equals ``filter_causal`` of the whole signal.
    """
    if not isinstance(state, CausalFilterState):
        raise ValueError(f"state must be a CausalFilterState from causal_filter_init, found {type(state).__name__}")
    x = _check_finite_array(x_chunk, "x_chunk")
    if x.ndim != 2 or x.shape[0] != state.channels:
        raise ValueError(f"x_chunk must have shape ({state.channels}, T) (channels, time), found {x.shape}")
    if x.shape[1] == 0:
        return x.astype(_output_dtype(x)), state
    y, zf = scipy.signal.sosfilt(state.sos, x.astype(np.float64, copy=False), axis=-1, zi=state.zi)
    return y.astype(_output_dtype(x), copy=False), CausalFilterState(sos=state.sos, zi=zf)


def filter_causal(x, sos, axis: int = -1, *, steady_state: bool = False) -> np.ndarray:
    """Causal one-shot filtering with the streaming filter (SOS applied twice).

    Args:
      x: (..., T) along ``axis``, e.g. emg (C, T).
      sos: (n_sections, 6) design SOS.
      steady_state: start from the steady state of the first sample instead of
        rest (see ``causal_filter_init``).
    Returns:
      y: same shape as x, float32 unless x is float64.
    """
    sos2 = _cascade(_check_sos(sos))
    x = _check_finite_array(x, "x")
    ax = _normalize_axis(axis, x.ndim)
    xf = x.astype(np.float64, copy=False)
    if steady_state and x.shape[ax] > 0:
        first = np.take(xf, 0, axis=ax)
        zi_shape = (sos2.shape[0], *first.shape, 2)
        zi = scipy.signal.sosfilt_zi(sos2).reshape((sos2.shape[0],) + (1,) * first.ndim + (2,)) * first[None, ..., None]
        y, _ = scipy.signal.sosfilt(sos2, xf, axis=ax, zi=np.broadcast_to(zi, zi_shape))
    else:
        y = scipy.signal.sosfilt(sos2, xf, axis=ax)
    return y.astype(_output_dtype(x), copy=False)


# --------------------------------------------------------------------------
# normalisation
# --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class NormStats(Config):
    """Global per-channel z-score statistics, saved beside a model.

    Attributes:
      mean: (C,) float64.
      std: (C,) float64, all > 0.
      count: number of samples (time steps) per channel they were computed from.
    """

    mean: np.ndarray
    std: np.ndarray
    count: int = 0

    def __post_init__(self):
        mean = np.array(self.mean, dtype=np.float64)
        std = np.array(self.std, dtype=np.float64)
        if mean.ndim != 1 or std.shape != mean.shape or mean.size == 0:
            raise ValueError(
                f"NormStats needs mean and std of the same shape (C,), found mean {mean.shape} and std {std.shape}"
            )
        bad = np.flatnonzero(~(np.isfinite(mean) & np.isfinite(std)))
        if bad.size:
            raise ValueError(
                f"NormStats mean and std must be finite, found NaN/Inf at channel(s) {bad.tolist()} "
                f"(mean {mean[bad].tolist()}, std {std[bad].tolist()})"
            )
        bad = np.flatnonzero(~(std > 0))
        if bad.size:
            raise ValueError(
                f"NormStats std must be > 0 for every channel, found std {std[bad].tolist()} at channel(s) "
                f"{bad.tolist()} (a constant or dead channel cannot be z-scored)"
            )
        if int(self.count) < 0:
            raise ValueError(f"NormStats count must be >= 0, found {self.count}")
        mean.setflags(write=False)
        std.setflags(write=False)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)
        object.__setattr__(self, "count", int(self.count))

    @property
    def channels(self) -> int:
        return int(self.mean.shape[0])

    def __eq__(self, other):
        if not isinstance(other, NormStats):
            return NotImplemented
        return (
            self.count == other.count and np.array_equal(self.mean, other.mean) and np.array_equal(self.std, other.std)
        )

    __hash__ = None  # mutable-looking array fields: not hashable


def compute_norm_stats(arrays: Iterable, *, min_std: float = 1e-8) -> NormStats:
    """Global per-channel mean and (population) std over a stream of arrays.

    Each array is combined into running moments with Chan et al.'s parallel
    update (float64), so the result equals ``np.mean``/``np.std`` over the
    concatenation along time, without ever holding it in memory.

    Args:
      arrays: iterable of (C, T_i) arrays, all with the same C (T_i may differ).
      min_std: channels with a std at or below this raise (dead/constant channel).
    Returns:
      NormStats with mean (C,), std (C,), count = sum of T_i.
    """
    n_total = 0
    mean = None
    m2 = None
    channels = None
    for i, a in enumerate(arrays):
        a = _check_finite_array(a, f"array {i}")
        if a.ndim != 2:
            raise ValueError(f"compute_norm_stats expects (C, T) arrays, found shape {a.shape} for array {i}")
        if channels is None:
            channels = a.shape[0]
        elif a.shape[0] != channels:
            raise ValueError(
                f"compute_norm_stats: array {i} has {a.shape[0]} channels, expected {channels} like array 0"
            )
        n_b = a.shape[1]
        if n_b == 0:
            continue
        a = a.astype(np.float64, copy=False)
        mean_b = a.mean(axis=1)
        m2_b = np.sum((a - mean_b[:, None]) ** 2, axis=1)
        if n_total == 0:
            n_total, mean, m2 = n_b, mean_b, m2_b
            continue
        n_ab = n_total + n_b
        delta = mean_b - mean
        mean = mean + delta * (n_b / n_ab)
        m2 = m2 + m2_b + delta**2 * (n_total * n_b / n_ab)
        n_total = n_ab
    if channels is None:
        raise ValueError("compute_norm_stats needs at least one (C, T) array, found an empty iterable")
    if n_total == 0:
        raise ValueError("compute_norm_stats found only arrays with T = 0 samples")
    std = np.sqrt(m2 / n_total)
    dead = np.flatnonzero(std <= min_std)
    if dead.size:
        raise ValueError(
            f"channel(s) {dead.tolist()} have std <= {min_std:g} over {n_total} samples (constant or dead "
            f"electrode); expected every channel to vary"
        )
    return NormStats(mean=mean, std=std, count=n_total)


def normalize(x, stats: NormStats) -> np.ndarray:
    """Z-score with global statistics: ``(x - mean) / std`` per channel.

    Args:
      x: (..., C, T) EMG, channel axis second to last.
      stats: NormStats with C channels (from the training data, saved with the model).
    Returns:
      (..., C, T) float32 (float64 if x is float64).
    """
    if not isinstance(stats, NormStats):
        raise ValueError(f"stats must be a NormStats, found {type(stats).__name__}")
    x = _check_finite_array(x, "x", min_ndim=2)
    if x.shape[-2] != stats.channels:
        raise ValueError(
            f"normalize: x has {x.shape[-2]} channels on axis -2 (shape {x.shape}), the NormStats have {stats.channels}"
        )
    dtype = _output_dtype(x)
    mean = stats.mean.astype(dtype)[:, None]
    std = stats.std.astype(dtype)[:, None]
    return ((x.astype(dtype, copy=False) - mean) / std).astype(dtype, copy=False)


# --------------------------------------------------------------------------
# resampling
# --------------------------------------------------------------------------
def _check_positive_int(v, name: str) -> int:
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
        raise ValueError(f"{name} must be a positive integer, found {v!r}")
    return int(v)


def resample_poly_channels(x, up: int, down: int, axis: int = -1) -> np.ndarray:
    """Polyphase resampling by ``up / down`` along ``axis`` (``scipy.signal.resample_poly``).

    SciPy's default Kaiser FIR low-passes at the lower of the two Nyquist rates.
    Args:
      x: (..., T) along axis, e.g. emg (C, T).
    Returns:
      (..., ceil(T * up / down)), float32 unless x is float64.
    """
    up = _check_positive_int(up, "up")
    down = _check_positive_int(down, "down")
    x = _check_finite_array(x, "x")
    ax = _normalize_axis(axis, x.ndim)
    if x.shape[ax] == 0:
        raise ValueError(f"resample_poly_channels needs at least 1 sample along axis {axis}, found 0")
    y = scipy.signal.resample_poly(x.astype(np.float64, copy=False), up, down, axis=ax)
    return y.astype(_output_dtype(x), copy=False)


def ring_resample_matrix(in_channels: int, out_channels: int) -> np.ndarray:
    """(out_channels, in_channels) float64 circular linear interpolation between evenly spaced ring electrodes.

    Output electrode j sits at ring position j / out_channels, input k at k / in_channels; rows sum to 1.
    Any pair of counts works: the hardware adapter's fixed interpolation (8 -> 16) and the live sources'
    channel-count changes both use it.
    """
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}: expected a positive integer, found {value!r}")
    in_channels, out_channels = int(in_channels), int(out_channels)
    position = np.arange(out_channels) * in_channels / out_channels  # in input-electrode units
    left = np.floor(position).astype(np.int64)
    weight = position - left
    matrix = np.zeros((out_channels, in_channels))
    rows = np.arange(out_channels)
    np.add.at(matrix, (rows, left % in_channels), 1.0 - weight)
    np.add.at(matrix, (rows, (left + 1) % in_channels), weight)
    return matrix


def interpolate_to_times(values, times, new_times, *, axis: int = 0, outside: str = "hold") -> np.ndarray:
    """Linear interpolation of samples taken at ``times`` onto ``new_times``.

    Typical use: camera-rate labels (M, 20) at frame timestamps onto EMG
    timestamps (N,), giving (N, 20).

    Args:
      values: (..., M, ...) with the M samples along ``axis`` (default 0, the
        time-first layout of the HDF5 files).
      times: (M,) strictly increasing, seconds.
      new_times: (N,) seconds (any order).
      outside: what to return for new_times outside [times[0], times[-1]]:
        "hold" repeats the edge sample, "nan" gives NaN, "error" raises.
    Returns:
      values resampled to N samples along ``axis``; float32 unless values are float64.
    """
    if outside not in ("hold", "nan", "error"):
        raise ValueError(f"outside must be 'hold', 'nan' or 'error', found {outside!r}")
    values = _check_finite_array(values, "values")
    ax = _normalize_axis(axis, values.ndim)
    times = _check_finite_array(times, "times").astype(np.float64)
    new_times = _check_finite_array(new_times, "new_times").astype(np.float64)
    if times.ndim != 1 or new_times.ndim != 1:
        raise ValueError(f"times and new_times must be 1-D, found shapes {times.shape} and {new_times.shape}")
    if times.shape[0] != values.shape[ax]:
        raise ValueError(
            f"times has {times.shape[0]} entries but values has {values.shape[ax]} samples along axis {axis}"
        )
    if times.shape[0] < 2:
        raise ValueError(f"interpolate_to_times needs at least 2 samples, found {times.shape[0]}")
    steps = np.diff(times)
    if not np.all(steps > 0):
        k = int(np.argmin(steps))
        raise ValueError(
            f"times must be strictly increasing, found times[{k}]={times[k]!r} >= times[{k + 1}]={times[k + 1]!r}"
        )
    lo, hi = times[0], times[-1]
    out_of_range = (new_times < lo) | (new_times > hi)
    if outside == "error" and np.any(out_of_range):
        raise ValueError(
            f"new_times span [{new_times.min()!r}, {new_times.max()!r}] s, outside the sampled range "
            f"[{lo!r}, {hi!r}] s (outside='error')"
        )
    dtype = _output_dtype(values)
    spline = scipy.interpolate.make_interp_spline(times, values.astype(np.float64, copy=False), k=1, axis=ax)
    out = spline(np.clip(new_times, lo, hi))
    if outside == "nan" and np.any(out_of_range):
        out = np.moveaxis(out, ax, 0)
        out[out_of_range] = np.nan
        out = np.moveaxis(out, 0, ax)
    return out.astype(dtype, copy=False)


@functools.lru_cache(maxsize=16)
def _antialias_fir_cached(factor: int, attenuation_db: float) -> np.ndarray:
    # Pass band up to 80 % of the new Nyquist, stop band from the new Nyquist
    # on: for 2 kHz -> 500 Hz that keeps 0-200 Hz and removes >= 250 Hz, so
    # nothing aliases back into the band the EMG filter keeps.
    nyq_new = 0.5 / factor  # in units of the input sampling rate
    pass_edge, stop_edge = 0.8 * nyq_new, nyq_new
    numtaps, beta = scipy.signal.kaiserord(attenuation_db, (stop_edge - pass_edge) / 0.5)
    numtaps |= 1  # odd length: symmetric type-I FIR with an integer delay
    taps = scipy.signal.firwin(numtaps, 0.5 * (pass_edge + stop_edge), window=("kaiser", beta), fs=1.0)
    taps.setflags(write=False)
    return taps


def antialias_fir(factor: int, *, attenuation_db: float = 60.0) -> np.ndarray:
    """The linear-phase anti-alias FIR used for decimation by ``factor``.

    Pass band 0 .. 0.8 * new Nyquist, stop band (>= ``attenuation_db`` down)
    from the new Nyquist. For 2000 -> 500 Hz: pass 0-200 Hz, stop >= 250 Hz.
    Returns (numtaps,) float64 taps at the input rate.
    """
    factor = _check_positive_int(factor, "factor")
    if factor < 2:
        raise ValueError(f"antialias_fir needs a decimation factor >= 2, found {factor}")
    return _antialias_fir_cached(factor, float(attenuation_db))


def decimate_channels(x, factor: int, axis: int = -1) -> np.ndarray:
    """Anti-aliased decimation by an integer ``factor`` along ``axis``.

    Trailing samples that do not fill a whole output period are dropped, so a
    length T becomes T // factor, and output sample k lines up with input
    sample k * factor. Zero-phase (``resample_poly`` with ``antialias_fir``).

    Args:
      x: (..., T) along axis.
    Returns:
      (..., T // factor), float32 unless x is float64.
    """
    factor = _check_positive_int(factor, "factor")
    x = _check_finite_array(x, "x")
    ax = _normalize_axis(axis, x.ndim)
    n_out = x.shape[ax] // factor
    if n_out < 1:
        raise ValueError(
            f"decimating by {factor} needs at least {factor} samples along axis {axis}, found {x.shape[ax]}"
        )
    if factor == 1:
        return x.astype(_output_dtype(x))
    x = np.take(x, np.arange(n_out * factor), axis=ax)
    y = scipy.signal.resample_poly(x.astype(np.float64, copy=False), 1, factor, axis=ax, window=antialias_fir(factor))
    return y.astype(_output_dtype(x), copy=False)


def simulate_mindrove_view(
    emg_2k,
    *,
    keep_channels: Sequence[int] = MINDROVE_KEEP_CHANNELS,
    factor: int = 4,
    axis: int = -1,
    channel_axis: int | None = None,
) -> np.ndarray:
    """Degrade 16-channel 2 kHz emg2pose EMG to an 8-channel 500 Hz MindRove-like view.

    Keeps ``keep_channels`` of the 16 ring electrodes (default every other one)
    and decimates with ``decimate_channels``: content above 250 Hz is removed
    (>= 60 dB), content below 200 Hz kept. T is trimmed to a multiple of
    ``factor`` (the remainder, < factor samples, is dropped).

    Args:
      emg_2k: (..., 16, T) with the default axes; ``axis`` is the time axis.
      channel_axis: the electrode axis; None means the last axis other than
        ``axis`` (so (..., 16, T) with axis=-1 and (T, 16) with axis=0 both work).
    Returns:
      (..., 8, T // 4) float32 (float64 if input is float64).
    """
    x = _check_finite_array(emg_2k, "emg_2k", min_ndim=2)
    ax = _normalize_axis(axis, x.ndim)
    if channel_axis is None:
        cax = x.ndim - 1 if ax != x.ndim - 1 else x.ndim - 2
    else:
        cax = _normalize_axis(channel_axis, x.ndim, "channel_axis")
    if cax == ax:
        raise ValueError(f"channel_axis and the time axis are both axis {ax}; pass distinct axes")
    if x.shape[cax] != 16:
        raise ValueError(f"simulate_mindrove_view expects 16 emg2pose channels on axis {cax}, found shape {x.shape}")
    keep = list(keep_channels)
    if (
        not keep
        or len(set(keep)) != len(keep)
        or not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) and 0 <= c < 16 for c in keep)
    ):
        raise ValueError(f"keep_channels must be distinct integers in [0, 16), found {tuple(keep_channels)!r}")
    kept = np.take(x, np.asarray(keep, dtype=np.intp), axis=cax)
    return decimate_channels(kept, factor, axis=ax)
