"""Causal preprocessing of a live stream, the input-spec check, and streaming resampling.

* `Preprocessor` runs the causal EMG filter of `emgjax.data.signal` (notch + band-pass, applied twice
  so its magnitude response equals the offline zero-phase filter's) chunk by chunk with carried state,
  then optionally the model's global z-score (`NormStats`). Chunked output equals the one-shot
  ``filter_causal`` output of the whole stream.
* `check_input_spec` refuses a source whose channels or rate differ from a model's input spec before
  anything streams, or wraps it in a `ResampledSource` when resampling is asked for explicitly.
* `ResampledSource` resamples by a rational factor with a causal polyphase FIR whose state is carried
  from chunk to chunk (equal to ``scipy.signal.upfirdn`` of the whole stream, cut to length).
"""

from __future__ import annotations

import fractions
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.signal

from emgjax.data.signal import (
    CausalFilterState,
    NormStats,
    antialias_fir,
    causal_filter_apply,
    causal_filter_init,
    design_emg_filter,
    normalize,
)
from emgjax.stream.sources import Block, BlockSource, Chunk

__all__ = ["Preprocessor", "SpecMismatchError", "check_input_spec", "ResampledSource", "resampling_filter"]


class Preprocessor:
    """Causal filter (and optional z-score) with state carried from chunk to chunk.

    Args:
      sample_rate: the stream's rate in Hz.
      channels: the stream's channel count.
      sos: a design from ``design_emg_filter``; default: notch at ``notch_hz`` and a band-pass
        ``band`` of order ``order`` (the high edge is lowered to 0.45 × rate when it would pass Nyquist,
        e.g. 10–112.5 Hz for the SDK's 250 Hz synthetic board).
      norm: the model's training statistics, or None for no z-score.
      steady_state: start the filter from the steady state of the first sample (no start-up transient
        from the electrodes' DC offset) rather than at rest.
    """

    def __init__(
        self,
        sample_rate: float,
        channels: int,
        *,
        sos: np.ndarray | None = None,
        notch_hz: float | None = 60.0,
        band: tuple[float | None, float | None] | None = (10.0, 200.0),
        order: int = 2,
        norm: NormStats | None = None,
        steady_state: bool = True,
    ):
        self.sample_rate = float(sample_rate)
        self.channels = int(channels)
        if sos is None:
            if band is not None and band[1] is not None and band[1] >= 0.5 * self.sample_rate:
                band = (band[0], 0.45 * self.sample_rate)
            sos = design_emg_filter(self.sample_rate, notch_hz=notch_hz, band=band, order=order)
        self.sos = np.asarray(sos, np.float64)
        if norm is not None and (not isinstance(norm, NormStats) or norm.channels != self.channels):
            found = f"{norm.channels} channels" if isinstance(norm, NormStats) else type(norm).__name__
            raise ValueError(f"norm: expected NormStats for {self.channels} channels, found {found}")
        self.norm = norm
        self.steady_state = bool(steady_state)
        self.state: CausalFilterState | None = None
        causal_filter_init(self.sos, self.channels)  # checks sos and channels now, not on the first chunk

    def reset(self) -> None:
        """Forget the filter state (the next chunk starts the filter afresh)."""
        self.state = None

    def process(self, emg: np.ndarray) -> np.ndarray:
        """Filter (channels, n) samples that follow the previous call's; returns (channels, n) float32."""
        emg = np.asarray(emg)
        if emg.ndim != 2 or emg.shape[0] != self.channels:
            raise ValueError(f"emg: expected shape ({self.channels}, n) (channels, samples), found {emg.shape}")
        if self.state is None:
            first = emg[:, :1] if self.steady_state and emg.shape[1] else None
            self.state = causal_filter_init(self.sos, self.channels, steady_state_from=first)
        out, self.state = causal_filter_apply(emg.astype(np.float32, copy=False), self.state)
        if self.norm is not None:
            out = normalize(out, self.norm)
        return out

    def __call__(self, chunk: Chunk) -> Chunk:
        """The chunk with its EMG filtered (timestamps, gap and filled marks kept)."""
        return Chunk(
            emg=self.process(chunk.emg),
            timestamps=chunk.timestamps,
            gap=chunk.gap,
            filled=chunk.filled,
            lost_samples=chunk.lost_samples,
            index=chunk.index,
        )


class SpecMismatchError(ValueError):
    """A source's channels or rate differ from what the model expects."""


def _spec(spec: Mapping[str, Any]) -> tuple[int, float]:
    if not isinstance(spec, Mapping) or not {"channels", "sample_rate"} <= set(spec):
        raise ValueError(f"spec: expected a mapping with keys 'channels' and 'sample_rate', found {spec!r}")
    channels, rate = spec["channels"], spec["sample_rate"]
    if not isinstance(channels, (int, np.integer)) or isinstance(channels, bool) or channels < 1:
        raise ValueError(f"spec channels: expected a positive integer, found {channels!r}")
    if not isinstance(rate, (int, float, np.number)) or not (math.isfinite(float(rate)) and float(rate) > 0):
        raise ValueError(f"spec sample_rate: expected a positive number of Hz, found {rate!r}")
    return int(channels), float(rate)


def check_input_spec(
    source: BlockSource, spec: Mapping[str, Any], *, resample: bool = False, chunk_samples: int | None = None
) -> BlockSource:
    """The source itself if it matches ``spec`` ({channels, sample_rate}), else a clear refusal.

    Call it before streaming starts. With ``resample=True`` a rate mismatch is bridged by a
    `ResampledSource` (``chunk_samples`` at the new rate; default: the same duration as the source's
    chunks). Channels are never invented: a channel mismatch is always refused.

    Raises:
      SpecMismatchError: e.g. "source delivers 8 channels at 500 Hz; the model expects 16 channels at 2000 Hz".
    """
    channels, rate = _spec(spec)
    found = f"{source.name} delivers {source.channels} channels at {source.sample_rate:g} Hz"
    wanted = f"the model expects {channels} channels at {rate:g} Hz"
    if source.channels != channels:
        raise SpecMismatchError(f"{found}; {wanted} (a different electrode count cannot be streamed)")
    if math.isclose(source.sample_rate, rate, rel_tol=1e-9):
        return source
    if not resample:
        raise SpecMismatchError(f"{found}; {wanted} (ask for resampling explicitly to stream it anyway)")
    return ResampledSource(source, rate, chunk_samples=chunk_samples)


def resampling_filter(up: int, down: int) -> np.ndarray:
    """FIR taps (at the upsampled rate, gain ``up``) for resampling by ``up / down``.

    Pure decimation (``up == 1``) uses the anti-alias FIR of `emgjax.data.signal.antialias_fir`; otherwise
    the Kaiser-window design of ``scipy.signal.resample_poly`` (cut-off at the lower Nyquist rate).
    """
    if up == 1 and down > 1:
        return np.asarray(antialias_fir(down), np.float64)
    factor = max(up, down)
    taps = scipy.signal.firwin(2 * 10 * factor + 1, 1.0 / factor, window=("kaiser", 5.0))
    return np.asarray(taps * up, np.float64)


class ResampledSource(BlockSource):
    """Another source resampled to ``sample_rate`` by a rational factor, causally, state carried across chunks.

    The FIR delays the signal by ``delay_s`` (half its length); timestamps are the source's clock at the
    output positions (not shifted by the delay). Gaps and filled marks move to the output sample at or
    after them; lost-sample counts are scaled by the rate ratio.

    Args:
      inner: the source to resample (closed with this one).
      sample_rate: the output rate in Hz; the ratio to the input rate must be a fraction with terms ≤ 1000.
      chunk_samples: output samples per chunk (default: the inner chunk's duration).
    """

    def __init__(self, inner: BlockSource, sample_rate: float, *, chunk_samples: int | None = None):
        ratio = fractions.Fraction(float(sample_rate) / inner.sample_rate).limit_denominator(1000)
        if not math.isclose(float(ratio) * inner.sample_rate, float(sample_rate), rel_tol=1e-9):
            raise ValueError(
                f"sample_rate: cannot resample {inner.sample_rate:g} Hz to {float(sample_rate):g} Hz by a ratio "
                f"of small integers (found about {ratio})"
            )
        if chunk_samples is None:
            chunk_samples = max(1, round(inner.chunk_samples * float(ratio)))
        super().__init__(
            channels=inner.channels, sample_rate=sample_rate, chunk_samples=chunk_samples, units=inner.units
        )
        self.inner = inner
        self.up, self.down = ratio.numerator, ratio.denominator
        self.name = f"{inner.name} resampled to {self.sample_rate:g} Hz"
        self.taps = resampling_filter(self.up, self.down)
        self.delay_s = (self.taps.size - 1) / 2 / (inner.sample_rate * self.up)
        self._zi = np.zeros((inner.channels, self.taps.size - 1))
        self._up_position = 0  # index of the next input sample on the upsampled grid
        self._prev_time: float | None = None

    def info(self) -> dict[str, Any]:
        return {**self.inner.info(), "resampled_to_hz": self.sample_rate, "resampled_from_hz": self.inner.sample_rate}

    def _start(self) -> None:
        self.inner.start()

    def _stop(self) -> None:
        self.inner.close()

    def _read_block(self) -> Block | None:
        chunk = self.inner.read_chunk()
        if chunk is None:
            return None
        n = chunk.samples
        stuffed = np.zeros((self.channels, n * self.up))
        stuffed[:, :: self.up] = chunk.emg
        filtered, self._zi = scipy.signal.lfilter(self.taps, 1.0, stuffed, axis=1, zi=self._zi)
        # Keep the upsampled samples whose global index is a multiple of `down`.
        first = (-self._up_position) % self.down
        keep = np.arange(first, n * self.up, self.down)
        self._up_position += n * self.up
        if keep.size == 0:
            return Block(np.zeros((self.channels, 0)), np.zeros(0), np.zeros(0, np.int64))
        source_index = keep // self.up  # the input sample at or before each output sample
        fraction = (keep % self.up) / self.up
        period = 1.0 / self.inner.sample_rate
        times = chunk.timestamps[source_index] + fraction * period
        # A gap or fill at input sample i lands on the first output sample at or after it.
        marks = np.searchsorted(keep, np.arange(n) * self.up)
        lost = np.zeros(keep.size, np.int64)
        filled = np.zeros(keep.size, bool)
        for i in np.flatnonzero(chunk.gap | chunk.filled):
            j = min(int(marks[i]), keep.size - 1)
            if chunk.gap[i]:
                lost[j] += max(1, round(self._lost_at(chunk, int(i)) * self.up / self.down))
            filled[j] |= bool(chunk.filled[i])
        self._prev_time = float(chunk.timestamps[-1])
        return Block(filtered[:, keep], times, lost, filled)

    def _lost_at(self, chunk: Chunk, i: int) -> int:
        before = chunk.timestamps[i - 1] if i > 0 else self._prev_time
        if before is None:
            return 1
        return max(1, round((chunk.timestamps[i] - before) * self.inner.sample_rate) - 1)
