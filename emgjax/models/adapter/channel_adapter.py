"""ChannelAdapter variants: 8 MindRove electrodes -> 16 emg2pose electrodes.

Both bands are rings of electrodes around the forearm. We assume the 8 MindRove
electrodes sit where every other emg2pose electrode sits (the geometry that
`emgjax.data.signal.simulate_mindrove_view` simulates: emg2pose channel 2k is
MindRove channel k). Electrodes in between were never measured; every variant
below has to synthesise them from their neighbours.

Variants (``ChannelAdapterConfig.kind``):

- ``"zero_fill"``: fixed; measured electrodes pass through, the unmeasured
  ones are zero (a naive floor).
- ``"duplicate"``: fixed; each measured electrode is copied to its unmeasured
  neighbour (a naive floor).
- ``"interpolation"``: fixed circular linear interpolation on the ring, no
  parameters. Measured electrodes pass through; a synthesised electrode is the
  mean of its two ring neighbours.
- ``"linear"``: a learned 16x8 matrix (+ bias), initialised to the
  interpolation matrix, applied to every time sample.
- ``"conv"``: the original project's learned temporal-conv expansion: Conv1d
  8->hidden (kernel k, "same") -> BatchNorm -> ReLU -> dropout -> Conv1d
  hidden->16 (kernel k) -> BatchNorm -> ReLU. The original ends in ReLU, which
  rectifies a signed EMG signal; ``final_activation=True`` keeps that final
  BatchNorm+ReLU (the original design, with ``init="random"``). With
  ``init="interpolation"`` (the default) the conv branch is added to the
  interpolation and its last conv starts at zero, so training starts from the
  interpolation instead of from noise. That residual form cannot end in the
  final ReLU: ReLU's gradient at the branch's zero start is zero, so the branch
  would never train; the config refuses the combination.

All variants are pure Flax modules over channel-first input
``emg: (batch, in_channels, time)`` returning ``(batch, out_channels, time)``.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from emgjax.config import Config
from emgjax.data.signal import ring_resample_matrix

ADAPTER_KINDS = ("zero_fill", "duplicate", "interpolation", "linear", "conv")
FIXED_ADAPTER_KINDS = ("zero_fill", "duplicate", "interpolation")


@dataclasses.dataclass(frozen=True)
class ChannelAdapterConfig(Config):
    """Which channel adapter to build, and its sizes."""

    kind: Literal["zero_fill", "duplicate", "interpolation", "linear", "conv"] = "linear"
    in_channels: int = 8
    out_channels: int = 16
    # "conv" only:
    hidden_channels: int = 32
    kernel_size: int = 5
    dropout: float = 0.2
    final_activation: bool = False  # True: the original's final BatchNorm + ReLU (needs init="random")
    init: Literal["random", "interpolation"] = "interpolation"

    def __post_init__(self):
        if self.kind not in ADAPTER_KINDS:
            raise ValueError(f"unknown channel adapter kind {self.kind!r}; expected one of {ADAPTER_KINDS}")
        if self.in_channels < 1 or self.out_channels < 1:
            raise ValueError(
                "channel counts must be positive; "
                f"found in_channels={self.in_channels}, out_channels={self.out_channels}"
            )
        if self.out_channels % self.in_channels != 0:
            raise ValueError(
                "the ring interpolation needs out_channels to be a multiple of in_channels; "
                f"found in_channels={self.in_channels}, out_channels={self.out_channels}"
            )
        if self.init not in ("random", "interpolation"):
            raise ValueError(f"unknown init {self.init!r}; expected 'random' or 'interpolation'")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive (centred 'same' conv); found {self.kernel_size}")
        if self.kind == "conv" and self.final_activation and self.init == "interpolation":
            raise ValueError(
                "conv adapter: final_activation=True with init='interpolation' never trains (the final ReLU has "
                "zero gradient at the zero-initialised residual branch); use init='random' for the original "
                "design or final_activation=False"
            )

    @property
    def latency_samples(self) -> int:
        """Look-ahead in input samples a streaming version must wait for."""
        if self.kind == "conv":
            # Two centred convs, each looking (k - 1) / 2 samples ahead.
            return 2 * ((self.kernel_size - 1) // 2)
        return 0


def ring_interpolation_matrix(in_channels: int = 8, out_channels: int = 16) -> np.ndarray:
    """Circular linear interpolation from ``in_channels`` to ``out_channels`` ring electrodes.

    Output electrode j sits at ring position j / out_channels; input electrode k at
    k / in_channels. Each output is the linear interpolation of the two input
    electrodes around it (wrapping around the ring).

    Returns: (out_channels, in_channels) float32 matrix whose rows sum to 1.
    """
    if out_channels % in_channels != 0:
        raise ValueError(f"out_channels ({out_channels}) must be a multiple of in_channels ({in_channels})")
    return ring_resample_matrix(in_channels, out_channels).astype(np.float32)


def fixed_adapter_matrix(kind: str, in_channels: int = 8, out_channels: int = 16) -> np.ndarray:
    """The (out_channels, in_channels) matrix of a parameter-free adapter kind."""
    if kind == "interpolation":
        return ring_interpolation_matrix(in_channels, out_channels)
    if out_channels % in_channels != 0:
        raise ValueError(f"out_channels ({out_channels}) must be a multiple of in_channels ({in_channels})")
    ratio = out_channels // in_channels
    matrix = np.zeros((out_channels, in_channels), np.float32)
    for j in range(out_channels):
        source, offset = divmod(j, ratio)
        if kind == "duplicate" or offset == 0:
            matrix[j, source] = 1.0
        elif kind != "zero_fill":
            raise ValueError(f"{kind!r} is not a fixed adapter kind; expected one of {FIXED_ADAPTER_KINDS}")
    return matrix


def _apply_channel_matrix(matrix: jnp.ndarray, emg: jnp.ndarray) -> jnp.ndarray:
    # (out, in) x (batch, in, time) -> (batch, out, time)
    return jnp.einsum("oi,bit->bot", matrix, emg)


class ChannelAdapter(nn.Module):
    """8 -> 16 electrode adapter; see the module docstring for the variants."""

    config: ChannelAdapterConfig

    @nn.compact
    def __call__(self, emg: jnp.ndarray, *, train: bool = False) -> jnp.ndarray:
        """emg: (batch, in_channels, time) -> (batch, out_channels, time)."""
        cfg = self.config
        if emg.ndim != 3 or emg.shape[1] != cfg.in_channels:
            raise ValueError(
                f"ChannelAdapter expects emg shaped (batch, {cfg.in_channels}, time); found {tuple(emg.shape)}"
            )
        interpolation = ring_interpolation_matrix(cfg.in_channels, cfg.out_channels)
        if cfg.kind in FIXED_ADAPTER_KINDS:
            return _apply_channel_matrix(
                jnp.asarray(fixed_adapter_matrix(cfg.kind, cfg.in_channels, cfg.out_channels)), emg
            )
        if cfg.kind == "linear":
            init = (
                (lambda key, shape, dtype=jnp.float32: jnp.asarray(interpolation, dtype))
                if cfg.init == "interpolation"
                else nn.initializers.lecun_normal()
            )
            matrix = self.param("matrix", init, (cfg.out_channels, cfg.in_channels))
            bias = self.param("bias", nn.initializers.zeros_init(), (cfg.out_channels,))
            return _apply_channel_matrix(matrix, emg) + bias[None, :, None]
        return self._conv(emg, interpolation, train)

    def _conv(self, emg, interpolation, train):
        cfg = self.config
        x = jnp.swapaxes(emg, 1, 2)  # (batch, time, channels) for flax convs

        def batch_norm(name):
            return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name=name)

        x = nn.Conv(cfg.hidden_channels, (cfg.kernel_size,), padding="SAME", name="conv_in")(x)
        x = batch_norm("norm_in")(x)
        x = nn.relu(x)
        x = nn.Dropout(cfg.dropout, deterministic=not train)(x)
        residual = cfg.init == "interpolation"
        last_init = nn.initializers.zeros_init() if residual else nn.initializers.lecun_normal()
        x = nn.Conv(cfg.out_channels, (cfg.kernel_size,), padding="SAME", kernel_init=last_init, name="conv_out")(x)
        if cfg.final_activation:
            x = batch_norm("norm_out")(x)
            x = nn.relu(x)
        out = jnp.swapaxes(x, 1, 2)
        if residual:
            out = out + _apply_channel_matrix(jnp.asarray(interpolation), emg)
        return out
