"""Tests of the torch-free checkpoint reader and of the PyTorch reference it is checked against."""

from __future__ import annotations

import collections
import io
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from emgjax.convert.ckpt_reader import CheckpointError, LightningCheckpoint, read_lightning_checkpoint

torch = pytest.importorskip("torch")
pytest.importorskip("omegaconf")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import torch_reference as tr  # noqa: E402

# Small sizes keep every model below ~0.1 M parameters; the structure (and so
# the state_dict keys) is the published one.
SMALL = dict(tds_channels=4, feature_width=4, num_blocks=2, tds_out_channels=8, hidden_size=16,
             num_layers=2, mlp_hidden=16, neuropose_channels=(4, 8, 16), num_residual_blocks=2)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # Tiny models on a shared 2-core machine: intra-op threads only contend
    # (measured ~10x slower with 2 threads under load).
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _torch_to_numpy(t: "torch.Tensor") -> np.ndarray:
    return (t.float() if t.dtype == torch.bfloat16 else t).detach().numpy()


# --------------------------------------------------------------------------- #
# The PyTorch reference
# --------------------------------------------------------------------------- #


def test_parameter_counts_match_published_models():
    # Hand count (weights + biases; BatchNorm buffers excluded):
    #   TDS: conv blocks 45,312 + 327,936 (+2x512 LN); stage 0 1,114,880 + 2 x 134,928;
    #        stage 1 590,592 + 2 x 133,904 + linear 16,448            = 2,633,856
    #   LSTM 84->512 x2: 1,224,704 + 2,101,248, head 512->20: 10,260  = 3,336,212
    #   MLP 84->512->512->20 with LayerNorms                          =   318,484
    #   NeuroPose                                                       = 6,354,903
    expected = {"tracking_vemg2pose": 5_970_068, "regression_vemg2pose": 5_980_328,
                "tracking_emg2pose": 2_952_340, "regression_neuropose": 6_354_903}
    facts_millions = {"tracking_vemg2pose": 5.97, "regression_vemg2pose": 5.98,
                      "tracking_emg2pose": 2.95, "regression_neuropose": 6.35}
    for experiment in tr.EXPERIMENTS:
        with torch.device("meta"):  # counts shapes without allocating or initialising
            model = tr.build_torch_model(experiment)
        count = sum(p.numel() for p in model.parameters())
        assert count == expected[experiment], experiment
        assert round(count / 1e6, 2) == facts_millions[experiment], experiment


def test_state_dict_keys_follow_meta_layout():
    keys = {e: set(tr.build_torch_model(e, **SMALL).state_dict()) for e in tr.EXPERIMENTS}
    tds = {
        "network.layers.0.conv.0.weight", "network.layers.0.norm.weight", "network.layers.1.norm.bias",
        "network.layers.2.layers.conv1dblock.conv.0.weight", "network.layers.2.layers.conv1dblock.norm.bias",
        "network.layers.2.layers.tds_block.tds_conv_blocks.0.conv2d.weight",
        "network.layers.2.layers.tds_block.tds_conv_blocks.0.layer_norm.weight",
        "network.layers.2.layers.tds_block.tds_conv_blocks.1.fc_block.2.bias",
        "network.layers.3.layers.tds_block.tds_conv_blocks.3.layer_norm.bias",
        "network.layers.3.linear_layer.weight",
    }
    lstm = {"decoder.lstm.weight_ih_l0", "decoder.lstm.weight_hh_l1", "decoder.lstm.bias_ih_l1",
            "decoder.lstm.bias_hh_l0", "decoder.mlp_out.1.weight", "decoder.mlp_out.1.bias"}
    mlp = {"decoder.mlp.0.weight", "decoder.mlp.1.weight", "decoder.mlp.3.bias", "decoder.mlp.4.bias",
           "decoder.mlp.6.weight"}
    neuropose = {"network.network.0.network.0.weight", "network.network.0.network.1.running_var",
                 "network.network.0.network.1.num_batches_tracked", "network.network.3.network.4.weight",
                 "network.network.5.network.0.bias", "network.network.7.network.1.running_mean",
                 "network.linear.weight", "network.linear.bias"}
    assert tds | lstm <= keys["tracking_vemg2pose"]
    assert tds | lstm <= keys["regression_vemg2pose"]
    assert tds | mlp <= keys["tracking_emg2pose"]
    assert neuropose <= keys["regression_neuropose"]
    assert not any("linear_layer" in k for k in keys["tracking_vemg2pose"] if "layers.2." in k)


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
        np.testing.assert_array_equal(target, angles[..., model.left_context:])
        np.testing.assert_array_equal(out_mask, mask[..., model.left_context:])
        assert np.isfinite(pred).all() and np.abs(pred).max() > 0


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
    pred, _, _ = tr.torch_forward(model, rng.standard_normal((2, 16, 2790), dtype=np.float32), angles,
                                  np.ones((2, 2790), bool), provide_initial_pos=True)
    np.testing.assert_allclose(pred, np.broadcast_to(angles[..., 1790:1791], pred.shape), rtol=0, atol=1e-6)
    pred0, _, _ = tr.torch_forward(model, np.zeros((2, 16, 2790)), angles, np.ones((2, 2790), bool),
                                   provide_initial_pos=False)
    np.testing.assert_array_equal(pred0, 0.0)


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
    expected = [position * scale if t < 12 else position * scale + (t - 11) * velocity * scale
                for t in range(50)]
    torch.testing.assert_close(steps, torch.stack(expected, dim=-1), rtol=1e-5, atol=1e-6)


class _FixedFeatures(torch.nn.Module):
    """Stands in for the TDS network: returns given features, keeps its context."""

    def __init__(self, features: "torch.Tensor", left_context: int):
        super().__init__()
        self.features, self.left_context, self.right_context = features, left_context, 0

    def forward(self, emg):
        return self.features


def test_resampling_follows_meta():
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
        np.testing.assert_allclose(steps[0, c].numpy(), np.interp(source, np.arange(17), features[0, c].numpy()),
                                   rtol=1e-10, atol=1e-12)
    # Rollout steps -> target samples: linear, align_corners=False (half-pixel
    # centres, clamped at the ends); the mask by nearest neighbour.
    rollout = torch.randn(1, 20, 25, dtype=torch.float64)  # float64: compare the rule, not rounding
    model._predict_pose = lambda emg, initial_pos: rollout
    mask = torch.rand(1, 2790) > 0.5
    pred, _, out_mask = model({"emg": torch.zeros(1, 16, 2790), "joint_angles": torch.zeros(1, 20, 2790),
                               "no_ik_failure": mask}, provide_initial_pos=False)
    source = np.clip((np.arange(1000) + 0.5) * 25 / 1000 - 0.5, 0, 24)
    expected = np.stack([np.interp(source, np.arange(25), rollout[0, j].numpy()) for j in range(20)])
    np.testing.assert_allclose(pred[0].numpy(), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(out_mask.numpy(), mask[:, 1790:].numpy())


def test_randomize_is_seeded_and_moves_norms_from_defaults():
    a = tr.build_torch_model("regression_neuropose", **SMALL)
    b = tr.build_torch_model("regression_neuropose", **SMALL)
    tr.randomize_(a, 7)
    tr.randomize_(b, 7)
    for (key, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
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
# Reading Lightning checkpoints
# --------------------------------------------------------------------------- #


def _assert_round_trip(ckpt: LightningCheckpoint, model) -> None:
    expected = model.state_dict()
    assert set(ckpt.state_dict) == {"model." + k for k in expected}
    for key, tensor in expected.items():
        got = ckpt.state_dict["model." + key]
        want = _torch_to_numpy(tensor)
        assert got.dtype == want.dtype and got.shape == want.shape, key
        np.testing.assert_array_equal(got, want, err_msg=key)


@pytest.mark.parametrize("experiment", tr.EXPERIMENTS)
def test_lightning_checkpoint_round_trip(tmp_path, experiment):
    model = tr.build_torch_model(experiment, **SMALL)
    tr.randomize_(model, 11)
    path = tmp_path / f"{experiment}.ckpt"
    tr.save_lightning_checkpoint(model, path, experiment, **SMALL)

    ckpt = read_lightning_checkpoint(path)
    _assert_round_trip(ckpt, model)
    assert ckpt.hyper_parameters == tr.hyper_parameters_for(experiment, **SMALL)
    assert ckpt.top_level_keys == ("epoch", "global_step", "pytorch-lightning_version", "state_dict", "loops",
                                   "callbacks", "optimizer_states", "lr_schedulers", "hparams_name",
                                   "hyper_parameters")
    if experiment == "regression_neuropose":
        assert ckpt.state_dict["model.network.network.0.network.1.num_batches_tracked"].dtype == np.int64
    # torch itself agrees on what the file holds
    loaded = torch.load(path, weights_only=False)
    assert list(loaded) == list(ckpt.top_level_keys)


def test_full_size_checkpoint_round_trip(tmp_path):
    model = tr.build_torch_model("tracking_vemg2pose")
    tr.randomize_(model, 5)
    path = tmp_path / "full.ckpt"
    tr.save_lightning_checkpoint(model, path, "tracking_vemg2pose")
    # weights + two Adam moments: about 3 x 5.97 M float32 = ~72 MB, as the facts say
    assert 70e6 < path.stat().st_size < 74e6
    ckpt = read_lightning_checkpoint(str(path))
    _assert_round_trip(ckpt, model)
    assert ckpt.state_dict["model.network.layers.0.conv.0.weight"].shape == (256, 16, 11)
    assert ckpt.hyper_parameters == tr.hyper_parameters_for("tracking_vemg2pose")


def test_bare_weights_only_state_dict(tmp_path):
    model = tr.build_torch_model("tracking_emg2pose", **SMALL)
    tr.randomize_(model, 4)
    path = tmp_path / "weights.pt"
    torch.save(model.state_dict(), path)
    torch.load(path, weights_only=True)  # the file is a plain, weights_only-safe save
    ckpt = read_lightning_checkpoint(path)
    assert ckpt.top_level_keys == () and ckpt.hyper_parameters == {}
    assert set(ckpt.state_dict) == set(model.state_dict())
    for key, tensor in model.state_dict().items():
        np.testing.assert_array_equal(ckpt.state_dict[key], tensor.numpy())


def test_shared_storages_views_and_odd_values(tmp_path):
    base = torch.arange(60, dtype=torch.float64).reshape(6, 10)
    state = collections.OrderedDict(
        tied_a=base, tied_b=base,                          # same storage twice
        column=base[:, 3], block=base[2:5, 1:8:3].T,       # offsets and strides
        expanded=torch.ones(3, 1).expand(3, 4),            # stride 0
        scalar=torch.tensor(2.5), empty=torch.zeros(0, 3),
        param=torch.nn.Parameter(torch.full((2,), -1.0)),
    )
    hparams = {"when": "x", "path": Path("/data/run"), "device": torch.device("cuda", 1),
               "dtype": torch.bfloat16, "size": torch.Size([2, 3]), "blob": b"\x00\x01",
               "numbers": {1, 2}, "pair": (1, 2.0), "np_scalar": np.float32(1.5),
               "tensor": torch.tensor([1, 2], dtype=torch.int32)}
    torch.save({"state_dict": state, "hyper_parameters": hparams}, tmp_path / "odd.ckpt")
    ckpt = read_lightning_checkpoint(tmp_path / "odd.ckpt")
    for key, tensor in state.items():
        got = ckpt.state_dict[key]
        np.testing.assert_array_equal(got, tensor.detach().numpy())
        assert got.flags.c_contiguous and got.flags.writeable
    ckpt.state_dict["tied_a"][0, 0] = -1  # copies: one entry does not alias another
    assert ckpt.state_dict["tied_b"][0, 0] == 0
    hp = ckpt.hyper_parameters
    assert hp["path"] == "/data/run" and hp["device"] == "cuda:1" and hp["dtype"] == "bfloat16"
    assert hp["size"] == [2, 3] and hp["blob"] == b"\x00\x01" and hp["numbers"] == {1, 2}
    assert hp["pair"] == [1, 2.0] and hp["np_scalar"] == 1.5
    np.testing.assert_array_equal(hp["tensor"], np.array([1, 2], np.int32))


_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32,
           torch.int16, torch.int8, torch.uint8, torch.bool]


@st.composite
def _tensor_views(draw):
    dtype = draw(st.sampled_from(_DTYPES))
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=3)))
    seed = draw(st.integers(0, 2**31 - 1))
    gen = torch.Generator().manual_seed(seed)
    base = (torch.randn(shape, generator=gen, dtype=torch.float64) * 50)
    if dtype == torch.bool:
        base = base > 0
    elif dtype == torch.uint8:
        base = base.abs()
    base = base.to(dtype)
    view_kind = draw(st.sampled_from(["plain", "transpose", "step", "offset"]))
    if view_kind == "transpose" and base.ndim > 1:
        return base.transpose(0, base.ndim - 1)
    if view_kind == "step":
        return base[..., ::2]
    if view_kind == "offset":
        return base.reshape(-1)[1:]
    return base


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tensors=st.lists(_tensor_views(), min_size=1, max_size=3))
def test_random_tensors_round_trip(tensors):
    buffer = io.BytesIO()
    state = {f"t{i}": t for i, t in enumerate(tensors)}
    torch.save({"state_dict": state, "epoch": 0}, buffer)
    path = _scratch_file(buffer.getvalue())
    try:
        ckpt = read_lightning_checkpoint(path)
    finally:
        os.unlink(path)
    for key, tensor in state.items():
        want = _torch_to_numpy(tensor)
        got = ckpt.state_dict[key]
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def _scratch_file(data: bytes) -> str:
    import tempfile

    fd, path = tempfile.mkstemp(suffix=".ckpt")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


def test_omegaconf_interpolations_are_resolved(tmp_path):
    from omegaconf import OmegaConf

    root = OmegaConf.create({
        "data": {"window": 11790, "name": "emg"},
        "module": {"window": "${data.window}", "tag": "w${data.window}_${.rate}", "rate": 50,
                   "list": [1, "${..rate}", {"deep": "${module.rate}"}], "none": None,
                   "missing": "???", "env": "${oc.env:HOME}", "sub": "${data}"},
    })
    torch.save({"state_dict": {"w": torch.ones(1)}, "hyper_parameters": {"module": root.module}},
               tmp_path / "interp.ckpt")
    got = read_lightning_checkpoint(tmp_path / "interp.ckpt").hyper_parameters["module"]
    assert got == {"window": 11790, "tag": "w11790_50", "rate": 50, "list": [1, 50, {"deep": 50}],
                   "none": None, "missing": "???", "env": "${oc.env:HOME}",
                   "sub": {"window": 11790, "name": "emg"}}
    # the same as OmegaConf's own resolution where OmegaConf resolves
    resolved = OmegaConf.to_container(root.module, resolve=True, throw_on_missing=False)
    for key in ("window", "tag", "list", "sub"):
        assert got[key] == resolved[key]


def test_reader_does_not_import_torch_or_omegaconf(tmp_path):
    path = tmp_path / "m.ckpt"
    model = tr.build_torch_model("tracking_vemg2pose", **SMALL)
    tr.save_lightning_checkpoint(model, path, "tracking_vemg2pose", **SMALL)
    code = (
        "import sys\n"
        "from emgjax.convert.ckpt_reader import read_lightning_checkpoint\n"
        f"c = read_lightning_checkpoint({str(path)!r})\n"
        "assert c.hyper_parameters['provide_initial_pos'] is True\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'omegaconf')]\n"
        "assert not bad, bad\n"
        "print(len(c.state_dict))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == len(model.state_dict())


# --------------------------------------------------------------------------- #
# Hand-made archives: hostile pickles, damaged files, byte order
# --------------------------------------------------------------------------- #


class _RawStorage:
    def __init__(self, key: str, storage_class: str, numel: int, location: str = "cpu"):
        self.key, self.storage_class, self.numel, self.location = key, storage_class, numel, location


class _RawTensor:
    def __init__(self, storage: _RawStorage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


class _RawPickler(pickle.Pickler):
    """Pickles like torch.save does, but with hand-chosen storages and views."""

    def persistent_id(self, obj):
        if isinstance(obj, _RawStorage):
            return ("storage", getattr(torch, obj.storage_class), obj.key, obj.location, obj.numel)
        return None

    def reducer_override(self, obj):
        if isinstance(obj, _RawTensor):
            return (torch._utils._rebuild_tensor_v2,
                    (obj.storage, obj.offset, obj.size, obj.stride, False, collections.OrderedDict()))
        return NotImplemented


def _write_archive(path: Path, obj=None, storages: dict[str, bytes] | None = None, *,
                   pickle_bytes: bytes | None = None, byteorder: str | None = "little",
                   with_pickle: bool = True) -> Path:
    if pickle_bytes is None:
        buffer = io.BytesIO()
        _RawPickler(buffer, protocol=2).dump(obj)
        pickle_bytes = buffer.getvalue()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        if with_pickle:
            zf.writestr("archive/data.pkl", pickle_bytes)
        if byteorder is not None:
            zf.writestr("archive/byteorder", byteorder)
        for key, data in (storages or {}).items():
            zf.writestr(f"archive/data/{key}", data)
        zf.writestr("archive/version", "3\n")
    return path


def test_hand_written_archive_is_read(tmp_path):
    values = np.arange(12, dtype="<f4")
    storage = _RawStorage("0", "FloatStorage", 12, location="cuda:0")  # saved from a GPU
    obj = {"state_dict": {"w": _RawTensor(storage, 2, (2, 3), (1, 4))}}
    ckpt = read_lightning_checkpoint(_write_archive(tmp_path / "a.ckpt", obj, {"0": values.tobytes()}))
    np.testing.assert_array_equal(ckpt.state_dict["w"], np.lib.stride_tricks.as_strided(
        values[2:], (2, 3), (4, 16)))


@pytest.mark.parametrize("dtype,storage_class", [("f4", "FloatStorage"), ("f8", "DoubleStorage"),
                                                 ("i8", "LongStorage"), ("f2", "HalfStorage")])
def test_big_endian_archives_are_byte_swapped(tmp_path, dtype, storage_class):
    values = np.arange(-3, 5).astype(dtype)
    storage = _RawStorage("7", storage_class, values.size)
    obj = {"state_dict": {"x": _RawTensor(storage, 0, (2, 4), (4, 1))}}
    path = _write_archive(tmp_path / "be.ckpt", obj, {"7": values.astype(">" + dtype).tobytes()},
                          byteorder="big")
    got = read_lightning_checkpoint(path).state_dict["x"]
    np.testing.assert_array_equal(got, values.reshape(2, 4))
    assert got.dtype.isnative


class _Evil:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _hostile_objects(sentinel: Path):
    import builtins

    command = f"touch {sentinel}"
    return {
        "os.system": _Evil(os.system, command),
        "builtins.eval": _Evil(builtins.eval, f"open({str(sentinel)!r}, 'w')"),
        "builtins.exec": _Evil(builtins.exec, f"open({str(sentinel)!r}, 'w')"),
        "subprocess.Popen": _Evil(subprocess.Popen, ["touch", str(sentinel)]),
        "builtins.getattr": _Evil(getattr, "text", "upper"),
        "builtins.__import__": _Evil(__import__, "os"),
        "io.open": _Evil(io.open, str(sentinel), "w"),
    }


@pytest.mark.parametrize("name", ["os.system", "builtins.eval", "builtins.exec", "subprocess.Popen",
                                  "builtins.getattr", "builtins.__import__", "io.open"])
@pytest.mark.parametrize("where", ["top", "nested"])
def test_hostile_pickles_are_refused_without_running(tmp_path, name, where):
    sentinel = tmp_path / "pwned"
    evil = _hostile_objects(sentinel)[name]
    # Unrestricted unpickling *would* run it: this proves the payload is live.
    if name in ("os.system", "io.open"):
        pickle.loads(pickle.dumps(evil, protocol=2))
        assert sentinel.exists()
        sentinel.unlink()
    payload = evil if where == "top" else {
        "state_dict": {"w": _RawTensor(_RawStorage("0", "FloatStorage", 1), 0, (1,), (1,))},
        "hyper_parameters": {"network_conf": {"_target_": evil}},
    }
    path = _write_archive(tmp_path / "evil.ckpt", payload, {"0": b"\0\0\0\0"})
    with pytest.raises(CheckpointError, match="refused to load global") as info:
        read_lightning_checkpoint(path)
    message = str(info.value)
    assert str(path) in message
    refused = {"os.system": "posix.system"}.get(name, name)
    assert f"refused to load global '{refused}'" in message
    assert not sentinel.exists()


def test_build_and_newobj_on_stand_ins_are_refused(tmp_path):
    # GLOBAL <allowed function>, then BUILD with slot state that would rewrite
    # its __defaults__: must be refused, not applied.
    # state = (None, {"__defaults__": (None,)})
    build_attack = (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n"
                    b"N}X\x0c\x00\x00\x00__defaults__N\x85s\x86b.")
    with pytest.raises(CheckpointError, match="refused to set state"):
        read_lightning_checkpoint(_write_archive(tmp_path / "b.ckpt", pickle_bytes=build_attack))

    def victim(a=1):
        return a

    class _Unrestricted(pickle.Unpickler):  # what a naive allow-list-only reader does
        def find_class(self, module, name):
            return victim

    _Unrestricted(io.BytesIO(build_attack)).load()
    assert victim.__defaults__ == (None,)  # the payload is live: it rewrites defaults
    # NEWOBJ on an allowed *function* (not an allowed class)
    newobj_attack = b"\x80\x02c_codecs\nencode\n)\x81."
    with pytest.raises(CheckpointError, match="refused to instantiate"):
        read_lightning_checkpoint(_write_archive(tmp_path / "n.ckpt", pickle_bytes=newobj_attack))
    # an allowed callable called with arguments it must not accept
    codec_attack = b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x05\x00\x00\x00rot13\x86R."
    with pytest.raises(CheckpointError, match=r"c\.ckpt: refused _codecs.encode with encoding 'rot13'"):
        read_lightning_checkpoint(_write_archive(tmp_path / "c.ckpt", pickle_bytes=codec_attack))
    # bytearray(n) would allocate n bytes from a 20-byte pickle
    alloc_attack = b"\x80\x02c__builtin__\nbytearray\nJ\x00\x00\x00\x7f\x85R."
    with pytest.raises(CheckpointError, match=r"a\.ckpt: refused bytearray\(\) with arguments"):
        read_lightning_checkpoint(_write_archive(tmp_path / "a.ckpt", pickle_bytes=alloc_attack))


def test_missing_and_non_checkpoint_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        read_lightning_checkpoint(tmp_path / "nope.ckpt")
    with pytest.raises(CheckpointError, match="found a directory"):
        read_lightning_checkpoint(tmp_path)
    text = tmp_path / "notes.ckpt"
    text.write_text("hello, not a checkpoint\n")
    with pytest.raises(CheckpointError, match=r"notes\.ckpt: expected a PyTorch checkpoint \(a zip archive\)"):
        read_lightning_checkpoint(text)
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty file"):
        read_lightning_checkpoint(empty)
    legacy = tmp_path / "legacy.pt"
    torch.save({"w": torch.ones(2)}, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match=r"legacy \(PyTorch < 1.6\)"):
        read_lightning_checkpoint(legacy)


def test_truncated_checkpoint(tmp_path):
    path = tmp_path / "t.ckpt"
    torch.save({"state_dict": {"w": torch.randn(64, 64)}}, path)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10):
        short = tmp_path / f"cut{cut}.ckpt"
        short.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match=rf"cut{cut}\.ckpt.*truncated"):
            read_lightning_checkpoint(short)


def test_archive_structure_errors(tmp_path):
    storage = _RawStorage("0", "FloatStorage", 4)
    obj = {"state_dict": {"w": _RawTensor(storage, 0, (4,), (1,))}}
    four_floats = np.ones(4, "<f4").tobytes()

    no_pickle = _write_archive(tmp_path / "np.ckpt", obj, {"0": four_floats}, with_pickle=False)
    with pytest.raises(CheckpointError, match=r"np\.ckpt: .*no data\.pkl"):
        read_lightning_checkpoint(no_pickle)

    no_storage = _write_archive(tmp_path / "ns.ckpt", obj, {})
    with pytest.raises(CheckpointError, match=r"ns\.ckpt: storage '0' .*'archive/data/0' is missing"):
        read_lightning_checkpoint(no_storage)

    short_storage = _write_archive(tmp_path / "ss.ckpt", obj, {"0": four_floats[:10]})
    with pytest.raises(CheckpointError, match=r"ss\.ckpt: storage '0' .*needs 16 bytes .* holds 10"):
        read_lightning_checkpoint(short_storage)

    beyond = {"state_dict": {"w": _RawTensor(storage, 2, (2, 2), (2, 1))}}  # reaches element 5 of 4
    out_of_bounds = _write_archive(tmp_path / "ob.ckpt", beyond, {"0": four_floats})
    with pytest.raises(CheckpointError, match=r"ob\.ckpt: state_dict entry 'w' .*reaches element 5 .*holds 4"):
        read_lightning_checkpoint(out_of_bounds)

    huge = {"state_dict": {"w": _RawTensor(storage, 0, (1 << 20, 1 << 20), (0, 0))}}
    expanded = _write_archive(tmp_path / "ex.ckpt", huge, {"0": four_floats})
    with pytest.raises(CheckpointError, match="refusing to materialise"):
        read_lightning_checkpoint(expanded)

    bad_order = _write_archive(tmp_path / "bo.ckpt", obj, {"0": four_floats}, byteorder="middle")
    with pytest.raises(CheckpointError, match=r"byteorder 'little' or 'big', found 'middle'"):
        read_lightning_checkpoint(bad_order)

    garbage = _write_archive(tmp_path / "gp.ckpt", pickle_bytes=b"\x80\x02}q\x00(X\x01")
    with pytest.raises(CheckpointError, match=r"gp\.ckpt: data\.pkl is not a valid checkpoint pickle"):
        read_lightning_checkpoint(garbage)


def test_content_errors(tmp_path):
    no_state = tmp_path / "ns.ckpt"
    torch.save({"epoch": 3, "hyper_parameters": {}}, no_state)
    with pytest.raises(CheckpointError, match=r"ns\.ckpt: expected .*'state_dict'.*found keys \['epoch'"):
        read_lightning_checkpoint(no_state)

    not_dict = tmp_path / "nd.ckpt"
    torch.save([torch.ones(2)], not_dict)
    with pytest.raises(CheckpointError, match="expected a checkpoint dict, found list"):
        read_lightning_checkpoint(not_dict)

    non_tensor = tmp_path / "nt.ckpt"
    torch.save({"state_dict": {"w": torch.ones(2), "extra": 3}}, non_tensor)
    with pytest.raises(CheckpointError, match="state_dict entry 'extra' is a int, expected a tensor"):
        read_lightning_checkpoint(non_tensor)

    float8 = tmp_path / "f8.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(3, dtype=torch.float8_e4m3fn)}}, float8)
    with pytest.raises(CheckpointError, match=r"f8\.ckpt: state_dict entry 'w' has unsupported dtype 'float8_e4m3fn'"):
        read_lightning_checkpoint(float8)

    user_class = tmp_path / "uc.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"x": collections.ChainMap({})}}, user_class)
    with pytest.raises(CheckpointError, match="refused to load global 'collections.ChainMap'"):
        read_lightning_checkpoint(user_class)


def test_unused_unsupported_tensors_do_not_matter(tmp_path):
    # Optimizer states are never materialised, so an odd dtype there is fine.
    path = tmp_path / "opt.ckpt"
    torch.save({"state_dict": {"w": torch.ones(2)},
                "optimizer_states": [{"state": {0: {"buf": torch.zeros(2, dtype=torch.float8_e5m2)}}}]}, path)
    ckpt = read_lightning_checkpoint(path)
    np.testing.assert_array_equal(ckpt.state_dict["w"], np.ones(2, np.float32))
