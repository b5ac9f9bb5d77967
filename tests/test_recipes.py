"""Recipes: train / evaluate / fine-tune the direct model, train the emg2pose port, resume by rerunning, scripts."""

import dataclasses
import json
import runpy
from pathlib import Path

import jax
import numpy as np
import pytest

from emgjax.models.direct import DirectConfig
from emgjax.recipes.common import LoopConfig, SessionsConfig, read_json, resolve_sessions
from emgjax.recipes.direct import (
    DirectDataConfig,
    DirectExperiment,
    FinetuneExperiment,
    _backbone_frozen_predicate,
    _norm_stats,
    _SessionPreprocess,
    direct_info,
    evaluate_direct,
    finetune_direct,
    format_report,
    load_direct,
    train_direct,
)
from emgjax.train.optim import OptimConfig, path_names

ROOT = Path(__file__).resolve().parents[1]
TINY_MODEL = DirectConfig(conv_channels=(8, 16), lstm_hidden=16, head_hidden=8, dropout=0.0)


@pytest.fixture(scope="module")
def mindrove_data(tmp_path_factory):
    from emgjax.data.synthetic import write_synthetic_dataset

    out = tmp_path_factory.mktemp("synth")
    write_synthetic_dataset(out, n_sessions=3, duration_s=8.0, seed=3, formats=("mindrove",))
    return out  # 3 sessions: train / val / test


def _experiment(out_dir, data_dir, *, steps=9, **loop):
    return DirectExperiment(
        out_dir=str(out_dir),
        sessions=SessionsConfig(data_dir=str(data_dir)),
        data=DirectDataConfig(window_length=32, stride=16, eval_stride=32),
        model=TINY_MODEL,
        optim=OptimConfig(learning_rate=3e-3),
        loop=LoopConfig(
            batch_size=16, num_epochs=50, max_steps=steps, checkpoint_every_steps=3, progress=False, **loop
        ),
    )


@pytest.fixture(scope="module")
def trained(mindrove_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "direct"
    # 9 steps straight: also the reference of the resume test
    return train_direct(_experiment(out, mindrove_data, steps=9), verbose=False)


def _flat(tree):
    return {"/".join(path_names(p)): np.asarray(leaf) for p, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def test_train_direct_writes_a_complete_run(trained, mindrove_data):
    run = trained
    assert run.steps == 9 and run.resumed_from_step is None
    for name in ("config.json", "statistics.json", "metrics.jsonl", "checkpoints", "model/bundle.json"):
        assert (run.out_dir / name).exists(), name
    info = read_json(run.out_dir / "statistics.json", "statistics.json")
    # the exported model carries the same statistics
    exported = direct_info(load_direct(run.out_dir))
    saved = {**info, "normalisation": {k: info["normalisation"][k] for k in ("mean", "std")}}
    assert {k: exported[k] for k in info} == saved
    splits = resolve_sessions(SessionsConfig(data_dir=str(mindrove_data)), "mindrove")
    assert [Path(p) for p in info["trained_on"]] == splits["train"]
    # normalisation statistics: global, from the filtered training sessions only
    expected = _norm_stats(splits["train"], _SessionPreprocess(60.0, (20.0, 200.0)))
    np.testing.assert_allclose(info["normalisation"]["mean"], expected.mean)
    np.testing.assert_allclose(info["normalisation"]["std"], expected.std)
    assert len(info["target"]["mean"]) == 21 and info["target"]["scale"] > 0
    # the wrist-centred mean pose has the wrist at the origin
    np.testing.assert_allclose(info["target"]["mean"][0], [0, 0, 0], atol=1e-9)
    # the statistics also travel inside the checkpoints
    from emgjax.train import Checkpointer

    with Checkpointer(run.out_dir / "checkpoints") as checkpointer:
        step = checkpointer.latest_step()
        extra = checkpointer._manager.restore(
            step,
            args=__import__("orbax.checkpoint").checkpoint.args.Composite(
                extra=__import__("orbax.checkpoint").checkpoint.args.JsonRestore()
            ),
        )["extra"]
    assert extra["user"]["normalisation"] == info["normalisation"]
    assert extra["user"]["target"] == info["target"]


def test_evaluate_direct_against_the_mean_baseline(trained, tmp_path):
    run = trained
    evaluation = evaluate_direct(run.out_dir, run.splits["test"], plot_dir=tmp_path)
    assert evaluation.frames == evaluation.pred.shape[0] > 10
    assert evaluation.pred.shape == evaluation.true.shape == (evaluation.frames, 21, 3)
    info = direct_info(run.model)
    mean_pose = np.asarray(info["target"]["mean"])
    baseline = np.linalg.norm(evaluation.true - mean_pose, axis=-1).mean()
    assert evaluation.baseline["mpjpe_mm"] == pytest.approx(baseline, rel=1e-5)
    model = np.linalg.norm(evaluation.true - evaluation.pred, axis=-1).mean()
    assert evaluation.model["mpjpe_mm"] == pytest.approx(model, rel=1e-5)
    assert 0 < evaluation.model["pa_mpjpe_mm"] <= evaluation.model["mpjpe_mm"] + 1e-3
    assert set(evaluation.model) == set(evaluation.baseline)
    assert evaluation.pngs == [tmp_path / "trajectories.png"] and evaluation.pngs[0].stat().st_size > 1000
    assert "mpjpe_mm" in format_report(evaluation)
    json.dumps(evaluation.summary())  # JSON-able


def test_evaluation_uses_the_saved_normalisation(trained):
    run = trained
    saved = direct_info(run.model)["normalisation"]
    shifted = {**saved, "mean": [m + 3 * s for m, s in zip(saved["mean"], saved["std"], strict=True)]}
    a = evaluate_direct(run.out_dir, run.splits["test"])
    b = evaluate_direct(run.out_dir, run.splits["test"], normalisation=shifted)
    c = evaluate_direct(run.out_dir, run.splits["test"])
    np.testing.assert_array_equal(a.pred, c.pred)
    assert not np.allclose(a.pred, b.pred)


@pytest.mark.slow
def test_rerun_resumes_and_matches_an_uninterrupted_run(trained, mindrove_data, tmp_path):
    # Stop after 4 steps (mid-epoch), rerun the same command asking for 9: it resumes at 4.
    interrupted = train_direct(_experiment(tmp_path / "a", mindrove_data, steps=4), verbose=False)
    resumed = train_direct(_experiment(tmp_path / "a", mindrove_data, steps=9), verbose=False)
    straight = trained
    assert interrupted.steps == 4 and resumed.resumed_from_step == 4 and resumed.steps == 9
    a, b = _flat(resumed.model.variables), _flat(straight.model.variables)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_rerun_with_another_config_is_refused(trained, mindrove_data):
    changed = dataclasses.replace(
        _experiment(trained.out_dir, mindrove_data), model=dataclasses.replace(TINY_MODEL, lstm_hidden=8)
    )
    with pytest.raises(ValueError, match=r"(?s)different config.*model\.lstm_hidden: saved 16, now 8"):
        train_direct(changed, verbose=False)


def test_finetune_freezes_the_backbone_and_trains_the_head(trained, mindrove_data, tmp_path):
    splits = trained.splits
    exp = FinetuneExperiment(
        pretrained_dir=str(trained.out_dir),
        out_dir=str(tmp_path / "ft"),
        # a "new user": calibrate on the first 5 s of the val session, evaluate on the test session
        sessions=SessionsConfig(train=(str(splits["val"][0]),), test=(str(splits["test"][0]),)),
        calibration_seconds=5.0,
        train_last_lstm_layer=True,
        stride=16,
        optim=OptimConfig(learning_rate=1e-2),
        loop=LoopConfig(batch_size=16, num_epochs=2, max_steps=4, progress=False),
    )
    run, evaluations = finetune_direct(exp, verbose=False)
    assert run.steps == 4
    before, after = _flat(trained.model.variables["params"]), _flat(run.model.variables["params"])
    trainable = [k for k in before if k.startswith(("head", "lstm/layer_1/"))]
    frozen = [k for k in before if k not in trainable]
    assert frozen and any(k.startswith("conv_") for k in frozen) and any(k.startswith("lstm/layer_0/") for k in frozen)
    for key in frozen:
        np.testing.assert_array_equal(after[key], before[key], err_msg=f"{key} should be frozen")
    for key in trainable:
        assert not np.array_equal(after[key], before[key]), f"{key} should have trained"
    assert set(evaluations) == {"before", "after"}
    assert evaluations["before"].frames == evaluations["after"].frames > 0
    saved = read_json(run.out_dir / "finetune_evaluation.json", "evaluation")
    assert saved["after"]["model"] == evaluations["after"].model
    info = direct_info(load_direct(run.out_dir))
    assert info["finetune"]["train_last_lstm_layer"] is True
    assert info["finetuned_from"] == str(trained.out_dir.resolve())
    # the pretrained statistics travel on
    assert info["normalisation"] == direct_info(trained.model)["normalisation"]


def test_backbone_predicate_without_the_lstm_layer():
    predicate = _backbone_frozen_predicate(2, False)
    assert predicate(("head_out", "kernel"), None) and predicate(("head_hidden", "bias"), None)
    assert not predicate(("lstm", "layer_1", "kernel_hh"), None)
    assert not predicate(("conv_0", "kernel"), None)
    assert _backbone_frozen_predicate(2, True)(("lstm", "layer_1", "bias_ih"), None)
    assert not _backbone_frozen_predicate(2, True)(("lstm", "layer_0", "bias_ih"), None)


def test_scripts_evaluate_and_bad_overrides(trained, mindrove_data, capsys):
    evaluate = runpy.run_path(str(ROOT / "experiments" / "evaluate.py"))["main"]
    assert evaluate([str(trained.out_dir), "--data_dir", str(mindrove_data), "--split", "test"]) == 0
    assert "mpjpe_mm" in capsys.readouterr().out
    summary = read_json(trained.out_dir / "evaluation_test.json", "evaluation")
    assert summary["frames"] > 0 and summary["model"]["mpjpe_mm"] > 0
    assert evaluate([str(trained.out_dir), "--sessions", str(mindrove_data / "missing.hdf5")]) == 2
    assert "missing.hdf5" in capsys.readouterr().err
    train = runpy.run_path(str(ROOT / "experiments" / "train_direct.py"))["main"]
    with pytest.raises(SystemExit) as exit_info:
        train(["--set", "model.lstm_hiden=3"])
    assert exit_info.value.code == 2
    assert "did you mean model.lstm_hidden" in capsys.readouterr().err
    assert train(["--out_dir", str(trained.out_dir.parent / "none"), "--data_dir", str(mindrove_data / "nowhere")]) == 2
    assert "metadata.csv" in capsys.readouterr().err


def test_input_errors(mindrove_data, tmp_path):
    with pytest.raises(ValueError, match="expected data_dir, splits_file or explicit"):
        resolve_sessions(SessionsConfig(), "mindrove")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_sessions(SessionsConfig(train=(str(tmp_path / "x.hdf5"),)), "mindrove")
    path = str(next((mindrove_data / "mindrove").glob("*.hdf5")))
    with pytest.raises(ValueError, match="both split"):
        resolve_sessions(SessionsConfig(train=(path,), test=(path,)), "mindrove")
    with pytest.raises(ValueError, match="multiple of the 4 local devices"):
        train_direct(
            dataclasses.replace(_experiment(tmp_path / "c", mindrove_data), loop=LoopConfig(batch_size=6)),
            verbose=False,
        )
    exp = _experiment(tmp_path / "d", mindrove_data)
    with pytest.raises(ValueError, match="no 'mano_theta' labels in this session"):
        train_direct(dataclasses.replace(exp, model=dataclasses.replace(TINY_MODEL, output="mano")), verbose=False)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "bundle.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match=r"bad/bundle\.json: expected format 'emgjax-model', found 'something-else'"):
        load_direct(tmp_path / "bad")
    with pytest.raises(FileNotFoundError, match="nothing: no such model directory"):
        load_direct(tmp_path / "nothing")


# -- emg2pose -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emg2pose_data(tmp_path_factory):
    from emgjax.data.synthetic import write_synthetic_dataset

    out = tmp_path_factory.mktemp("synth2k")
    write_synthetic_dataset(out, n_sessions=3, duration_s=3.0, seed=5, formats=("emg2pose",))
    return out


@pytest.mark.slow
def test_emg2pose_recipe_trains_a_tiny_config_and_evaluates(emg2pose_data, tmp_path):
    from emgjax.recipes.emg2pose import (
        Emg2PoseTraining,
        ModelSize,
        evaluate_emg2pose,
        train_emg2pose,
    )

    splits = resolve_sessions(SessionsConfig(data_dir=str(emg2pose_data)), "emg2pose")
    exp = Emg2PoseTraining(
        out_dir=str(tmp_path / "e2p"),
        # no val split: one compilation fewer (validation is covered by the direct recipe's tests)
        sessions=SessionsConfig(
            train=tuple(map(str, splits["train"] + splits["val"])), test=tuple(map(str, splits["test"]))
        ),
        size=ModelSize(tds_channels=2, feature_width=4, num_blocks=1, tds_out_channels=8, hidden_size=16, num_layers=1),
        window_length=1400,  # left context 1150 (one TDS block per stage) + 250 samples = 6 rollout steps
        stride=700,
        val_window_length=1400,
        compute_dtype="bfloat16",  # the precision option end to end: trained, saved, loaded, evaluated
        loop=LoopConfig(batch_size=4, num_epochs=1, progress=False),
    )
    from emgjax.data.windows import Emg2PoseWindows

    # emg2pose's default: only windows inside runs without IK failure (the synthetic sessions have some).
    train_paths = list(exp.sessions.train)
    skipping = len(Emg2PoseWindows(train_paths, 1400, stride=700, skip_ik_failures=True))
    assert 4 <= skipping < len(Emg2PoseWindows(train_paths, 1400, stride=700))
    run = train_emg2pose(exp, verbose=False)
    assert run.steps == skipping // 4  # one epoch, full batches
    records = [json.loads(line) for line in (run.out_dir / "metrics.jsonl").read_text().splitlines()]
    assert records and all(np.isfinite(r["train_loss"]) for r in records if "train_loss" in r)
    from emgjax.recipes.emg2pose import load_emg2pose

    config, _, info = load_emg2pose(run.out_dir)
    assert config.compute_dtype == "bfloat16"
    assert info["experiment"] == "tracking_vemg2pose" and info["provide_initial_pos"] is True
    assert info["normalisation"] is None and len(info["mean_joint_angles"]) == 20
    assert info["trained_on"] == read_json(run.out_dir / "statistics.json", "statistics")["trained_on"]
    metrics = evaluate_emg2pose(run.out_dir, run.splits["test"])
    assert metrics["windows"]["count"] >= 1
    for key in ("mae_deg", "landmark_distance", "fingertip_distance"):
        assert np.isfinite(metrics["model"][key]) and metrics["baseline"][key] > 0
    with pytest.raises(ValueError, match="expected at least 1171 samples"):
        train_emg2pose(dataclasses.replace(exp, out_dir=str(tmp_path / "short"), window_length=1000), verbose=False)


def test_emg2pose_training_refuses_an_unknown_or_unsupported_compute_dtype():
    from emgjax.recipes.emg2pose import Emg2PoseTraining

    with pytest.raises(ValueError, match=r"compute_dtype: expected one of \['float32', 'bfloat16'\], found 'half'"):
        Emg2PoseTraining(compute_dtype="half")
    with pytest.raises(ValueError, match="found regression_neuropose"):
        Emg2PoseTraining(compute_dtype="bfloat16", experiment="regression_neuropose")


def test_build_pose_config_default_size_is_the_published_one():
    from emgjax.models.configs import EXPERIMENTS
    from emgjax.recipes.emg2pose import build_pose_config

    for name, experiment in EXPERIMENTS.items():
        assert build_pose_config(name) == experiment.model, name


# -- emg2pose: IK-failure masking and windows, as emg2pose's Lightning module and datamodule -------------------

E2P_TINY = {
    "tds_channels": 2,
    "feature_width": 4,
    "num_blocks": 1,
    "tds_out_channels": 8,
    "hidden_size": 16,
    "num_layers": 1,
}


def _e2p_loss_setup(experiment="tracking_vemg2pose"):
    from emgjax.models.configs import EXPERIMENTS
    from emgjax.models.pose_modules import init_variables
    from emgjax.recipes.emg2pose import (
        ModelSize,
        build_pose_config,
        make_emg2pose_loss_fn,
    )

    config = build_pose_config(experiment, ModelSize(**E2P_TINY))
    variables = init_variables(config, jax.random.key(0))
    provide = EXPERIMENTS[experiment].provide_initial_pos
    loss_fn = make_emg2pose_loss_fn(config, provide, axis_name=None)
    return config, variables, loss_fn


def _e2p_batch(config, batch=2, beyond=250, seed=0):
    rng = np.random.default_rng(seed)
    time = config.left_context + beyond
    return {
        "emg": rng.standard_normal((batch, 16, time)).astype(np.float32),
        "joint_angles": (0.5 * rng.standard_normal((batch, 20, time))).astype(np.float32),
        "no_ik_failure": np.ones((batch, time), bool),
    }


def test_mask_missing_initial_state_uses_the_left_context_sample():
    from emgjax.recipes.emg2pose import mask_missing_initial_state

    mask = np.ones((3, 10), bool)
    mask[0, 4] = False  # the initial-state sample (left_context = 4): whole window out
    mask[1, 0] = False  # sample 0 is context, not the initial state: only that sample out
    mask[2, 6] = False
    out = mask_missing_initial_state(mask, 4, True)
    assert not out[0].any()
    np.testing.assert_array_equal(out[1:], mask[1:])
    np.testing.assert_array_equal(mask_missing_initial_state(mask, 4, False), mask)  # regression: unchanged
    np.testing.assert_array_equal(np.asarray(mask_missing_initial_state(jax.numpy.asarray(mask), 4, True)), out)
    with pytest.raises(ValueError, match="provide_initial_pos: expected a bool"):
        mask_missing_initial_state(mask, 4, "yes")


def test_window_without_initial_state_contributes_nothing_to_loss_and_metrics():
    config, variables, loss_fn = _e2p_loss_setup("tracking_vemg2pose")
    batch = _e2p_batch(config)
    lc = config.left_context
    bad = {k: v.copy() for k, v in batch.items()}
    bad["no_ik_failure"][0, lc] = False  # window 0's initial state is an IK failure; all else valid
    good_only = {k: v[1:] for k, v in batch.items()}
    evaluate = jax.jit(lambda b: loss_fn(variables["params"], {}, b, jax.random.key(0), False))
    loss_bad, (metrics_bad, _) = evaluate(bad)
    loss_good, (metrics_good, _) = evaluate(good_only)
    np.testing.assert_allclose(float(loss_bad), float(loss_good), rtol=1e-6)
    for key in metrics_good:
        np.testing.assert_allclose(float(metrics_bad[key]), float(metrics_good[key]), rtol=1e-6, err_msg=key)
    # Without the rule window 0 would count (one False sample only): the check above can fail.
    loss_all, _ = evaluate(batch)
    assert abs(float(loss_all) - float(loss_good)) > 1e-3
    # Its targets do not matter either.
    scrambled = {**bad, "joint_angles": bad["joint_angles"].copy()}
    scrambled["joint_angles"][0, :, lc + 1 :] += 1.0
    np.testing.assert_allclose(float(evaluate(scrambled)[0]), float(loss_good), rtol=1e-6)
    # Gradients too: the training path (train=True) sees the same masked loss.
    grad = jax.jit(jax.grad(lambda p, b: loss_fn(p, {}, b, jax.random.key(0), True)[0]))
    g_bad, g_good = grad(variables["params"], scrambled), grad(variables["params"], good_only)
    for a, b in zip(jax.tree_util.tree_leaves(g_bad), jax.tree_util.tree_leaves(g_good), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-7)


def test_regression_experiments_keep_windows_with_a_failed_initial_state():
    """Without provide_initial_pos emg2pose leaves the mask alone: only the failed sample is dropped."""
    config, variables, loss_fn = _e2p_loss_setup("regression_emg2pose")
    batch = _e2p_batch(config)
    bad = {**batch, "no_ik_failure": batch["no_ik_failure"].copy()}
    bad["no_ik_failure"][0, config.left_context] = False
    loss_bad = float(loss_fn(variables["params"], {}, bad, jax.random.key(0), False)[0])
    loss_second = float(
        loss_fn(variables["params"], {}, {k: v[1:] for k, v in batch.items()}, jax.random.key(0), False)[0]
    )
    assert abs(loss_bad - loss_second) > 1e-3


def test_all_masked_batch_logs_emg2pose_warning(caplog):
    """`logging` WARNING on the emgjax.recipes.emg2pose logger, from inside the jitted train and eval steps."""
    from emgjax.recipes.emg2pose import ALL_MASKED_WARNING

    config, variables, loss_fn = _e2p_loss_setup("tracking_vemg2pose")
    batch = _e2p_batch(config)
    step = jax.jit(jax.value_and_grad(lambda p, b: loss_fn(p, {}, b, jax.random.key(0), True)[0]))
    evaluate = jax.jit(lambda b: loss_fn(variables["params"], {}, b, jax.random.key(0), False)[0])
    masked = {**batch, "no_ik_failure": batch["no_ik_failure"].copy()}
    masked["no_ik_failure"][:, config.left_context] = False  # every window loses its initial state

    def warnings_after(fn):
        caplog.clear()
        with caplog.at_level("WARNING", logger="emgjax.recipes.emg2pose"):
            jax.block_until_ready(fn())
            jax.effects_barrier()
        return [r for r in caplog.records if r.getMessage() == ALL_MASKED_WARNING]

    assert warnings_after(lambda: evaluate(batch)) == []
    assert warnings_after(lambda: step(variables["params"], batch)) == []
    assert len(warnings_after(lambda: evaluate(masked))) == 1
    records = warnings_after(lambda: step(variables["params"], masked))
    assert len(records) == 1 and records[0].levelname == "WARNING" and records[0].name == "emgjax.recipes.emg2pose"
    assert float(evaluate(masked)) == 0.0  # nothing left to average: 0, not NaN


def test_emg2pose_training_skips_ik_failure_windows_by_default(emg2pose_data, tmp_path, monkeypatch):
    """Train and validation windows come from Emg2PoseWindows(skip_ik_failures=True) unless asked otherwise."""
    import emgjax.recipes.emg2pose as recipe
    from emgjax.models.configs import EXPERIMENTS

    assert recipe.Emg2PoseTraining().skip_ik_failures is True
    assert all(e.skip_ik_failures for e in EXPERIMENTS.values())
    seen = []
    real_windows = recipe._windows

    def recording_windows(paths, info, **kwargs):
        seen.append((kwargs["window_length"], kwargs["skip_ik_failures"]))
        return real_windows(paths, info, **kwargs)

    class Stop(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(recipe, "_windows", recording_windows)
    monkeypatch.setattr(recipe, "run_fit", stop)
    splits = resolve_sessions(SessionsConfig(data_dir=str(emg2pose_data)), "emg2pose")
    for skip in (True, False):
        seen.clear()
        exp = recipe.Emg2PoseTraining(
            out_dir=str(tmp_path / f"skip{skip}"),
            experiment="regression_emg2pose",
            size=recipe.ModelSize(**E2P_TINY),
            sessions=SessionsConfig(train=(str(splits["train"][0]),), val=(str(splits["val"][0]),)),
            window_length=1400,
            val_window_length=1400,
            skip_ik_failures=skip,
        )
        with pytest.raises(Stop):
            recipe.train_emg2pose(exp, verbose=False)
        assert seen == [(1400, skip), (1400, skip)]
    # The published validation window is the experiment's (NeuroPose: 10,000), not a fixed 11,790.
    assert EXPERIMENTS["regression_neuropose"].val_window_length == 10_000


def test_evaluate_masks_windows_without_initial_state(tmp_path, caplog):
    """evaluate_emg2pose applies the same rule: a window whose left-context sample failed IK counts for nothing."""
    from emgjax.data.emg2pose import write_emg2pose_session
    from emgjax.models.pose_modules import init_variables
    from emgjax.recipes.emg2pose import (
        ALL_MASKED_WARNING,
        ModelSize,
        _export,
        build_pose_config,
        evaluate_emg2pose,
    )

    config = build_pose_config("tracking_vemg2pose", ModelSize(**E2P_TINY))
    lc, window = config.left_context, 1400
    run = tmp_path / "run"
    info = {
        "experiment": "tracking_vemg2pose",
        "provide_initial_pos": True,
        "normalisation": None,
        "mean_joint_angles": [0.1] * 20,
        "val_window_length": window,
        "trained_on": [],
    }
    _export(run / "model", config, init_variables(config, jax.random.key(3)), info, 0)
    rng = np.random.default_rng(0)
    emg = rng.standard_normal((2 * window, 16)).astype(np.float32)
    angles = (0.3 + 0.2 * rng.random((2 * window, 20))).astype(np.float32)

    def session(name, emg, angles):
        return write_emg2pose_session(
            tmp_path / f"{name}.hdf5", emg=emg, joint_angles=angles, time=np.arange(len(emg)) / 2000.0
        )

    failed = angles.copy()
    failed[lc] = 0.0  # IK failure at window 0's initial-state sample only
    both = session("both", emg, failed)
    second_only = session("second", emg[window:], angles[window:])
    kept = evaluate_emg2pose(run, [both], skip_ik_failures=False)
    alone = evaluate_emg2pose(run, [second_only], skip_ik_failures=False)
    assert kept["windows"]["count"] == 2 and kept["windows"]["valid_samples"] == alone["windows"]["valid_samples"]
    for name in ("model", "baseline"):
        for key, value in alone[name].items():
            assert kept[name][key] == pytest.approx(value, rel=1e-5), (name, key)
    # By default (skip_ik_failures=True) windows only come from runs without IK failure.
    assert evaluate_emg2pose(run, [both])["windows"]["count"] == 1

    every = failed.copy()
    every[window + lc] = 0.0  # window 1 too: nothing left
    caplog.clear()
    with caplog.at_level("WARNING", logger="emgjax.recipes.emg2pose"), pytest.raises(ValueError, match="no valid"):
        evaluate_emg2pose(run, [session("none", emg, every)], skip_ik_failures=False)
    assert [r.getMessage() for r in caplog.records] == [ALL_MASKED_WARNING]


def test_distributed_flag_joins_from_the_environment_and_names_what_is_missing(monkeypatch, capsys, tmp_path):
    train = runpy.run_path(str(ROOT / "experiments" / "train_direct.py"))["main"]
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "127.0.0.1:1")
    monkeypatch.setenv("JAX_NUM_PROCESSES", "2")
    monkeypatch.delenv("JAX_PROCESS_ID", raising=False)
    assert train(["--distributed", "--out_dir", str(tmp_path / "run"), "--data_dir", str(tmp_path)]) == 2
    assert "JAX_PROCESS_ID unset" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # refused before the run directory is made
