"""emgjax.models.streaming: chunk-by-chunk streaming equals each kind's offline twin, and the twins
equal the ordinary forward passes where the two coincide."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emgjax.models import configs as C
from emgjax.models import pose_modules as pm
from emgjax.models import streaming
from emgjax.models.adapter.pipeline import AdapterPipeline, variant_config
from emgjax.models.direct import DirectConfig, DirectModel
from emgjax.models.streaming import adapter as sa
from emgjax.models.streaming import direct as sd
from emgjax.models.streaming import emg2pose as se
from emgjax.recipes.adapter.frozen import tiny_emg2pose_config

STEP = jax.jit(streaming.stream_step, static_argnums=0)
# Compiled once per config: eager Flax init and offline passes take seconds each on a busy 2-core machine.
INIT_EMG2POSE = jax.jit(pm.init_variables, static_argnums=0)
EMG2POSE_TWIN = jax.jit(se.predict_streaming_offline, static_argnums=0)
DIRECT_TWIN = jax.jit(sd.predict_streaming_offline, static_argnums=0)
ADAPTER_TWIN = jax.jit(sa.predict_streaming_offline, static_argnums=0)


DIRECT = DirectConfig(conv_channels=(8, 16), lstm_hidden=16, head_hidden=16, mode="sequence")


@jax.jit
def _direct_forward(variables: dict, emg: jax.Array) -> jax.Array:
    return DirectModel(DIRECT).apply(variables, emg, train=False)[0]


def _tds(out_channels: int) -> C.TdsNetworkConfig:
    """Meta's kernels and strides (stride 80; one TDS block per stage, left context 1630) at a tiny width."""
    c = 8
    return C.TdsNetworkConfig(
        conv_blocks=(C.Conv1dBlockConfig(16, c, 11, 5), C.Conv1dBlockConfig(c, c, 5, 2)),
        tds_stages=(
            C.TdsStageConfig(c, 17, 4, 1, 2, 4, 9),
            C.TdsStageConfig(c, 9, 2, 1, 2, 4, 5, out_channels=out_channels),
        ),
    )


def _emg2pose_config(name: str) -> C.PoseModelConfig:
    tds = _tds(20 if name == "pose" else 8)
    if name == "pose":
        return C.PoseModelConfig("pose", tds, predict_vel=True)
    out = 40 if name == "vemg2pose" else 20
    if name == "mlp":
        decoder: C.DecoderConfig = C.MLPDecoderConfig(28, (8, 8), out, layer_norm=True, scale=0.01)
    else:
        decoder = C.LSTMDecoderConfig(28, out, hidden_size=8, num_layers=2, scale=0.01)
    # num_position_steps 200 -> 5 position-head steps, so the switch happens inside the test stream.
    kind = "vemg2pose" if name == "vemg2pose" else "state"
    return C.PoseModelConfig(kind, tds, decoder, predict_vel=name == "tracking", num_position_steps=200)


def _shapes(tree: object) -> list:
    return [(x.shape, x.dtype) for x in jax.tree_util.tree_leaves(tree)]


def _stream(config: object, variables: dict, state: object, emg: jax.Array, chunk: int) -> np.ndarray:
    """Feed emg (B, C, T) in chunks (the incomplete tail is not fed); returns the valid poses, time last."""
    expected = _shapes(state)
    k_max = streaming.max_poses_per_chunk(config, chunk)
    out = []
    for start in range(0, emg.shape[-1] - chunk + 1, chunk):
        state, poses, valid = STEP(config, variables, state, emg[..., start : start + chunk])
        assert _shapes(state) == expected  # nothing recompiles: the state pytree keeps its shapes
        assert poses.shape[-1] == k_max and valid.shape == (emg.shape[0], k_max)
        valid = np.asarray(valid)
        assert (valid == valid[:1]).all()  # one timeline for the whole batch
        # The valid poses come first.
        assert not (np.diff(valid[0].astype(int)) > 0).any()
        out.append(np.asarray(poses)[..., valid[0]])
    return np.concatenate(out, axis=-1)


def _fed(num_samples: int, chunk: int) -> int:
    return num_samples // chunk * chunk


# ----------------------------------------------------------------------------- emg2pose


@pytest.mark.parametrize(
    ("name", "chunk", "batch"),
    [("tracking", 80, 1), ("tracking", 37, 4), ("vemg2pose", 37, 4), ("mlp", 80, 4), ("pose", 37, 1)],
)
def test_emg2pose_stream_equals_offline_twin(name: str, chunk: int, batch: int) -> None:
    """Kind "pose" streams the TDS features themselves, and its twin is `predict_pose`: the network forward."""
    config = _emg2pose_config(name)
    variables = INIT_EMG2POSE(config, jax.random.PRNGKey(0))
    num_samples = config.left_context + 80 * 9 + 23
    emg = jax.random.normal(jax.random.PRNGKey(1), (batch, 16, num_samples))
    initial = 0.1 * jax.random.normal(jax.random.PRNGKey(2), (batch, 20))
    twin = np.asarray(EMG2POSE_TWIN(config, variables, emg, initial))
    assert twin.shape == (batch, 20, se.streaming_steps(config, num_samples))
    state = se.init_stream_state(config, variables, batch, chunk, initial)
    streamed = _stream(config, variables, state, emg, chunk)
    n = se.streaming_steps(config, _fed(num_samples, chunk))
    assert streamed.shape == (batch, 20, n) and n >= 9
    # Kind "pose" (predict_vel) sums velocities per chunk rather than over the recording: rounding grows to ~1e-6.
    np.testing.assert_allclose(streamed, twin[..., :n], rtol=1e-5, atol=1e-5 if name == "pose" else 1e-6)


@pytest.mark.parametrize("name", ["tracking", "vemg2pose"])
def test_emg2pose_twin_equals_windowed_rollout_when_the_grids_coincide(name: str) -> None:
    """T − left = 80 m + 40: Meta's align_corners grid puts step j at feature j/2, as the regular grid does."""
    config = _emg2pose_config(name)
    variables = INIT_EMG2POSE(config, jax.random.PRNGKey(5))
    emg = jax.random.normal(jax.random.PRNGKey(6), (2, 16, config.left_context + 80 * 7 + 40))
    initial = 0.1 * jax.random.normal(jax.random.PRNGKey(7), (2, 20))
    windowed = np.asarray(pm.predict_pose(config, variables, emg, initial))
    twin = np.asarray(EMG2POSE_TWIN(config, variables, emg, initial))
    assert windowed.shape == twin.shape == (2, 20, 15)
    np.testing.assert_allclose(twin, windowed, rtol=1e-5, atol=1e-6)
    # Any other window length: the grids differ (the gap is measured in bench/streaming.py, not asserted).
    longer = jnp.concatenate([emg, emg[..., :60]], axis=-1)
    assert se.streaming_steps(config, longer.shape[-1]) != config.rollout_steps(longer.shape[-1])


def test_regular_grid_positions() -> None:
    i0, i1, w1 = se.regular_grid_indices(4, stride=80, hop=40)
    np.testing.assert_array_equal(i0, [0, 0, 1, 1, 2, 2, 3])
    np.testing.assert_array_equal(i1, [1, 1, 2, 2, 3, 3, 3])
    np.testing.assert_array_equal(w1, [0, 0.5, 0, 0.5, 0, 0.5, 0])
    # Downsampling grids (hop > stride) skip frames: step j at frame 2.5 j.
    i0, _, w1 = se.regular_grid_indices(6, stride=16, hop=40)
    np.testing.assert_array_equal(i0, [0, 2, 5])
    np.testing.assert_array_equal(w1, [0, 0.5, 0])


def test_emg2pose_counters_stay_bounded() -> None:
    """The rollout keeps a phase, not an absolute step count: it stays in (0, stride] however long the stream."""
    config = _emg2pose_config("tracking")
    variables = INIT_EMG2POSE(config, jax.random.PRNGKey(8))
    state = se.init_stream_state(config, variables, 1, 37)
    emg = jax.random.normal(jax.random.PRNGKey(9), (1, 16, 37 * 120))
    for start in range(0, emg.shape[-1], 37):
        state, _, _ = STEP(config, variables, state, emg[..., start : start + 37])
        assert 0 < int(state.phase) <= 80
    assert int(state.steps) == config.num_position_rollout_steps


# ----------------------------------------------------------------------------- direct


def _direct(mode: str = "sequence") -> tuple[DirectConfig, dict]:
    config = dataclasses.replace(DIRECT, mode=mode)
    variables = DirectModel(config).init_variables(jax.random.PRNGKey(10))
    # Non-trivial running statistics, so inference-mode BatchNorm is exercised.
    keys = iter(jax.random.split(jax.random.PRNGKey(11), 8))
    variables["batch_stats"] = jax.tree_util.tree_map(
        lambda x: x + 0.5 * jax.random.uniform(next(keys), x.shape), variables["batch_stats"]
    )
    return config, variables


@pytest.mark.parametrize(("chunk", "batch"), [(20, 1), (8, 4), (7, 4), (1, 1)])
def test_direct_stream_equals_offline_twin(chunk: int, batch: int) -> None:
    config, variables = _direct()
    emg = jax.random.normal(jax.random.PRNGKey(12), (batch, 8, 203))
    twin = np.asarray(DIRECT_TWIN(config, variables, emg))
    state = sd.init_stream_state(config, variables, batch, chunk)
    streamed = _stream(config, variables, state, emg, chunk)
    n = sd.streaming_steps(config, _fed(203, chunk))
    assert streamed.shape == (batch, 21, 3, n) and n >= 45
    np.testing.assert_allclose(streamed, twin[..., :n], rtol=1e-5, atol=1e-6)


def test_direct_twin_steps_are_final() -> None:
    """The twin's steps do not read the right edge: a longer recording's forward gives the same poses.

    With one sample less of look-ahead the last step would differ (that is what `lookahead_samples` counts).
    """
    config, variables = _direct()
    emg = jax.random.normal(jax.random.PRNGKey(13), (2, 8, 120))
    forward = np.asarray(_direct_forward(variables, emg))
    for length in (101, 102):
        twin = np.asarray(DIRECT_TWIN(config, variables, emg[..., :length]))
        np.testing.assert_allclose(twin, forward[..., : twin.shape[-1]], rtol=1e-5, atol=1e-6)
        one_more = sd.streaming_steps(config, length) + 1
        cut = _direct_forward(variables, emg[..., :length])
        if cut.shape[-1] >= one_more:  # the next step exists in the window but reads its right padding
            assert not np.allclose(np.asarray(cut)[..., one_more - 1], forward[..., one_more - 1])


def test_direct_last_mode_streams_its_parameters_as_a_sequence() -> None:
    config, variables = _direct(mode="last")
    emg = jax.random.normal(jax.random.PRNGKey(14), (1, 8, 100))
    sequence = dataclasses.replace(config, mode="sequence")
    twin = np.asarray(DIRECT_TWIN(config, variables, emg))
    np.testing.assert_array_equal(twin, np.asarray(DIRECT_TWIN(sequence, variables, emg)))
    streamed = _stream(config, variables, sd.init_stream_state(config, variables, 1, 20), emg, 20)
    np.testing.assert_allclose(streamed, twin[..., : streamed.shape[-1]], rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- adapter pipeline


@pytest.mark.parametrize("variant", ["linear+sinc", "interpolation+linear", "duplicate+hold", "zero_fill+zero_stuff"])
@pytest.mark.parametrize(("chunk", "batch"), [(5, 1), (7, 4)])
def test_adapter_stream_equals_offline_twin(variant: str, chunk: int, batch: int) -> None:
    """Tiny emg2pose (stride 10 at 2 kHz): 5 input samples = 20 upsampled divide it, 7 = 28 do not."""
    emg2pose = tiny_emg2pose_config()
    pipeline = variant_config(variant)
    config = sa.AdapterModelConfig(pipeline, emg2pose)
    variables = AdapterPipeline(pipeline, emg2pose).init(
        jax.random.PRNGKey(15), INIT_EMG2POSE(emg2pose, jax.random.PRNGKey(16))
    )
    emg = jax.random.normal(jax.random.PRNGKey(17), (batch, 8, 150))
    initial = jnp.zeros((batch, 20))
    twin = np.asarray(ADAPTER_TWIN(config, variables, emg, initial))
    streamed = _stream(config, variables, sa.init_stream_state(config, variables, batch, chunk, initial), emg, chunk)
    n = sa.streaming_steps(config, _fed(150, chunk))
    assert streamed.shape == (batch, 20, n) and n >= 10
    np.testing.assert_allclose(streamed, twin[..., :n], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant", ["linear+sinc", "linear+linear"])
def test_adapter_twin_is_causal(variant: str) -> None:
    """More recording never changes poses already emitted: the cut covers the upsampler's look-ahead."""
    emg2pose = tiny_emg2pose_config()
    pipeline = variant_config(variant)
    config = sa.AdapterModelConfig(pipeline, emg2pose)
    variables = AdapterPipeline(pipeline, emg2pose).init(
        jax.random.PRNGKey(18), INIT_EMG2POSE(emg2pose, jax.random.PRNGKey(19))
    )
    emg = jax.random.normal(jax.random.PRNGKey(20), (1, 8, 140))
    initial = jnp.zeros((1, 20))
    short = np.asarray(ADAPTER_TWIN(config, variables, emg[..., :120], initial))
    long = np.asarray(ADAPTER_TWIN(config, variables, emg, initial))
    np.testing.assert_allclose(short, long[..., : short.shape[-1]], rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- bad input


def test_bad_input_is_refused_clearly() -> None:
    config = _emg2pose_config("tracking")
    variables = INIT_EMG2POSE(config, jax.random.PRNGKey(21))
    state = se.init_stream_state(config, variables, 2, 40)
    with pytest.raises(ValueError, match=r"chunk: expected 40 samples"):
        se.stream_step(config, variables, state, jnp.zeros((2, 16, 41)))
    with pytest.raises(ValueError, match=r"chunk: expected 2 batch"):
        se.stream_step(config, variables, state, jnp.zeros((1, 16, 40)))
    with pytest.raises(ValueError, match=r"chunk: expected 16 channels"):
        se.stream_step(config, variables, state, jnp.zeros((2, 8, 40)))
    with pytest.raises(ValueError, match=r"batch_size: expected a positive int, found 0"):
        se.init_stream_state(config, variables, 0, 40)
    with pytest.raises(ValueError, match=r"NeuroPose, which cannot stream"):
        streaming.init_stream_state(C.EXPERIMENTS["regression_neuropose"].model, {}, 1, 80)
    with pytest.raises(ValueError, match=r"found 'conv'"):
        sa.init_stream_state(sa.AdapterModelConfig(variant_config("conv+sinc"), tiny_emg2pose_config()), {}, 1, 5)
    with pytest.raises(ValueError, match=r"expected a PoseModelConfig, DirectConfig or AdapterModelConfig"):
        streaming.init_stream_state("tracking_vemg2pose", {}, 1, 80)  # type: ignore[arg-type]
