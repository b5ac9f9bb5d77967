"""Direct Conv1D + LSTM models for the MindRove armband (the original v4/v5).

The network maps a short EMG window straight to a hand pose:

    emg (B, 8, T) -> Conv1d(k5, same) -> BatchNorm -> ReLU -> MaxPool 2
                  -> Conv1d(k5, same) -> BatchNorm -> ReLU -> MaxPool 2
                  -> LSTM (2 layers, inter-layer dropout)
                  -> last step ("last") or every step ("sequence")
                  -> Linear -> ReLU -> dropout -> Linear
                  -> joints (B, 21, 3), MANO theta (B, 45) or joint angles (B, 20)

With the defaults it has about 1.0 M parameters, like the original (the
convolutions have no bias: BatchNorm follows and cancels it). The LSTM
is the package's one ``emgjax.models.lstm.LSTM``: a ``lax.scan`` whose input
projection is hoisted out of the loop (one matmul over all steps), PyTorch gate
order (i, f, g, o) with the two PyTorch biases, so original weights map one to
one (params ``lstm/layer_{n}/{kernel_ih, kernel_hh, bias_ih, bias_hh}``). Its
carry is explicit: pass ``initial_carry`` and get the final ``LSTMCarry`` back,
which is what streaming needs to continue a sequence chunk by chunk.

BatchNorm statistics live in the ``batch_stats`` collection (PyTorch momentum
0.1, i.e. Flax momentum 0.9, eps 1e-5). Give ``bn_axis_name`` when the model
runs per device inside a named mapped axis (``shard_map``/``pmap``): the batch
statistics are then averaged over that axis, so a data-parallel step computes
exactly what one device computes on the global batch. Leave it ``None`` for
inference or single-device use; the parameter tree is the same either way.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from emgjax.config import Config
from emgjax.models.layers import COMPUTE_DTYPES, torch_uniform_init
from emgjax.models.lstm import LSTM, LSTMCarry

__all__ = [
    "DirectConfig",
    "DirectModel",
    "sequence_sample_index",
    "lookahead_samples",
    "output_steps",
    "count_params",
]

_OUTPUT_SHAPES = {"joints": (21, 3), "mano": (45,), "angles": (20,)}
_MODES = ("last", "sequence")


@dataclasses.dataclass(frozen=True)
class DirectConfig(Config):
    """Hyper-parameters of the direct Conv1D + LSTM model.

    Defaults are the original v5 (joints) model: input (B, 8, 50) at 500 Hz.
    ``output`` is "joints" (21 x 3 positions, MediaPipe landmark order),
    "mano" (45 axis-angle values) or "angles" (emg2pose's 20 joint angles,
    radians). ``mode`` "last" gives one pose per window
    (from the last LSTM step); "sequence" gives one pose per LSTM step, i.e.
    per ``pool_size ** len(conv_channels)`` input samples. ``compute_dtype``
    "bfloat16" is the precision option (bfloat16 matmul/convolution operands,
    float32 accumulation, state and outputs; docs/performance.md has its cost).
    """

    in_channels: int = 8
    conv_channels: tuple[int, ...] = (64, 128)
    kernel_size: int = 5
    pool_size: int = 2
    lstm_hidden: int = 256
    lstm_layers: int = 2
    dropout: float = 0.3
    head_hidden: int = 128
    output: str = "joints"
    mode: str = "last"
    # Precision option: "bfloat16" runs the convolutions and the LSTM matmuls on bfloat16 operands (float32
    # accumulation); BatchNorm, the LSTM state, the head and the outputs stay float32 (docs/performance.md).
    compute_dtype: str = "float32"

    def __post_init__(self):
        # Lists from JSON become tuples so the config stays hashable.
        object.__setattr__(self, "conv_channels", tuple(int(c) for c in self.conv_channels))
        if self.output not in _OUTPUT_SHAPES:
            raise ValueError(f"DirectConfig.output: expected one of {sorted(_OUTPUT_SHAPES)}, found {self.output!r}")
        if self.mode not in _MODES:
            raise ValueError(f"DirectConfig.mode: expected one of {list(_MODES)}, found {self.mode!r}")
        for name in ("in_channels", "kernel_size", "pool_size", "lstm_hidden", "lstm_layers", "head_hidden"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"DirectConfig.{name}: expected a positive int, found {value!r}")
        if not self.conv_channels or any(c < 1 for c in self.conv_channels):
            raise ValueError(
                f"DirectConfig.conv_channels: expected a non-empty tuple of positive ints, found {self.conv_channels!r}"
            )
        if self.compute_dtype not in COMPUTE_DTYPES:
            raise ValueError(
                f"DirectConfig.compute_dtype: expected one of {list(COMPUTE_DTYPES)}, found {self.compute_dtype!r}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"DirectConfig.dropout: expected a rate in [0, 1), found {self.dropout!r}")

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Shape of one pose: (21, 3) for joints, (45,) for MANO, (20,) for angles."""
        return _OUTPUT_SHAPES[self.output]

    @property
    def time_stride(self) -> int:
        """Input samples per LSTM step (product of the max-pool sizes)."""
        return self.pool_size ** len(self.conv_channels)


def output_steps(num_samples: int, config: DirectConfig) -> int:
    """Number of LSTM steps for an input of ``num_samples`` samples.

    Each max-pool floors (like PyTorch's MaxPool1d), e.g. 50 -> 25 -> 12.
    """
    steps = int(num_samples)
    for _ in config.conv_channels:
        steps //= config.pool_size
    return steps


def sequence_sample_index(num_steps: int, config: DirectConfig) -> np.ndarray:
    """Input sample index each LSTM step is aligned with, shape (num_steps,).

    Step ``i`` pools input samples ``[i * s, (i + 1) * s)`` with
    ``s = config.time_stride``; it is aligned with the last of them,
    ``(i + 1) * s - 1``. Use it to pick per-step targets from sample-rate
    labels (``target[..., sequence_sample_index(n, cfg)]``). Note that the
    'same'-padded convolutions also look ``lookahead_samples(cfg)`` samples
    past that index.
    """
    s = config.time_stride
    return (np.arange(int(num_steps)) + 1) * s - 1


def lookahead_samples(config: DirectConfig) -> int:
    """How many input samples past ``sequence_sample_index`` a step depends on.

    The 'same'-padded convolutions read ``(k - 1) - (k - 1) // 2`` positions
    to the right of each output. Walking from LSTM step 0 down to the input
    (pool reads its block, the convolution reads past it) gives the last input
    sample the step sees; the look-ahead is that minus the step's aligned
    sample. 6 for the defaults (kernel 5, pool 2, two convolutions), so a
    live stream's pose for step i is final only once sample ``4 i + 9`` arrived.
    """
    k, p = config.kernel_size, config.pool_size
    right_pad = (k - 1) - (k - 1) // 2  # SAME puts the extra pad on the right for even k
    last_read = 0  # index read at the current level, starting from step 0 at the top
    for _ in config.conv_channels:
        last_read = last_read * p + (p - 1) + right_pad
    return int(last_read - (config.time_stride - 1))


# PyTorch's default Conv/Linear init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for
# weights (kaiming_uniform with a=sqrt(5)) and biases: the original models were
# trained from it. It also avoids truncated-normal sampling, whose XLA CPU
# compilation takes seconds.
_torch_kernel_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


_torch_bias_init = torch_uniform_init  # (fan_in) -> U(-1/sqrt(fan_in), 1/sqrt(fan_in))


class DirectModel(nn.Module):
    """Conv1D + LSTM model from EMG windows to a pose.

    Call: ``pose, carry = model.apply(variables, emg, train=..., initial_carry=None,
    rngs={"dropout": key}, mutable=["batch_stats"] if train else False)``.

    - ``emg``: (B, in_channels, T) float32, channel-first; T >= time_stride.
    - ``pose``: mode "last": (B, 21, 3) joints, (B, 45) MANO theta or (B, 20) angles;
      mode "sequence": channel-first with time last, (B, 21, 3, T'),
      (B, 45, T') or (B, 20, T') with ``T' = output_steps(T, config)`` (one pose per LSTM
      step; ``sequence_sample_index`` gives each step's input sample).
    - ``initial_carry``/``carry``: LSTM state, an ``LSTMCarry(h, c)`` (``emgjax.models.lstm``), each
      (lstm_layers, B, lstm_hidden); a plain (h, c) tuple is accepted. None starts from zeros.
    """

    config: DirectConfig
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, emg: jax.Array, *, train: bool = False, initial_carry: LSTMCarry | None = None):
        cfg = self.config
        # Static shape checks: shapes are known while tracing, so these raise
        # a clear ValueError even under jit.
        if emg.ndim != 3 or emg.shape[1] != cfg.in_channels:
            raise ValueError(
                f"DirectModel emg: expected shape (batch, {cfg.in_channels}, time), found {tuple(emg.shape)}"
            )
        if emg.shape[2] < cfg.time_stride:
            raise ValueError(
                f"DirectModel emg: expected at least {cfg.time_stride} samples (one LSTM step), found {emg.shape[2]}"
            )
        x = jnp.swapaxes(emg.astype(jnp.float32), 1, 2)  # (B, T, C): Flax convs are channel-last
        compute_dtype = COMPUTE_DTYPES[cfg.compute_dtype]
        for index, width in enumerate(cfg.conv_channels):
            # No conv bias: BatchNorm subtracts the batch mean right after, so
            # a bias has exactly zero gradient, and Adam would turn its
            # rounding-noise gradient into full-size random steps. (A PyTorch
            # conv bias b folds exactly into the BN running mean: mean - b.)
            x = nn.Conv(
                width,
                (cfg.kernel_size,),
                padding="SAME",
                use_bias=False,
                kernel_init=_torch_kernel_init,
                dtype=compute_dtype,
                name=f"conv_{index}",
            )(x).astype(jnp.float32)
            x = nn.BatchNorm(
                use_running_average=not train,
                momentum=0.9,  # PyTorch momentum 0.1
                epsilon=1e-5,
                axis_name=self.bn_axis_name,
                name=f"bn_{index}",
            )(x)
            x = nn.relu(x)
            x = nn.max_pool(x, (cfg.pool_size,), strides=(cfg.pool_size,), padding="VALID")
        lstm = LSTM(x.shape[-1], cfg.lstm_hidden, cfg.lstm_layers, cfg.dropout, compute_dtype, name="lstm")
        x, carry = lstm(x, initial_carry, train=train)  # (B, T', H), LSTMCarry
        if cfg.mode == "last":
            x = x[:, -1]  # (B, H)
        x = nn.relu(self._dense(cfg.head_hidden, x.shape[-1], "head_hidden")(x))
        if cfg.dropout > 0.0:  # (a rate-0 Dropout would still demand a "dropout" rng)
            x = nn.Dropout(cfg.dropout, deterministic=not train)(x)
        x = self._dense(int(np.prod(cfg.output_shape)), cfg.head_hidden, "head_out")(x)
        if cfg.mode == "last":
            return x.reshape(x.shape[0], *cfg.output_shape), carry
        # (B, T', P) -> (B, *pose, T'): channel-first, time last.
        x = x.reshape(x.shape[0], x.shape[1], *cfg.output_shape)
        return jnp.moveaxis(x, 1, -1), carry

    @staticmethod
    def _dense(features: int, fan_in: int, name: str) -> nn.Dense:
        return nn.Dense(features, kernel_init=_torch_kernel_init, bias_init=_torch_bias_init(fan_in), name=name)

    def init_variables(self, rng: jax.Array, num_samples: int = 50, batch: int = 1) -> dict:
        """Initialise ``{"params", "batch_stats"}`` for windows of ``num_samples``."""
        emg = jnp.zeros((batch, self.config.in_channels, num_samples), jnp.float32)
        # jit: one compilation instead of dispatching every init op eagerly.
        return dict(jax.jit(lambda key: self.init({"params": key}, emg, train=False))(rng))


def count_params(params) -> int:
    """Total number of scalars in a parameter tree."""
    return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(params)))
