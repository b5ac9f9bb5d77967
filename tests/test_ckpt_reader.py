"""Tests of the torch-free checkpoint reader (all torch-free but one parity test) and of the PyTorch reference.

Checkpoints are made by `ckpt_fixtures` in torch.save's exact layout, without torch;
`test_hand_made_checkpoint_reads_like_torch_save` checks that layout against a real
torch.save once. Hostile files each give a `CheckpointError` naming the problem.
"""

from __future__ import annotations

import collections
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import ckpt_fixtures as F
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emgjax.convert import ckpt_reader
from emgjax.convert.ckpt_reader import CheckpointError, read_lightning_checkpoint

try:
    import torch
except ImportError:  # only the PyTorch reference tests and one parity test need torch
    torch = None
if torch is not None:
    import torch_reference as tr
needs_torch = pytest.mark.skipif(torch is None, reason="needs torch (the PyTorch reference)")

# Small sizes keep every model below ~0.1 M parameters; the structure (and so
# the state_dict keys) is the published one.
SMALL = dict(
    tds_channels=4,
    feature_width=4,
    num_blocks=2,
    tds_out_channels=8,
    hidden_size=16,
    num_layers=2,
    mlp_hidden=16,
    neuropose_channels=(4, 8, 16),
    num_residual_blocks=2,
)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # Tiny models on a shared 2-core machine: intra-op threads only contend
    # (measured ~10x slower with 2 threads under load).
    if torch is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# --------------------------------------------------------------------------- #
# The PyTorch reference
# --------------------------------------------------------------------------- #


@needs_torch
def test_parameter_counts_match_published_models():
    # Hand count (weights + biases; BatchNorm buffers excluded):
    #   TDS: conv blocks 45,312 + 327,936 (+2x512 LN); stage 0 1,114,880 + 2 x 134,928;
    #        stage 1 590,592 + 2 x 133,904 + linear 16,448            = 2,633,856
    #   LSTM 84->512 x2: 1,224,704 + 2,101,248, head 512->20: 10,260  = 3,336,212
    #   MLP 84->512->512->20 with LayerNorms                          =   318,484
    #   NeuroPose                                                       = 6,354,903
    expected = {
        "tracking_vemg2pose": 5_970_068,
        "regression_vemg2pose": 5_980_328,
        "tracking_emg2pose": 2_952_340,
        "regression_emg2pose": 2_952_340,
        "regression_neuropose": 6_354_903,
    }
    facts_millions = {
        "tracking_vemg2pose": 5.97,
        "regression_vemg2pose": 5.98,
        "tracking_emg2pose": 2.95,
        "regression_emg2pose": 2.95,
        "regression_neuropose": 6.35,
    }
    for experiment in tr.EXPERIMENTS:
        with torch.device("meta"):  # counts shapes without allocating or initialising
            model = tr.build_torch_model(experiment)
        count = sum(p.numel() for p in model.parameters())
        assert count == expected[experiment], experiment
        assert round(count / 1e6, 2) == facts_millions[experiment], experiment


@needs_torch
def test_state_dict_keys_follow_meta_layout():
    keys = {e: set(tr.build_torch_model(e, **SMALL).state_dict()) for e in tr.EXPERIMENTS}
    tds = {
        "network.layers.0.conv.0.weight",
        "network.layers.0.norm.weight",
        "network.layers.1.norm.bias",
        "network.layers.2.layers.conv1dblock.conv.0.weight",
        "network.layers.2.layers.conv1dblock.norm.bias",
        "network.layers.2.layers.tds_block.tds_conv_blocks.0.conv2d.weight",
        "network.layers.2.layers.tds_block.tds_conv_blocks.0.layer_norm.weight",
        "network.layers.2.layers.tds_block.tds_conv_blocks.1.fc_block.2.bias",
        "network.layers.3.layers.tds_block.tds_conv_blocks.3.layer_norm.bias",
        "network.layers.3.linear_layer.weight",
    }
    lstm = {
        "decoder.lstm.weight_ih_l0",
        "decoder.lstm.weight_hh_l1",
        "decoder.lstm.bias_ih_l1",
        "decoder.lstm.bias_hh_l0",
        "decoder.mlp_out.1.weight",
        "decoder.mlp_out.1.bias",
    }
    mlp = {
        "decoder.mlp.0.weight",
        "decoder.mlp.1.weight",
        "decoder.mlp.3.bias",
        "decoder.mlp.4.bias",
        "decoder.mlp.6.weight",
    }
    neuropose = {
        "network.network.0.network.0.weight",
        "network.network.0.network.1.running_var",
        "network.network.0.network.1.num_batches_tracked",
        "network.network.3.network.4.weight",
        "network.network.5.network.0.bias",
        "network.network.7.network.1.running_mean",
        "network.linear.weight",
        "network.linear.bias",
    }
    assert tds | lstm <= keys["tracking_vemg2pose"]
    assert tds | lstm <= keys["regression_vemg2pose"]
    assert tds | mlp <= keys["tracking_emg2pose"]
    assert neuropose <= keys["regression_neuropose"]
    assert not any("linear_layer" in k for k in keys["tracking_vemg2pose"] if "layers.2." in k)


@needs_torch
def test_tds_context_and_output_shapes():
    model = tr.build_torch_model("tracking_vemg2pose")
    assert (model.left_context, model.right_context) == (1790, 0)
    small = tr.build_torch_model("tracking_vemg2pose", **SMALL)
    assert small.left_context == 1790  # sizes never change kernels or strides
    # Receptive field left_context + 1 samples, total stride 80:
    # 1791 + 80 k samples give k + 1 feature steps, one sample fewer gives k.
    for k in (0, 5):
        features = small.network(torch.zeros(1, 16, 1791 + 80 * k))
        assert features.shape == (1, SMALL["tds_out_channels"], k + 1)
        assert small.network(torch.zeros(1, 16, 1790 + 80 * (k + 1))).shape[-1] == k + 1

    rng = np.random.default_rng(0)
    for experiment in tr.EXPERIMENTS:
        model = tr.build_torch_model(experiment, **SMALL)
        tr.randomize_(model, 1)
        time = 3200 if experiment == "regression_neuropose" else 1790 + 1000
        emg = rng.standard_normal((2, 16, time), dtype=np.float32)
        angles = rng.standard_normal((2, 20, time), dtype=np.float32)
        mask = rng.random((2, time)) > 0.2
        pred, target, out_mask = tr.torch_forward(model, emg, angles, mask, provide_initial_pos=True)
        span = time - model.left_context
        assert pred.shape == target.shape == (2, 20, span)
        assert out_mask.shape == (2, span) and out_mask.dtype == bool
        np.testing.assert_array_equal(target, angles[..., model.left_context :])
        np.testing.assert_array_equal(out_mask, mask[..., model.left_context :])
        assert np.isfinite(pred).all() and np.abs(pred).max() > 0


@needs_torch
def test_torch_forward_rejects_bad_shapes():
    model = tr.build_torch_model("tracking_emg2pose", **SMALL)
    emg, angles, mask = np.zeros((1, 16, 2000)), np.zeros((1, 20, 2000)), np.ones((1, 2000), bool)
    with pytest.raises(ValueError, match=r"emg \(batch, 16, time\)"):
        tr.torch_forward(model, np.zeros((1, 8, 2000)), angles, mask, True)
    with pytest.raises(ValueError, match="joint_angles"):
        tr.torch_forward(model, emg, np.zeros((1, 21, 2000)), mask, True)
    with pytest.raises(ValueError, match="no_ik_failure"):
        tr.torch_forward(model, emg, angles, mask[:, :10], True)
    with pytest.raises(ValueError, match="more than 1790 samples"):
        tr.torch_forward(model, emg[..., :1790], angles[..., :1790], mask[:, :1790], True)
    with pytest.raises(ValueError, match="unknown overrides"):
        tr.build_torch_model("tracking_emg2pose", hidden=3)
    with pytest.raises(ValueError, match="expected experiment"):
        tr.build_torch_model("tracking_v2")


@needs_torch
def test_velocity_rollout_starts_from_initial_pose():
    # tracking_vemg2pose integrates velocities: with a silent decoder every
    # prediction equals the initial pose joint_angles[..., left_context].
    model = tr.build_torch_model("tracking_vemg2pose", **SMALL)
    tr.randomize_(model, 2)
    with torch.no_grad():
        model.decoder.mlp_out[1].weight.zero_()
        model.decoder.mlp_out[1].bias.zero_()
    rng = np.random.default_rng(3)
    angles = rng.standard_normal((2, 20, 2790), dtype=np.float32)
    pred, _, _ = tr.torch_forward(
        model,
        rng.standard_normal((2, 16, 2790), dtype=np.float32),
        angles,
        np.ones((2, 2790), bool),
        provide_initial_pos=True,
    )
    np.testing.assert_allclose(pred, np.broadcast_to(angles[..., 1790:1791], pred.shape), rtol=0, atol=1e-6)
    pred0, _, _ = tr.torch_forward(
        model, np.zeros((2, 16, 2790)), angles, np.ones((2, 2790), bool), provide_initial_pos=False
    )
    np.testing.assert_array_equal(pred0, 0.0)


@needs_torch
def test_vemg2pose_uses_positions_then_velocities():
    model = tr.build_torch_model("regression_vemg2pose", **SMALL)
    position, velocity = torch.linspace(-1, 1, 20), torch.linspace(0.5, 2, 20)
    with torch.no_grad():
        model.decoder.mlp_out[1].weight.zero_()
        model.decoder.mlp_out[1].bias.copy_(torch.cat([position, velocity]))
    model.eval()
    with torch.no_grad():  # 2000 samples beyond the context = 1 s = 50 rollout steps
        steps = model._predict_pose(torch.zeros(1, 16, 1790 + 2000), torch.zeros(1, 20))[0]
    assert steps.shape == (20, 50)
    scale = 0.01
    # round(500 * 50 / 2000) = round(12.5) = 12 position steps, then integration.
    expected = [position * scale if t < 12 else position * scale + (t - 11) * velocity * scale for t in range(50)]
    torch.testing.assert_close(steps, torch.stack(expected, dim=-1), rtol=1e-5, atol=1e-6)


@needs_torch
def test_resampling_follows_meta():
    class _FixedFeatures(torch.nn.Module):
        """Stands in for the TDS network: returns given features, keeps its context."""

        def __init__(self, features: torch.Tensor, left_context: int):
            super().__init__()
            self.features, self.left_context, self.right_context = features, left_context, 0

        def forward(self, emg):
            return self.features

    # Features -> rollout steps: linear, align_corners=True over the whole window.
    model = tr.build_torch_model("tracking_emg2pose", **SMALL)
    features = torch.randn(1, 3, 17, dtype=torch.float64)
    model.network = _FixedFeatures(features, model.left_context)
    steps = model._rollout_features(torch.zeros(1, 16, 1790 + 1000))  # 0.5 s -> 25 steps
    assert steps.shape == (1, 3, 25)
    source = np.arange(25) * (17 - 1) / (25 - 1)
    for c in range(3):
        # float64 round-off of torch's position arithmetic differs from np.interp's by ~1e-15;
        # a wrong align_corners convention would differ by ~1e-2.
        np.testing.assert_allclose(
            steps[0, c].numpy(), np.interp(source, np.arange(17), features[0, c].numpy()), rtol=1e-10, atol=1e-12
        )
    # Rollout steps -> target samples: linear, align_corners=False (half-pixel
    # centres, clamped at the ends); the mask by nearest neighbour.
    rollout = torch.randn(1, 20, 25, dtype=torch.float64)  # float64: compare the rule, not rounding
    model._predict_pose = lambda emg, initial_pos: rollout
    mask = torch.rand(1, 2790) > 0.5
    pred, _, out_mask = model(
        {"emg": torch.zeros(1, 16, 2790), "joint_angles": torch.zeros(1, 20, 2790), "no_ik_failure": mask},
        provide_initial_pos=False,
    )
    source = np.clip((np.arange(1000) + 0.5) * 25 / 1000 - 0.5, 0, 24)
    expected = np.stack([np.interp(source, np.arange(25), rollout[0, j].numpy()) for j in range(20)])
    np.testing.assert_allclose(pred[0].numpy(), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(out_mask.numpy(), mask[:, 1790:].numpy())


@needs_torch
def test_randomize_is_seeded_and_moves_norms_from_defaults():
    a = tr.build_torch_model("regression_neuropose", **SMALL)
    b = tr.build_torch_model("regression_neuropose", **SMALL)
    tr.randomize_(a, 7)
    tr.randomize_(b, 7)
    for (key, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(va, vb, rtol=0, atol=0, msg=key)
    norms = [m for m in a.modules() if isinstance(m, (torch.nn.LayerNorm, torch.nn.BatchNorm2d))]
    assert norms
    for m in norms:
        assert not torch.any(m.weight == 1) and not torch.any(m.bias == 0)
        if isinstance(m, torch.nn.BatchNorm2d):
            assert torch.all(m.running_var > 0) and not torch.any(m.running_var == 1)
            assert not torch.any(m.running_mean == 0)
    lstm_model = tr.build_torch_model("tracking_emg2pose", **SMALL)
    tr.randomize_(lstm_model, 8)
    assert all(not torch.any(m.weight == 1) for m in lstm_model.modules() if isinstance(m, torch.nn.LayerNorm))


# --------------------------------------------------------------------------- #
# Reading checkpoints (torch-free: files from ckpt_fixtures)
# --------------------------------------------------------------------------- #

HPARAMS = {
    "network_conf": {
        "_target_": "emg2pose.pose_modules.StatePoseModule",
        "rollout_freq": 50,
        "decoder": {"_target_": "emg2pose.networks.SequentialLSTM", "hidden_size": 16},
    },
    "optimizer_conf": {"_target_": "torch.optim.Adam", "lr": 0.001},
    "lr_scheduler_conf": None,
    "provide_initial_pos": True,
    "loss_weights": {"mae": 1.0, "fingertip_distance": 0.01},
}
LIGHTNING_KEYS = (
    "epoch",
    "global_step",
    "pytorch-lightning_version",
    "state_dict",
    "loops",
    "callbacks",
    "optimizer_states",
    "lr_schedulers",
    "hparams_name",
    "hyper_parameters",
)


def _weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "model.network.conv.weight": rng.standard_normal((4, 3, 5), dtype=np.float32),
        "model.network.conv.bias": rng.standard_normal(4, dtype=np.float32),
        "model.decoder.norm.running_var": rng.random(4) + 0.5,  # float64 buffer
        "model.decoder.norm.num_batches_tracked": np.array(7, np.int64),
    }


def test_lightning_checkpoint_round_trip(tmp_path):
    weights = _weights()
    path = F.write_lightning_checkpoint(tmp_path / "m.ckpt", weights, HPARAMS)
    ckpt = read_lightning_checkpoint(path)
    assert ckpt.top_level_keys == LIGHTNING_KEYS
    assert list(ckpt.state_dict) == list(weights)
    for key, want in weights.items():
        got = ckpt.state_dict[key]
        assert got.dtype == want.dtype and got.shape == want.shape, key
        np.testing.assert_array_equal(got, want, err_msg=key)
        assert got.flags.c_contiguous and got.flags.writeable
    # OmegaConf DictConfig nodes of one root config come back as plain data
    assert ckpt.hyper_parameters == HPARAMS


def test_bare_state_dict(tmp_path):
    weights = _weights(1)
    storages = F.Storages()
    obj = F.state_dict({k: storages.tensor(v) for k, v in weights.items()})
    ckpt = read_lightning_checkpoint(F.write_checkpoint(tmp_path / "w.pt", obj, storages))
    assert ckpt.top_level_keys == () and ckpt.hyper_parameters == {}
    for key, want in weights.items():
        np.testing.assert_array_equal(ckpt.state_dict[key], want)


def test_shared_storages_views_and_odd_values(tmp_path):
    storages = F.Storages()
    base_values = np.arange(60, dtype=np.float64).reshape(6, 10)
    base = storages.tensor(base_values)
    one = storages.tensor(np.ones(3, np.float32))
    state = {
        "tied_a": base,
        "tied_b": base,  # the same tensor twice
        "column": F.Tensor(base.storage, 3, (6,), (10,)),  # base[:, 3]
        "block": F.Tensor(base.storage, 21, (3, 3), (3, 10)),  # base[2:5, 1:8:3].T
        "expanded": F.Tensor(one.storage, 0, (3, 4), (1, 0)),  # ones(3, 1).expand(3, 4)
        "scalar": storages.tensor(np.array(2.5, np.float32)),
        "empty": storages.tensor(np.zeros((0, 3), np.float32)),
        "param": F.Parameter(storages.tensor(np.full(2, -1.0, np.float32))),
    }
    expected = {
        "tied_a": base_values,
        "tied_b": base_values,
        "column": base_values[:, 3],
        "block": base_values[2:5, 1:8:3].T,
        "expanded": np.ones((3, 4), np.float32),
        "scalar": np.array(2.5, np.float32),
        "empty": np.zeros((0, 3), np.float32),
        "param": np.full(2, -1.0, np.float32),
    }
    hparams = {
        "path": F.Reduce(F.Global("pathlib", "PosixPath"), ("/data/run",)),
        "device": F.Reduce(F.Global("torch", "device"), ("cuda", 1)),
        "dtype": F.Global("torch", "bfloat16"),
        "size": F.Reduce(F.Global("torch", "Size"), ((2, 3),)),
        "blob": b"\x00\x01",
        "numbers": {1, 2},
        "pair": (1, 2.0),
        "np_scalar": np.float32(1.5),
        "tensor": storages.tensor(np.array([1, 2], np.int32)),
    }
    path = F.write_checkpoint(
        tmp_path / "odd.ckpt", {"state_dict": F.state_dict(state), "hyper_parameters": hparams}, storages
    )
    ckpt = read_lightning_checkpoint(path)
    for key, want in expected.items():
        got = ckpt.state_dict[key]
        assert got.dtype == want.dtype and got.shape == want.shape, key
        np.testing.assert_array_equal(got, want, err_msg=key)
        assert got.flags.c_contiguous and got.flags.writeable
    ckpt.state_dict["tied_a"][0, 0] = -1  # copies: one entry does not alias another
    assert ckpt.state_dict["tied_b"][0, 0] == 0
    hp = ckpt.hyper_parameters
    assert hp["path"] == "/data/run" and hp["device"] == "cuda:1" and hp["dtype"] == "bfloat16"
    assert hp["size"] == [2, 3] and hp["blob"] == b"\x00\x01" and hp["numbers"] == {1, 2}
    assert hp["pair"] == [1, 2.0] and hp["np_scalar"] == 1.5
    np.testing.assert_array_equal(hp["tensor"], np.array([1, 2], np.int32))


_DTYPES = ["float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool", "complex64"]


@st.composite
def _tensor_views(draw):
    """(expected array, Storages, Tensor): a random view of a random base array, described as torch would."""
    dtype = draw(st.sampled_from(_DTYPES))
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=3)))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    values = rng.standard_normal(shape) * 50
    if dtype == "bfloat16":  # stored as the upper 16 bits of float32; read back as float32
        bits = (values.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
        raw, base = bits, (bits.astype(np.uint32) << 16).view(np.float32)
    else:
        base = (
            values > 0
            if dtype == "bool"
            else np.abs(values).astype(dtype)
            if dtype == "uint8"
            else values.astype(dtype)
        )
        raw = base
    view_kind = draw(st.sampled_from(["plain", "transpose", "step", "offset"]))
    index = np.arange(base.size).reshape(shape)  # element offsets into the storage
    if view_kind == "transpose":
        index = index.T
    elif view_kind == "step":
        index = index[..., ::2]
    elif view_kind == "offset":
        index = index.reshape(-1)[1:]
    offset = int(index.flat[0]) if index.size else 0
    stride = tuple(s // index.itemsize for s in index.strides)
    storages = F.Storages()
    storage = storages.add(
        raw.astype(raw.dtype.newbyteorder("<")).tobytes(),
        "BFloat16Storage" if dtype == "bfloat16" else F.STORAGE_CLASSES[raw.dtype],
        raw.size,
    )
    return base.reshape(-1)[index], storages, F.Tensor(storage, offset, index.shape, stride)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(view=_tensor_views())
def test_random_tensor_views_round_trip(tmp_path, view):
    want, storages, tensor = view
    path = F.write_checkpoint(tmp_path / "r.ckpt", {"state_dict": {"t": tensor}, "epoch": 0}, storages)
    got = read_lightning_checkpoint(path).state_dict["t"]
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    ("dtype", "storage_class"),
    [("f4", "FloatStorage"), ("f8", "DoubleStorage"), ("i8", "LongStorage"), ("f2", "HalfStorage")],
)
def test_big_endian_archives_are_byte_swapped(tmp_path, dtype, storage_class):
    values = np.arange(-3, 5).astype(dtype)
    storage = F.Storage("7", storage_class, values.size)
    obj = {"state_dict": {"x": F.Tensor(storage, 0, (2, 4), (4, 1))}}
    path = F.write_checkpoint(tmp_path / "be.ckpt", obj, {"7": values.astype(">" + dtype).tobytes()}, byteorder="big")
    got = read_lightning_checkpoint(path).state_dict["x"]
    np.testing.assert_array_equal(got, values.reshape(2, 4))
    assert got.dtype.isnative
    little = F.write_checkpoint(tmp_path / "le.ckpt", obj, {"7": values.astype(">" + dtype).tobytes()})
    assert not np.array_equal(read_lightning_checkpoint(little).state_dict["x"], values.reshape(2, 4))


def test_omegaconf_interpolations_are_resolved(tmp_path):
    root = F.omegaconf(
        {
            "data": {"window": 11790, "name": "emg"},
            "module": {
                "window": "${data.window}",
                "tag": "w${data.window}_${.rate}",
                "rate": 50,
                "list": [1, "${..rate}", {"deep": "${module.rate}"}],
                "none": None,
                "missing": "???",
                "env": "${oc.env:HOME}",
                "sub": "${data}",
            },
        }
    )
    module = root.state["_content"]["module"]
    storages = F.Storages()
    obj = {"state_dict": {"w": storages.tensor(np.ones(1, np.float32))}, "hyper_parameters": {"module": module}}
    got = read_lightning_checkpoint(F.write_checkpoint(tmp_path / "i.ckpt", obj, storages)).hyper_parameters
    assert got["module"] == {
        "window": 11790,
        "tag": "w11790_50",
        "rate": 50,
        "list": [1, 50, {"deep": 50}],
        "none": None,
        "missing": "???",
        "env": "${oc.env:HOME}",
        "sub": {"window": 11790, "name": "emg"},
    }


def test_reader_does_not_import_torch_or_omegaconf(tmp_path):
    path = F.write_lightning_checkpoint(tmp_path / "m.ckpt", _weights(), HPARAMS)
    code = (
        "import sys\n"
        "from emgjax.convert.ckpt_reader import read_lightning_checkpoint\n"
        f"c = read_lightning_checkpoint({str(path)!r})\n"
        "assert c.hyper_parameters['provide_initial_pos'] is True\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'omegaconf')]\n"
        "assert not bad, bad\n"
        "print(len(c.state_dict))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == len(_weights())


def test_unused_unsupported_tensors_do_not_matter(tmp_path):
    # Optimizer states are never materialised, so an odd dtype there is fine; the same in the state_dict is refused.
    storages = F.Storages()
    float8 = F.Reduce(
        F.Global("torch._utils", "_rebuild_tensor_v3"),
        (
            storages.add(bytes(3), "torch.storage.UntypedStorage", 3),
            0,
            (3,),
            (1,),
            False,
            collections.OrderedDict(),
            F.Global("torch", "float8_e5m2"),
        ),
    )
    w = storages.tensor(np.ones(2, np.float32))
    ok = F.write_checkpoint(
        tmp_path / "opt.ckpt", {"state_dict": {"w": w}, "optimizer_states": [{"state": {0: {"buf": float8}}}]}, storages
    )
    np.testing.assert_array_equal(read_lightning_checkpoint(ok).state_dict["w"], np.ones(2, np.float32))
    bad = F.write_checkpoint(tmp_path / "f8.ckpt", {"state_dict": {"w": float8}}, storages)
    with pytest.raises(CheckpointError, match=r"f8\.ckpt: state_dict entry 'w' has unsupported dtype 'float8_e5m2'"):
        read_lightning_checkpoint(bad)


@needs_torch
def test_hand_made_checkpoint_reads_like_torch_save(tmp_path):
    """The one torch test: torch.save of a Lightning-style checkpoint and ckpt_fixtures' hand-made twin
    have the same zip layout and pickle globals, and read identically."""
    import pathlib
    import pickletools

    from omegaconf import OmegaConf

    weights = _weights(2)
    hand = F.write_lightning_checkpoint(tmp_path / "twin.ckpt", weights, HPARAMS)

    experiment = "tracking_vemg2pose"
    params = {
        k: torch.nn.Parameter(torch.from_numpy(v.copy())) if v.dtype.kind == "f" else torch.from_numpy(v.copy())
        for k, v in weights.items()
    }
    state = collections.OrderedDict(params)
    state._metadata = collections.OrderedDict([("", {"version": 1})])
    score = torch.tensor(0.3125)
    best_path = f"/checkpoints/{experiment}/epoch=3-step=120.ckpt"
    floats = [k for k, v in weights.items() if v.dtype.kind == "f"]
    adam = {
        i: {
            "step": torch.tensor(1.0),
            "exp_avg": torch.full(weights[k].shape, 1e-4),
            "exp_avg_sq": torch.full(weights[k].shape, 1e-8),
        }
        for i, k in enumerate(floats)
    }
    root = OmegaConf.create(
        {"experiment": experiment, "module": HPARAMS, "data_module": {"window_length": 11790, "padding": [0, 0]}}
    )
    checkpoint = {
        "epoch": 3,
        "global_step": 120,
        "pytorch-lightning_version": "1.9.5",
        "state_dict": state,
        "loops": {"fit_loop": {"state_dict": {}, "epoch_loop.state_dict": {"_batches_that_stepped": 120}}},
        "callbacks": {
            "ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min'}": {
                "monitor": "val_loss",
                "best_model_score": score,
                "best_model_path": best_path,
                "dirpath": pathlib.PosixPath("/checkpoints", experiment),
                "best_k_models": collections.OrderedDict([(best_path, score)]),
            }
        },
        "optimizer_states": [
            {
                "state": adam,
                "param_groups": [
                    {
                        "lr": 0.001,
                        "betas": (0.9, 0.999),
                        "eps": 1e-08,
                        "weight_decay": 0,
                        "amsgrad": False,
                        "params": list(range(len(floats))),
                    }
                ],
            }
        ],
        "lr_schedulers": [],
        "hparams_name": "kwargs",
        "hyper_parameters": {k: (root.module[k] if isinstance(v, (dict, list)) else v) for k, v in HPARAMS.items()},
    }
    real = tmp_path / "twin_torch.ckpt"
    torch.save(checkpoint, real)

    def layout(path):
        with zipfile.ZipFile(path) as zf:
            names = [n.split("/", 1)[1] for n in zf.namelist()]
            globals_ = {
                arg for op, arg, _ in pickletools.genops(zf.read(f"{Path(path).stem}/data.pkl")) if op.name == "GLOBAL"
            }
            records = {
                n: zf.read(f"{Path(path).stem}/{n}")
                for n in (".format_version", ".storage_alignment", "byteorder", "version")
            }
        return names, globals_, records

    hand_names, hand_globals, hand_records = layout(hand)
    real_names, real_globals, real_records = layout(real)
    assert hand_names == real_names and hand_records == real_records
    assert hand_globals == real_globals, hand_globals ^ real_globals
    a, b = read_lightning_checkpoint(hand), read_lightning_checkpoint(real)
    assert a.top_level_keys == b.top_level_keys == LIGHTNING_KEYS
    assert a.hyper_parameters == b.hyper_parameters == HPARAMS
    assert list(a.state_dict) == list(b.state_dict)
    for key in a.state_dict:
        assert a.state_dict[key].dtype == b.state_dict[key].dtype, key
        np.testing.assert_array_equal(a.state_dict[key], b.state_dict[key], err_msg=key)
    # OmegaConf's own resolution agrees with the reader's on node interpolations
    interp = OmegaConf.create({"d": {"w": 3}, "m": {"a": "${d.w}", "b": "x${.a}", "l": [1, "${..a}"]}})
    torch.save({"state_dict": {"w": torch.ones(1)}, "hyper_parameters": {"m": interp.m}}, tmp_path / "i.ckpt")
    assert read_lightning_checkpoint(tmp_path / "i.ckpt").hyper_parameters["m"] == OmegaConf.to_container(
        interp.m, resolve=True
    )


# --------------------------------------------------------------------------- #
# Hostile and damaged files: each a CheckpointError naming the problem; nothing runs
# --------------------------------------------------------------------------- #


def _hostile_calls(sentinel: Path) -> dict[str, F.Reduce]:
    """Globals that run code, as a malicious pickle names them (protocol 2 spellings)."""
    touch = f"open({str(sentinel)!r}, 'w')"
    return {
        "posix.system": F.Reduce(F.Global("posix", "system"), (f"touch {sentinel}",)),
        "os.system": F.Reduce(F.Global("os", "system"), (f"touch {sentinel}",)),
        "builtins.eval": F.Reduce(F.Global("__builtin__", "eval"), (touch,)),
        "builtins.exec": F.Reduce(F.Global("builtins", "exec"), (touch,)),
        "subprocess.Popen": F.Reduce(F.Global("subprocess", "Popen"), (["touch", str(sentinel)],)),
        "builtins.getattr": F.Reduce(F.Global("builtins", "getattr"), ("text", "upper")),
        "builtins.__import__": F.Reduce(F.Global("builtins", "__import__"), ("os",)),
        "io.open": F.Reduce(F.Global("io", "open"), (str(sentinel), "w")),
    }


@pytest.mark.parametrize(
    "name",
    [
        "posix.system",
        "os.system",
        "builtins.eval",
        "builtins.exec",
        "subprocess.Popen",
        "builtins.getattr",
        "builtins.__import__",
        "io.open",
    ],
)
@pytest.mark.parametrize("where", ["top", "nested"])
def test_hostile_pickles_are_refused_without_running(tmp_path, name, where):
    sentinel = tmp_path / "pwned"
    evil = _hostile_calls(sentinel)[name]
    if name in ("posix.system", "io.open", "builtins.eval"):
        # Unrestricted unpickling *would* run it: the payload is live.
        pickle.loads(F.dumps(evil))
        assert sentinel.exists()
        sentinel.unlink()
    state, storages = F.small_state()
    payload = (
        evil if where == "top" else {"state_dict": state, "hyper_parameters": {"network_conf": {"_target_": evil}}}
    )
    path = F.write_checkpoint(tmp_path / "evil.ckpt", payload, storages)
    with pytest.raises(CheckpointError, match="refused to load global") as info:
        read_lightning_checkpoint(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert f"refused to load global '{name}'" in message
    assert not sentinel.exists()


def test_reduce_on_allowed_but_wrong_callables_is_refused(tmp_path):
    def read(name, obj):
        return read_lightning_checkpoint(
            F.write_checkpoint(tmp_path / name, pickle_bytes=obj if isinstance(obj, bytes) else F.dumps(obj))
        )

    # GLOBAL <allowed function>, then BUILD with slot state that would rewrite
    # its __defaults__: must be refused, not applied.
    # state = (None, {"__defaults__": (None,)})
    build_attack = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nN}X\x0c\x00\x00\x00__defaults__N\x85s\x86b."
    with pytest.raises(CheckpointError, match="refused to set state"):
        read("b.ckpt", build_attack)

    def victim(a=1):
        return a

    class _Unrestricted(pickle.Unpickler):  # what a naive allow-list-only reader does
        def find_class(self, module, name):
            return victim

    _Unrestricted(__import__("io").BytesIO(build_attack)).load()
    assert victim.__defaults__ == (None,)  # the payload is live: it rewrites defaults
    # NEWOBJ on an allowed *function* (not an allowed class)
    with pytest.raises(CheckpointError, match="refused to instantiate"):
        read("n.ckpt", b"\x80\x02c_codecs\nencode\n)\x81.")
    # allowed callables called with arguments they must not accept
    with pytest.raises(CheckpointError, match=r"c\.ckpt: refused _codecs.encode with encoding 'rot13'"):
        read("c.ckpt", F.Reduce(F.Global("_codecs", "encode"), ("abc", "rot13")))
    with pytest.raises(CheckpointError, match=r"a\.ckpt: refused bytearray\(\) with arguments"):
        read("a.ckpt", F.Reduce(F.Global("__builtin__", "bytearray"), (0x7F000000,)))  # 2 GB from 20 bytes
    with pytest.raises(CheckpointError, match=r"s\.ckpt: refused str\(\) of list"):
        read("s.ckpt", F.Reduce(F.Global("__builtin__", "str"), (F.shared_reference_bomb(40),)))
    with pytest.raises(CheckpointError, match=r"t\.ckpt: refused tensor rebuild function"):
        read(
            "t.ckpt",
            F.Reduce(
                F.Global("torch._tensor", "_rebuild_from_type_v2"),
                (F.Global("__builtin__", "dict"), F.Global("torch", "Tensor"), (), {}),
            ),
        )
    with pytest.raises(CheckpointError, match=r"refused to load global 'collections\.ChainMap'"):
        read("u.ckpt", {"state_dict": {}, "hyper_parameters": {"x": F.Reduce(F.Global("collections", "ChainMap"), ())}})


def _bomb_checkpoint(tmp_path, name, hyper_parameters) -> Path:
    state, storages = F.small_state()
    return F.write_checkpoint(tmp_path / name, {"state_dict": state, "hyper_parameters": hyper_parameters}, storages)


@pytest.mark.parametrize("kind", ["list", "dict", "tuple"])
def test_shared_reference_bombs_are_refused(tmp_path, kind):
    # 2**depth elements if copied naively: depth 40 made `emgjax convert` run until killed (> 1 GB in 20 s).
    elements = r"expected hyper_parameters of at most 1000000 elements, found an object of \d+ once shared"
    for depth, limit in ((40, elements), (90, elements), (100, "expected hyper_parameters nested at most 100 levels")):
        path = _bomb_checkpoint(tmp_path, f"bomb{depth}.ckpt", {"x": F.shared_reference_bomb(depth, kind)})
        assert path.stat().st_size < 3000
        with pytest.raises(CheckpointError, match=rf"bomb{depth}\.ckpt: {limit}"):
            read_lightning_checkpoint(path)
    # A small one is data, not a bomb: it converts, shared objects stay shared.
    plain = read_lightning_checkpoint(_bomb_checkpoint(tmp_path, "ok.ckpt", {"x": F.shared_reference_bomb(10, kind)}))
    node = plain.hyper_parameters["x"]
    for _ in range(10):
        first, second = (node["a"], node["b"]) if kind == "dict" else node
        assert first is second
        node = first
    assert node == ({"x": 0} if kind == "dict" else [0])


def test_hash_bombs_are_refused_before_hashing(tmp_path):
    # A dict key or set element nested in itself: one insertion would hash 2**40 tuples.
    bomb = F.shared_reference_bomb(40, "tuple")
    payloads = {
        "key": F.RawDict([(bomb, 1)]),
        "set": F.Reduce(F.Global("__builtin__", "set"), ([bomb],)),
        "frozenset": F.Reduce(F.Global("__builtin__", "frozenset"), ([bomb],)),
        "dict_pairs": F.Reduce(F.Global("__builtin__", "dict"), ([(bomb, 1)],)),
        "counter": F.Reduce(F.Global("collections", "Counter"), ([bomb],)),
    }
    for name, payload in payloads.items():
        with pytest.raises(
            CheckpointError,
            match=rf"{name}\.ckpt: expected a dict key or set element of at most "
            "10000 elements",
        ):
            read_lightning_checkpoint(_bomb_checkpoint(tmp_path, f"{name}.ckpt", payload))
    deep: tuple = (0,)
    for _ in range(150):  # not shared, only deep
        deep = (deep,)
    with pytest.raises(CheckpointError, match=r"nested at most 100 levels deep"):
        read_lightning_checkpoint(_bomb_checkpoint(tmp_path, "deep.ckpt", F.RawDict([(deep, 1)])))


def test_deep_and_cyclic_hyper_parameters_are_refused(tmp_path):
    deep: list = [0]
    for _ in range(150):
        deep = [deep]
    with pytest.raises(CheckpointError, match=r"deep\.ckpt: expected hyper_parameters nested at most 100 levels"):
        read_lightning_checkpoint(_bomb_checkpoint(tmp_path, "deep.ckpt", {"x": deep}))
    cyclic: list = [1]
    cyclic.append(cyclic)
    with pytest.raises(CheckpointError, match=r"cyc\.ckpt: expected hyper_parameters without cycles"):
        read_lightning_checkpoint(_bomb_checkpoint(tmp_path, "cyc.ckpt", {"x": cyclic}))
    loop = F.omegaconf({"a": "${b}", "b": "${a}"})
    with pytest.raises(CheckpointError, match=r"loop\.ckpt: expected hyper_parameters without cycles"):
        read_lightning_checkpoint(_bomb_checkpoint(tmp_path, "loop.ckpt", {"x": loop}))


def test_pickle_opcode_limit(tmp_path, monkeypatch):
    path = F.write_lightning_checkpoint(tmp_path / "m.ckpt", _weights(), HPARAMS)
    read_lightning_checkpoint(path)  # fine with the real limit
    monkeypatch.setattr(ckpt_reader, "_MAX_PICKLE_OPS", 100)
    with pytest.raises(CheckpointError, match=r"m\.ckpt: expected data\.pkl to run at most 100 pickle opcodes"):
        read_lightning_checkpoint(path)


def test_missing_random_and_legacy_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.ckpt"):
        read_lightning_checkpoint(tmp_path / "nope.ckpt")
    with pytest.raises(CheckpointError, match="found a directory"):
        read_lightning_checkpoint(tmp_path)
    text = tmp_path / "notes.ckpt"
    text.write_text("hello, not a checkpoint\n")
    with pytest.raises(CheckpointError, match=r"notes\.ckpt: expected a PyTorch checkpoint \(a zip archive\)"):
        read_lightning_checkpoint(text)
    noise = tmp_path / "noise.ckpt"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CheckpointError, match=r"noise\.ckpt: expected a PyTorch checkpoint \(a zip archive\)"):
        read_lightning_checkpoint(noise)
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty file"):
        read_lightning_checkpoint(empty)
    legacy = tmp_path / "legacy.pt"  # torch < 1.6 files start with this pickled magic number
    legacy.write_bytes(pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001, protocol=2))
    with pytest.raises(CheckpointError, match=r"legacy \(PyTorch < 1.6\)"):
        read_lightning_checkpoint(legacy)


def test_truncated_checkpoint(tmp_path):
    storages = F.Storages()
    path = F.write_checkpoint(
        tmp_path / "t.ckpt",
        {"state_dict": {"w": storages.tensor(np.random.default_rng(0).standard_normal((64, 64), dtype=np.float32))}},
        storages,
    )
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10):
        short = tmp_path / f"cut{cut}.ckpt"
        short.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match=rf"cut{cut}\.ckpt.*truncated"):
            read_lightning_checkpoint(short)


def test_archive_structure_errors(tmp_path):
    storage = F.Storage("0", "FloatStorage", 4)
    obj = {"state_dict": {"w": F.Tensor(storage, 0, (4,), (1,))}}
    four_floats = np.ones(4, "<f4").tobytes()

    def refused(name, pattern, obj=obj, storages=None, **kwargs):
        path = F.write_checkpoint(tmp_path / name, obj, {"0": four_floats} if storages is None else storages, **kwargs)
        with pytest.raises(CheckpointError, match=pattern) as info:
            read_lightning_checkpoint(path)
        assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)

    read_lightning_checkpoint(F.write_checkpoint(tmp_path / "ok.ckpt", obj, {"0": four_floats}))  # the control
    refused("np.ckpt", "no data\\.pkl among", with_pickle=False)
    refused("ns.ckpt", "storage '0' .*'ns/data/0' is missing", storages={})
    refused("ss.ckpt", "storage '0' .*needs 16 bytes .* holds 10", storages={"0": four_floats[:10]})
    refused(
        "ob.ckpt",
        "state_dict entry 'w' .*reaches element 5 .*holds 4",
        obj={"state_dict": {"w": F.Tensor(storage, 2, (2, 2), (2, 1))}},
    )
    refused(
        "ex.ckpt",
        "repeats its 4 storage elements into 1099511627776; refusing",
        obj={"state_dict": {"w": F.Tensor(storage, 0, (1 << 20, 1 << 20), (0, 0))}},
    )
    refused("bo.ckpt", "byteorder 'little' or 'big', found 'middle'", byteorder="middle")
    refused("gp.ckpt", "data\\.pkl is not a valid checkpoint pickle", pickle_bytes=b"\x80\x02}q\x00(X\x01")
    refused("two.ckpt", "expected one '<archive>/data.pkl', found 2", extra_entries={"other/data.pkl": F.dumps(obj)})


@pytest.mark.parametrize(
    ("size", "stride", "offset", "pattern"),
    [
        ((-1, 2), (2, 1), 0, r"expected a tuple of at most 64 non-negative ints as tensor size, found \(-1, 2\)"),
        ((2, 2), (-2, 1), 0, r"expected 2 non-negative int strides, found \(-2, 1\)"),
        ((2,), (1,), -1, r"expected a non-negative int storage offset, found -1"),
        ((1 << 62, 1 << 62), (1, 1), 0, r"reaches element 9223372036854775806 but its storage '0' holds 4"),
        ((2,), (1 << 62,), 0, r"reaches element 4611686018427387904 but its storage '0' holds 4"),
        ((2,) * 65, (0,) * 65, 0, r"expected a tuple of at most 64"),
        ((2,), (1, 1), 0, r"expected 1 non-negative int strides"),
        ([2], (1,), 0, r"expected a tuple of at most 64 non-negative ints as tensor size, found \[2\]"),
    ],
)
def test_bad_sizes_strides_and_offsets(tmp_path, size, stride, offset, pattern):
    storage = F.Storage("0", "FloatStorage", 4)
    tensor = F.Reduce(
        F.Global("torch._utils", "_rebuild_tensor_v2"),
        (storage, offset, size, stride, False, collections.OrderedDict()),
    )
    path = F.write_checkpoint(tmp_path / "s.ckpt", {"state_dict": {"w": tensor}}, {"0": np.ones(4, "<f4").tobytes()})
    with pytest.raises(CheckpointError, match=pattern):
        read_lightning_checkpoint(path)


def test_declared_sizes_the_file_cannot_hold(tmp_path, monkeypatch):
    # A 1 GB storage declared in a ~1 KB file: refused from the declaration, nothing allocated.
    huge = F.Storage("0", "FloatStorage", 1 << 28)
    obj = {"state_dict": {"w": F.Tensor(huge, 0, (1 << 28,), (1,))}}
    path = F.write_checkpoint(tmp_path / "gb.ckpt", obj, {"0": np.ones(4, "<f4").tobytes()})
    assert path.stat().st_size < 2048
    with pytest.raises(
        CheckpointError,
        match=r"gb\.ckpt: storage '0' \(FloatStorage, 268435456 elements\) needs "
        r"1073741824 bytes but its archive entry holds 16",
    ):
        read_lightning_checkpoint(path)
    # The same with a forged zip directory that claims the entry holds 1 GB.
    F.forge_entry_size(path, "gb/data/0", 1 << 30)
    with pytest.raises(
        CheckpointError,
        match=r"'gb/data/0' declares 1073741824 bytes but, stored uncompressed with "
        r"16 compressed bytes in a \d+-byte file, can hold at most 16",
    ):
        read_lightning_checkpoint(path)
    deflated = F.write_checkpoint(tmp_path / "df.ckpt", obj, {"0": bytes(64)}, compression=zipfile.ZIP_DEFLATED)
    F.forge_entry_size(deflated, "df/data/0", 1 << 30)
    with pytest.raises(CheckpointError, match=r"'df/data/0' declares 1073741824 bytes but, deflated with"):
        read_lightning_checkpoint(deflated)
    # Stride-0 views may repeat elements, within a budget of 2 x file size + 256 MiB for everything read.
    small = F.Storage("0", "FloatStorage", 4)
    expand = {"state_dict": {f"w{i}": F.Tensor(small, 0, (1 << 12, 1 << 12), (0, 0)) for i in range(3)}}
    path = F.write_checkpoint(tmp_path / "exp.ckpt", expand, {"0": np.ones(4, "<f4").tobytes()})
    monkeypatch.setattr(ckpt_reader, "_MATERIALIZE_SLACK_BYTES", 150 << 20)  # room for two 64 MiB copies, not three
    with pytest.raises(
        CheckpointError,
        match=r"exp\.ckpt: state_dict entry 'w2' would bring the arrays read from "
        r"this \d+-byte file to more than",
    ):
        read_lightning_checkpoint(path)


def test_unsafe_entry_names_and_storage_keys(tmp_path):
    state, storages = F.small_state()
    obj = {"state_dict": state}
    for name in ("../evil", "/etc/evil", "m/../../evil", "C:\\evil"):
        path = F.write_checkpoint(tmp_path / "m.ckpt", obj, storages, extra_entries={name: b"x"})
        with pytest.raises(CheckpointError, match=r"expected zip entry names inside the archive, found .*evil"):
            read_lightning_checkpoint(path)
    slip = F.write_checkpoint(
        tmp_path / "k.ckpt",
        {"state_dict": {"w": F.Tensor(F.Storage("../../k/data/0", "FloatStorage", 1), 0, (1,), (1,))}},
        {"0": bytes(4)},
    )
    with pytest.raises(CheckpointError, match=r"k\.ckpt: bad storage reference key='\.\./\.\./k/data/0'"):
        read_lightning_checkpoint(slip)


def test_content_errors(tmp_path):
    state, storages = F.small_state()

    def refused(name, obj, pattern):
        with pytest.raises(CheckpointError, match=pattern):
            read_lightning_checkpoint(F.write_checkpoint(tmp_path / name, obj, storages))

    refused("ns.ckpt", {"epoch": 3, "hyper_parameters": {}}, r"ns\.ckpt: expected .*'state_dict'.*found keys \['epoch'")
    refused("nd.ckpt", [state["w"]], "expected a checkpoint dict, found list")
    refused(
        "nt.ckpt", {"state_dict": {"w": state["w"], "extra": 3}}, "state_dict entry 'extra' is a int, expected a tensor"
    )
    refused("sd.ckpt", {"state_dict": [state["w"]]}, "expected 'state_dict' to be a dict, found list")
    refused(
        "hp.ckpt", {"state_dict": state, "hyper_parameters": [1]}, "expected hyper_parameters to be a dict, found list"
    )
