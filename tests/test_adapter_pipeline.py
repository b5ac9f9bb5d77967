"""Adapter pipeline: shapes, Mode 1/2 outputs, config errors, training phases, objectives, vmapped seeds."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emgjax.kinematics import synthetic_hand_model
from emgjax.models import pose_modules
from emgjax.models.adapter.mano_head import ManoHeadConfig
from emgjax.models.adapter.pipeline import AdapterPipeline, validate_pipeline, variant_config
from emgjax.models.adapter.upsampler import UpsamplerConfig
from emgjax.models.configs import Conv1dBlockConfig, TdsNetworkConfig
from emgjax.recipes.adapter import objectives as obj
from emgjax.recipes.adapter.frozen import tiny_emg2pose_config
from emgjax.recipes.adapter.phases import (
    init_states,
    make_adapter_loss_fn,
    make_phase_optimizer,
    objective_batch,
    trainable_predicate,
)
from emgjax.train.optim import OptimConfig
from emgjax.train.step import make_local_train_step, make_vmapped_train_step, stack_trees, unstack_tree

E2P = tiny_emg2pose_config()
T_IN = 40  # 500 Hz samples -> 160 at 2 kHz, left context 50 -> 110 aligned samples


@pytest.fixture(scope="module")
def emg2pose_vars():
    return jax.jit(lambda key: pose_modules.init_variables(E2P, key))(jax.random.key(0))


def _batch(seed=0, batch=2):
    rng = np.random.default_rng(seed)
    t2 = 4 * T_IN
    return {
        "emg": rng.standard_normal((batch, 8, T_IN)).astype(np.float32),
        "emg_2k": rng.standard_normal((batch, 16, t2)).astype(np.float32),
        "joint_angles": (0.3 * rng.standard_normal((batch, 20, t2))).astype(np.float32),
        "no_ik_failure": np.ones((batch, t2), bool),
    }


def test_pipeline_shapes_mode1_and_mode2(emg2pose_vars):
    config = variant_config("conv+subpixel", mano_head=ManoHeadConfig())
    pipeline = AdapterPipeline(config, E2P)
    variables = pipeline.init(jax.random.key(1), emg2pose_vars)
    assert set(variables["params"]) == {"adapter", "emg2pose", "mano_head"}
    assert set(variables["params"]["adapter"]) == {"channel_adapter", "upsampler"}
    emg = _batch()["emg"]
    pipeline.check_emg(emg)
    hand = synthetic_hand_model()
    # jit: op-by-op dispatch of the rollout scan and FK would be far slower than one compile
    outputs, stats = jax.jit(lambda v, x: pipeline(v, x, hand=hand, landmark_every=40))(variables, emg)
    n = pipeline.output_length(T_IN)
    assert n == 4 * T_IN - E2P.left_context
    assert outputs["emg_2k"].shape == (2, 16, 4 * T_IN)
    assert outputs["angles"].shape == (2, 20, n)
    assert outputs["landmarks"].shape == (2, -(-n // 40), 21, 3)  # Mode 1, MediaPipe order
    assert outputs["mano_theta"].shape == (2, 45, n)  # Mode 2
    assert set(stats) == {"adapter", "emg2pose"}
    # MediaPipe's wrist (index 0) is the hand model's wrist, at the origin of the synthetic hand.
    np.testing.assert_allclose(outputs["landmarks"][..., 0, :], 0.0, atol=1e-4)


def test_pipeline_matches_emg2pose_on_adapted_emg(emg2pose_vars):
    pipeline = AdapterPipeline(variant_config("interpolation+sinc"), E2P)
    variables = pipeline.init(jax.random.key(0), emg2pose_vars)
    batch = _batch()
    outputs, _ = jax.jit(pipeline)(variables, batch["emg"])
    forward = jax.jit(pose_modules.pose_forward, static_argnums=(0, 5))
    pred, _, _ = forward(E2P, emg2pose_vars, outputs["emg_2k"], batch["joint_angles"], batch["no_ik_failure"], False)
    np.testing.assert_allclose(outputs["angles"], pred, atol=1e-5)


def test_config_errors_before_compile(monkeypatch):
    # Any attempt to trace/compile would hit this; every error below must come first.
    def no_jit(*args, **kwargs):
        raise AssertionError("compiled before validating")

    monkeypatch.setattr(jax, "jit", no_jit)
    with pytest.raises(ValueError, match="unknown channel adapter 'cubic'"):
        variant_config("cubic+sinc")
    with pytest.raises(ValueError, match="unknown upsampler 'magic'"):
        variant_config("linear+magic")
    with pytest.raises(ValueError, match="ADAPTER\\+UPSAMPLER"):
        variant_config("linear")
    good = variant_config("linear+sinc")
    with pytest.raises(ValueError, match="outputs 16 channels but the upsampler expects 8"):
        validate_pipeline(dataclasses.replace(good, upsampler=UpsamplerConfig(channels=8)), E2P)
    with pytest.raises(ValueError, match="factor 2 does not match the sample rates"):
        validate_pipeline(dataclasses.replace(good, upsampler=UpsamplerConfig(factor=2)), E2P)
    eight_channel = dataclasses.replace(
        E2P, network=TdsNetworkConfig((Conv1dBlockConfig(8, 16, 11, 5),), E2P.network.tds_stages)
    )
    with pytest.raises(ValueError, match="emg2pose expects 8 input channels but the adapter outputs 16"):
        AdapterPipeline(good, eight_channel)
    with pytest.raises(ValueError, match="input EMG has 4 channels but the channel adapter expects 8"):
        validate_pipeline(good, E2P, input_channels=4)
    with pytest.raises(ValueError, match="sampled at 250 Hz but the pipeline expects 500 Hz"):
        validate_pipeline(good, E2P, input_rate=250.0)
    with pytest.raises(ValueError, match="MANO head expects 21 angles"):
        validate_pipeline(dataclasses.replace(good, mano_head=ManoHeadConfig(in_features=21)), E2P)
    pipeline = AdapterPipeline(good, E2P)
    with pytest.raises(
        ValueError,
        match=r"emg: expected 8 channels \(axis 1 of \(batch, channels, time\)\), found 16 \(shape \(2, 16, 40\)\)",
    ):
        pipeline.check_emg(np.zeros((2, 16, 40), np.float32))
    with pytest.raises(
        ValueError, match=r"expected at least 18 samples along axis 2 \(at 500 Hz: emg2pose left context 50 at 2000 Hz"
    ):
        pipeline.check_emg(np.zeros((2, 8, 5), np.float32))
    bad = np.zeros((1, 8, 40), np.float32)
    bad[0, 0, 3] = np.nan
    with pytest.raises(
        ValueError, match=r"emg: expected only finite values, found 1 NaN/Inf value\(s\), first at index \(0, 0, 3\)"
    ):
        pipeline.check_emg(bad)
    with pytest.raises(ValueError, match=r"emg: expected a floating-point array.*found dtype int32"):
        pipeline.check_emg(np.zeros((2, 8, 40), np.int32))
    with pytest.raises(ValueError, match=r"emg: expected a NumPy or JAX array, found builtins\.list"):
        pipeline.check_emg([[[0.0] * 40] * 8])
    with pytest.raises(ValueError, match="unknown objective 'psnr'"):
        obj.objective_weights("psnr")
    with pytest.raises(ValueError, match="at least one positive weight"):
        obj.ObjectiveWeights()


def _run_phase(phase, emg2pose_vars, *, unfreeze_last=False, steps=3, variant="linear+sinc"):
    pipeline = AdapterPipeline(variant_config(variant), E2P)
    variables = pipeline.init(jax.random.key(0), emg2pose_vars)
    optimizer = make_phase_optimizer(
        phase, OptimConfig(learning_rate=1e-2), variables["params"], pipeline, unfreeze_last_tds_stage=unfreeze_last
    )
    (state,) = init_states(pipeline, emg2pose_vars, optimizer, [0])
    step = make_local_train_step(make_adapter_loss_fn(pipeline, tuple(_batch())), optimizer)
    weights = objective_batch(obj.objective_weights("recon+pose"))
    before = state.params
    for i in range(steps):
        state, metrics = step(state, {**_batch(i), **weights})
    assert np.isfinite(float(metrics["loss"]))
    return before, state.params


def _same(a, b) -> bool:
    return all(
        np.array_equal(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True)
    )


def test_phase1_freezes_emg2pose_bitwise(emg2pose_vars):
    before, after = _run_phase(1, emg2pose_vars)
    assert _same(before["emg2pose"], after["emg2pose"])
    assert not _same(before["adapter"], after["adapter"])


def test_phase2_trains_decoder_not_frozen_stages(emg2pose_vars):
    before, after = _run_phase(2, emg2pose_vars)
    assert not _same(before["emg2pose"]["decoder"], after["emg2pose"]["decoder"])
    assert _same(before["emg2pose"]["network"], after["emg2pose"]["network"])
    assert not _same(before["adapter"], after["adapter"])
    before, after = _run_phase(2, emg2pose_vars, unfreeze_last=True)
    assert not _same(before["emg2pose"]["network"]["layers_1"], after["emg2pose"]["network"]["layers_1"])
    assert _same(before["emg2pose"]["network"]["layers_0"], after["emg2pose"]["network"]["layers_0"])


def test_phase_errors(emg2pose_vars):
    pipeline = AdapterPipeline(variant_config("interpolation+sinc"), E2P)
    params = pipeline.init(jax.random.key(0), emg2pose_vars)["params"]
    with pytest.raises(ValueError, match="no trainable parameter"):
        make_phase_optimizer(1, OptimConfig(), params, pipeline)
    with pytest.raises(ValueError, match="expected one of \\(1, 2\\), found 3"):
        trainable_predicate(3, pipeline)
    with pytest.raises(ValueError, match="phase 2 only"):
        trainable_predicate(1, pipeline, unfreeze_last_tds_stage=True)


def test_vmapped_seeds_equal_per_seed_training(emg2pose_vars):
    # conv: BatchNorm statistics and dropout too (without the final ReLU, whose zero output has zero gradient)
    pipeline = AdapterPipeline(variant_config("conv+sinc", adapter_options={"final_activation": False}), E2P)
    template = pipeline.init(jax.random.key(0), emg2pose_vars)
    optimizer = make_phase_optimizer(1, OptimConfig(learning_rate=3e-3), template["params"], pipeline)
    loss_fn = make_adapter_loss_fn(pipeline, tuple(_batch()))
    seeds, names = [3, 4], ["recon", "pose"]
    states = init_states(pipeline, emg2pose_vars, optimizer, seeds)
    weights = [obj.objective_weights(n) for n in names]
    batches = [_batch(10 + i) for i in range(3)]
    stacked = stack_trees(states)
    multi = make_vmapped_train_step(loss_fn, optimizer)
    for batch in batches:
        stacked, _ = multi(stacked, batch, objective_batch(weights))
    single = make_local_train_step(loss_fn, optimizer)
    for i, state in enumerate(states):
        for batch in batches:
            state, _ = single(state, {**batch, **objective_batch(weights[i])})
        vmapped = jax.tree_util.tree_leaves(unstack_tree(stacked.params, i))
        for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(state.params), vmapped, strict=True):
            if "conv_in" in jax.tree_util.keystr(path) and "bias" in jax.tree_util.keystr(path):
                # conv_in's bias feeds BatchNorm: its true gradient is 0, so Adam's steps on it are pure
                # rounding noise (batched vs single) -- bounded by the learning rate, not comparable.
                assert np.max(np.abs(a - b)) < 3 * 3e-3
                continue
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=jax.tree_util.keystr(path))
        assert not _same(state.params["adapter"], states[i].params["adapter"])


# ----------------------------------------------------------------------------- objectives on known signals


def test_snr_of_known_noisy_copy():
    rng = np.random.default_rng(0)
    target = rng.standard_normal((4, 3, 1000))
    noise = 0.1 * rng.standard_normal(target.shape)
    expected = 10 * np.log10(np.sum(target**2) / np.sum(noise**2))
    assert obj.snr_db(target + noise, target) == pytest.approx(expected, abs=1e-9)
    assert obj.snr_db(target + noise, target) == pytest.approx(20.0, abs=0.3)  # 10x amplitude ratio


def test_band_snr_splits_measured_and_invented_bands():
    t = np.arange(2000) / 2000.0
    low = np.sin(2 * np.pi * 100 * t)
    high = 0.5 * np.sin(2 * np.pi * 400 * t)
    target = np.broadcast_to(low + high, (2, 4, 2000))
    pred = np.broadcast_to(low, (2, 4, 2000))  # an upsampler that recovers 0-250 Hz exactly and invents nothing
    snr_low, snr_high = obj.band_snr_db(pred, target, 2000.0)
    # Welch's Hann segments leak the 400 Hz error into 0-250 Hz at about -54 dB (a rectangular window: -13 dB).
    assert snr_low > 45
    assert snr_high == pytest.approx(0.0, abs=1e-6)  # the error *is* the high-band signal
    # Errors in the high band only do not touch the low band's SNR.
    snr_low2, snr_high2 = obj.band_snr_db(target + np.broadcast_to(high, target.shape), target, 2000.0)
    assert snr_low2 > 45 and snr_high2 == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="same shape"):
        obj.band_snr_db(pred[:, :2], target, 2000.0)


def test_correlation_priors_and_spectral_distance():
    rng = np.random.default_rng(1)
    target = rng.standard_normal((2, 3, 500))
    pred = np.concatenate([2 * target[:, :1] + 1, -target[:, 1:2], rng.standard_normal((2, 1, 500))], axis=1)
    corr = obj.channel_correlation(pred, target)
    np.testing.assert_allclose(corr[:2], [1.0, -1.0], atol=1e-12)
    assert abs(corr[2]) < 0.15
    standardised = (target - target.mean(axis=(0, 2), keepdims=True)) / target.std(axis=(0, 2), keepdims=True)
    assert float(obj.amplitude_prior(jnp.asarray(standardised))) == pytest.approx(0.0, abs=1e-6)
    assert float(obj.amplitude_prior(jnp.asarray(3 * standardised + 1))) == pytest.approx(1 + 4, rel=1e-5)
    ramp = jnp.broadcast_to(0.5 * jnp.arange(100.0), (1, 2, 100))
    assert float(obj.smoothness_prior(ramp)) == pytest.approx(0.25)
    x = jnp.asarray(target, jnp.float32)
    assert float(obj.log_spectral_distance(x, x)) == 0.0
    assert float(obj.log_spectral_distance(2 * x, x)) > 0.5
    assert float(obj.time_mse(x + 1, x)) == pytest.approx(1.0)


def test_landmark_loss_zero_for_true_angles():
    from emgjax.kinematics import forward_kinematics
    from emgjax.kinematics.mediapipe import hand_model_to_mediapipe

    hand = synthetic_hand_model()
    angles = 0.3 * jnp.ones((1, 20, 80))
    landmarks = hand_model_to_mediapipe(forward_kinematics(jnp.swapaxes(angles[..., ::40], 1, 2), hand), hand)
    mask = jnp.ones((1, 80), bool)
    assert float(obj.landmark_pose_loss(angles, landmarks, mask, hand)) == pytest.approx(0.0, abs=1e-5)
    assert float(obj.landmark_pose_loss(angles + 0.2, landmarks, mask, hand)) > 1.0  # mm
    with pytest.raises(ValueError, match="target_landmarks: expected shape"):
        obj.landmark_pose_loss(angles, landmarks[:, :1], mask, hand)
