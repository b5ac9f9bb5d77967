"""`emgjax convert` end to end, the state_dict mapping's refusals, and load_pretrained's errors."""

from __future__ import annotations

import hashlib
import json
import shutil

import jax
import numpy as np
import pytest

import emgjax
from emgjax.convert import emg2pose_map as M
from emgjax.convert.command import main as convert_main
from emgjax.models import configs as C
from emgjax.models import pose_modules as pm
from emgjax.pretrained import PretrainedError, load_pretrained

TINY = dict(tds_channels=2, feature_width=4, hidden_size=8, tds_out_channels=8, mlp_hidden=8,
            neuropose_channels=(2, 4, 4), num_residual_blocks=1)
TINY_TDS = {k: v for k, v in TINY.items() if not k.startswith("neuropose") and k != "num_residual_blocks"}


@pytest.fixture(scope="module")
def tr():
    pytest.importorskip("torch")
    return pytest.importorskip("torch_reference")


@pytest.fixture(scope="module")
def tiny_ckpt(tr, tmp_path_factory):
    """A tiny tracking_vemg2pose Lightning checkpoint and its torch model."""
    model = tr.build_torch_model("tracking_vemg2pose", **TINY_TDS)
    tr.randomize_(model, 3)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    tr.save_lightning_checkpoint(model, path, "tracking_vemg2pose", **TINY_TDS)
    return path, model


@pytest.fixture(scope="module")
def converted_dir(tiny_ckpt, tmp_path_factory):
    out = tmp_path_factory.mktemp("converted") / "tiny_jax"
    assert convert_main([str(tiny_ckpt[0]), str(out)]) == 0
    return out


def save_custom_ckpt(path, state_dict: dict, hyper_parameters: dict | None):
    import torch

    payload = {"state_dict": {k: torch.from_numpy(np.asarray(v)) for k, v in state_dict.items()}}
    if hyper_parameters is not None:
        payload["hyper_parameters"] = hyper_parameters
    torch.save(payload, str(path))


def torch_state_dict(model) -> dict[str, np.ndarray]:
    return {"model." + k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


# ----------------------------------------------------------------------------- end to end


def test_cli_convert_end_to_end(tr, tiny_ckpt, tmp_path, capsys):
    from emgjax import cli

    ckpt, model = tiny_ckpt
    out = tmp_path / "out"
    assert cli.main(["convert", str(ckpt), str(out)]) == 0
    captured = capsys.readouterr()
    assert str(out) in captured.out
    assert "optimizer state (optimizer_states) is ignored" in captured.err
    metadata = json.loads((out / "config.json").read_text())
    assert metadata["experiment"] == "tracking_vemg2pose"
    assert metadata["provide_initial_pos"] is True
    assert metadata["emgjax_version"] == emgjax.__version__
    assert metadata["source"]["sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert metadata["source"]["file"] == ckpt.name
    assert "optimizer_states" in metadata["source"]["top_level_keys"]
    expected_config = M.model_config_from_hyper_parameters(tr.hyper_parameters_for("tracking_vemg2pose", **TINY_TDS))
    assert metadata["model"] == expected_config.to_dict()

    loaded = emgjax.load_pretrained(out)
    assert loaded.config == expected_config and loaded.experiment == "tracking_vemg2pose"
    # Every tensor arrived: mapping back gives the torch state_dict exactly.
    back = M.variables_to_state_dict(loaded.params, loaded.config)
    original = torch_state_dict(model)
    assert set(back) == set(original)
    for key, value in original.items():
        np.testing.assert_array_equal(back[key], value, err_msg=key)


@pytest.mark.parametrize("experiment", ["tracking_vemg2pose", "regression_vemg2pose", "tracking_emg2pose",
                                        "regression_neuropose"])
def test_hyper_parameters_give_published_configs(tr, experiment):
    hp = tr.hyper_parameters_for(experiment)
    assert M.model_config_from_hyper_parameters(hp) == C.EXPERIMENTS[experiment].model
    assert M.experiment_name_from_hyper_parameters(hp) == experiment
    small = tr.hyper_parameters_for(experiment, **({"neuropose_channels": (2, 4, 4)} if "neuropose" in experiment
                                                   else {"hidden_size": 8}))
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


def test_experiment_mismatch_and_existing_output(tiny_ckpt, tmp_path, capsys):
    ckpt, _ = tiny_ckpt
    assert convert_main([str(ckpt), str(tmp_path / "x"), "--experiment", "tracking_emg2pose"]) == 2
    assert "does not match the checkpoint, whose network_conf describes tracking_vemg2pose" in capsys.readouterr().err
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert convert_main([str(ckpt), str(out)]) == 2
    assert "expected a new or empty output directory" in capsys.readouterr().err
    assert convert_main([str(ckpt), str(out), "--overwrite"]) == 0
    assert (out / "config.json").is_file()


def test_missing_and_damaged_checkpoint_files(tiny_ckpt, tmp_path, capsys):
    assert convert_main([str(tmp_path / "nope.ckpt"), str(tmp_path / "o1")]) == 2
    assert "no such checkpoint file" in capsys.readouterr().err
    truncated = tmp_path / "truncated.ckpt"
    data = tiny_ckpt[0].read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    assert convert_main([str(truncated), str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert "truncated.ckpt" in err and "error" in err


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
    assert not (tmp_path / "out" / "config.json").exists()


def test_convert_state_dict_lists_every_problem_and_bad_values():
    config = C.PoseModelConfig("state", C.tds_network(out_channels=8),
                               C.LSTMDecoderConfig(28, 20, hidden_size=4, num_layers=1, scale=0.01), predict_vel=True)
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
    with pytest.raises(ValueError, match="expected one of .*found emg2pose.pose_modules.Other"):
        M.model_config_from_hyper_parameters({"network_conf": {"_target_": "emg2pose.pose_modules.Other"}})
    node = {"_target_": "emg2pose.pose_modules.PoseModule",
            "network": {"_target_": "emg2pose.networks.TdsNetwork", "conv_blocks": [
                {"_target_": "emg2pose.networks.Conv1dBlock", "in_channels": 16, "out_channels": 20,
                 "kernel_size": 3, "stride": 1, "dilation": 2}], "tds_stages": []}}
    with pytest.raises(ValueError, match=r"conv_blocks\[0\].*found unknown \['dilation'\]"):
        M.model_config_from_hyper_parameters({"network_conf": node})
    del node["network"]["conv_blocks"][0]["dilation"]
    config = M.model_config_from_hyper_parameters({"network_conf": node})
    assert config.kind == "pose" and config.left_context == 2
    assert M.experiment_name_for_config(config) is None


# ----------------------------------------------------------------------------- load_pretrained errors


def test_load_pretrained_errors(converted_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such pretrained directory"):
        load_pretrained(tmp_path / "missing")

    def copy(name):
        target = tmp_path / name
        shutil.copytree(converted_dir, target)
        return target

    no_config = copy("no_config")
    (no_config / "config.json").unlink()
    with pytest.raises(PretrainedError, match="expected the model's config.json, found none"):
        load_pretrained(no_config)

    bad_json = copy("bad_json")
    (bad_json / "config.json").write_text("{not json")
    with pytest.raises(PretrainedError, match="expected JSON"):
        load_pretrained(bad_json)

    wrong_format = copy("wrong_format")
    (wrong_format / "config.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(PretrainedError, match="expected format 'emgjax-emg2pose', found 'something-else'"):
        load_pretrained(wrong_format)

    mismatch = copy("mismatch")
    metadata = json.loads((mismatch / "config.json").read_text())
    metadata["model"]["decoder"]["hidden_size"] = 16
    (mismatch / "config.json").write_text(json.dumps(metadata))
    with pytest.raises(PretrainedError, match=r"(?s)variables do not match config.json:.*kernel_hh: expected \(16, 64\), found \(8, 32\)"):
        load_pretrained(mismatch)

    no_vars = copy("no_vars")
    shutil.rmtree(no_vars / "variables")
    with pytest.raises(PretrainedError, match="expected the Orbax variables directory"):
        load_pretrained(no_vars)

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
