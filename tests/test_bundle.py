"""emgjax.bundle: one model format for every kind, its atomic writer and its checked reader."""

import json
import runpy
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest

import emgjax
from emgjax.bundle import (
    BundleError,
    Emg2PoseModel,
    emg2pose_specs,
    is_bundle,
    load_model,
    load_pretrained,
    save_adapter_pipeline,
    save_model,
)
from emgjax.models import pose_modules
from emgjax.recipes.adapter.frozen import save_pretrained, tiny_emg2pose_config

ROOT = Path(__file__).resolve().parents[1]

DIRECT_ARGS = [
    "--set", "model.conv_channels=8,16", "--set", "model.lstm_hidden=16", "--set", "model.head_hidden=8",
    "--set", "data.window_length=32", "--set", "data.stride=16", "--set", "data.eval_stride=32",
    "--set", "loop.batch_size=8", "--set", "loop.max_steps=2", "--set", "loop.progress=false",
]  # fmt: skip
EMG2POSE_ARGS = [
    "--set", "size.tds_channels=2", "--set", "size.feature_width=4", "--set", "size.num_blocks=1",
    "--set", "size.tds_out_channels=8", "--set", "size.hidden_size=8", "--set", "size.num_layers=1",
    "--set", "window_length=1400", "--set", "val_window_length=1400", "--set", "normalise=true",
    "--set", "loop.batch_size=4", "--set", "loop.max_steps=1", "--set", "loop.num_epochs=1",
    "--set", "loop.progress=false",
]  # fmt: skip


def _script(name):
    return runpy.run_path(str(ROOT / "experiments" / name))["main"]


def _pipeline(variant="conv+subpixel"):
    from emgjax.models.adapter import AdapterPipeline, variant_config

    config = tiny_emg2pose_config()
    pipeline = AdapterPipeline(variant_config(variant), config)
    frozen = pose_modules.init_variables(config, jax.random.key(1))
    return pipeline, frozen, pipeline.init(jax.random.key(2), frozen, num_samples=64)


@pytest.fixture(scope="module")
def tiny_emg2pose(tmp_path_factory):
    """(directory, variables) of a tiny emg2pose bundle."""
    config = tiny_emg2pose_config()
    variables = pose_modules.init_variables(config, jax.random.key(1))
    out = save_pretrained(tmp_path_factory.mktemp("e2p") / "frozen", config, variables, provide_initial_pos=False)
    return out, variables


def test_load_model_opens_and_predicts_every_kind(tmp_path, capsys):
    import ckpt_fixtures as F
    from test_convert_command import TINY_HPARAMS

    from emgjax.convert import emg2pose_map as M
    from emgjax.convert.command import main as convert_main
    from emgjax.data.synthetic import write_synthetic_dataset
    from emgjax.models.direct import DirectModel
    from emgjax.recipes.direct import load_direct

    rng = np.random.default_rng(0)

    # 1. a converted checkpoint
    config = M.model_config_from_hyper_parameters(TINY_HPARAMS)
    variables = pose_modules.init_variables(config, jax.random.key(1))
    state_dict = {k: np.asarray(v) for k, v in M.variables_to_state_dict(variables, config).items()}
    F.write_lightning_checkpoint(tmp_path / "tiny.ckpt", state_dict, TINY_HPARAMS)
    assert convert_main([str(tmp_path / "tiny.ckpt"), str(tmp_path / "converted")]) == 0
    converted = emgjax.load_model(tmp_path / "converted")
    assert isinstance(converted, Emg2PoseModel) and converted.kind == "emg2pose"
    assert converted.input_spec.channels == 16 and converted.input_spec.sample_rate == 2000.0
    assert converted.output_spec.what == "joint_angles" and converted.output_spec.shape == (20,)
    emg = rng.standard_normal((2, 16, config.left_context + 30)).astype(np.float32)
    start = rng.standard_normal((2, 20)).astype(np.float32)
    pred = converted.predict(emg, start)
    assert pred.shape == (2, 20, 30)
    raw = pose_modules.predict_pose(config, variables, emg, start)
    np.testing.assert_allclose(pred, pose_modules.align_predictions(raw, 30), rtol=1e-5, atol=1e-6)
    # no initial pose: zeros, as emg2pose with provide_initial_pos=False
    angles = np.repeat(start[:, :, None], emg.shape[-1], axis=2)
    mask = np.ones((2, emg.shape[-1]), bool)
    regression, _, _ = converted(emg, angles, mask, False)
    np.testing.assert_allclose(converted.predict(emg), regression, rtol=1e-5, atol=1e-6)
    tracking, _, _ = converted(emg, angles, mask, True)
    np.testing.assert_allclose(pred, tracking, rtol=1e-5, atol=1e-6)

    # 2. + 3. models from the training scripts, on synthetic data made here
    data = tmp_path / "data"
    write_synthetic_dataset(data, n_sessions=3, duration_s=8.0, seed=3, formats=("mindrove", "emg2pose"))
    assert (
        _script("train_direct.py")(["--out_dir", str(tmp_path / "direct"), "--data_dir", str(data), *DIRECT_ARGS]) == 0
    )
    assert (
        _script("train_emg2pose.py")(["--out_dir", str(tmp_path / "e2p"), "--data_dir", str(data), *EMG2POSE_ARGS]) == 0
    )
    capsys.readouterr()

    direct = emgjax.load_model(tmp_path / "direct" / "model")
    assert direct.kind == "direct" and direct.output_spec.what == "joints"
    assert direct.input_spec.preprocessing.notch_hz == 60.0 and direct.input_spec.preprocessing.band_hz == (20.0, 200.0)
    session = np.stack([rng.standard_normal((8, 200)).astype(np.float32) * 50 for _ in range(3)])
    pose = direct.predict(session)
    assert pose.shape == (3, 21, 3)
    # equal to the recipe's own path: its whole-session filter and z-score, the network, its target statistics
    from emgjax.recipes.direct import _SessionPreprocess, direct_info

    info = direct_info(load_direct(tmp_path / "direct"))
    pre = _SessionPreprocess(
        60.0, (20.0, 200.0), tuple(info["normalisation"]["mean"]), tuple(info["normalisation"]["std"])
    )
    ready = np.stack([pre(window, 500.0) for window in session])
    network, _ = DirectModel(direct.config).apply(direct.params, ready, train=False)
    expected = np.asarray(network) * info["target"]["scale"] + np.asarray(info["target"]["mean"], np.float32)
    np.testing.assert_allclose(pose, expected, rtol=1e-4, atol=1e-3)

    trained = emgjax.load_model(tmp_path / "e2p" / "model")
    assert isinstance(trained, Emg2PoseModel) and trained.provide_initial_pos is True
    assert emgjax.load_pretrained(tmp_path / "e2p" / "model").config == trained.config  # the emg2pose entry reads it
    norm = trained.input_spec.preprocessing.normalisation
    assert norm is not None and len(norm["mean"]) == 16
    length = trained.config.min_window_length() + 9
    emg = rng.standard_normal((1, 16, length)).astype(np.float32) * 20
    z = ((emg - np.asarray(norm["mean"])[:, None]) / np.asarray(norm["std"])[:, None]).astype(np.float32)
    pred = trained.predict(emg, np.zeros((1, 20), np.float32))
    assert pred.shape == (1, 20, length - trained.left_context)
    own = pose_modules.predict_pose(trained.config, trained.params, z, np.zeros((1, 20), np.float32))
    np.testing.assert_allclose(
        pred, pose_modules.align_predictions(own, length - trained.left_context), rtol=1e-5, atol=1e-6
    )

    # 4. an adapter pipeline from the adapter benchmark (a reduced tiny run: one variant, objective and seed)
    from emgjax.models.adapter import AdapterPipeline
    from emgjax.recipes.adapter.bench_config import tiny_config
    from emgjax.recipes.adapter.benchmark import run_benchmark

    reduced = tiny_config(
        objectives=("pose",),
        seeds=(0,),
        direct=False,
        calibrated_ceiling=False,
        emg2pose_steps=5,
        target_space=False,
        learning_rates=(1e-2,),
    )
    run_benchmark(reduced, tmp_path / "bench", log=lambda line: None)
    adapter = emgjax.load_model(tmp_path / "bench" / "models" / "linear_sinc__pose")
    assert adapter.kind == "adapter_pipeline" and adapter.input_spec.sample_rate == 500.0
    pipeline = AdapterPipeline(adapter.config.pipeline, adapter.config.emg2pose)
    norm = adapter.input_spec.preprocessing.normalisation
    z = rng.standard_normal((2, 8, 40)).astype(np.float32)
    raw = (z * np.asarray(norm["std"])[:, None] + np.asarray(norm["mean"])[:, None]).astype(np.float32)
    pred = adapter.predict(raw)
    assert pred.shape == (2, 20, 4 * 40 - pipeline.emg2pose_config.left_context)
    outputs, _ = pipeline(adapter.params, z)
    np.testing.assert_allclose(pred, outputs["angles"], rtol=1e-4, atol=1e-4)


def test_adapter_pipeline_by_reference(tiny_emg2pose, tmp_path):
    frozen_dir, _ = tiny_emg2pose
    pipeline, _, variables = _pipeline("linear+learned_residual")
    reference = tmp_path / "frozen"
    shutil.copytree(frozen_dir, reference)
    save_adapter_pipeline(
        tmp_path / "adapter", pipeline.config, pipeline.emg2pose_config, variables, emg2pose_ref=reference
    )
    info = json.loads((tmp_path / "adapter" / "bundle.json").read_text())
    assert info["references"]["emg2pose"]["path"] == "../frozen"
    embedded_size = sum(p.stat().st_size for p in (tmp_path / "adapter").rglob("*") if p.is_file())
    assert embedded_size < sum(p.stat().st_size for p in reference.rglob("*") if p.is_file())  # weights not copied
    model = load_model(tmp_path / "adapter")
    emg = np.random.default_rng(1).standard_normal((1, 8, 40)).astype(np.float32)
    outputs, _ = pipeline(variables, emg)
    np.testing.assert_allclose(model.predict(emg), outputs["angles"], rtol=1e-5, atol=1e-6)

    # other emg2pose weights than the adapter's are refused at save time
    other = pose_modules.init_variables(pipeline.emg2pose_config, jax.random.key(9))
    save_pretrained(tmp_path / "other", pipeline.emg2pose_config, other, provide_initial_pos=False)
    with pytest.raises(BundleError, match="expected the emg2pose weights the adapter was trained against"):
        save_adapter_pipeline(
            tmp_path / "x", pipeline.config, pipeline.emg2pose_config, variables, emg2pose_ref=tmp_path / "other"
        )
    # a changed or missing reference is refused at load time
    shutil.rmtree(reference)
    shutil.copytree(tmp_path / "other", reference)
    with pytest.raises(BundleError, match=r"adapter/bundle\.json: the referenced emg2pose bundle .* changed"):
        load_model(tmp_path / "adapter")
    shutil.rmtree(reference)
    with pytest.raises(BundleError, match=r"referenced emg2pose bundle .* is missing"):
        load_model(tmp_path / "adapter")


def test_save_is_atomic_and_replaces_a_bundle(tiny_emg2pose, tmp_path, monkeypatch):
    import emgjax.bundle.store as B

    _, variables = tiny_emg2pose
    config = tiny_emg2pose_config()
    specs = dict(zip(("input_spec", "output_spec"), emg2pose_specs(config), strict=True))
    out = tmp_path / "model"
    real = B._write_variables

    def write_then_fail(*args, **kwargs):
        real(*args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(B, "_write_variables", write_then_fail)
    with pytest.raises(OSError, match="No space left"):
        save_model(out, "emg2pose", config, variables, **specs)
    assert sorted(tmp_path.iterdir()) == []  # neither the model nor a staging directory
    monkeypatch.setattr(B, "_write_variables", real)
    save_model(out, "emg2pose", config, variables, metadata={"round": 1}, **specs)
    before = (out / "bundle.json").read_text()

    monkeypatch.setattr(B, "_write_variables", write_then_fail)
    with pytest.raises(OSError, match="No space left"):
        save_model(out, "emg2pose", config, variables, metadata={"round": 2}, **specs)
    assert (out / "bundle.json").read_text() == before and [p.name for p in tmp_path.iterdir()] == ["model"]
    assert load_model(out).metadata["round"] == 1  # the old bundle, intact

    monkeypatch.setattr(B, "_write_variables", real)
    save_model(out, "emg2pose", config, variables, metadata={"round": 2}, **specs)
    assert load_model(out).metadata["round"] == 2 and [p.name for p in tmp_path.iterdir()] == ["model"]

    # a folder holding anything else is not replaced without overwrite=True; wrong shapes never written
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="busy: expected a new, empty or model directory"):
        save_model(tmp_path / "busy", "emg2pose", config, variables, **specs)
    bad = jax.tree_util.tree_map(lambda x: x[..., :1], variables)
    with pytest.raises(BundleError, match="the emg2pose variables do not match its config"):
        save_model(tmp_path / "bad", "emg2pose", config, bad, **specs)
    assert not (tmp_path / "bad").exists()
    with pytest.raises(BundleError, match="model kind: expected one of"):
        save_model(tmp_path / "bad", "lstm", config, variables, **specs)


def test_kind_version_and_damage_are_refused(tiny_emg2pose, tmp_path):
    frozen_dir, variables = tiny_emg2pose

    def copy(name):
        target = tmp_path / name
        shutil.copytree(frozen_dir, target)
        return target, json.loads((target / "bundle.json").read_text())

    pipeline, _, adapter_vars = _pipeline()
    save_adapter_pipeline(tmp_path / "adapter", pipeline.config, pipeline.emg2pose_config, adapter_vars)
    with pytest.raises(BundleError, match=r"adapter/bundle\.json: expected a emg2pose model, found a adapter_pipeline"):
        load_pretrained(tmp_path / "adapter")
    unknown, info = copy("unknown")
    (unknown / "bundle.json").write_text(json.dumps({**info, "kind": "lstm"}))
    with pytest.raises(BundleError, match=r"unknown/bundle\.json: expected a model kind among .*, found 'lstm'"):
        load_model(unknown)
    newer, info = copy("newer")
    (newer / "bundle.json").write_text(json.dumps({**info, "format_version": 2}))
    with pytest.raises(BundleError, match=r"newer/bundle\.json: expected format_version 1, found 2 .*upgrade emgjax"):
        load_model(newer)
    nan, info = copy("nan")
    shutil.rmtree(nan / "variables")
    poisoned = jax.tree_util.tree_map(lambda x: np.asarray(x).copy(), variables)
    first = jax.tree_util.tree_leaves(poisoned)[0]
    first.flat[0] = np.nan
    B = pytest.importorskip("emgjax.bundle.store")
    B._write_variables(nan / "variables", poisoned)
    with pytest.raises(BundleError, match="expected finite weights, found NaN/Inf in 1 variable"):
        load_model(nan)
    missing, _ = copy("missing")
    (missing / "bundle.json").unlink()
    with pytest.raises(BundleError, match=r"missing/bundle\.json: expected the model's bundle\.json, found none"):
        load_model(missing)
    assert not is_bundle(missing)

    # an "emgjax-emg2pose" v1 directory (what `emgjax convert` wrote before bundles) still loads
    legacy, info = copy("legacy")
    (legacy / "bundle.json").unlink()
    old = {"format": "emgjax-emg2pose", "format_version": 1, "experiment": None, "provide_initial_pos": False}
    (legacy / "config.json").write_text(json.dumps({**old, "model": info["config"], "emgjax_version": "0.1"}))
    model = load_pretrained(legacy)
    assert model.config == tiny_emg2pose_config() and model.metadata["emgjax_version"] == "0.1"


def test_predict_refuses_bad_input(tiny_emg2pose):
    model = load_model(tiny_emg2pose[0])
    shortest = model.config.min_window_length()
    good = np.zeros((2, 16, shortest + 3), np.float32)
    with pytest.raises(ValueError, match=r"emg: expected 16 channels \(axis 1"):
        model.predict(np.zeros((2, 8, shortest), np.float32))
    with pytest.raises(ValueError, match=r"emg: expected a 3-d array \(batch, channels, time\), found 2-d"):
        model.predict(good[0])
    with pytest.raises(ValueError, match=f"emg: expected at least {shortest} samples along axis 2"):
        model.predict(good[..., :10])
    with pytest.raises(ValueError, match="emg: expected a floating-point array"):
        model.predict(good.astype(np.int16))
    with pytest.raises(ValueError, match=r"emg: expected a NumPy or JAX array, found builtins\.list"):
        model.predict(good.tolist())
    with pytest.raises(ValueError, match="emg: expected at least one window"):
        model.predict(good[:0])
    bad = good.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="emg: expected only finite values"):
        model.predict(bad)
    with pytest.raises(ValueError, match=r"initial_pose: expected batch size 2 to match emg"):
        model.predict(good, np.zeros((3, 20), np.float32))
    with pytest.raises(ValueError, match=r"initial_pose: expected 20 joint angles"):
        model.predict(good, np.zeros((2, 16), np.float32))
    with pytest.raises(ValueError, match=r"sample_rate: expected 2000 Hz \(the model's\), found 500 Hz"):
        model.predict(good, sample_rate=500)
    assert model.predict(good, batch_size=1).shape == (2, 20, shortest + 3 - model.left_context)
