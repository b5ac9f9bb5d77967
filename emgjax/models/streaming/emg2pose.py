"""Streaming emg2pose (TDS network + decoder rollout) and its offline twin.

**Network.** Every temporal convolution of the TDS network is valid and causal
(right context 0), so it streams exactly: each keeps a `StreamBuffer` of the
input frames it has not finished with (at most ``kernel − 1``, the layer's left
context), and the per-frame layers (LayerNorm, the fully connected blocks, the
final Linear) run on the frames as they come. The network's own Flax modules
(`emgjax.models.tds`) run on the buffers with the model's parameters, so the
streamed features *are* the offline features: feature frame f sees input
samples [0, left_context + stride·f] and is emitted by the chunk holding
sample ``left_context + stride·f``.

**Rollout on a regular grid.** Meta's rollout resamples the 25 Hz features to
50 Hz with ``align_corners=True`` over the whole window, so step j sits at
feature position ``j·(n_feat − 1)/(n_steps − 1)``: it depends on the window
length and cannot be streamed. The streaming rollout puts step j at feature
position ``j·hop/stride`` (hop = sample_rate / rollout_freq = 40 samples,
stride = 80: position j/2), i.e. at input sample ``left_context + j·hop``, linearly
interpolated between the two features around it. Step j is emitted once
feature ``ceil(j·hop/stride)`` exists; with Meta's sizes odd steps wait for the
next feature, half a feature period (20 ms) after their own time. Each step
feeds its pose back exactly as Meta's rollout does (tracking: previous pose +
velocity; vemg2pose: position head for the first `num_position_rollout_steps`
steps of the stream). `predict_streaming_offline` is the same rollout over a
whole recording; a window of T samples gives ``floor((n_feat − 1)·stride/hop) + 1``
steps (249 for an 11,790-sample window, where Meta's rollout has 250).

The rollout's counters stay bounded however long the stream runs: ``phase`` is
the next step's offset past the newest feature (in input samples) and ``steps``
saturates at the position-head step count.

Kind "pose" with a TDS network streams its features as poses (integrated from
the last pose when predict_vel). NeuroPose is not streamable here: its
"same"-padded convolutions and pools at 1/320 of the sample rate look seconds
ahead (see `init_stream_state`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, cast

import flax.core
import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from jax import lax

from emgjax.models import pose_modules
from emgjax.models.configs import LSTMDecoderConfig, PoseModelConfig, TdsNetworkConfig
from emgjax.models.decoders import MLP, SequentialLSTM, _project_features
from emgjax.models.layers import Dense
from emgjax.models.lstm import zero_carry
from emgjax.models.pose_modules import Emg2PoseNet
from emgjax.models.streaming.buffers import (
    StreamBuffer,
    buffered_window_op,
    check_chunk,
    check_stream_sizes,
    init_buffer,
    masked_update,
    max_outputs,
)
from emgjax.models.tds import Conv1dBlock, TDSConv2dBlock, TDSFullyConnectedBlock, width_major_order


class Emg2PoseStreamState(NamedTuple):
    """Everything a running emg2pose stream carries between chunks.

    buffers: one `StreamBuffer` per temporal convolution, in network order;
    last_feature: (B, F) the newest feature frame (the rollout interpolates from it);
    phase: () int32, offset of the next rollout step past the newest feature, in input samples;
    steps: () int32, rollout steps done, saturating at ``num_position_rollout_steps``;
    decoder: the decoder's carry (`LSTMCarry` with h, c (num_layers, B, H), or () for the MLP);
    pose: (B, num_joints) the last pose (fed back, or integrated for predict_vel).
    """

    buffers: tuple[StreamBuffer, ...]
    last_feature: jax.Array
    phase: jax.Array
    steps: jax.Array
    decoder: Any
    pose: jax.Array


class Emg2PoseStreamVariables(NamedTuple):
    """An emg2pose model's variables laid out for streaming once (`prepare_variables`), so that the
    per-chunk program only reads them: no weight is permuted, sliced or summed per chunk.

    network: the network's variables with every TDS stage's parameters stored in width-major order
    (the order its modules would otherwise gather them into on every call);
    feature_kernel: (F, P) the decoder's first-layer rows for the features; feature_bias: (P,) that
    layer's bias (the LSTM's bias_ih + bias_hh); decoder: its rollout step weights (`LSTMStepWeights`
    or `MLPStepWeights`). The last three are () for kind "pose" (no rollout).
    """

    network: dict
    feature_kernel: Any
    feature_bias: Any
    decoder: Any


# ----------------------------------------------------------------------------- the network, layer by layer


class _Layer(NamedTuple):
    """One streamed network layer: ``apply(network_variables, x (B, N, C)) -> (B, N', C')``.

    kernel/stride 1 marks a per-frame layer (no buffer).
    """

    apply: Callable[[dict, jax.Array], jax.Array]
    kernel: int
    stride: int


def _sub_variables(variables: dict, path: tuple[str, ...]) -> dict:
    """The variables of the submodule at ``path``, in every collection that has it."""
    out = {}
    for collection, tree in variables.items():
        for name in path:
            if not isinstance(tree, dict) or name not in tree:
                break
            tree = tree[name]
        else:
            out[collection] = tree
    return out


def _module_layer(module: nn.Module, path: tuple[str, ...], kernel: int, stride: int, *args: Any) -> _Layer:
    def apply(variables: dict, x: jax.Array) -> jax.Array:
        return cast(jax.Array, module.apply(_sub_variables(variables, path), x, *args))

    return _Layer(apply, kernel, stride)


def _tds_layers(network: TdsNetworkConfig, prepared: bool = False) -> list[_Layer]:
    """TdsNetwork as a flat list of streamed layers, reusing the model's own modules and parameter paths.

    prepared: the TDS stages' parameters are already in width-major order (`prepare_variables`), so the
    modules read them as stored instead of permuting them on every call.
    """
    layers: list[_Layer] = []
    index = 0
    for block in network.conv_blocks:
        layers.append(_module_layer(Conv1dBlock(block), (f"layers_{index}",), block.kernel_size, block.stride, False))
        index += 1
    for stage in network.tds_stages:
        base = f"layers_{index}"
        order = None if prepared else width_major_order(stage.channels, stage.feature_width)
        conv = stage.conv_block
        layers.append(
            _module_layer(
                Conv1dBlock(conv, out_order=order), (base, "conv1dblock"), conv.kernel_size, conv.stride, False
            )
        )
        for k in range(stage.num_blocks):
            tds = TDSConv2dBlock(stage.channels, stage.feature_width, stage.kernel_width)
            layers.append(_module_layer(tds, (base, f"tds_conv_blocks_{2 * k}"), stage.kernel_width, 1))
            fc = TDSFullyConnectedBlock(stage.num_features, order=order)
            layers.append(_module_layer(fc, (base, f"tds_conv_blocks_{2 * k + 1}"), 1, 1))
        if stage.out_channels is not None:
            linear = Dense(stage.num_features, stage.out_channels, in_order=order)
            layers.append(_module_layer(linear, (base, "linear_layer"), 1, 1))
        else:
            width, channels = stage.feature_width, stage.channels

            def to_torch_order(_: dict, x: jax.Array, width: int = width, channels: int = channels) -> jax.Array:
                batch, time, _features = x.shape
                return x.reshape(batch, time, width, channels).swapaxes(-1, -2).reshape(batch, time, -1)

            layers.append(_Layer(to_torch_order, 1, 1))
        index += 1
    return layers


def _tds(config: PoseModelConfig) -> TdsNetworkConfig:
    """The TDS network config (`_check_streamable` has refused any other)."""
    return cast(TdsNetworkConfig, config.network)


def _network_variables(variables: dict) -> dict:
    return _sub_variables(variables, ("network",))


def _check_streamable(config: PoseModelConfig) -> None:
    if not isinstance(config, PoseModelConfig):
        raise ValueError(f"emg2pose streaming: expected a PoseModelConfig, found {type(config).__name__}")
    if not isinstance(config.network, TdsNetworkConfig):
        raise ValueError(
            "emg2pose streaming: expected a TDS network, found NeuroPose, which cannot stream: its 'same'-padded "
            "convolutions run at 1/320 of the sample rate and look seconds ahead"
        )
    if config.kind != "pose":
        hop = config.sample_rate / config.rollout_freq
        if abs(hop - round(hop)) > 1e-9:
            raise ValueError(
                "emg2pose streaming: expected sample_rate / rollout_freq to be a whole number of samples, found "
                f"{config.sample_rate:g} / {config.rollout_freq:g} = {hop:g}"
            )


def rollout_hop(config: PoseModelConfig) -> int:
    """Input samples between rollout steps: sample_rate / rollout_freq (40 for Meta's models)."""
    return round(config.sample_rate / config.rollout_freq)


def max_features_per_chunk(config: PoseModelConfig, chunk_samples: int) -> int:
    """Most feature frames one chunk of ``chunk_samples`` can complete (ceil through every strided layer)."""
    n = chunk_samples
    for kernel_stride in _tds(config).temporal_convs():
        n = max_outputs(n, kernel_stride[1])
    return n


def max_poses_per_chunk(config: PoseModelConfig, chunk_samples: int) -> int:
    """k_max: the fixed pose axis of `stream_step`'s output for chunks of ``chunk_samples``."""
    frames = max_features_per_chunk(config, chunk_samples)
    if config.kind == "pose":
        return frames
    # Steps at offsets phase + i·hop <= frames·stride with phase >= 1.
    return (frames * _tds(config).stride - 1) // rollout_hop(config) + 1


def _width_major_network(config: PoseModelConfig, network: dict) -> dict:
    """The network's variables with each TDS stage's parameters permuted to width-major order, as its
    modules permute them (`emgjax.models.tds`: conv1dblock's output channels and norm, the fully
    connected blocks' rows, columns and norms, linear_layer's rows); the rest shared, not copied."""
    out = flax.core.unfreeze(network)
    params = out["params"]
    tds = _tds(config)
    for i, stage in enumerate(tds.tds_stages):
        order = np.asarray(width_major_order(stage.channels, stage.feature_width))
        p = params[f"layers_{len(tds.conv_blocks) + i}"]
        block = p["conv1dblock"]
        block["conv"] = {"kernel": block["conv"]["kernel"][..., order], "bias": block["conv"]["bias"][order]}
        block["norm"] = {name: value[order] for name, value in block["norm"].items()}
        for k in range(stage.num_blocks):
            fc = p[f"tds_conv_blocks_{2 * k + 1}"]
            for name in ("fc_block_0", "fc_block_2"):
                fc[name] = {"kernel": fc[name]["kernel"][order][:, order], "bias": fc[name]["bias"][order]}
            fc["layer_norm"] = {name: value[order] for name, value in fc["layer_norm"].items()}
        if stage.out_channels is not None:
            p["linear_layer"] = {**p["linear_layer"], "kernel": p["linear_layer"]["kernel"][order]}
    return out


def _stream_network(
    config: PoseModelConfig,
    network_variables: dict,
    buffers: tuple[StreamBuffer, ...],
    x: jax.Array,
    num_new: jax.Array | int,
) -> tuple[tuple[StreamBuffer, ...], jax.Array, jax.Array]:
    """x: (B, N, C) input frames, the first num_new valid -> (buffers, features (B, F_max, F), num_features ()).

    network_variables: `Emg2PoseStreamVariables.network` (TDS stages in width-major order).
    """
    new_buffers = []
    count = jnp.asarray(num_new, jnp.int32)
    layers = _tds_layers(_tds(config), prepared=True)
    b = 0
    for layer in layers:
        if layer.kernel == 1 and layer.stride == 1:
            x = layer.apply(network_variables, x)
            continue

        def op(frames: jax.Array, layer: _Layer = layer) -> jax.Array:
            return layer.apply(network_variables, frames)

        buffer, x, count = buffered_window_op(buffers[b], x, count, layer.kernel, layer.stride, op)
        new_buffers.append(buffer)
        b += 1
    # Frames past the valid ones are scratch: zero them so nothing downstream can read a stale value.
    x = jnp.where((jnp.arange(x.shape[1]) < count)[None, :, None], x, 0.0)
    return tuple(new_buffers), x, count


def _buffer_widths(config: PoseModelConfig) -> list[int]:
    """Input channel count of each buffered (temporal) layer, in order."""
    network = _tds(config)
    widths = [block.in_channels for block in network.conv_blocks]
    for stage in network.tds_stages:
        widths.append(stage.in_channels)
        widths.extend([stage.num_features] * stage.num_blocks)
    return widths


# ----------------------------------------------------------------------------- the rollout


def _emg2pose_variables(variables: dict) -> dict:
    return {k: v for k, v in variables.items() if k in ("params", "batch_stats") and v}


def _decoder_parts(net: Emg2PoseNet) -> tuple[jax.Array, jax.Array, Any]:
    """(feature_kernel (F, P), feature_bias (P,), step weights) of the net's decoder (see `Emg2PoseStreamVariables`)."""
    decoder = net.decoder
    channels = decoder.feature_channels
    _, weights = decoder.prepare_rollout(jnp.zeros((1, 0, channels), jnp.float32))
    if isinstance(decoder, SequentialLSTM):
        first = decoder.lstm.weights()[0]
        kernel, bias = first.kernel_ih, first.bias_ih + first.bias_hh
    else:
        groups, _last = decoder._groups()
        kernel, bias = groups[0][0].weights()
    return kernel[:channels], bias, weights


def prepare_variables(config: PoseModelConfig, variables: Any) -> Emg2PoseStreamVariables:
    """``variables`` ({"params", ["batch_stats"]}) laid out for streaming; prepared ones are returned as they are.

    `stream_step` and `advance` take either form and compute the same poses; a live loop prepares once
    and passes the result, so that the per-chunk program does not redo the layout (jittable).
    """
    if isinstance(variables, Emg2PoseStreamVariables):
        return variables
    _check_streamable(config)
    network = _width_major_network(config, _network_variables(variables))
    if config.kind == "pose":
        return Emg2PoseStreamVariables(network, (), (), ())
    return Emg2PoseStreamVariables(network, *_decoder_variables(config, variables))


def _decoder_variables(config: PoseModelConfig, variables: dict) -> tuple[jax.Array, jax.Array, Any]:
    parts = Emg2PoseNet(config).apply(_emg2pose_variables(variables), method=_decoder_parts)
    return cast(tuple[jax.Array, jax.Array, Any], parts)


def _decoder_step_fn(config: PoseModelConfig) -> Callable[..., tuple[Any, jax.Array]]:
    """The decoder kind's rollout step (a static function of its step weights)."""
    if isinstance(config.decoder, LSTMDecoderConfig):
        return SequentialLSTM.rollout_step
    return MLP.rollout_step


def _initial_decoder_carry(config: PoseModelConfig, batch: int) -> Any:
    """Zero LSTM state (h, c (num_layers, B, H)), or () for the stateless MLP decoder."""
    if isinstance(config.decoder, LSTMDecoderConfig):
        return zero_carry(config.decoder.num_layers, batch, config.decoder.hidden_size)
    return ()


def _rollout(
    config: PoseModelConfig,
    variables: Emg2PoseStreamVariables,
    features: jax.Array,
    valid: jax.Array,
    decoder_carry: Any,
    pose: jax.Array,
    first_step: jax.Array,
) -> tuple[Any, jax.Array, jax.Array]:
    """Masked rollout over resampled features. features (B, n, F), valid (n,) bool, pose (B, J), first_step () int.

    Returns (decoder carry, last pose (B, J), poses (n, B, J)); invalid steps leave the carry and pose as they are.
    """
    projected = _project_features(features, variables.feature_kernel, variables.feature_bias)  # (n, B, P)
    weights = variables.decoder
    step_fn = _decoder_step_fn(config)
    position_steps = config.num_position_rollout_steps
    state_condition = config.state_condition

    def body(carry: tuple[Any, jax.Array], inputs: tuple[jax.Array, jax.Array, jax.Array]) -> tuple[Any, jax.Array]:
        decoder_carry, previous = carry
        projected_t, valid_t, i = inputs
        new_carry, out = step_fn(weights, decoder_carry, projected_t, previous if state_condition else None)
        step = jnp.minimum(first_step + i, position_steps)
        new_pose = pose_modules.next_pose(config, out, previous, step)
        new = masked_update(valid_t, (new_carry, new_pose), (decoder_carry, previous))
        return new, new_pose

    n = features.shape[1]
    (decoder_carry, pose), poses = lax.scan(body, (decoder_carry, pose), (projected, valid, jnp.arange(n)))
    return decoder_carry, pose, poses


def regular_grid_indices(num_features: int, stride: int, hop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The streaming rollout's resampling over a whole recording (host-side, static shapes).

    Step j sits at feature position j·hop/stride; steps run while that position's right neighbour
    exists (or the position is a whole frame). Returns (i0, i1, w1) for
    ``step_j = (1 − w1[j])·feat[i0[j]] + w1[j]·feat[i1[j]]``, with
    ``floor((num_features − 1)·stride/hop) + 1`` steps; w1 is float32 as the stream computes it.
    """
    if num_features < 1:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    steps = (num_features - 1) * stride // hop + 1
    offset = np.arange(steps, dtype=np.int64) * hop
    i0 = offset // stride
    w1 = (offset % stride).astype(np.float32) / np.float32(stride)
    i1 = np.minimum(i0 + 1, num_features - 1)
    return i0, i1, w1


# ----------------------------------------------------------------------------- public API


def init_stream_state(
    config: PoseModelConfig,
    variables: dict,
    batch_size: int,
    chunk_samples: int,
    initial_pose: jax.Array | None = None,
) -> Emg2PoseStreamState:
    """A fresh stream: empty conv buffers, zero decoder state, the rollout's first previous pose.

    initial_pose: (batch_size, num_joints), zeros when None (Meta's provide_initial_pos=False).
    ``variables`` is not read (the state's shapes come from the config); it keeps one signature for every kind.
    """
    del variables
    _check_streamable(config)
    check_stream_sizes(batch_size, chunk_samples)
    buffers = []
    n = chunk_samples
    layers = [layer for layer in _tds_layers(_tds(config)) if layer.kernel > 1 or layer.stride > 1]
    for layer, width in zip(layers, _buffer_widths(config), strict=True):
        buffers.append(init_buffer(batch_size, layer.kernel, n, width))
        n = max_outputs(n, layer.stride)
    if initial_pose is None:
        pose = jnp.zeros((batch_size, config.num_joints), jnp.float32)
    else:
        pose = jnp.asarray(initial_pose, jnp.float32)
        if pose.shape != (batch_size, config.num_joints):
            raise ValueError(
                f"initial_pose: expected shape ({batch_size}, {config.num_joints}), found {tuple(pose.shape)}"
            )
    stride = _tds(config).stride
    return Emg2PoseStreamState(
        buffers=tuple(buffers),
        last_feature=jnp.zeros((batch_size, config.network.out_channels), jnp.float32),
        # The first step sits on feature 0, one stride past the (absent) newest feature.
        phase=jnp.asarray(stride, jnp.int32),
        steps=jnp.asarray(0, jnp.int32),
        decoder=() if config.kind == "pose" else _initial_decoder_carry(config, batch_size),
        pose=pose,
    )


def stream_step(
    config: PoseModelConfig, variables: Any, state: Emg2PoseStreamState, chunk: jax.Array
) -> tuple[Emg2PoseStreamState, jax.Array, jax.Array]:
    """Feed one chunk. chunk: (B, C, chunk_samples) at the model's sample rate; variables: the model's
    variables or, cheaper per chunk, their `prepare_variables` layout.

    Returns (state, poses (B, num_joints, k_max), valid (B, k_max) bool): the first valid poses are
    the rollout steps (kind "pose": the feature frames) this chunk completes, in order;
    k_max = `max_poses_per_chunk(config, chunk_samples)`. Jit with ``config`` static.
    """
    _check_streamable(config)
    first = state.buffers[0].frames
    check_chunk(chunk, first.shape[0], config.in_channels, first.shape[1] - (_tds(config).temporal_convs()[0][0] - 1))
    x = jnp.swapaxes(jnp.asarray(chunk, jnp.float32), 1, 2)  # (B, N, C): the network's layout
    return advance(config, variables, state, x, chunk.shape[-1])


def advance(
    config: PoseModelConfig, variables: Any, state: Emg2PoseStreamState, x: jax.Array, num_new: jax.Array | int
) -> tuple[Emg2PoseStreamState, jax.Array, jax.Array]:
    """`stream_step` on time-major input whose count may vary: x (B, N, C), the first ``num_new`` samples valid.

    N is the ``chunk_samples`` the state was made for. Front ends that emit a varying number of
    samples per chunk (the adapter pipeline's upsamplers) feed the network through this.
    """
    chunk_samples = x.shape[1]
    variables = prepare_variables(config, variables)
    buffers, frames, num_frames = _stream_network(config, variables.network, state.buffers, x, num_new)
    batch = x.shape[0]
    if config.kind == "pose":
        valid = jnp.arange(frames.shape[1]) < num_frames
        poses = frames
        if config.predict_vel:
            poses = state.pose[:, None] + jnp.cumsum(frames, axis=1)  # invalid frames are zero
        last = jnp.take(poses, jnp.maximum(num_frames - 1, 0), axis=1)
        pose = jnp.where(num_frames > 0, last, state.pose)
        new_state = state._replace(buffers=buffers, pose=pose)
        return new_state, jnp.swapaxes(poses, 1, 2), jnp.broadcast_to(valid, (batch, valid.shape[0]))
    stride, hop = _tds(config).stride, rollout_hop(config)
    k_max = max_poses_per_chunk(config, chunk_samples)
    candidates = jnp.concatenate([state.last_feature[:, None], frames], axis=1)  # position 0: the newest old frame
    offset = state.phase + jnp.arange(k_max, dtype=jnp.int32) * hop
    valid = offset <= num_frames * stride
    p0 = offset // stride
    w1 = ((offset % stride).astype(jnp.float32) / jnp.float32(stride))[None, :, None]
    x0 = jnp.take(candidates, jnp.clip(p0, 0, frames.shape[1]), axis=1)
    x1 = jnp.take(candidates, jnp.clip(p0 + 1, 0, frames.shape[1]), axis=1)
    resampled = (1 - w1) * x0 + w1 * x1  # (B, k_max, F)
    decoder, pose, poses = _rollout(config, variables, resampled, valid, state.decoder, state.pose, state.steps)
    num_steps = jnp.sum(valid.astype(jnp.int32))
    new_state = Emg2PoseStreamState(
        buffers=buffers,
        last_feature=jnp.take(candidates, num_frames, axis=1),
        phase=state.phase + num_steps * hop - num_frames * stride,
        steps=jnp.minimum(state.steps + num_steps, config.num_position_rollout_steps),
        decoder=decoder,
        pose=pose,
    )
    return new_state, jnp.transpose(poses, (1, 2, 0)), jnp.broadcast_to(valid, (batch, k_max))


def streaming_steps(config: PoseModelConfig, num_samples: int) -> int:
    """Poses the stream has emitted after ``num_samples`` input samples (= the offline twin's length)."""
    num_features = config.network.output_length(num_samples)
    if config.kind == "pose":
        return num_features
    return 0 if num_features < 1 else (num_features - 1) * _tds(config).stride // rollout_hop(config) + 1


def predict_streaming_offline(
    config: PoseModelConfig, variables: dict, emg: jax.Array, initial_pose: jax.Array
) -> jax.Array:
    """The stream's poses computed over a whole recording at once (same causal semantics).

    emg: (B, C, T), initial_pose: (B, num_joints) -> (B, num_joints, `streaming_steps(config, T)`):
    the offline features (`pose_modules.features`), resampled on the regular grid
    (`regular_grid_indices`), rolled out from ``initial_pose``. Kind "pose" is `pose_modules.predict_pose`.
    Jit with ``config`` static.
    """
    _check_streamable(config)
    if config.kind == "pose":
        return pose_modules.predict_pose(config, variables, emg, initial_pose)
    feats = jnp.swapaxes(pose_modules.features(config, variables, emg), 1, 2)  # (B, n_feat, F)
    i0, i1, w = regular_grid_indices(feats.shape[1], _tds(config).stride, rollout_hop(config))
    if len(i0) == 0:
        raise ValueError(
            f"emg: expected at least {config.left_context + 1} samples (one feature frame), found {emg.shape[-1]}"
        )
    w1 = jnp.asarray(w)[None, :, None]
    resampled = (1 - w1) * jnp.take(feats, jnp.asarray(i0), axis=1) + w1 * jnp.take(feats, jnp.asarray(i1), axis=1)
    batch = emg.shape[0]
    carry = _initial_decoder_carry(config, batch)
    valid = jnp.ones(len(i0), bool)
    pose = jnp.asarray(initial_pose, jnp.float32)
    decoder = Emg2PoseStreamVariables({}, *_decoder_variables(config, variables))
    _, _, poses = _rollout(config, decoder, resampled, valid, carry, pose, jnp.asarray(0, jnp.int32))
    return jnp.transpose(poses, (1, 2, 0))


__all__ = [
    "Emg2PoseStreamState",
    "Emg2PoseStreamVariables",
    "prepare_variables",
    "advance",
    "init_stream_state",
    "stream_step",
    "predict_streaming_offline",
    "streaming_steps",
    "max_poses_per_chunk",
    "max_features_per_chunk",
    "rollout_hop",
    "regular_grid_indices",
]
