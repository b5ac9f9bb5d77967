"""Parity of the JAX port with the PyTorch reference of Meta's emg2pose, and proof that the checks can fail.

For each of the five published experiments (reduced sizes, plus the full
published tracking_vemg2pose once): build the torch reference, randomise it,
make its decoder's output layer AMPLIFY x larger ("trained-ish": the randomised
decoder times Meta's 0.01 output scale barely moves the pose, ~0.006 rad; NeuroPose
has no such scale and is left as is), save
a Lightning checkpoint, convert it with `emgjax convert`, load it with
`load_pretrained`, and compare on 4 s windows past the left context
(T = left_context + 8000 samples), float32, on white N(0, 1) EMG and on
amplitude-modulated EMG (`structured_emg`: per-channel envelopes of 0.2x-4.5x
at 0.5-3 Hz, so the features, hence the poses, move over time).

Checks (`parity_report` / `parity_failures`):
  features    max |jax - torch| / max |torch| < FEATURE_RTOL
  pose_abs    max |jax - torch| < POSE_ATOL rad
  pose_rel    max |jax - torch| / (torch's largest range over time of one angle) < POSE_RTOL
  delta_rel   per-step motion pose[t + DELTA_LAG] - pose[t] (one 50 Hz rollout step):
              max |jax - torch| / max |torch| < DELTA_RTOL
and the torch prediction must move: range over time >= MIN_RANGE rad (a dead or
constant network would otherwise pass the absolute tolerance).

The mutation tests break the port on purpose (LSTM gate order, a conv kernel
flipped in time, a dropped bias, one-sample shifts of the left context, the
wrong align_corners in either resampling) and assert that the checks report it;
`MUTATION_ERRORS` collects the errors each produces (printed with ``-s``).
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from emgjax.bundle import Emg2PoseModel, load_pretrained
from emgjax.convert import emg2pose_map
from emgjax.convert.ckpt_reader import read_lightning_checkpoint
from emgjax.convert.command import main as convert_main
from emgjax.models import pose_modules as pm

torch = pytest.importorskip("torch")
# torch_reference imports torch, so it comes after the skip gate; an ImportError of our own module must fail, not skip.
import torch_reference as tr  # noqa: E402

FEATURE_RTOL = 1e-5
POSE_ATOL = 1e-4  # radians
POSE_RTOL = 1e-4  # of the largest range over time of one predicted angle
DELTA_LAG = 40  # samples: one 50 Hz rollout step at 2 kHz
DELTA_RTOL = 1e-3  # of the largest per-step motion
MIN_RANGE = 0.05  # rad: the reference prediction must move at least this much over the window
AMPLIFY = 10.0  # decoder output layer x AMPLIFY: "trained-ish" weights whose poses move
WINDOW_BEYOND_CONTEXT = 8000  # 4 s at 2 kHz

# Reduced sizes keep CI fast; kernels, strides and the 1790-sample context stay published.
TDS_LSTM = {"tds_channels": 4, "feature_width": 4, "hidden_size": 32, "tds_out_channels": 16}
TDS_MLP = {"tds_channels": 4, "feature_width": 4, "mlp_hidden": 32, "tds_out_channels": 16}
SMALL = {
    "tracking_vemg2pose": TDS_LSTM,
    "regression_vemg2pose": TDS_LSTM,
    "tracking_emg2pose": TDS_MLP,
    "regression_emg2pose": TDS_MLP,
    "regression_neuropose": {"neuropose_channels": (8, 16, 16), "num_residual_blocks": 2},
}
assert set(SMALL) == set(tr.EXPERIMENTS)

MUTATION_ERRORS: dict[tuple[str, str], dict[str, float]] = {}


def calibrate_batchnorm_(model, emg: np.ndarray) -> None:
    """Set BatchNorm running statistics to those of `emg`'s activations (then eval mode).

    With randomised weights and arbitrary running statistics, NeuroPose's
    activations collapse to a constant after a few layers and a parity test
    would compare constants. Calibrated statistics keep the signal alive; they
    are still far from the 0/1 defaults, and the affine parameters stay random.
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.momentum = 1.0
    model.train()
    with torch.no_grad():
        model.network(torch.from_numpy(emg))
    for norm in norms:
        norm.momentum = 0.1
    model.eval()


def amplify_output_layer_(model, factor: float) -> None:
    """Multiply the last Linear of the decoder (or of NeuroPose) by `factor`: poses move `factor` x more."""
    if getattr(model, "decoder", None) is not None:
        linear = model.decoder.mlp_out[1] if hasattr(model.decoder, "mlp_out") else model.decoder.mlp[-1]
    else:
        linear = model.network.linear
    with torch.no_grad():
        linear.weight.mul_(factor)
        linear.bias.mul_(factor)


def make_batch(left_context: int, batch: int = 2, seed: int = 0, beyond: int = WINDOW_BEYOND_CONTEXT):
    rng = np.random.default_rng(seed)
    time = left_context + beyond
    emg = rng.standard_normal((batch, 16, time)).astype(np.float32)
    joint_angles = (0.5 * rng.standard_normal((batch, 20, time))).astype(np.float32)
    no_ik_failure = rng.random((batch, time)) > 0.2
    return emg, joint_angles, no_ik_failure


def structured_emg(left_context: int, batch: int = 2, seed: int = 0, beyond: int = WINDOW_BEYOND_CONTEXT):
    """(batch, 16, T) white noise times exp(1.5 sin(2 pi f t + phase)), f in [0.5, 3] Hz per channel."""
    rng = np.random.default_rng(seed + 1000)
    time = left_context + beyond
    t = np.arange(time) / 2000.0
    freq = rng.uniform(0.5, 3.0, (batch, 16, 1))
    phase = rng.uniform(0, 2 * np.pi, (batch, 16, 1))
    envelope = np.exp(1.5 * np.sin(2 * np.pi * freq * t + phase))
    return (envelope * rng.standard_normal((batch, 16, time))).astype(np.float32)


def build_and_convert(experiment: str, tmp_path, overrides: dict, seed: int = 1):
    model = tr.build_torch_model(experiment, **overrides)
    tr.randomize_(model, seed)
    if experiment == "regression_neuropose":
        # NeuroPose has no 0.01 output scale: its randomised poses already span ~7 rad.
        calibrate_batchnorm_(model, make_batch(0, seed=99, beyond=3200)[0])
    else:
        amplify_output_layer_(model, AMPLIFY)
    model.eval()
    ckpt = tmp_path / f"{experiment}.ckpt"
    tr.save_lightning_checkpoint(model, ckpt, experiment, **overrides)
    out = tmp_path / f"{experiment}_jax"
    assert convert_main([str(ckpt), str(out)]) == 0
    return model, load_pretrained(out), ckpt


def torch_features(model, emg: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.network(torch.from_numpy(emg)).numpy()


def relative_error(found, expected) -> float:
    return float(np.max(np.abs(np.asarray(found) - expected)) / np.max(np.abs(expected)))


def parity_report(t_pred: np.ndarray, j_pred: np.ndarray) -> dict[str, float]:
    """Errors and signal sizes of JAX predictions vs torch's, both (B, 20, T')."""
    t_pred, j_pred = np.asarray(t_pred, np.float64), np.asarray(j_pred, np.float64)
    if t_pred.shape != j_pred.shape:
        return {
            "shape_mismatch": 1.0,
            "pose_abs": np.inf,
            "pose_rel": np.inf,
            "delta_rel": np.inf,
            "range": float(np.ptp(t_pred, axis=-1).max()),
            "delta": np.nan,
        }
    error = float(np.max(np.abs(j_pred - t_pred)))
    signal_range = float(np.ptp(t_pred, axis=-1).max())
    t_delta = t_pred[..., DELTA_LAG:] - t_pred[..., :-DELTA_LAG]
    j_delta = j_pred[..., DELTA_LAG:] - j_pred[..., :-DELTA_LAG]
    delta = float(np.max(np.abs(t_delta)))
    return {
        "pose_abs": error,
        "pose_rel": error / signal_range,
        "delta_rel": float(np.max(np.abs(j_delta - t_delta))) / delta,
        "range": signal_range,
        "delta": delta,
    }


def parity_failures(report: dict[str, float]) -> list[str]:
    """The checks `report` fails (empty: parity holds)."""
    failures = []
    if "shape_mismatch" in report:
        failures.append("shape")
    if not report["pose_abs"] < POSE_ATOL:
        failures.append(f"pose_abs {report['pose_abs']:.3g} rad >= {POSE_ATOL}")
    if not report["pose_rel"] < POSE_RTOL:
        failures.append(f"pose_rel {report['pose_rel']:.3g} >= {POSE_RTOL}")
    if not report["delta_rel"] < DELTA_RTOL:
        failures.append(f"delta_rel {report['delta_rel']:.3g} >= {DELTA_RTOL}")
    return failures


def assert_pose_parity(model, jax_model, emg, joint_angles, no_ik_failure, provide_initial_pos) -> dict:
    t_pred, t_target, t_mask = tr.torch_forward(model, emg, joint_angles, no_ik_failure, provide_initial_pos)
    j_pred, j_target, j_mask = (np.asarray(a) for a in jax_model(emg, joint_angles, no_ik_failure, provide_initial_pos))
    assert j_pred.shape == t_pred.shape and j_target.shape == t_target.shape and j_mask.shape == t_mask.shape
    np.testing.assert_array_equal(j_target, t_target)
    np.testing.assert_array_equal(j_mask, t_mask)
    report = parity_report(t_pred, j_pred)
    # The prediction must move (a dead network would pass any tolerance): its range over time, not its
    # spread across the batch, which the initial pose alone provides.
    assert report["range"] >= MIN_RANGE, report
    assert not parity_failures(report), (parity_failures(report), report)
    return report


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """experiment -> (torch model, Emg2PoseModel, checkpoint path), built once per module."""
    cache = {}

    def get(experiment):
        if experiment not in cache:
            cache[experiment] = build_and_convert(experiment, tmp_path_factory.mktemp(experiment), SMALL[experiment])
        return cache[experiment]

    return get


@pytest.mark.parametrize("experiment", tr.EXPERIMENTS)
def test_parity_reduced_size(experiment, converted):
    model, jax_model, _ = converted(experiment)
    hyper_parameters = tr.hyper_parameters_for(experiment)
    assert emg2pose_map.experiment_name_from_hyper_parameters(hyper_parameters) == experiment
    if experiment != "regression_emg2pose":  # see test_convert_labels_regression_emg2pose
        assert jax_model.experiment == experiment
    assert jax_model.provide_initial_pos is hyper_parameters["provide_initial_pos"]
    assert jax_model.config.left_context == model.left_context
    emg, joint_angles, no_ik_failure = make_batch(model.left_context)

    # NeuroPose has no input normalisation (its BatchNorms are calibrated on N(0, 1)): white noise already
    # moves its poses by ~4 rad, and 4.5x envelopes would only inflate them.
    drives = (emg,) if experiment == "regression_neuropose" else (emg, structured_emg(model.left_context))
    for drive in drives:
        t_features = torch_features(model, drive)
        j_features = np.asarray(jax_model.features(drive))
        assert j_features.shape == t_features.shape
        assert np.std(t_features) > 1e-2
        assert relative_error(j_features, t_features) < FEATURE_RTOL
        for provide_initial_pos in (True, False):
            report = assert_pose_parity(model, jax_model, drive, joint_angles, no_ik_failure, provide_initial_pos)
            print(
                f"\n{experiment} provide_initial_pos={provide_initial_pos}: "
                + ", ".join(f"{k} {v:.3g}" for k, v in report.items())
            )


def test_parity_neuropose_published_window_resamples_predictions(converted):
    """4000 samples: NeuroPose outputs 3840 steps (floor through the pools), aligned to 4000."""
    model, jax_model, _ = converted("regression_neuropose")
    emg, joint_angles, no_ik_failure = make_batch(0, beyond=4000, seed=3)
    assert torch_features(model, emg).shape[-1] == 3840
    assert_pose_parity(model, jax_model, emg, joint_angles, no_ik_failure, False)


def test_parity_full_size_tracking_vemg2pose(tmp_path):
    model, jax_model, _ = build_and_convert("tracking_vemg2pose", tmp_path, {}, seed=7)
    assert model.left_context == jax_model.config.left_context == 1790
    assert jax_model.metadata["num_params"] == 5_970_068
    emg, joint_angles, no_ik_failure = make_batch(model.left_context, batch=1, seed=5)
    t_features = torch_features(model, emg)
    assert t_features.shape == (1, 64, jax_model.config.network.output_length(emg.shape[-1]))
    assert relative_error(jax_model.features(emg), t_features) < FEATURE_RTOL
    for provide_initial_pos in (True, False):
        report = assert_pose_parity(model, jax_model, emg, joint_angles, no_ik_failure, provide_initial_pos)
        print(
            f"\nfull-size tracking_vemg2pose provide_initial_pos={provide_initial_pos}: "
            + ", ".join(f"{k} {v:.3g}" for k, v in report.items())
        )


def test_regression_emg2pose_checkpoint_predicts_from_zero(converted):
    """Same network as tracking_emg2pose: the checkpoint's provide_initial_pos=False names it and is its default."""
    hp = tr.hyper_parameters_for("regression_emg2pose")
    assert emg2pose_map.experiment_name_from_hyper_parameters(hp) == "regression_emg2pose"
    assert (
        emg2pose_map.experiment_name_from_hyper_parameters({**hp, "provide_initial_pos": True}) == "tracking_emg2pose"
    )
    model, jax_model, _ = converted("regression_emg2pose")
    assert jax_model.provide_initial_pos is False
    emg, joint_angles, no_ik_failure = make_batch(model.left_context, seed=4)
    default = np.asarray(jax_model(emg, joint_angles, no_ik_failure)[0])
    t_pred, _, _ = tr.torch_forward(model, emg, joint_angles, no_ik_failure, False)
    assert not parity_failures(parity_report(t_pred, default))
    t_tracking, _, _ = tr.torch_forward(model, emg, joint_angles, no_ik_failure, True)
    assert parity_failures(parity_report(t_tracking, default))  # the flag matters for this network


def test_convert_labels_regression_emg2pose(converted):
    _, jax_model, _ = converted("regression_emg2pose")
    assert jax_model.experiment == "regression_emg2pose"


# ----------------------------------------------------------------------------- mutations


def _replace(tree: dict, path: tuple[str, ...], fn) -> dict:
    """Copy of the nested dict `tree` with the leaf at `path` replaced by fn(leaf)."""
    if not path:
        return fn(tree)
    return {**tree, path[0]: _replace(tree[path[0]], path[1:], fn)}


def _swap_gate_blocks(weight: np.ndarray, a: int, b: int) -> np.ndarray:
    """Swap gate blocks a and b (order i, f, g, o) along axis 0 of an LSTM tensor."""
    gates = np.split(np.array(weight), 4, axis=0)
    gates[a], gates[b] = gates[b], gates[a]
    return np.concatenate(gates, axis=0)


def _lstm_gates_swapped(jax_model, ckpt):
    """Converter mixing up PyTorch's gate order (input <-> forget), in the converted variables."""
    state_dict = dict(read_lightning_checkpoint(ckpt).state_dict)
    for key in [k for k in state_dict if k.startswith("model.decoder.lstm.")]:
        state_dict[key] = _swap_gate_blocks(state_dict[key], 0, 1)
    return emg2pose_map.convert_state_dict(state_dict, jax_model.config)


def _first_conv_path(config) -> tuple[str, ...]:
    if isinstance(config.network, pm.TdsNetworkConfig):
        return ("params", "network", "layers_0", "conv", "kernel")
    return ("params", "network", "network_0", "network_0", "kernel")  # NeuroPose: the first Conv2d


def _output_bias_path(config) -> tuple[str, ...]:
    if isinstance(config.network, pm.TdsNetworkConfig):
        return (
            "params",
            "network",
            f"layers_{len(config.network.conv_blocks) + len(config.network.tds_stages) - 1}",
            "linear_layer",
            "bias",
        )
    return ("params", "network", "linear", "bias")


def _model_with(jax_model, variables) -> Emg2PoseModel:
    return Emg2PoseModel(jax_model.config, variables, jax_model.experiment, jax_model.provide_initial_pos)


def _forward_with(jax_model, emg, joint_angles, no_ik_failure, provide_initial_pos, *, initial_offset: int = 0):
    """The port's forward, unjitted (so patched module functions take effect), initial pose at left_context + offset."""
    config = jax_model.config
    index = config.left_context + initial_offset
    initial = joint_angles[:, :, index] if provide_initial_pos else np.zeros_like(joint_angles[:, :, 0])
    raw = pm.predict_pose(config, jax_model.params, emg, initial)
    return pm.align_predictions(raw, joint_angles.shape[-1] - config.left_context - config.right_context)


@contextlib.contextmanager
def _wrong_align_corners(which: int):
    """Resampling along axis `which` with the opposite align_corners (1: rollout features, -1: output alignment)."""
    original = pm.resample_linear

    def patched(x, out_len, axis, align_corners):
        return original(x, out_len, axis, (not align_corners) if axis == which else align_corners)

    pm.resample_linear = patched
    try:
        yield
    finally:
        pm.resample_linear = original


# name -> (applies to, how to get the mutated JAX prediction)
MUTATIONS = {
    "lstm_gates_input_forget": lambda m, jm, ck, b: _model_with(jm, _lstm_gates_swapped(jm, ck))(*b)[0],
    "conv_kernel_flipped_in_time": lambda m, jm, ck, b: _model_with(
        jm, _replace(jm.params, _first_conv_path(jm.config), lambda k: np.asarray(k)[::-1])
    )(*b)[0],
    "output_bias_dropped": lambda m, jm, ck, b: _model_with(
        jm, _replace(jm.params, _output_bias_path(jm.config), np.zeros_like)
    )(*b)[0],
    "initial_pose_one_sample_late": lambda m, jm, ck, b: _forward_with(jm, *b, initial_offset=1),
    "emg_one_sample_late": lambda m, jm, ck, b: jm(np.roll(b[0], 1, axis=-1), *b[1:])[0],
    "rollout_resampling_align_corners_false": None,  # patched module function, see test
    "output_alignment_align_corners_true": None,
}
APPLIES = {
    "lstm_gates_input_forget": ("tracking_vemg2pose", "regression_vemg2pose"),
    "conv_kernel_flipped_in_time": tuple(tr.EXPERIMENTS),
    "output_bias_dropped": tuple(tr.EXPERIMENTS),
    "initial_pose_one_sample_late": ("tracking_vemg2pose", "tracking_emg2pose"),
    "emg_one_sample_late": tuple(tr.EXPERIMENTS),
    "rollout_resampling_align_corners_false": (
        "tracking_vemg2pose",
        "regression_vemg2pose",
        "tracking_emg2pose",
        "regression_emg2pose",
    ),
    "output_alignment_align_corners_true": tuple(tr.EXPERIMENTS),
}
CASES = [(e, name) for name, experiments in APPLIES.items() for e in experiments]
# A constant offset leaves per-step motion unchanged: NeuroPose's output bias is one (the decoders' biases
# are not: the pose feeds back into the rollout). The relative pose check catches it.
DELTA_BLIND = {("regression_neuropose", "output_bias_dropped")}


@pytest.mark.parametrize(("experiment", "mutation"), CASES, ids=[f"{e}-{n}" for e, n in CASES])
def test_mutation_is_reported(converted, experiment, mutation):
    """Each deliberate bug makes both the relative pose check and the per-step motion check fail.

    The absolute check alone (pose_abs < 1e-4 rad) is not what is relied on: pose_rel and
    delta_rel are asserted individually (delta_rel except for constant offsets, DELTA_BLIND),
    so a mutation that moved the poses by less than the absolute tolerance would still
    have to be caught by them.
    """
    model, jax_model, ckpt = converted(experiment)
    provide_initial_pos = bool(jax_model.provide_initial_pos)
    if experiment == "regression_neuropose":
        emg, joint_angles, no_ik_failure = make_batch(0, beyond=4000, seed=3)
    else:
        _, joint_angles, no_ik_failure = make_batch(model.left_context)
        emg = structured_emg(model.left_context)
    batch = (emg, joint_angles, no_ik_failure, provide_initial_pos)
    t_pred, _, _ = tr.torch_forward(model, *batch)
    clean = parity_report(t_pred, np.asarray(jax_model(*batch)[0]))
    assert not parity_failures(clean), clean  # the unmutated port passes on this very batch
    if mutation == "rollout_resampling_align_corners_false":
        with _wrong_align_corners(1):
            mutated = _forward_with(jax_model, *batch)
    elif mutation == "output_alignment_align_corners_true":
        with _wrong_align_corners(-1):
            mutated = _forward_with(jax_model, *batch)
    else:
        mutated = MUTATIONS[mutation](model, jax_model, ckpt, batch)
    report = parity_report(t_pred, np.asarray(mutated))
    MUTATION_ERRORS[(experiment, mutation)] = report
    print(f"\n{experiment} / {mutation}: " + ", ".join(f"{k} {v:.3g}" for k, v in report.items()))
    failures = parity_failures(report)
    assert any(f.startswith("pose_rel") for f in failures), report
    if (experiment, mutation) in DELTA_BLIND:
        assert report["delta_rel"] < DELTA_RTOL, report  # documents why it is exempt
    else:
        assert any(f.startswith("delta_rel") for f in failures), report


def test_wrong_tds_conv_layout_fails_feature_parity(converted):
    """Forgetting to flip the conv kernel's time axis (a plausible mapping bug) breaks feature parity."""
    model, jax_model, _ = converted("tracking_vemg2pose")
    wrong = _model_with(
        jax_model, _replace(jax_model.params, _first_conv_path(jax_model.config), lambda k: np.asarray(k)[::-1])
    )
    emg, _, _ = make_batch(model.left_context)
    assert relative_error(wrong.features(emg), torch_features(model, emg)) > 1e-2
