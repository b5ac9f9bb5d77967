"""`emgjax convert` end to end, its bad inputs, the state_dict mapping's refusals, and load_pretrained's errors.

Bad-input and output-directory tests are torch-free (checkpoints from `ckpt_fixtures`);
the tests against the PyTorch reference model need torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import ckpt_fixtures as F
import jax
import numpy as np
import pytest

import emgjax
from emgjax.bundle import PretrainedError, load_pretrained
from emgjax.convert import emg2pose_map as M
from emgjax.convert.command import main as convert_main
from emgjax.models import configs as C
from emgjax.models import pose_modules as pm

TINY = dict(
    tds_channels=2,
    feature_width=4,
    hidden_size=8,
    tds_out_channels=8,
    mlp_hidden=8,
    neuropose_channels=(2, 4, 4),
    num_residual_blocks=1,
)
TINY_TDS = {k: v for k, v in TINY.items() if not k.startswith("neuropose") and k != "num_residual_blocks"}

# A tiny tracking_vemg2pose-shaped model in Meta's Hydra layout (one conv block, no TDS stage, LSTM of 4 units).
TINY_HPARAMS = {
    "network_conf": {
        "_target_": "emg2pose.pose_modules.StatePoseModule",
        "network": {
            "_target_": "emg2pose.networks.TdsNetwork",
            "tds_stages": [],
            "conv_blocks": [
                {
                    "_target_": "emg2pose.networks.Conv1dBlock",
                    "in_channels": 16,
                    "out_channels": 8,
                    "kernel_size": 3,
                    "stride": 1,
                }
            ],
        },
        "decoder": {
            "_target_": "emg2pose.networks.SequentialLSTM",
            "in_channels": 28,
            "out_channels": 20,
            "hidden_size": 4,
            "num_layers": 1,
            "scale": 0.01,
        },
        "state_condition": True,
        "predict_vel": True,
        "rollout_freq": 50,
    },
    "optimizer_conf": {"_target_": "torch.optim.Adam", "lr": 0.001},
    "provide_initial_pos": True,
}


@pytest.fixture(scope="module")
def tr():
    pytest.importorskip("torch")
    import torch_reference

    return torch_reference


@pytest.fixture(scope="module")
def tiny_ckpt(tr, tmp_path_factory):
    """A tiny tracking_vemg2pose Lightning checkpoint and its torch model."""
    model = tr.build_torch_model("tracking_vemg2pose", **TINY_TDS)
    tr.randomize_(model, 3)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    tr.save_lightning_checkpoint(model, path, "tracking_vemg2pose", **TINY_TDS)
    return path, model


@pytest.fixture(scope="module")
def fixture_ckpt(tmp_path_factory):
    """(path, state_dict): a torch-free Lightning checkpoint of the tiny model, random weights."""
    config = M.model_config_from_hyper_parameters(TINY_HPARAMS)
    variables = pm.init_variables(config, jax.random.key(1))
    state_dict = {k: np.asarray(v) for k, v in M.variables_to_state_dict(variables, config).items()}
    path = tmp_path_factory.mktemp("fixture_ckpt") / "tiny_fixture.ckpt"
    F.write_lightning_checkpoint(path, state_dict, TINY_HPARAMS)
    return path, state_dict


@pytest.fixture(scope="module")
def converted_dir(fixture_ckpt, tmp_path_factory):
    out = tmp_path_factory.mktemp("converted") / "tiny_jax"
    assert convert_main([str(fixture_ckpt[0]), str(out)]) == 0
    return out


def save_custom_ckpt(path, state_dict: dict, hyper_parameters: dict | None):
    import torch

    payload = {"state_dict": {k: torch.from_numpy(np.asarray(v)) for k, v in state_dict.items()}}
    if hyper_parameters is not None:
        payload["hyper_parameters"] = hyper_parameters
    torch.save(payload, str(path))


def torch_state_dict(model) -> dict[str, np.ndarray]:
    return {"model." + k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def error_line(capsys) -> str:
    """The one `emgjax convert: error: ...` line on stderr (log lines may precede it)."""
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("emgjax convert: error: "), err
    assert "Traceback" not in err
    return errors[0]


# ----------------------------------------------------------------------------- end to end


def test_cli_convert_end_to_end(tr, tiny_ckpt, tmp_path, capsys):
    from emgjax import cli

    ckpt, model = tiny_ckpt
    out = tmp_path / "out"
    assert cli.main(["convert", str(ckpt), str(out)]) == 0
    captured = capsys.readouterr()
    assert str(out) in captured.out
    assert "optimizer state (optimizer_states) is ignored" in captured.err
    bundle = json.loads((out / "bundle.json").read_text())
    assert (bundle["format"], bundle["format_version"], bundle["kind"]) == ("emgjax-model", 1, "emg2pose")
    metadata = bundle["metadata"]
    assert metadata["experiment"] == "tracking_vemg2pose"
    assert metadata["provide_initial_pos"] is True
    assert metadata["emgjax_version"] == emgjax.__version__
    assert metadata["source"]["sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert metadata["source"]["file"] == ckpt.name
    assert "optimizer_states" in metadata["source"]["top_level_keys"]
    expected_config = M.model_config_from_hyper_parameters(tr.hyper_parameters_for("tracking_vemg2pose", **TINY_TDS))
    assert bundle["config"] == expected_config.to_dict()

    loaded = emgjax.load_pretrained(out)
    assert loaded.config == expected_config and loaded.experiment == "tracking_vemg2pose"
    # Every tensor arrived: mapping back gives the torch state_dict exactly.
    back = M.variables_to_state_dict(loaded.params, loaded.config)
    original = torch_state_dict(model)
    assert set(back) == set(original)
    for key, value in original.items():
        np.testing.assert_array_equal(back[key], value, err_msg=key)


@pytest.mark.parametrize(
    "experiment", ["tracking_vemg2pose", "regression_vemg2pose", "tracking_emg2pose", "regression_neuropose"]
)
def test_hyper_parameters_give_published_configs(tr, experiment):
    hp = tr.hyper_parameters_for(experiment)
    assert M.model_config_from_hyper_parameters(hp) == C.EXPERIMENTS[experiment].model
    assert M.experiment_name_from_hyper_parameters(hp) == experiment
    small = tr.hyper_parameters_for(
        experiment, **({"neuropose_channels": (2, 4, 4)} if "neuropose" in experiment else {"hidden_size": 8})
    )
    assert M.experiment_name_from_hyper_parameters(small) == experiment


def test_bare_state_dict_needs_experiment(tr, tmp_path, capsys):
    model = tr.build_torch_model("tracking_emg2pose")  # published size: --experiment gives the published config
    tr.randomize_(model, 0)
    ckpt = tmp_path / "bare.ckpt"
    import torch

    torch.save(model.state_dict(), str(ckpt))  # no "model." prefix, no hyper_parameters
    assert convert_main([str(ckpt), str(tmp_path / "a")]) == 2
    assert "pass --experiment NAME" in capsys.readouterr().err
    sd = torch_state_dict(model)
    save_custom_ckpt(ckpt, sd, None)
    assert convert_main([str(ckpt), str(tmp_path / "b"), "--experiment", "tracking_emg2pose"]) == 0
    loaded = load_pretrained(tmp_path / "b")
    assert loaded.config == C.EXPERIMENTS["tracking_emg2pose"].model and loaded.provide_initial_pos is True


def test_experiment_mismatch(tiny_ckpt, tmp_path, capsys):
    ckpt, _ = tiny_ckpt
    assert convert_main([str(ckpt), str(tmp_path / "x"), "--experiment", "tracking_emg2pose"]) == 2
    assert "does not match the checkpoint, whose network_conf describes tracking_vemg2pose" in error_line(capsys)
    assert not (tmp_path / "x").exists()


# ----------------------------------------------------------------------------- torch-free: output and bad inputs


def _siblings(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_convert_fixture_checkpoint_end_to_end(fixture_ckpt, tmp_path, capsys):
    ckpt, state_dict = fixture_ckpt
    out = tmp_path / "new" / "nested" / "out"  # missing parents are created
    assert convert_main([str(ckpt), str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert _siblings(out.parent) == ["out"]  # no staging directory left behind
    metadata = json.loads((out / "bundle.json").read_text())["metadata"]
    assert metadata["experiment"] == "tracking_vemg2pose" and metadata["provide_initial_pos"] is True
    assert metadata["emgjax_version"] == emgjax.__version__
    assert metadata["source"]["sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert metadata["source"]["top_level_keys"][:4] == [
        "epoch",
        "global_step",
        "pytorch-lightning_version",
        "state_dict",
    ]
    assert str(out.parent.parent) not in (out / "bundle.json").read_text()  # nothing names the staging path
    loaded = load_pretrained(out)
    back = M.variables_to_state_dict(loaded.params, loaded.config)
    assert set(back) == set(state_dict)
    for key, value in state_dict.items():
        np.testing.assert_array_equal(back[key], value, err_msg=key)


def test_output_directory_refusals(fixture_ckpt, tmp_path, capsys):
    ckpt = str(fixture_ckpt[0])
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert convert_main([ckpt, str(a_file)]) == 2
    assert f"{a_file}: expected an output directory, found a file" in error_line(capsys)
    assert convert_main([ckpt, str(a_file / "out")]) == 2
    assert f"found that {a_file} is a file" in error_line(capsys)

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("keep me")
    assert convert_main([ckpt, str(busy)]) == 2
    assert "expected a new or empty output directory, found existing files (pass --overwrite" in error_line(capsys)
    assert _siblings(busy) == ["notes.txt"]
    assert convert_main([ckpt, str(busy), "--overwrite"]) == 0
    assert _siblings(busy) == ["bundle.json", "variables"]  # replaced, not merged
    assert [p for p in _siblings(tmp_path) if p.startswith(".")] == []

    empty = tmp_path / "empty"
    empty.mkdir()
    assert convert_main([ckpt, str(empty)]) == 0
    assert (empty / "bundle.json").is_file()


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux /sys (unwritable even for root)")
def test_unwritable_output_location(fixture_ckpt, capsys):
    assert convert_main([str(fixture_ckpt[0]), "/sys/emgjax_out"]) == 2
    assert "/sys/emgjax_out: " in error_line(capsys)
    assert not Path("/sys/emgjax_out").exists()


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_output_directory(fixture_ckpt, tmp_path, capsys):
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o555)
    locked = tmp_path / "locked"
    locked.mkdir()
    try:
        assert convert_main([str(fixture_ckpt[0]), str(read_only)]) == 2
        assert "expected a writable output directory, found a read-only one" in error_line(capsys)
        locked.chmod(0o555)
        assert convert_main([str(fixture_ckpt[0]), str(locked / "out")]) == 2
        assert f"{locked}" in error_line(capsys)
    finally:
        read_only.chmod(0o755)
        locked.chmod(0o755)


def test_failed_write_leaves_no_output_and_keeps_the_old_one(fixture_ckpt, tmp_path, capsys, monkeypatch):
    import emgjax.bundle

    ckpt = str(fixture_ckpt[0])
    real_write = emgjax.bundle.store._write_variables

    def write_then_fail(directory, *args, **kwargs):
        real_write(directory, *args, **kwargs)  # the weights are written, then the disk fills up
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(emgjax.bundle.store, "_write_variables", write_then_fail)
    out = tmp_path / "out"
    assert convert_main([ckpt, str(out)]) == 2
    assert "No space left on device" in error_line(capsys)
    assert _siblings(tmp_path) == []  # neither OUT_DIR nor a staging directory

    monkeypatch.setattr(emgjax.bundle.store, "_write_variables", real_write)
    assert convert_main([ckpt, str(out)]) == 0  # a rerun does not trip on anything
    before = (out / "bundle.json").read_text()
    (out / "mine.txt").write_text("x")
    monkeypatch.setattr(emgjax.bundle.store, "_write_variables", write_then_fail)
    assert convert_main([ckpt, str(out), "--overwrite"]) == 2
    assert _siblings(out) == ["bundle.json", "mine.txt", "variables"]  # the old OUT_DIR, untouched
    assert (out / "bundle.json").read_text() == before
    assert _siblings(tmp_path) == ["out"]


def test_killed_conversion_leaves_no_output(fixture_ckpt, tmp_path, capsys):
    out = tmp_path / "out"
    # A conversion killed (SIGKILL: no cleanup runs) just after writing its files.
    code = (
        "import os, signal, sys\n"
        "import emgjax.bundle.store as B\n"
        "real = B._write_variables\n"
        "def write_then_die(*a, **k):\n"
        "    real(*a, **k)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "B._write_variables = write_then_die\n"
        "from emgjax.convert.command import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(Path(emgjax.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]),
    )
    killed = subprocess.run(
        [sys.executable, "-c", code, str(fixture_ckpt[0]), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not out.exists()
    assert convert_main([str(fixture_ckpt[0]), str(out)]) == 0  # the rerun is not tripped by leftovers
    assert (out / "bundle.json").is_file()


def test_missing_and_damaged_checkpoint_files(fixture_ckpt, tmp_path, capsys):
    assert convert_main([str(tmp_path / "nope.ckpt"), str(tmp_path / "o1")]) == 2
    assert "nope.ckpt: no such checkpoint file" in error_line(capsys)
    data = fixture_ckpt[0].read_bytes()
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(data[: len(data) // 2])
    assert convert_main([str(truncated), str(tmp_path / "o2")]) == 2
    assert "truncated.ckpt: expected a PyTorch checkpoint (a zip archive)" in error_line(capsys)
    noise = tmp_path / "noise.ckpt"
    noise.write_bytes(np.random.default_rng(0).bytes(2000))
    assert convert_main([str(noise), str(tmp_path / "o3")]) == 2
    assert "noise.ckpt: expected a PyTorch checkpoint" in error_line(capsys)
    state, storages = F.small_state()
    bomb = F.write_checkpoint(
        tmp_path / "bomb.ckpt", {"state_dict": state, "hyper_parameters": {"x": F.shared_reference_bomb(40)}}, storages
    )
    assert convert_main([str(bomb), str(tmp_path / "o4")]) == 2
    assert "bomb.ckpt: expected hyper_parameters of at most 1000000 elements" in error_line(capsys)
    no_hparams = F.write_lightning_checkpoint(tmp_path / "bare.ckpt", fixture_ckpt[1], None)
    assert convert_main([str(no_hparams), str(tmp_path / "o5")]) == 2
    assert "pass --experiment NAME" in error_line(capsys)
    assert _siblings(tmp_path) == ["bare.ckpt", "bomb.ckpt", "noise.ckpt", "truncated.ckpt"]


# ----------------------------------------------------------------------------- refusals


def test_refuses_missing_unexpected_and_misshapen_keys(tr, tiny_ckpt, tmp_path, capsys):
    _, model = tiny_ckpt
    sd = torch_state_dict(model)
    del sd["model.decoder.lstm.weight_hh_l1"]
    del sd["model.network.layers.2.layers.tds_block.tds_conv_blocks.1.layer_norm.bias"]
    sd["model.decoder.extra.weight"] = np.zeros((3, 3), np.float32)
    sd["model.network.layers.0.conv.0.weight"] = np.zeros((8, 16, 7), np.float32)
    ckpt = tmp_path / "broken.ckpt"
    save_custom_ckpt(ckpt, sd, tr.hyper_parameters_for("tracking_vemg2pose", **TINY_TDS))
    assert convert_main([str(ckpt), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "broken.ckpt: does not match the 'state' (TdsNetwork + LSTMDecoder) model" in err
    assert "missing (2):" in err and "model.decoder.lstm.weight_hh_l1 (expected shape (32, 8))" in err
    assert "model.network.layers.2.layers.tds_block.tds_conv_blocks.1.layer_norm.bias (expected shape (8,))" in err
    assert "unexpected (1):" in err and "model.decoder.extra.weight (shape (3, 3))" in err
    assert "misshapen (1):" in err
    assert "model.network.layers.0.conv.0.weight: expected shape (8, 16, 11), found (8, 16, 7)" in err
    assert not (tmp_path / "out" / "bundle.json").exists()


def test_convert_state_dict_lists_every_problem_and_bad_values():
    config = C.PoseModelConfig(
        "state",
        C.tds_network(out_channels=8),
        C.LSTMDecoderConfig(28, 20, hidden_size=4, num_layers=1, scale=0.01),
        predict_vel=True,
    )
    shapes = jax.eval_shape(lambda: pm.init_variables(config, jax.random.key(0)))
    variables = jax.tree_util.tree_map(lambda s: np.ones(s.shape, np.float32), shapes)
    sd = M.variables_to_state_dict(variables, config)
    assert "model.decoder.lstm.weight_ih_l0" in sd
    # Round trip is exact.
    again = M.convert_state_dict(sd, config)
    jax.tree_util.tree_map(np.testing.assert_array_equal, again, jax.tree_util.tree_map(np.asarray, variables))
    bad = dict(sd)
    bad["model.decoder.mlp_out.1.bias"] = np.full((20,), np.nan, np.float32)
    bad["model.decoder.lstm.bias_ih_l0"] = np.zeros((16,), np.int64)
    bad.pop("model.decoder.lstm.bias_hh_l0")
    with pytest.raises(M.StateDictMismatchError) as info:
        M.convert_state_dict(bad, config, source="x.ckpt")
    message = str(info.value)
    assert message.startswith("x.ckpt: does not match")
    assert "model.decoder.mlp_out.1.bias: expected finite values, found 20 NaN/Inf" in message
    assert "model.decoder.lstm.bias_ih_l0: expected a floating-point tensor, found dtype int64" in message
    assert info.value.missing == ["model.decoder.lstm.bias_hh_l0 (expected shape (16,))"]


def test_hyper_parameter_errors():
    with pytest.raises(ValueError, match="expected a 'network_conf' entry"):
        M.model_config_from_hyper_parameters({"lr": 1})
    with pytest.raises(ValueError, match=r"expected one of .*found emg2pose\.pose_modules\.Other"):
        M.model_config_from_hyper_parameters({"network_conf": {"_target_": "emg2pose.pose_modules.Other"}})
    node = {
        "_target_": "emg2pose.pose_modules.PoseModule",
        "network": {
            "_target_": "emg2pose.networks.TdsNetwork",
            "conv_blocks": [
                {
                    "_target_": "emg2pose.networks.Conv1dBlock",
                    "in_channels": 16,
                    "out_channels": 20,
                    "kernel_size": 3,
                    "stride": 1,
                    "dilation": 2,
                }
            ],
            "tds_stages": [],
        },
    }
    with pytest.raises(ValueError, match=r"conv_blocks\[0\].*found unknown \['dilation'\]"):
        M.model_config_from_hyper_parameters({"network_conf": node})
    del node["network"]["conv_blocks"][0]["dilation"]
    config = M.model_config_from_hyper_parameters({"network_conf": node})
    assert config.kind == "pose" and config.left_context == 2
    assert M.experiment_name_for_config(config) is None


# ----------------------------------------------------------------------------- load_pretrained errors


def test_load_pretrained_errors(converted_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model directory"):
        load_pretrained(tmp_path / "missing")

    def copy(name):
        target = tmp_path / name
        shutil.copytree(converted_dir, target)
        return target

    no_config = copy("no_config")
    (no_config / "bundle.json").unlink()
    with pytest.raises(PretrainedError, match=r"expected the model's bundle\.json, found none"):
        load_pretrained(no_config)

    bad_json = copy("bad_json")
    (bad_json / "bundle.json").write_text("{not json")
    with pytest.raises(PretrainedError, match="expected JSON"):
        load_pretrained(bad_json)

    truncated = copy("truncated")
    text = (truncated / "bundle.json").read_text()
    (truncated / "bundle.json").write_text(text[: len(text) // 2])
    with pytest.raises(PretrainedError, match=r"truncated/bundle\.json: expected JSON, found unreadable text"):
        load_pretrained(truncated)

    binary = copy("binary")
    (binary / "bundle.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(PretrainedError, match=r"binary/bundle\.json: expected JSON"):
        load_pretrained(binary)

    newer = copy("newer")
    metadata = json.loads((newer / "bundle.json").read_text())
    newer_metadata = {**metadata["metadata"], "emgjax_version": "9.0"}
    (newer / "bundle.json").write_text(json.dumps({**metadata, "format_version": 2, "metadata": newer_metadata}))
    with pytest.raises(
        PretrainedError,
        match=r"expected format_version 1, found 2 \(written by a newer emgjax, 9\.0\); "
        "upgrade emgjax",
    ):
        load_pretrained(newer)
    (newer / "bundle.json").write_text(json.dumps({**metadata, "format_version": "1"}))
    with pytest.raises(PretrainedError, match="expected format_version 1, found '1'"):
        load_pretrained(newer)

    wrong_format = copy("wrong_format")
    (wrong_format / "bundle.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(PretrainedError, match="expected format 'emgjax-model', found 'something-else'"):
        load_pretrained(wrong_format)

    mismatch = copy("mismatch")
    metadata = json.loads((mismatch / "bundle.json").read_text())
    metadata["config"]["decoder"]["hidden_size"] = 16
    (mismatch / "bundle.json").write_text(json.dumps(metadata))
    with pytest.raises(
        PretrainedError,
        match=r"(?s)variables do not match bundle\.json:.*kernel_hh: expected \(16, 64\), found \(4, 16\)",
    ):
        load_pretrained(mismatch)

    no_vars = copy("no_vars")
    shutil.rmtree(no_vars / "variables")
    with pytest.raises(PretrainedError, match="expected the Orbax variables directory"):
        load_pretrained(no_vars)

    no_metadata = copy("no_metadata")
    (no_metadata / "variables" / "_METADATA").unlink()
    with pytest.raises(
        PretrainedError,
        match=r"variables: expected an Orbax checkpoint with _METADATA, "
        r"_CHECKPOINT_METADATA, found no _METADATA",
    ):
        load_pretrained(no_metadata)

    no_data = copy("no_data")
    for path in (no_data / "variables").iterdir():
        if path.is_dir():
            shutil.rmtree(path)
    with pytest.raises(PretrainedError, match="variables: could not restore the Orbax checkpoint"):
        load_pretrained(no_data)

    corrupt = copy("corrupt")
    for path in (corrupt / "variables").rglob("*"):
        if path.is_file():
            path.write_bytes(b"\x00garbage")
    with pytest.raises(PretrainedError, match="variables: could not restore the Orbax checkpoint"):
        load_pretrained(corrupt)

    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(PretrainedError, match="found a file"):
        load_pretrained(a_file)


def test_damaged_pretrained_directory_gives_one_error_and_no_traceback(converted_dir, tmp_path):
    # Orbax reads all arrays at once; when one read fails the others used to print "Event loop is
    # closed" tracebacks after the error. A fresh process, several loads, then a pause for stragglers.
    damaged = []
    for name, damage in (("no_data", "remove"), ("garbage_data", "garbage")):
        target = tmp_path / name
        shutil.copytree(converted_dir, target)
        for path in (target / "variables").iterdir():
            if path.is_dir() and damage == "remove":
                shutil.rmtree(path)
            elif path.is_dir():
                for leaf in path.rglob("*"):
                    if leaf.is_file():
                        leaf.write_bytes(b"\x00garbage")
        damaged.append(str(target))
    code = (
        "import sys, time\n"
        "from emgjax import load_pretrained\n"
        "for directory in sys.argv[1:] * 3:\n"
        "    try:\n"
        "        load_pretrained(directory)\n"
        "    except ValueError as err:\n"
        "        print('error:', str(err).splitlines()[0], file=sys.stderr)\n"
        "time.sleep(0.5)\n"
    )
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(Path(emgjax.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]),
    )
    child = subprocess.run(
        [sys.executable, "-c", code, *damaged], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert child.returncode == 0, child.stderr
    lines = child.stderr.splitlines()
    assert len(lines) == 6 and all(
        line.startswith("error: ") and "could not restore the Orbax checkpoint" in line for line in lines
    ), child.stderr


def test_empty_batch_is_refused_before_jit(converted_dir):
    model = load_pretrained(converted_dir)
    time = model.left_context + 100
    emg, angles, mask = (
        np.zeros((0, 16, time), np.float32),
        np.zeros((0, 20, time), np.float32),
        np.ones((0, time), bool),
    )
    with pytest.raises(
        ValueError,
        match=r"emg: expected at least one example \(axis 0 of \(batch, channels, time\)\), "
        r"found 0 \(shape \(0, 16, \d+\)\)",
    ):
        model(emg, angles, mask)
    with pytest.raises(ValueError, match="emg: expected at least one example"):
        model.features(emg)
    pred, _, out_mask = model(
        np.zeros((1, 16, time), np.float32), np.zeros((1, 20, time), np.float32), np.ones((1, time), bool)
    )
    assert pred.shape == (1, 20, 100) and out_mask.shape == (1, 100)
