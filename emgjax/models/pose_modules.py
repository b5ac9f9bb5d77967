"""emg2pose pose modules (PoseModule, StatePoseModule, VEMG2PoseWithInitialState) and the pure API.

Public arrays are channel-first, as emg2pose batches are:
``emg (B, C, T)``, ``joint_angles (B, 20, T)``, ``no_ik_failure (B, T)`` bool.
The network runs on (B, T, C) after one transpose at the entry.

Rollout (state / vemg2pose kinds): the network features (B, T', F) are
resampled to `rollout_freq` (n = round(seconds beyond context · 50) steps,
linear, align_corners=True over the whole window), the decoder's feature
projection is computed for all n steps at once, then one `lax.scan` feeds each
step's pose back. Predictions are aligned to the targets (sliced to
[left_context : T − right_context]) by linear interpolation with
align_corners=False, the mask by nearest neighbour — PyTorch's
`F.interpolate` index arithmetic in float32, reproduced on the host (shapes
are static), so the gathers are compile-time constants.

Pure functions (config static under `jax.jit`):
  init_variables(config, rng) -> variables
  features(config, variables, emg) -> (B, F, T')
  predict_pose(config, variables, emg, initial_pos) -> (B, 20, n)   raw, before alignment
  pose_forward(config, variables, emg, joint_angles, no_ik_failure, provide_initial_pos) -> (pred, target, mask)
  pose_forward_train(...) -> ((pred, target, mask), updated batch_stats)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from emgjax import errors
from emgjax.models.configs import NeuroPoseConfig, PoseModelConfig, TdsNetworkConfig
from emgjax.models.decoders import make_decoder
from emgjax.models.hoisted_scan import scan_hoisted
from emgjax.models.layers import COMPUTE_DTYPES
from emgjax.models.neuropose import NeuroPose
from emgjax.models.tds import TdsNetwork

# The largest (traced) batch whose rollout takes its decoder weight gradients out of the loop. Measured
# (tracking_vemg2pose, 11,790-sample windows, rollout forward + backward, docs/performance.md): −30 % time at
# batch 1 and 8, −20 % at 16, none at 32 (where the hoisted form's stacked per-step gradients cost as much).
HOISTED_MAX_BATCH = 16

# ----------------------------------------------------------------------------- interpolation (PyTorch F.interpolate)


def linear_interp_indices(in_len: int, out_len: int, align_corners: bool):
    """PyTorch's 1-D linear interpolation weights, bit-compatible with its float32 CPU kernel.

    Returns (i0, i1, w1) with out[j] = (1 − w1[j])·x[i0[j]] + w1[j]·x[i1[j]].
    PyTorch rounds the scale to float32 but evaluates the source position in
    double before rounding it to float32; matching that matters: at 500 → 20,000
    samples a float32 position is off by up to 3e-5 samples.
    """
    if in_len < 1 or out_len < 1:
        raise ValueError(f"interpolation: expected positive lengths, found in {in_len}, out {out_len}")
    dst = np.arange(out_len, dtype=np.float64)
    if align_corners:
        scale = np.float64(np.float32((in_len - 1) / (out_len - 1))) if out_len > 1 else 0.0
        src = (scale * dst).astype(np.float32)
    else:
        scale = np.float64(np.float32(in_len / out_len))
        src = np.maximum(scale * (dst + 0.5) - 0.5, 0.0).astype(np.float32)
    i0 = np.minimum(src.astype(np.int64), in_len - 1)
    w1 = (src - i0.astype(np.float32)).astype(np.float32)
    i1 = np.where(i0 < in_len - 1, i0 + 1, i0)
    return i0, i1, w1


def nearest_interp_indices(in_len: int, out_len: int) -> np.ndarray:
    """PyTorch mode="nearest": src = min(floor(dst · in/out), in − 1), float32 scale."""
    scale = np.float32(in_len / out_len)
    src = np.floor(np.arange(out_len, dtype=np.float32) * scale).astype(np.int64)
    return np.minimum(src, in_len - 1)


def resample_linear(x: jax.Array, out_len: int, axis: int, align_corners: bool) -> jax.Array:
    """Linear resampling of `x` along `axis` to `out_len` samples (static shapes)."""
    in_len = x.shape[axis]
    if in_len == out_len:
        return x  # both index maps are exactly the identity for equal lengths
    i0, i1, w1 = linear_interp_indices(in_len, out_len, align_corners)
    shape = [1] * x.ndim
    shape[axis] = out_len
    w1 = jnp.asarray(w1.reshape(shape), x.dtype)
    x0 = jnp.take(x, jnp.asarray(i0), axis=axis)
    x1 = jnp.take(x, jnp.asarray(i1), axis=axis)
    return (1 - w1) * x0 + w1 * x1


def align_predictions(pred: jax.Array, n_time: int) -> jax.Array:
    """pred: (B, C, n) -> (B, C, n_time); linear, align_corners=False (Meta's `align_predictions`)."""
    return resample_linear(pred, n_time, axis=-1, align_corners=False)


def align_mask(mask: jax.Array, n_time: int) -> jax.Array:
    """mask: (B, T) bool -> (B, n_time) by nearest neighbour (identity when T == n_time)."""
    if mask.shape[-1] == n_time:
        return mask
    return jnp.take(mask, jnp.asarray(nearest_interp_indices(mask.shape[-1], n_time)), axis=-1)


# ----------------------------------------------------------------------------- the Flax module


def make_network(config, compute_dtype: Any = None) -> nn.Module:
    if isinstance(config, TdsNetworkConfig):
        return TdsNetwork(config, compute_dtype, name="network")
    if isinstance(config, NeuroPoseConfig):
        return NeuroPose(config, name="network")
    raise ValueError(f"network config: expected TdsNetworkConfig or NeuroPoseConfig, found {type(config).__name__}")


class Emg2PoseNet(nn.Module):
    """One emg2pose pose module. Variables: params/network/…, params/decoder/…, batch_stats/… (BatchNorm only).

    `__call__(emg (B, C, T), initial_pos (B, 20)) -> raw predictions (B, 20, n)` where n is the
    rollout length (state/vemg2pose) or the network's output length (pose).
    """

    config: PoseModelConfig

    def setup(self):
        cfg = self.config
        compute_dtype = COMPUTE_DTYPES[cfg.compute_dtype]
        self.network = make_network(cfg.network, compute_dtype)
        if cfg.decoder is not None:
            state = cfg.num_joints if cfg.state_condition else 0
            self.decoder = make_decoder(cfg.decoder, cfg.decoder.in_channels - state, compute_dtype=compute_dtype)

    def features(self, emg: jax.Array, train: bool = False) -> jax.Array:
        """emg: (B, C, T) -> network features (B, T', F), time-major-in-batch layout."""
        return self.network(jnp.swapaxes(emg, 1, 2), train)

    def __call__(self, emg: jax.Array, initial_pos: jax.Array, train: bool = False) -> jax.Array:
        cfg = self.config
        feats = self.features(emg, train)
        if cfg.kind == "pose":
            pred = jnp.swapaxes(feats, 1, 2)  # (B, 20, T')
            if cfg.predict_vel:
                pred = initial_pos[..., None] + jnp.cumsum(pred, axis=-1)
            return pred
        return self._rollout(feats, initial_pos, emg.shape[-1])

    def _rollout(self, feats: jax.Array, initial_pos: jax.Array, num_samples: int) -> jax.Array:
        cfg = self.config
        n_steps = cfg.rollout_steps(num_samples)
        if n_steps < 1:
            raise ValueError(
                f"emg: expected a window giving at least one rollout step (>= {cfg.min_window_length()} samples), "
                f"found {num_samples} samples"
            )
        feats = resample_linear(feats, n_steps, axis=1, align_corners=True)  # (B, n, F)
        projected, weights = self.decoder.prepare_rollout(feats)  # (n, B, P)
        # The decoder kind fixes both the weights type and its step function; they travel together.
        step: Callable[..., tuple[Any, jax.Array]] = type(self.decoder).rollout_step
        carry0 = self.decoder.initial_carry(feats.shape[0], feats.dtype)
        state_condition = cfg.state_condition

        def body(weights, carry, inputs, dot):
            decoder_carry, previous = carry
            projected_t, t = inputs
            decoder_carry, out = step(weights, decoder_carry, projected_t, previous if state_condition else None, dot)
            pose = next_pose(cfg, out, previous, t)
            return (decoder_carry, pose), pose

        initial_pos = initial_pos.astype(feats.dtype)
        # Up to HOISTED_MAX_BATCH windows, the decoder's weight gradients are formed after the loop
        # (emgjax.models.hoisted_scan); above it, autodiff's accumulation in the loop is as fast.
        _, poses = scan_hoisted(
            body,
            weights,
            (carry0, initial_pos),
            (projected, jnp.arange(n_steps)),
            hoist=feats.shape[0] <= HOISTED_MAX_BATCH,
            compute_dtype=COMPUTE_DTYPES[cfg.compute_dtype],
        )
        return jnp.transpose(poses, (1, 2, 0))  # (n, B, 20) -> (B, 20, n)


def next_pose(config: PoseModelConfig, out: jax.Array, previous: jax.Array, step: jax.Array) -> jax.Array:
    """The pose one decoder output makes (emg2pose's rollout rule), shared by the windowed and streaming rollouts.

    out: (B, decoder outputs); previous: (B, 20) the last pose; step: () int, the rollout step. vemg2pose
    outputs positions for its first ``num_position_rollout_steps`` steps and velocities after them;
    other kinds output velocities (``predict_vel``) or positions.
    """
    if config.kind == "vemg2pose":
        position, velocity = jnp.split(out, 2, axis=-1)
        return jnp.where(step < config.num_position_rollout_steps, position, previous + velocity)
    if config.predict_vel:
        return previous + out
    return out


# ----------------------------------------------------------------------------- input checks


def _is_traced(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


def check_emg(config: PoseModelConfig, emg: Any, *, check_values: bool = True) -> None:
    """emg: (batch, channels, time) float with config.in_channels channels and a long enough window."""
    layout = "(batch, channels, time)"
    errors.check_rank("emg", emg, 3, layout)
    errors.check_float_dtype("emg", emg)
    errors.check_axis_size("emg", emg, 1, config.in_channels, "channels", layout)
    errors.check_min_length(
        "emg",
        emg,
        2,
        config.min_window_length(),
        f"left context {config.left_context} + right context {config.right_context} + one output step",
    )
    if check_values and not _is_traced(emg):
        errors.check_finite("emg", emg)


def check_pose_inputs(
    config: PoseModelConfig, emg: Any, joint_angles: Any, no_ik_failure: Any, *, check_values: bool = True
) -> None:
    """Shapes, dtypes and (unless traced or check_values=False) finiteness of one emg2pose batch."""
    check_emg(config, emg, check_values=check_values)
    layout = "(batch, joints, time)"
    errors.check_rank("joint_angles", joint_angles, 3, layout)
    errors.check_float_dtype("joint_angles", joint_angles)
    errors.check_axis_size("joint_angles", joint_angles, 1, config.num_joints, "joint angles", layout)
    errors.check_same_size("emg", emg, 0, "joint_angles", joint_angles, 0, "batch size")
    errors.check_same_size("emg", emg, 2, "joint_angles", joint_angles, 2, "time length")
    errors.check_rank("no_ik_failure", no_ik_failure, 2, "(batch, time)")
    errors.check_bool_dtype("no_ik_failure", no_ik_failure)
    errors.check_same_size("emg", emg, 0, "no_ik_failure", no_ik_failure, 0, "batch size")
    errors.check_same_size("emg", emg, 2, "no_ik_failure", no_ik_failure, 1, "time length")
    if check_values and not _is_traced(joint_angles):
        errors.check_finite("joint_angles", joint_angles)


# ----------------------------------------------------------------------------- pure API


def init_variables(config: PoseModelConfig, rng: jax.Array, batch: int = 1) -> dict:
    """Fresh variables ({"params", ["batch_stats"]}) with PyTorch's default initialisers."""
    num_samples = config.min_window_length()
    emg = jnp.zeros((batch, config.in_channels, num_samples), jnp.float32)
    initial_pos = jnp.zeros((batch, config.num_joints), jnp.float32)
    variables = Emg2PoseNet(config).init({"params": rng}, emg, initial_pos, False)
    return dict(variables)


def features(
    config: PoseModelConfig, variables: dict, emg: jax.Array, *, train: bool = False, rngs: dict | None = None
) -> jax.Array:
    """Network features. emg: (B, C, T) -> (B, F, T') channel-first."""
    check_emg(config, emg, check_values=False)
    feats = Emg2PoseNet(config).apply(variables, jnp.asarray(emg), train, rngs=rngs, method=Emg2PoseNet.features)
    return jnp.swapaxes(cast(jax.Array, feats), 1, 2)  # no mutable collections: apply returns the output alone


def initial_pose(config: PoseModelConfig, joint_angles: jax.Array, provide_initial_pos) -> jax.Array:
    """The rollout's first previous pose (B, 20): joint_angles at the left context, or zeros.

    provide_initial_pos: a Python bool or a traced boolean scalar (one compiled function serves both).
    """
    start = joint_angles[:, :, config.left_context]
    if isinstance(provide_initial_pos, (bool, np.bool_)):
        return start if provide_initial_pos else jnp.zeros_like(start)
    return jnp.where(jnp.asarray(provide_initial_pos, bool), start, jnp.zeros_like(start))


def predict_pose(
    config: PoseModelConfig,
    variables: dict,
    emg: jax.Array,
    initial_pos: jax.Array,
    *,
    train: bool = False,
    rngs: dict | None = None,
) -> jax.Array:
    """Raw predictions before alignment. emg: (B, C, T), initial_pos: (B, 20) -> (B, 20, n)."""
    check_emg(config, emg, check_values=False)
    out = Emg2PoseNet(config).apply(variables, jnp.asarray(emg), jnp.asarray(initial_pos), train, rngs=rngs)
    return cast(jax.Array, out)  # no mutable collections: apply returns the output alone


def _align_outputs(config: PoseModelConfig, pred, joint_angles, no_ik_failure):
    stop = joint_angles.shape[-1] - config.right_context
    target = joint_angles[..., config.left_context : stop]
    mask = no_ik_failure[..., config.left_context : stop]
    n_time = target.shape[-1]
    return align_predictions(pred, n_time), target, align_mask(mask, n_time)


def pose_forward(
    config: PoseModelConfig,
    variables: dict,
    emg: jax.Array,
    joint_angles: jax.Array,
    no_ik_failure: jax.Array,
    provide_initial_pos: bool,
    *,
    train: bool = False,
    rngs: dict | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Meta's BasePoseModule.forward.

    emg (B, C, T), joint_angles (B, 20, T), no_ik_failure (B, T) bool ->
    (pred (B, 20, T − left − right), target (same), mask (B, T − left − right) bool).
    `config` must be static under jit; `provide_initial_pos` may be a Python bool or a traced
    boolean scalar. With train=True, dropout needs
    rngs={"dropout": key}; models with BatchNorm must use `pose_forward_train` (it returns the
    updated statistics).
    """
    check_pose_inputs(config, emg, joint_angles, no_ik_failure, check_values=False)
    if train and "batch_stats" in variables:
        raise ValueError(
            "pose_forward: expected train=False for a model with BatchNorm statistics, found train=True; "
            "use pose_forward_train, which returns the updated batch_stats"
        )
    joint_angles = jnp.asarray(joint_angles)
    pred = Emg2PoseNet(config).apply(
        variables, jnp.asarray(emg), initial_pose(config, joint_angles, provide_initial_pos), train, rngs=rngs
    )
    return _align_outputs(config, pred, joint_angles, jnp.asarray(no_ik_failure))


def pose_forward_train(
    config: PoseModelConfig,
    variables: dict,
    emg: jax.Array,
    joint_angles: jax.Array,
    no_ik_failure: jax.Array,
    provide_initial_pos: bool,
    rngs: dict | None = None,
):
    """Training-mode forward: returns ((pred, target, mask), updated batch_stats or {})."""
    check_pose_inputs(config, emg, joint_angles, no_ik_failure, check_values=False)
    joint_angles = jnp.asarray(joint_angles)
    model = Emg2PoseNet(config)
    initial = initial_pose(config, joint_angles, provide_initial_pos)
    if "batch_stats" in variables:
        pred, updates = model.apply(variables, jnp.asarray(emg), initial, True, rngs=rngs, mutable=["batch_stats"])
        batch_stats = updates["batch_stats"]
    else:
        pred, batch_stats = model.apply(variables, jnp.asarray(emg), initial, True, rngs=rngs), {}
    return _align_outputs(config, pred, joint_angles, jnp.asarray(no_ik_failure)), batch_stats


__all__ = [
    "Emg2PoseNet",
    "init_variables",
    "features",
    "predict_pose",
    "next_pose",
    "pose_forward",
    "pose_forward_train",
    "initial_pose",
    "align_predictions",
    "align_mask",
    "resample_linear",
    "linear_interp_indices",
    "nearest_interp_indices",
    "check_emg",
    "check_pose_inputs",
]
