"""FrequencyUpsampler variants: MindRove 500 Hz -> emg2pose 2 kHz (factor 4).

Input sample n (time n / 500 s) lands on output sample ``factor * n``; the
outputs in between are synthesised. A 500 Hz signal carries nothing above
250 Hz, so whatever an upsampler puts into the 250-1000 Hz band is invented:
the adapter benchmark measures exactly that.

Variants (``UpsamplerConfig.kind``):

- ``"zero_stuff"``: zeros between samples, times ``factor`` (a naive floor).
- ``"hold"``: each sample repeated ``factor`` times (a naive floor).
- ``"linear"``: linear interpolation between consecutive samples (streaming
  form). ``align_corners=True`` gives the original project's window-wide
  interpolation instead, whose output depends on the window length and so
  cannot be streamed.
- ``"sinc"``: band-limited polyphase interpolation with a Kaiser-windowed sinc
  FIR (scipy.signal.firwin), cut-off at the input Nyquist frequency.
- ``"learned_residual"``: a fixed interpolation (``base``: "sinc" or "linear")
  plus a learned residual conv refinement at the output rate, whose last layer
  starts at zero so training starts from the interpolation.
- ``"subpixel"``: a learned sub-pixel (transposed-conv) upsampler: a conv on the
  500 Hz signal producing ``factor`` phases per channel, interleaved into the
  2 kHz signal. Its linear path is initialised to the sinc filter's polyphase
  decomposition; a nonlinear branch (zero-initialised last layer) adds to it.

Every module maps channel-first ``emg: (batch, channels, time)`` to
``(batch, channels, factor * time)``. ``UpsamplerConfig.latency_input_samples``
states how many future input samples a streaming version must wait for.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import scipy.signal

from emgjax.config import Config

UPSAMPLER_KINDS = ("zero_stuff", "hold", "linear", "sinc", "learned_residual", "subpixel")
LEARNED_UPSAMPLER_KINDS = ("learned_residual", "subpixel")


@dataclasses.dataclass(frozen=True)
class UpsamplerConfig(Config):
    """Which upsampler to build and its sizes."""

    kind: Literal["zero_stuff", "hold", "linear", "sinc", "learned_residual", "subpixel"] = "sinc"
    factor: int = 4
    channels: int = 16
    align_corners: bool = False  # "linear" only: the original's window-wide interpolation
    # "sinc" / polyphase init: the FIR spans 2 * half_width input samples.
    half_width: int = 8
    kaiser_beta: float = 6.0
    # learned variants:
    base: Literal["sinc", "linear"] = "sinc"  # "learned_residual" only
    hidden_channels: int = 32
    kernel_size: int = 9
    # "subpixel" only: start the phase filters at the sinc polyphase kernels or at random.
    init: Literal["sinc", "random"] = "sinc"

    def __post_init__(self):
        if self.kind not in UPSAMPLER_KINDS:
            raise ValueError(f"unknown upsampler kind {self.kind!r}; expected one of {UPSAMPLER_KINDS}")
        if self.factor < 1:
            raise ValueError(f"upsampling factor must be >= 1; found {self.factor}")
        if self.base not in ("sinc", "linear"):
            raise ValueError(f"unknown learned_residual base {self.base!r}; expected 'sinc' or 'linear'")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive; found {self.kernel_size}")
        if self.half_width < 1:
            raise ValueError(f"half_width must be >= 1; found {self.half_width}")
        if self.init not in ("sinc", "random"):
            raise ValueError(f"unknown subpixel init {self.init!r}; expected 'sinc' or 'random'")
        if self.align_corners and self.kind != "linear":
            raise ValueError(f"align_corners applies to kind='linear' only; found kind={self.kind!r}")

    @property
    def latency_input_samples(self) -> int:
        """Future input samples a causal (streaming) version must wait for."""
        if self.kind in ("zero_stuff", "hold"):
            return 0
        if self.kind == "linear":
            # align_corners needs the whole window: no finite latency.
            return -1 if self.align_corners else 1
        sinc = self.half_width
        if self.kind == "sinc":
            return sinc
        # Learned refinements run centred convs at the output rate on top of the base.
        refine = -(-2 * ((self.kernel_size - 1) // 2) // self.factor)  # ceil(output samples / factor)
        base = sinc if (self.kind == "subpixel" or self.base == "sinc") else 1
        if self.kind == "subpixel":
            # phase conv (half_width) and the nonlinear branch at the input rate
            return max(base, 2 * ((self.kernel_size - 1) // 2))
        return base + refine


def check_rates(input_rate: float, output_rate: float, factor: int) -> None:
    """Clear error when an upsampling factor does not match the sample rates."""
    if input_rate <= 0 or output_rate <= 0:
        raise ValueError(f"sample rates must be positive; found input {input_rate} Hz, output {output_rate} Hz")
    if abs(input_rate * factor - output_rate) > 1e-6 * output_rate:
        raise ValueError(
            f"upsampler factor {factor} does not match the sample rates: "
            f"{input_rate} Hz x {factor} = {input_rate * factor} Hz, expected {output_rate} Hz"
        )


def sinc_filter(factor: int = 4, half_width: int = 8, kaiser_beta: float = 6.0) -> np.ndarray:
    """Kaiser-windowed sinc interpolation FIR for zero-stuffed input.

    Returns (2 * factor * half_width + 1,) float32 taps with gain ``factor`` so
    the interpolated signal keeps the input's amplitude; tap ``factor*half_width``
    is the centre, where the filter equals 1 (input samples pass through).
    """
    numtaps = 2 * factor * half_width + 1
    taps = scipy.signal.firwin(numtaps, 1.0 / factor, window=("kaiser", kaiser_beta), scale=False)
    # Normalise so the centre tap is exactly 1 / factor: original samples pass unchanged.
    taps = taps / (taps[factor * half_width] * factor)
    return (taps * factor).astype(np.float32)


def polyphase_kernels(taps: np.ndarray, factor: int) -> np.ndarray:
    """Split an interpolation FIR into per-phase kernels over input samples.

    Output sample ``factor*n + r`` equals ``sum_d kernel[r, d] * x[n + d - half]``
    with ``half = (num_taps - 1) // (2 * factor)``.

    Returns: (factor, 2 * half + 1).
    """
    centre = (len(taps) - 1) // 2
    half = -(-centre // factor)
    kernels = np.zeros((factor, 2 * half + 1), np.float32)
    for r in range(factor):
        for i in range(2 * half + 1):
            d = i - half
            tap = r - factor * d + centre
            if 0 <= tap < len(taps):
                kernels[r, i] = taps[tap]
    return kernels


def _interleave_phases(phases: jnp.ndarray) -> jnp.ndarray:
    """(batch, time, channels, factor) -> (batch, factor * time, channels)."""
    batch, time, channels, factor = phases.shape
    return jnp.transpose(phases, (0, 1, 3, 2)).reshape(batch, time * factor, channels)


def _polyphase_apply(x_btc: jnp.ndarray, kernels: jnp.ndarray) -> jnp.ndarray:
    """Depthwise polyphase interpolation. x: (batch, time, channels); kernels (factor, width)."""
    _factor, width = kernels.shape
    half = (width - 1) // 2
    padded = jnp.pad(x_btc, ((0, 0), (half, half), (0, 0)))
    # Stack shifted copies: (batch, time, channels, width), then contract with each phase kernel.
    time = x_btc.shape[1]
    windows = jnp.stack([padded[:, i : i + time] for i in range(width)], axis=-1)
    phases = jnp.einsum("btcw,rw->btcr", windows, kernels)
    return _interleave_phases(phases)


def linear_upsample(x_btc: jnp.ndarray, factor: int, align_corners: bool = False) -> jnp.ndarray:
    """Linear interpolation. x: (batch, time, channels) -> (batch, factor * time, channels)."""
    time = x_btc.shape[1]
    if align_corners:
        # The original: the window's first and last samples are pinned to the ends.
        positions = jnp.linspace(0.0, time - 1.0, factor * time)
    else:
        # Sample n sits at output factor*n; the last factor-1 outputs hold the edge.
        positions = jnp.minimum(jnp.arange(factor * time) / factor, time - 1.0)
    left = jnp.floor(positions).astype(jnp.int32)
    right = jnp.minimum(left + 1, time - 1)
    weight = (positions - left)[None, :, None].astype(x_btc.dtype)
    return x_btc[:, left] * (1.0 - weight) + x_btc[:, right] * weight


class FrequencyUpsampler(nn.Module):
    """500 Hz -> 2 kHz upsampler; see the module docstring for the variants."""

    config: UpsamplerConfig

    @nn.compact
    def __call__(self, emg: jnp.ndarray, *, train: bool = False) -> jnp.ndarray:
        """emg: (batch, channels, time) -> (batch, channels, factor * time)."""
        cfg = self.config
        if emg.ndim != 3 or emg.shape[1] != cfg.channels:
            raise ValueError(
                f"FrequencyUpsampler expects emg shaped (batch, {cfg.channels}, time); found {tuple(emg.shape)}"
            )
        x = jnp.swapaxes(emg, 1, 2)  # (batch, time, channels)
        factor = cfg.factor
        if cfg.kind == "zero_stuff":
            out = jnp.zeros((x.shape[0], x.shape[1] * factor, x.shape[2]), x.dtype).at[:, ::factor].set(x * factor)
        elif cfg.kind == "hold":
            out = jnp.repeat(x, factor, axis=1)
        elif cfg.kind == "linear":
            out = linear_upsample(x, factor, cfg.align_corners)
        elif cfg.kind == "sinc":
            out = self._sinc(x)
        elif cfg.kind == "learned_residual":
            base = self._sinc(x) if cfg.base == "sinc" else linear_upsample(x, factor)
            out = base + self._refine(base, "refine")
        else:
            out = self._subpixel(x)
        return jnp.swapaxes(out, 1, 2)

    def _sinc_kernels(self) -> np.ndarray:
        cfg = self.config
        return polyphase_kernels(sinc_filter(cfg.factor, cfg.half_width, cfg.kaiser_beta), cfg.factor)

    def _sinc(self, x):
        return _polyphase_apply(x, jnp.asarray(self._sinc_kernels()))

    def _refine(self, x, name):
        """A residual conv branch (zero at initialisation). x: (batch, time, channels)."""
        cfg = self.config
        h = nn.Conv(cfg.hidden_channels, (cfg.kernel_size,), padding="SAME", name=f"{name}_in")(x)
        h = nn.gelu(h)
        return nn.Conv(
            x.shape[-1],
            (cfg.kernel_size,),
            padding="SAME",
            kernel_init=nn.initializers.zeros_init(),
            name=f"{name}_out",
        )(h)

    def _subpixel(self, x):
        cfg = self.config
        channels, factor = x.shape[-1], cfg.factor
        kernels = self._sinc_kernels()  # (factor, width)
        width = kernels.shape[1]

        def phase_init(key, shape, dtype=jnp.float32):
            # kernel[i, c_in, c*factor + r] = kernels[r, i] when c_in == c: depthwise sinc phases.
            eye = np.eye(channels, dtype=np.float32)
            init = np.einsum("ri,cd->icdr", kernels, eye).reshape(width, channels, channels * factor)
            return jnp.asarray(init, dtype)

        init = phase_init if cfg.init == "sinc" else nn.initializers.lecun_normal()
        linear = nn.Conv(channels * factor, (width,), padding="SAME", use_bias=False, kernel_init=init, name="phases")(
            x
        )
        h = nn.gelu(nn.Conv(cfg.hidden_channels, (cfg.kernel_size,), padding="SAME", name="branch_in")(x))
        branch = nn.Conv(
            channels * factor,
            (cfg.kernel_size,),
            padding="SAME",
            kernel_init=nn.initializers.zeros_init(),
            name="branch_out",
        )(h)
        phases = (linear + branch).reshape(x.shape[0], x.shape[1], channels, factor)
        return _interleave_phases(phases)


def count_params(variables) -> int:
    """Number of scalar parameters in a variables/params pytree."""
    return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(variables)))
