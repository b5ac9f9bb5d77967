"""Streaming every bundle kind: `Model.stream_step` chunk by chunk equals `Model.predict(streaming=True)`.

The model side (each kind's streamed layers) is tested in tests/test_streaming_models.py; here the
bundle's own parts are: the causal filter carried in the state, the z-score, the direct model's
target statistics, the fixed chunk size, and the hooks of each registered kind.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
import scipy.signal

from emgjax.bundle import KINDS, StreamState, direct_specs, load_model, save_adapter_pipeline, save_model
from emgjax.data.signal import design_emg_filter
from emgjax.models import pose_modules
from emgjax.models.streaming.filters import chunk_filter, filter_chunk, zero_filter_state
from emgjax.recipes.adapter.frozen import save_pretrained, tiny_emg2pose_config

RNG = np.random.default_rng(0)


def _stream(model, emg, chunk_samples, initial_pose=None):
    """Feed emg (B, C, T) chunk by chunk; the valid poses in order, (B, *pose, n)."""
    batch = emg.shape[0]
    state = model.init_stream(batch, chunk_samples, initial_pose)
    out = []
    for start in range(0, emg.shape[-1] - chunk_samples + 1, chunk_samples):
        state, poses, valid = model.stream_step(state, emg[..., start : start + chunk_samples])
        poses, valid = np.asarray(poses), np.asarray(valid)
        assert (valid == valid[:1]).all()  # every row of the batch completes the same poses
        out.append(poses[..., : int(valid[0].sum())])
    return np.concatenate(out, axis=-1), (emg.shape[-1] // chunk_samples) * chunk_samples


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundles")
    config = tiny_emg2pose_config()
    frozen = pose_modules.init_variables(config, jax.random.key(1))
    norm16 = {"mean": RNG.normal(0, 5, 16).tolist(), "std": RNG.uniform(20, 40, 16).tolist()}
    e2p = save_pretrained(root / "e2p", config, frozen, provide_initial_pos=True, extra={"emg_norm": norm16})

    from emgjax.models.direct import DirectConfig, DirectModel

    direct_config = DirectConfig(conv_channels=(8, 16), lstm_hidden=16, head_hidden=8, mode="sequence")
    direct_vars = DirectModel(direct_config).init(jax.random.key(2), np.zeros((1, 8, 40), np.float32))
    target = {"kind": "landmarks", "centre_on_wrist": True, "mean": RNG.normal(0, 1, (21, 3)).tolist(), "scale": 0.05}
    norm8 = {"mean": RNG.normal(0, 5, 8).tolist(), "std": RNG.uniform(20, 40, 8).tolist()}
    specs = direct_specs(direct_config, 500.0, notch_hz=60.0, band_hz=(20.0, 200.0), normalisation=norm8, target=target)
    direct = save_model(
        root / "direct", "direct", direct_config, direct_vars, input_spec=specs[0], output_spec=specs[1]
    )
    # mode "last" (one pose per training window) streams by windows: 50 samples every 25
    last_config = DirectConfig(conv_channels=(8, 16), lstm_hidden=16, head_hidden=8, mode="last")
    last_specs = direct_specs(
        last_config, 500.0, notch_hz=60.0, band_hz=(20.0, 200.0), normalisation=norm8, target=target
    )
    direct_last = save_model(
        root / "direct_last", "direct", last_config, direct_vars, input_spec=last_specs[0],
        output_spec=last_specs[1], metadata={"data": {"window_length": 50, "eval_stride": 25}},
    )  # fmt: skip

    from emgjax.models.adapter import AdapterPipeline, variant_config

    pipeline = AdapterPipeline(variant_config("linear+sinc"), config)
    adapter_vars = pipeline.init(jax.random.key(3), frozen, num_samples=64)
    adapter = save_adapter_pipeline(root / "adapter", pipeline.config, config, adapter_vars, normalisation=norm8)
    return {"emg2pose": e2p, "direct": direct, "direct_last": direct_last, "adapter_pipeline": adapter}


def test_every_registered_kind_streams():
    assert all(k.stream_init and k.stream_step and k.predict_streaming and k.stream_rate for k in KINDS.values())


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize(
    ("kind", "chunk"),
    [("emg2pose", 40), ("emg2pose", 37), ("direct", 20), ("direct", 7), ("direct_last", 20), ("direct_last", 7),
     ("adapter_pipeline", 10), ("adapter_pipeline", 7)],
)  # fmt: skip
def test_stream_equals_the_offline_twin(bundles, kind, chunk, batch):
    model = load_model(bundles[kind])
    channels, rate = model.input_spec.channels, model.input_spec.sample_rate
    emg = (RNG.standard_normal((batch, channels, int(0.6 * rate))) * 30 + 10).astype(np.float32)
    start = None if kind.startswith("direct") else RNG.normal(0, 0.3, (batch, 20)).astype(np.float32)
    streamed, used = _stream(model, emg, chunk, start)
    twin = model.predict(emg[..., :used], start, streaming=True)
    assert streamed.shape == twin.shape and twin.shape[-1] > 3, (streamed.shape, twin.shape)
    assert twin.shape[:-1] == (batch, *model.output_spec.shape)
    scale = max(1.0, float(np.abs(twin).max()))
    np.testing.assert_allclose(streamed, twin, rtol=1e-4, atol=2e-4 * scale)
    # about stream_rate poses per second of input
    assert abs(twin.shape[-1] - used / rate * model.stream_rate) <= 2


def test_direct_twin_applies_the_causal_filter_and_the_target_statistics(bundles):
    """predict(streaming=True) = causal filter from rest, z-score, network, target scale and mean."""
    from emgjax.models.streaming import direct as streamed_direct

    model = load_model(bundles["direct"])
    emg = (RNG.standard_normal((2, 8, 300)) * 30).astype(np.float32)
    pre = model.input_spec.preprocessing
    z = scipy.signal.sosfilt(design_emg_filter(500.0, notch_hz=60.0, band=(20.0, 200.0)), emg.astype(np.float64))
    z = ((z - np.asarray(pre.mean)[:, None]) / np.asarray(pre.std)[:, None]).astype(np.float32)
    raw = np.asarray(streamed_direct.predict_streaming_offline(model.config, model.params, z))
    post = model.output_spec.postprocessing
    expected = raw * post["scale"] + np.asarray(post["mean"], np.float32)[..., None]
    np.testing.assert_allclose(model.predict(emg, streaming=True), expected, rtol=1e-5, atol=1e-5)
    # and it differs from the zero-phase offline predict (a different filter): streaming is its own twin
    offline = np.moveaxis(model.predict(emg), 1, -1)
    assert np.abs(offline[..., : expected.shape[-1]] - expected).max() > 1e-4  # 10x the tolerance above


@pytest.mark.parametrize("chunk", [1, 7, 20])
def test_chunk_filter_equals_scipy_sosfilt(chunk):
    sos = design_emg_filter(500.0, notch_hz=50.0, band=(10.0, 200.0))
    x = RNG.standard_normal((2, 3, 20 * 21)) * 50
    matrices, state, out = chunk_filter(sos, chunk), zero_filter_state(sos, 2, 3), []
    for start in range(0, x.shape[-1] - chunk + 1, chunk):
        y, state = filter_chunk(matrices, state, x[..., start : start + chunk].astype(np.float32))
        out.append(np.asarray(y))
    out = np.concatenate(out, axis=-1)
    reference = scipy.signal.sosfilt(sos, x, axis=-1)[..., : out.shape[-1]]
    np.testing.assert_allclose(out, reference, atol=1e-5 * np.abs(reference).max())


def test_stream_state_is_fixed_and_bad_chunks_are_refused(bundles):
    model = load_model(bundles["direct"])
    state = model.init_stream(2)
    assert isinstance(state, StreamState) and state.chunk_samples == model.default_chunk_samples == 20
    shapes = jax.tree_util.tree_map(np.shape, state)
    chunk = np.zeros((2, 8, 20), np.float32)
    state, poses, valid = model.stream_step(state, chunk)
    assert jax.tree_util.tree_map(np.shape, state) == shapes
    assert poses.shape[:-1] == (2, 21, 3) and valid.shape == (2, poses.shape[-1])
    with pytest.raises(ValueError, match=r"chunk: expected shape \(2, 8, 20\).*found \(2, 8, 21\)"):
        model.stream_step(state, np.zeros((2, 8, 21), np.float32))
    with pytest.raises(ValueError, match="chunk_samples: expected a positive integer, found 0"):
        model.init_stream(1, 0)
    with pytest.raises(ValueError, match="initial_pose: a direct model has no pose rollout"):
        model.init_stream(1, 20, np.zeros((1, 20), np.float32))
    with pytest.raises(ValueError, match="state: expected the StreamState"):
        model.stream_step({"not": "a state"}, chunk)


def test_last_mode_streams_the_training_windows(bundles):
    """A mode-"last" model's streamed poses are its outputs on the windows ending every 25 samples."""
    import emgjax.bundle.kinds as K

    model = load_model(bundles["direct_last"])
    assert model.stream_rate == 20.0  # 500 Hz / 25
    emg = (RNG.standard_normal((1, 8, 140)) * 30).astype(np.float32)
    streamed, used = _stream(model, emg, 20)
    z = model.input_spec.preprocessing.apply_causal(emg, 500.0)
    ends = [50, 75, 100, 125]
    expected = np.stack([np.asarray(K._direct_apply(model.config)(model.params, z[..., e - 50 : e])) for e in ends], -1)
    post = model.output_spec.postprocessing
    expected = expected * post["scale"] + np.asarray(post["mean"], np.float32)[..., None]
    assert used == 140 and streamed.shape == (1, 21, 3, 4)
    np.testing.assert_allclose(streamed, expected, rtol=1e-4, atol=1e-4)
    from emgjax.bundle import Model

    unrecorded = Model("direct", model.config, model.params, model.input_spec, model.output_spec, {})
    with pytest.raises(ValueError, match="must record the training window"):
        unrecorded.init_stream()
