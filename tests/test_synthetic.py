"""Tests for emgjax.data.synthetic: the realistic synthetic session generator."""

import csv

import numpy as np
import pytest
import scipy.signal

from emgjax.data import synthetic as syn
from emgjax.data.signal import interpolate_to_times
from emgjax.data.synthetic import (
    JOINT_LIMITS,
    JOINT_NAMES,
    SyntheticConfig,
    generate_session,
    learnability_report,
    session_diagnostics,
    session_splits,
    write_synthetic_dataset,
)

SHORT = SyntheticConfig(duration_s=5.0)


@pytest.fixture(scope="module")
def session():
    return generate_session(SHORT, seed=3)


def test_shapes_dtypes_and_clocks(session):
    n, m = 10_000, 2_500
    assert session.emg_2k.shape == (n, 16) and session.emg_2k.dtype == np.float32
    assert session.angles_2k.shape == (n, 20) and session.angles_2k.dtype == np.float32
    assert session.no_ik_failure_2k.shape == (n,) and session.no_ik_failure_2k.dtype == bool
    assert session.emg_500.shape == (m, 8) and session.emg_500.dtype == np.float32
    assert session.angles_500.shape == (m, 20)
    assert session.activations.shape == (n, SHORT.n_muscles)
    f = session.frame_times.shape[0]
    assert 148 <= f <= 150
    assert session.landmarks_frames.shape == (f, 21, 3) and session.angles_frames.shape == (f, 20)
    assert session.confidence.shape == (f,)
    # Unix-time float64 resolves ~0.2 µs at 1.7e9 s, as in emg2pose files.
    np.testing.assert_allclose(np.diff(session.time_2k), 1 / 2000.0, atol=1e-6)
    np.testing.assert_array_equal(session.time_500, session.time_2k[::4])
    np.testing.assert_array_equal(session.angles_500, session.angles_true_2k[::4])
    frame_steps = np.diff(session.frame_times)
    assert np.all(frame_steps > 0)
    assert abs(np.median(frame_steps) - 1 / 30) < 3e-3 and np.std(frame_steps) > 1e-4  # jittered 30 fps
    assert session.time_2k[0] <= session.frame_times[0] and session.frame_times[-1] <= session.time_2k[-1]
    assert JOINT_NAMES == __import__("emgjax.data.emg2pose", fromlist=["JOINT_NAMES"]).JOINT_NAMES


def test_deterministic_per_seed_and_physiology_seed():
    a = generate_session(SyntheticConfig(duration_s=2.0), seed=11)
    b = generate_session(SyntheticConfig(duration_s=2.0), seed=11)
    for name, value in a._asdict().items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, getattr(b, name), err_msg=name)  # bitwise
    assert a.info == b.info
    c = generate_session(SyntheticConfig(duration_s=2.0), seed=12)
    assert not np.array_equal(a.angles_true_2k, c.angles_true_2k)
    # Another physiology: same movement (session seed), different muscles and EMG.
    d = generate_session(SyntheticConfig(duration_s=2.0, model_seed=5), seed=11)
    np.testing.assert_array_equal(a.angles_true_2k, d.angles_true_2k)
    assert not np.allclose(a.activations, d.activations)


def test_joint_limits_respected_and_within_hand_model(session):
    assert np.all(session.angles_true_2k >= JOINT_LIMITS[:, 0].astype(np.float32))
    assert np.all(session.angles_true_2k <= JOINT_LIMITS[:, 1].astype(np.float32))
    # The motion covers a real range (not a static hand): some joint moves > 0.5 rad.
    assert np.max(np.ptp(session.angles_true_2k, axis=0)) > 0.5
    kin = pytest.importorskip("emgjax.kinematics")
    hand_limits = kin.synthetic_hand_model().joint_limits
    if hand_limits is not None:
        hand_limits = np.asarray(hand_limits)
        assert np.all(JOINT_LIMITS[:, 0] >= hand_limits[:, 0]) and np.all(JOINT_LIMITS[:, 1] <= hand_limits[:, 1])


def test_dip_follows_pip(session):
    pip, dip = session.angles_true_2k[:, syn._PIP], session.angles_true_2k[:, syn._DIP]
    ratio = np.sum(dip * pip) / np.sum(pip * pip)  # least-squares slope
    assert 0.55 < ratio < 0.8
    assert np.mean(np.abs(dip - pip * 2 / 3)) < 0.1


def test_no_accidental_ik_failures():
    sess = generate_session(SHORT.replace(ik_failure_fraction=0.0), seed=3)
    assert sess.no_ik_failure_2k.all()
    all_zero = np.all(np.isclose(sess.angles_2k.astype(np.float64), 0.0), axis=1)
    assert not all_zero.any()
    np.testing.assert_array_equal(sess.angles_2k, sess.angles_true_2k)


def test_ik_failure_injection(session):
    mask = ~session.no_ik_failure_2k
    n = mask.shape[0]
    assert mask.sum() == round(0.02 * n)
    np.testing.assert_array_equal(session.angles_2k[mask], 0.0)
    np.testing.assert_array_equal(session.angles_2k[~mask], session.angles_true_2k[~mask])
    # Exactly the failure rows are what emg2pose's rule flags as failures.
    flagged = np.all(np.isclose(session.angles_2k.astype(np.float64), 0.0), axis=1)
    np.testing.assert_array_equal(flagged, mask)
    # Segments of 50-500 ms (the last one may be trimmed to hit the fraction).
    edges = np.flatnonzero(np.diff(np.r_[0, mask.astype(np.int8), 0]))
    lengths = edges[1::2] - edges[::2]
    assert np.all(lengths <= 1000) and np.sum(lengths >= 100) >= len(lengths) - 1
    # Labels of the MindRove view and the camera are untouched by injected failures.
    assert not np.any(np.all(session.angles_500 == 0, axis=1))


def test_emg_spectrum_in_band_and_hum(session):
    emg = session.emg_2k.astype(np.float64)
    freqs, psd = scipy.signal.welch(emg - emg.mean(axis=0), fs=2000.0, nperseg=1024, axis=0)
    psd = psd.mean(axis=1)
    in_band = psd[(freqs >= 20) & (freqs <= 450)].sum() / psd.sum()
    assert in_band > 0.85

    # 60 Hz hum stands out of its neighbourhood; no 50 Hz line.
    def line(f):
        k = np.argmin(np.abs(freqs - f))
        return psd[k] / np.median(psd[k - 8 : k + 9])

    assert line(60.0) > 3.0 and line(50.0) < 2.0
    # The MindRove view has no content above its Nyquist (by construction) and carries the same hum.
    f5, p5 = scipy.signal.welch(session.emg_500 - session.emg_500.mean(axis=0), fs=500.0, nperseg=256, axis=0)
    k = np.argmin(np.abs(f5 - 60.0))
    assert p5.mean(axis=1)[k] > 3.0 * np.median(p5.mean(axis=1)[k - 6 : k + 7])


def test_hum_options():
    quiet = generate_session(SyntheticConfig(duration_s=2.0, hum_hz=None, sensor_noise_uv=0.0), seed=1)
    hum50 = generate_session(SyntheticConfig(duration_s=2.0, hum_hz=50.0, sensor_noise_uv=0.0), seed=1)
    diff = (hum50.emg_2k - quiet.emg_2k).astype(np.float64)  # the hum alone
    freqs, psd = scipy.signal.welch(diff, fs=2000.0, nperseg=2000, axis=0)
    peak = freqs[np.argmax(psd.mean(axis=1))]
    assert peak == pytest.approx(50.0, abs=1.0)


def test_amplitude_scale_and_activation_relation(session):
    rms = np.sqrt(np.mean((session.emg_2k - session.emg_2k.mean(axis=0)) ** 2, axis=0))
    assert np.all(rms > 5.0) and np.all(rms < 500.0)  # µV scale, like sEMG
    act = session.activations
    assert act.min() >= 0.0 and act.max() <= 1.25
    # EMG amplitude follows total activation: windowed RMS correlates with it.
    win = 200
    env = np.sqrt(
        np.mean(session.emg_2k[: len(act) // win * win].reshape(-1, win, 16).astype(np.float64) ** 2, axis=1)
    ).mean(1)
    total = act[: len(act) // win * win].reshape(-1, win, act.shape[1]).mean(axis=(1, 2))
    assert np.corrcoef(env, total)[0, 1] > 0.5


def test_diagnostics_snr_and_information_loss():
    d = session_diagnostics(SyntheticConfig(duration_s=5.0), seed=0)
    assert 8.0 < d["snr_db_2k"] < 35.0 and 5.0 < d["snr_db_500"] < 35.0
    assert d["band_power_fraction_2k"] > 0.9
    assert d["hf_power_fraction_2k"] > 0.1  # real content above 250 Hz that 500 Hz cannot carry
    assert d["mixing_rank_16"] == 12 and d["mixing_rank_8"] == 8  # 8 electrodes cannot separate 12 muscles
    noisier = session_diagnostics(SyntheticConfig(duration_s=5.0, sensor_noise_uv=25.0), seed=0)
    assert noisier["snr_db_2k"] < d["snr_db_2k"] - 5


def test_landmarks_consistent_with_forward_kinematics():
    kin = pytest.importorskip("emgjax.kinematics")
    from emgjax.kinematics.mediapipe import hand_model_to_mediapipe

    sess = generate_session(SyntheticConfig(duration_s=2.0, landmark_noise_mm=0.0), seed=4)
    t = sess.time_2k - sess.time_2k[0]
    expected_angles = interpolate_to_times(sess.angles_true_2k, t, sess.frame_times - sess.time_2k[0])
    np.testing.assert_allclose(sess.angles_frames, expected_angles, atol=1e-5)
    jax = pytest.importorskip("jax")
    fk_fn = jax.jit(lambda a, hand: hand_model_to_mediapipe(kin.forward_kinematics(a, hand)))  # one compile, not per op
    fk = np.asarray(fk_fn(sess.angles_frames, kin.synthetic_hand_model()))
    np.testing.assert_allclose(sess.landmarks_frames, fk, atol=1e-3)
    # MediaPipe order: wrist first; fingertips (4, 8, 12, 16, 20) far from it.
    tips = np.linalg.norm(sess.landmarks_frames[:, [4, 8, 12, 16, 20]] - sess.landmarks_frames[:, :1], axis=-1)
    assert np.all(tips > 30.0)
    # With the default noise, good frames are within a few mm; low-confidence frames are noisier.
    noisy = generate_session(SyntheticConfig(duration_s=2.0), seed=4)
    err = np.linalg.norm(noisy.landmarks_frames - fk, axis=-1).mean(axis=1)
    good = noisy.confidence > 0.8
    assert np.all(err[good] < 4.0)
    assert np.all((noisy.confidence > 0) & (noisy.confidence < 1))
    if (~good).any():
        assert err[~good].mean() > err[good].mean()


def test_pinch_gesture_brings_fingertips_together():
    pytest.importorskip("emgjax.kinematics")
    lm = syn.landmarks_from_angles(np.stack([syn._gesture_pose(*syn.GESTURES[g]) for g in ("pinch", "open")]))
    thumb_index = np.linalg.norm(lm[:, 4] - lm[:, 8], axis=-1)
    assert thumb_index[0] < 10.0 < thumb_index[1]


def test_low_confidence_fraction():
    sess = generate_session(SyntheticConfig(duration_s=10.0, low_confidence_fraction=0.1), seed=2)
    low = sess.confidence <= 0.5
    assert low.sum() == round(0.1 * sess.frame_times.shape[0])


def test_learnable_but_not_trivial():
    cfg = SyntheticConfig(duration_s=15.0)
    report = learnability_report(cfg, train_seeds=(0, 1, 2), test_seeds=(3,))
    assert set(report) == {"16ch_2k", "16ch_2k_lowband", "16ch_2k_bands", "8of16_500", "mindrove_500"}
    best = max(report.values(), key=lambda r: r["r2"])
    baseline = best["mean_baseline_mae_deg"]
    assert best["mae_deg"] < 0.85 * baseline  # clearly better than predicting the mean
    assert 0.1 < best["r2"] < 0.95  # ... but far from perfect
    for view in report.values():
        assert view["r2"] < 0.95


def test_session_splits():
    assert session_splits(1) == ["train"]
    assert session_splits(2) == ["train", "test"]
    assert session_splits(6) == ["train"] * 4 + ["val", "test"]
    s20 = session_splits(20)
    assert s20.count("val") == s20.count("test") == 3 and s20[:14] == ["train"] * 14
    with pytest.raises(ValueError, match="positive integer"):
        session_splits(0)


def test_write_dataset_readable_by_readers(tmp_path):
    e2p = pytest.importorskip("emgjax.data.emg2pose")
    mr = pytest.importorskip("emgjax.data.mindrove")
    cfg = SyntheticConfig(duration_s=1.0, ik_failure_fraction=0.1)
    out = write_synthetic_dataset(tmp_path / "ds", n_sessions=3, duration_s=2.0, seed=1, config=cfg)
    assert [p.name for p in out["emg2pose"]] == ["session000.hdf5", "session001.hdf5", "session002.hdf5"]
    assert len(out["mindrove"]) == 3
    with open(out["metadata"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["split"] for r in rows] == ["train", "val", "test"]
    assert rows[1]["session_seed"] == "10001" and rows[1]["emg2pose_file"] == "emg2pose/session001.hdf5"
    expected = generate_session(cfg.replace(duration_s=2.0), seed=10_001)
    with e2p.Emg2PoseSession(out["emg2pose"][1]) as s:
        data = s.read()
        np.testing.assert_array_equal(data["emg"], expected.emg_2k.T)
        np.testing.assert_array_equal(data["joint_angles"], expected.angles_2k.T)
        np.testing.assert_array_equal(data["no_ik_failure"], expected.no_ik_failure_2k)
        np.testing.assert_array_equal(data["time"], expected.time_2k)
        assert s.sample_rate == 2000.0 and len(s) == 4000
    s = mr.MindRoveSession(out["mindrove"][1], expected_sample_rate=500.0)
    try:
        np.testing.assert_array_equal(s.read_emg(), expected.emg_500.T)
        np.testing.assert_array_equal(s.timestamps, expected.time_500)
        assert {"landmarks", "joint_angles"} <= set(s.label_kinds)
        values, valid = s.labels_at(expected.time_500[100:200], kind="joint_angles")
        assert values.shape == (100, 20) and valid.any()
    finally:
        close = getattr(s, "close", None)
        if close:
            close()


def test_write_only_one_format(tmp_path):
    pytest.importorskip("emgjax.data.emg2pose")
    out = write_synthetic_dataset(tmp_path, n_sessions=1, duration_s=1.0, formats=("emg2pose",))
    assert len(out["emg2pose"]) == 1 and out["mindrove"] == []
    assert not (tmp_path / "mindrove").exists()


def test_cli(tmp_path, capsys):
    pytest.importorskip("emgjax.data.emg2pose")
    pytest.importorskip("emgjax.data.mindrove")
    assert syn.main(["--out", str(tmp_path), "--sessions", "2", "--duration", "1", "--seed", "2"]) == 0
    assert sorted(p.name for p in (tmp_path / "emg2pose").iterdir()) == ["session000.hdf5", "session001.hdf5"]
    assert "wrote 2 emg2pose, 2 mindrove" in capsys.readouterr().out
    assert syn.main(["--out", str(tmp_path), "--duration", "-1"]) == 2
    assert "emgjax synth: error: duration: expected seconds in (0, 600], found -1.0" in capsys.readouterr().err
    args = ["--out", str(tmp_path / "users"), "--sessions", "1", "--duration", "0.5", "--formats", "emg2pose"]
    assert syn.main([*args, "--users", "2", "--high-band-info", "0.5", "--user-variation", "0.5"]) == 0
    assert "wrote 2 emg2pose session(s) from 2 users" in capsys.readouterr().out
    with open(tmp_path / "users" / "metadata.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["user"], r["held_out_user"], r["high_band_info"]) for r in rows] == [
        ("user0", "False", "0.5"),
        ("user1", "True", "0.5"),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--sessions", "1000000000", "--duration", "1"],
            "sessions: expected an integer from 1 to 10,000, found 1000000000",
        ),
        (["--sessions", "0"], "sessions: expected an integer from 1 to 10,000, found 0"),
        (["--sessions", "-2"], "sessions: expected an integer from 1 to 10,000, found -2"),
        (["--users", "0"], "users: expected an integer from 1 to 10,000, found 0"),
        (
            ["--users", "200", "--sessions", "60"],
            "users x sessions: expected at most 10,000 sessions in all, found 200 x 60 = 12,000",
        ),
        (["--high-band-info", "2"], "SyntheticConfig.high_band_info must be a number in [0, 1], found 2.0"),
        (["--duration", "0"], "duration: expected seconds in (0, 600], found 0.0"),
        (["--duration", "1e9"], "duration: expected seconds in (0, 600], found 1000000000.0"),
        (["--duration", "nan"], "duration: expected seconds in (0, 600], found nan"),
        (["--seed", "-1"], "seed: expected an integer from 0 to 2,147,483,647, found -1"),
        (["--seed", "99999999999999"], "seed: expected an integer from 0 to 2,147,483,647, found 99999999999999"),
    ],
)
def test_cli_rejects_bad_sizes_up_front(tmp_path, capsys, args, message):
    out = tmp_path / "ds"
    assert syn.main(["--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert err == f"emgjax synth: error: {message}\n"
    assert not out.exists()  # nothing was created or generated


def test_cli_unwritable_out_is_one_line(tmp_path, capsys):
    assert syn.main(["--out", "/proc/nope", "--sessions", "2", "--duration", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("emgjax synth: error: --out /proc/nope: expected a folder that can be created")
    assert err.count("\n") == 1 and "Traceback" not in err
    (tmp_path / "file").write_text("x")
    assert syn.main(["--out", str(tmp_path / "file" / "sub"), "--sessions", "1", "--duration", "1"]) == 2
    assert "expected a folder that can be created" in capsys.readouterr().err


def test_not_enough_disk_space_is_refused(tmp_path, monkeypatch):
    import collections

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(syn.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 10**6, 10**6))
    with pytest.raises(ValueError, match=r"expected room for about 0\.03 GB of sessions, found 0\.00 GB free"):
        write_synthetic_dataset(tmp_path / "ds", n_sessions=1, duration_s=60.0)
    assert not list((tmp_path / "ds").iterdir())


def test_rerun_replaces_previous_dataset_and_refuses_foreign_folders(tmp_path):
    out = tmp_path / "ds"
    write_synthetic_dataset(out, n_sessions=4, duration_s=1.0, seed=0)
    first = (out / "mindrove" / "session000.hdf5").read_bytes()
    # A smaller rerun with one format: nothing of the first dataset is left that metadata.csv does not list.
    write_synthetic_dataset(out, n_sessions=2, duration_s=1.0, seed=1, formats=("mindrove",))
    with open(out / "metadata.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    listed = {r["mindrove_file"] for r in rows}
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} - {"metadata.csv"}
    assert on_disk == listed == {"mindrove/session000.hdf5", "mindrove/session001.hdf5"}
    assert (out / "mindrove" / "session000.hdf5").read_bytes() != first  # seed 1, not the old file
    # A folder holding anything else is refused, and left as it was.
    (out / "notes.txt").write_text("mine")
    with pytest.raises(
        ValueError, match=r"expected a new or empty folder, or an earlier emgjax synth output.*notes\.txt"
    ):
        write_synthetic_dataset(out, n_sessions=1, duration_s=1.0)
    assert (out / "notes.txt").read_text() == "mine" and (out / "mindrove" / "session001.hdf5").exists()
    (out / "notes.txt").unlink()
    (out / "mindrove" / "model.json").write_text("{}")
    with pytest.raises(ValueError, match=r"mindrove/model\.json"):
        write_synthetic_dataset(out, n_sessions=1, duration_s=1.0)


def test_memory_stays_flat_with_more_sessions(tmp_path):
    """Sessions are generated and written one at a time: peak traced memory does not grow with their number."""
    import tracemalloc

    def peak(n: int) -> int:
        tracemalloc.start()
        try:
            write_synthetic_dataset(tmp_path / f"n{n}", n_sessions=n, duration_s=1.0, formats=("mindrove",))
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    one, many = peak(1), peak(8)
    assert many < 1.5 * one, (one, many)


def test_metadata_is_emg2pose_format_read_by_load_splits(tmp_path):
    from emgjax.data.windows import load_splits
    from emgjax.recipes.common import SessionsConfig, resolve_sessions

    out = tmp_path / "ds"
    written = write_synthetic_dataset(out, n_sessions=6, duration_s=1.0, seed=0)
    with open(out / "metadata.csv", newline="") as fh:
        header = next(csv.reader(fh))
    assert header[:10] == [
        "filename",
        "user",
        "session",
        "stage",
        "side",
        "moving_hand",
        "held_out_user",
        "held_out_stage",
        "split",
        "generalization",
    ]
    splits = load_splits(out / "metadata.csv", data_dir=out)
    expected = {
        name: [p for p, s in zip(written["emg2pose"], written["splits"], strict=True) if s == name]
        for name in ("train", "val", "test")
    }
    assert splits == expected and [len(splits[k]) for k in ("train", "val", "test")] == [4, 1, 1]
    assert all(p.is_file() for paths in splits.values() for p in paths)
    assert load_splits(out / "metadata.csv") == splits  # data_dir defaults to the file's folder
    mindrove = resolve_sessions(SessionsConfig(data_dir=str(out)), "mindrove")
    assert [p.name for p in mindrove["train"]] == [p.name for p in splits["train"]]
    assert all(p.parent.name == "mindrove" for p in mindrove["train"])
    # Only MindRove written: filename names the MindRove file.
    only = write_synthetic_dataset(tmp_path / "mr", n_sessions=3, duration_s=1.0, formats=("mindrove",))
    assert load_splits(tmp_path / "mr" / "metadata.csv")["val"] == [only["mindrove"][1]]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(duration_s=-1.0), "duration_s"),
        (dict(mindrove_rate_hz=600.0), "whole number"),
        (dict(hum_hz=300.0), "hum_hz"),
        (dict(n_muscles=0), "n_muscles"),
        (dict(ik_failure_fraction=0.9), "ik_failure_fraction"),
        (dict(emg_rate_hz=500.0, mindrove_rate_hz=500.0), "emg_rate_hz"),
        (dict(duration_s=0.01), "camera frames"),
    ],
)
def test_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SyntheticConfig(**kwargs)


def test_config_round_trip_and_api_errors(tmp_path):
    cfg = SyntheticConfig(duration_s=3.0, hum_hz=50.0)
    assert SyntheticConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown key"):
        SyntheticConfig.from_dict({"duration": 3.0})
    with pytest.raises(ValueError, match="seed"):
        generate_session(cfg, seed=-1)
    with pytest.raises(ValueError, match="SyntheticConfig"):
        generate_session({"duration_s": 3.0}, seed=0)
    with pytest.raises(ValueError, match="formats"):
        write_synthetic_dataset(tmp_path, n_sessions=1, duration_s=1.0, formats=("csv",))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="expected a folder, found a file"):
        write_synthetic_dataset(tmp_path / "file", n_sessions=1, duration_s=1.0)
    with pytest.raises(ValueError, match=r"\(F, 20\)"):
        syn.landmarks_from_angles(np.zeros((3, 19)))
