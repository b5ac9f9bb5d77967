"""MindRove schema v1: writer, reader, label interpolation, importer, MindRoveWindows."""

from __future__ import annotations

import json
import logging
import warnings

import h5py
import numpy as np
import pytest

from emgjax.data.emg2pose import SessionFormatError
from emgjax.data.mindrove import (
    SCHEMA_NAME,
    SCHEMA_VERSION,
    MindRoveSession,
    MindRoveSessionWriter,
    import_original_recording,
    interpolate_labels,
    write_mindrove_session,
)
from emgjax.data.windows import MindRoveWindows

RATE = 500.0
FPS = 25.0
T0 = 100.0
LABEL_OFFSET = 0.013  # camera frames are not aligned with EMG samples


def landmark_fn(t):
    """Landmarks linear in time (mm), so linear interpolation is exact."""
    t = np.asarray(t, np.float64)[:, None, None]
    return 10.0 * np.arange(21)[None, :, None] + np.array([1.0, 2.0, 3.0])[None, None, :] + 5.0 * (t - T0)


def angle_fn(t):
    return 0.01 * np.arange(20)[None, :] + 0.2 * (np.asarray(t, np.float64)[:, None] - T0)


def theta_fn(t):
    return 0.001 * np.arange(45)[None, :] - 0.1 * (np.asarray(t, np.float64)[:, None] - T0)


def session_arrays(n=1000, frames=None):
    emg_t = T0 + np.arange(n) / RATE
    emg = (np.arange(n)[:, None] + 1000.0 * np.arange(8)[None, :]).astype(np.float32)
    frames = int(n / RATE * FPS) if frames is None else frames
    lm_t = T0 + LABEL_OFFSET + np.arange(frames) / FPS
    return dict(
        emg=emg,
        emg_timestamps=emg_t,
        landmarks=landmark_fn(lm_t),
        landmark_confidence=np.full(frames, 0.9),
        landmark_timestamps=lm_t,
        joint_angles=angle_fn(lm_t),
        joint_angle_timestamps=lm_t,
        mano_theta=theta_fn(lm_t),
        mano_theta_timestamps=lm_t,
        ik_error_mm=np.full(frames, 5.0),
        imu=np.tile(np.arange(6.0), (n // 10, 1)),
        imu_timestamps=T0 + np.arange(n // 10) / 50.0,
    )


def write(path, **overrides):
    args = session_arrays()
    args.update(overrides)
    args = {k: v for k, v in args.items() if v is not None}
    return write_mindrove_session(path, **args)


# -- writer / reader ---------------------------------------------------------------


def test_round_trip(tmp_path):
    args = session_arrays()
    board = {
        "name": "MINDROVE_WIFI_BOARD",
        "board_id": 0,
        "emg_channel_rows": list(range(8)),
        "gain": 12,
        "sdk_version": "5.3.0",
    }
    path = write_mindrove_session(
        tmp_path / "s.h5",
        board=board,
        subject_id="p01",
        session_id="day1",
        hand="left",
        date="2026-11-02T10:00:00",
        **args,
    )
    assert not (tmp_path / "s.h5.partial").exists()
    with MindRoveSession(path, expected_sample_rate=500.0) as session:
        assert len(session) == 1000 and session.sample_rate == RATE and session.num_channels == 8
        assert session.board == board and session.hand == "left"
        meta = session.metadata
        assert meta["emgjax_schema"] == SCHEMA_NAME and meta["schema_version"] == SCHEMA_VERSION
        assert (meta["subject_id"], meta["session_id"], meta["date"]) == ("p01", "day1", "2026-11-02T10:00:00")
        assert session.streams == ("emg", "imu", "landmarks", "joint_angles", "mano_theta", "ik_error")
        assert session.label_kinds == ("landmarks", "joint_angles", "mano_theta")
        emg = session.read_emg(10, 60)
        assert emg.shape == (8, 50) and emg.dtype == np.float32
        np.testing.assert_array_equal(emg, args["emg"][10:60].T)
        assert session.read_emg().shape == (8, 1000)
        np.testing.assert_array_equal(session.timestamps, args["emg_timestamps"])
        imu_t, imu = session.read_imu()
        assert imu.shape == (6, 100) and imu_t.shape == (100,)
        with pytest.raises(ValueError, match="start <= stop <= 1000"):
            session.read_emg(0, 1001)
    with h5py.File(path) as f:
        # Resizable, chunked streams: a recorder can append to them.
        for name in ("emg/raw", "labels/landmarks", "labels/joint_angles", "imu/data"):
            assert f[name].maxshape[0] is None and f[name].chunks is not None
        assert f["labels/landmarks"].dtype == np.float32 and f["emg/timestamps"].dtype == np.float64
        assert json.loads(f.attrs["board"])["gain"] == 12


def test_minimal_session_defaults(tmp_path):
    n = 100
    path = write_mindrove_session(tmp_path / "m.h5", emg=np.zeros((n, 8)), emg_timestamps=np.arange(n) / RATE)
    with MindRoveSession(path) as session:
        assert session.streams == ("emg",) and session.label_kinds == ()
        assert session.read_imu() is None and session.gestures() == {}
        assert session.board == {"name": "unknown"} and session.metadata["date"]
        with pytest.raises(ValueError, match=r"no 'landmarks' labels in this session; present: \(\)"):
            session.labels_at(session.timestamps)
        with pytest.raises(ValueError, match="kind: expected one of"):
            session.labels_at(session.timestamps, kind="angles")


def test_incremental_writer(tmp_path):
    args = session_arrays(n=600)
    path = tmp_path / "rec.h5"
    with MindRoveSessionWriter(path, sample_rate=RATE, board={"name": "fake"}) as writer:
        for start in range(0, 600, 100):
            writer.append("emg", args["emg"][start : start + 100], args["emg_timestamps"][start : start + 100])
            writer.flush()
        # A reader sees what was flushed while the writer is still open? HDF5 locks; just check after close.
        writer.append("landmarks", args["landmarks"][:10], args["landmark_timestamps"][:10], confidence=np.ones(10))
        writer.append("landmarks", args["landmarks"][10:], args["landmark_timestamps"][10:])
        with pytest.raises(ValueError, match="not after the last stored timestamp"):
            writer.append("emg", args["emg"][:5], args["emg_timestamps"][:5])
        with pytest.raises(ValueError, match=r"emg values: expected shape \(rows, 8\), found \(5, 7\)"):
            writer.append("emg", np.zeros((5, 7)), np.arange(5) + 1000.0)
        with pytest.raises(ValueError, match="stream: expected one of"):
            writer.append("video", np.zeros((1, 8)), np.zeros(1))
        with pytest.raises(ValueError, match=r"unexpected extras \['score'\]"):
            writer.append("joint_angles", np.zeros((1, 20)), np.array([1000.0]), score=np.ones(1))
    with MindRoveSession(path) as session:
        np.testing.assert_array_equal(session.read_emg(), args["emg"].T)
        assert session.streams == ("emg", "landmarks")
        values, valid = session.labels_at(session.timestamps[100:110])
        np.testing.assert_allclose(values, landmark_fn(session.timestamps[100:110]), rtol=1e-5)
        assert valid.all()
    with pytest.raises(FileExistsError, match=r"rec\.h5: already exists"):
        MindRoveSessionWriter(path, overwrite=False)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"emg": np.zeros((1000, 7))}, r"emg values: expected shape \(rows, 8\), found \(1000, 7\)"),
        (
            {"emg_timestamps": T0 + np.arange(1000) / 400.0},
            "emg_timestamps: timestamps imply 400 Hz but sample_rate is 500 Hz",
        ),
        (
            {"emg_timestamps": np.r_[T0 + np.arange(500) / RATE, T0 + np.arange(500) / RATE]},
            r"emg timestamps: expected strictly increasing, found t\[500\]",
        ),
        ({"emg": np.full((1000, 8), np.nan)}, "emg values: expected finite values, found 8000 NaN/inf"),
        ({"landmarks": np.zeros((40, 21, 2))}, r"landmarks values: expected shape \(rows, 21, 3\)"),
        (
            {"landmark_timestamps": None},
            "landmarks and landmark_timestamps go together; landmark_timestamps is missing",
        ),
        ({"landmark_confidence": np.ones(3)}, "landmarks confidence: expected 50 rows, found 3"),
        ({"joint_angles": np.zeros((50, 19))}, r"joint_angles values: expected shape \(rows, 20\)"),
        (
            {"mano_theta": None, "joint_angles": None},
            "ik_error_mm: expected one value per mano_theta or joint_angles frame",
        ),
        ({"hand": "both"}, "hand: expected 'left' or 'right'"),
        ({"board": "wifi"}, "board: expected a mapping"),
        ({"sample_rate": "500"}, "sample_rate: expected a positive finite number, found '500'"),
    ],
)
def test_writer_rejects_bad_input(tmp_path, overrides, message):
    if overrides.get("mano_theta", 1) is None:
        overrides = dict(overrides, mano_theta_timestamps=None, joint_angle_timestamps=None)
    with pytest.raises(ValueError, match=message):
        write(tmp_path / "bad.h5", **overrides)
    assert not (tmp_path / "bad.h5").exists() and not (tmp_path / "bad.h5.partial").exists()


def edit(path, fn):
    with h5py.File(path, "a") as f:
        fn(f)
    return path


def replace(f, name, data):
    del f[name]
    f.create_dataset(name, data=data)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda f: replace(f, "emg/raw", np.zeros((1000, 16), np.float32)),
            r"'emg/raw': expected 8 EMG channels, shape \(rows, 8\), found \(1000, 16\)",
        ),
        (
            lambda f: f.attrs.__setitem__("sample_rate", 250.0),
            "emg/timestamps imply 500 Hz but attr sample_rate is 250 Hz",
        ),
        (
            lambda f: f["emg/timestamps"].__setitem__(7, 0.0),
            r"'emg/timestamps': expected strictly increasing timestamps, found t\[7\]",
        ),
        (
            lambda f: f["labels/joint_angle_timestamps"].__setitem__(3, 1e9),
            r"'labels/joint_angle_timestamps': expected strictly increasing.*t\[4\]",
        ),
        (lambda f: f["emg/timestamps"].__setitem__(3, np.nan), "expected finite timestamps"),
        (lambda f: f.__delitem__("emg/timestamps"), r"missing required datasets \['emg/timestamps'\]"),
        (
            lambda f: f.__delitem__("labels/landmark_confidence"),
            r"stream 'landmarks' is incomplete: missing \['labels/landmark_confidence'\]",
        ),
        (
            lambda f: replace(f, "labels/mano_theta_timestamps", np.arange(3.0)),
            r"'labels/mano_theta_timestamps': expected shape \(50,\)",
        ),
        (
            lambda f: f.attrs.__setitem__("emgjax_schema", "other"),
            "expected attr emgjax_schema='mindrove-session', found 'other'",
        ),
        (lambda f: f.attrs.__setitem__("schema_version", 2), "schema_version 2 is newer than this emgjax supports"),
        (lambda f: f.attrs.__delitem__("sample_rate"), "missing attr 'sample_rate'"),
        (lambda f: f.attrs.__setitem__("board", "{oops"), "attr 'board': expected a JSON object"),
        (lambda f: replace(f, "emg/raw", np.zeros((1000, 8), np.int16)), "'emg/raw': expected floating point"),
    ],
)
def test_reader_rejects_malformed(tmp_path, mutate, message):
    path = edit(write(tmp_path / "s.h5"), mutate)
    with pytest.raises(SessionFormatError, match=message) as info:
        MindRoveSession(path)
    assert info.value.path == path and str(path) in str(info.value)


def _open_and_read_everything(path):
    with MindRoveSession(path) as session:
        session.read_emg()
        session.labels_at(session.timestamps, "mano_theta")


def test_reader_expected_rate_missing_non_hdf5_truncated(tmp_path):
    path = write(tmp_path / "s.h5")
    with pytest.raises(SessionFormatError, match=r"expected sample_rate 250\.0 Hz, found 500\.0 Hz"):
        MindRoveSession(path, expected_sample_rate=250.0)
    with pytest.raises(FileNotFoundError, match=r"x\.h5"):
        MindRoveSession(tmp_path / "x.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all" * 10)
    with pytest.raises(SessionFormatError, match=r"junk\.h5: not a readable HDF5 file"):
        MindRoveSession(junk)
    data = path.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(SessionFormatError, match=r"cut\.h5: (not a readable HDF5 file|cannot read)"):
        _open_and_read_everything(cut)  # opening may succeed; reading the lost tail must not


def test_reader_nan_in_stored_data(tmp_path):
    path = edit(write(tmp_path / "s.h5"), lambda f: f["labels/landmarks"].__setitem__((2, 0, 0), np.nan))
    with (
        MindRoveSession(path) as session,
        pytest.raises(SessionFormatError, match=r"'labels/landmarks' has NaN/inf values"),
    ):
        session.labels_at(session.timestamps)
    path = edit(write(tmp_path / "e.h5"), lambda f: f["emg/raw"].__setitem__((20, 0), np.inf))
    with MindRoveSession(path) as session:
        session.read_emg(0, 20)
        with pytest.raises(SessionFormatError, match=r"emg/raw has NaN/inf values in samples \[0, 50\)"):
            session.read_emg(0, 50)


# -- labels ------------------------------------------------------------------------------


def test_labels_at_interpolates_linearly(tmp_path):
    path = write(tmp_path / "s.h5")
    with MindRoveSession(path) as session:
        times = session.timestamps
        inside = (times >= T0 + LABEL_OFFSET) & (times <= T0 + LABEL_OFFSET + 49 / FPS)
        for kind, fn, shape in [
            ("landmarks", landmark_fn, (21, 3)),
            ("joint_angles", angle_fn, (20,)),
            ("mano_theta", theta_fn, (45,)),
        ]:
            values, valid = session.labels_at(times, kind=kind)
            assert values.shape == (1000, *shape) and values.dtype == np.float32 and valid.dtype == bool
            np.testing.assert_array_equal(valid, inside)
            np.testing.assert_allclose(values[valid], fn(times[valid]), rtol=1e-5, atol=1e-5)
            assert np.all(np.isfinite(values))


def test_interpolate_labels_masks():
    label_t = np.array([0.0, 0.04, 0.08, 0.30, 0.34])
    values = np.arange(5.0)[:, None] * np.array([[1.0, -1.0]])
    ok = np.array([True, True, True, True, False])
    query = np.array([-0.01, 0.0, 0.02, 0.06, 0.08, 0.12, 0.19, 0.25, 0.31, 0.34, 0.40])
    out, valid = interpolate_labels(label_t, values, query, frame_ok=ok, max_gap_s=0.1)
    # before span | on frame 0 | mid 0-1 | mid 1-2 | on frame 2 | 0.04 from frame 2, 0.18 from frame 3 (gap)
    # | 0.11 from frame 2 (gap) | 0.05 from 3 but 0.17 from 2 | next to bad frame 4 | on bad frame | after span
    np.testing.assert_array_equal(valid, [False, True, True, True, True, False, False, False, False, False, False])
    np.testing.assert_allclose(out[:5, 0], [0.0, 0.0, 0.5, 1.5, 2.0])
    np.testing.assert_allclose(out[:, 1], -out[:, 0])
    assert out[0, 0] == 0.0 and out[-1, 0] == 4.0  # outside: clamped, finite
    # A wide gap limit bridges frames 2 and 3.
    _, wide = interpolate_labels(label_t, values, np.array([0.19]), max_gap_s=0.25)
    assert wide.all()
    empty, none_valid = interpolate_labels(np.zeros(0), np.zeros((0, 3)), query)
    assert empty.shape == (11, 3) and not none_valid.any()
    with pytest.raises(ValueError, match="must agree"):
        interpolate_labels(label_t, values[:3], query)
    with pytest.raises(ValueError, match="query_times: expected finite"):
        interpolate_labels(label_t, values, np.array([np.nan]))
    with pytest.raises(ValueError, match=r"frame_ok: expected shape \(5,\)"):
        interpolate_labels(label_t, values, query, frame_ok=ok[:2])


def test_labels_quality_confidence_and_ik_error(tmp_path):
    args = session_arrays()
    confidence = args["landmark_confidence"].copy()
    confidence[10] = 0.5  # the original project dropped confidence <= 0.5
    ik_error = args["ik_error_mm"].copy()
    ik_error[20] = 15.0  # ... and IK error >= 15 mm
    path = write(tmp_path / "q.h5", landmark_confidence=confidence, ik_error_mm=ik_error)
    frame_t = args["landmark_timestamps"]
    with MindRoveSession(path) as session:
        times = session.timestamps

        def near(frame):  # EMG samples whose neighbouring frames include `frame`
            return (times > frame_t[frame - 1]) & (times < frame_t[frame + 1])

        _, lm_valid = session.labels_at(times, "landmarks")
        assert not lm_valid[near(10)].any() and lm_valid[near(20)].all()
        for kind in ("joint_angles", "mano_theta"):
            _, valid = session.labels_at(times, kind)
            # IK fits inherit the landmark confidence and have their own IK error.
            assert not valid[near(10)].any() and not valid[near(20)].any() and valid[near(30)].all()
        _, relaxed = session.labels_at(times, "joint_angles", min_confidence=0.4, max_ik_error_mm=20.0)
        assert relaxed[near(10)].all() and relaxed[near(20)].all()
        stream = session.label_stream("joint_angles")
        assert stream.values.shape == (50, 20) and not stream.frame_ok[10] and not stream.frame_ok[20]
        # A dropped camera stretch: samples more than max_gap_s from a frame are invalid.
        gap_path = write(
            tmp_path / "gap.h5",
            **{
                k: np.delete(v, np.s_[25:30], axis=0)
                for k, v in args.items()
                if k.startswith(("landmark", "joint", "mano", "ik"))
            },
        )
    with MindRoveSession(gap_path) as session:
        times = session.timestamps
        _, valid = session.labels_at(times, "landmarks", max_gap_s=0.1)
        in_gap = (times > frame_t[24]) & (times < frame_t[30])
        assert in_gap.any() and not valid[in_gap].any()
        _, bridged = session.labels_at(times, "landmarks", max_gap_s=0.3)
        assert bridged[in_gap].all()


# -- importer -------------------------------------------------------------------------------


def write_original(path, n=1000, frames=50, nan_frames=(), **attr_overrides):
    emg_t = T0 + np.arange(n) / RATE
    pose_t = T0 + LABEL_OFFSET + np.arange(frames) / FPS
    joints_m = landmark_fn(pose_t) / 1000.0
    for frame in nan_frames:
        joints_m[frame] = np.nan
    with h5py.File(path, "w") as f:
        f["emg/raw"] = np.arange(n * 8, dtype=np.float64).reshape(n, 8)
        f["emg/filtered"] = np.zeros((n, 8))
        f["emg/timestamps"] = emg_t
        f["imu/data"] = np.ones((n // 10, 6))
        f["imu/timestamps"] = T0 + np.arange(n // 10) / 50.0
        f["pose/joints_3d"] = joints_m
        f["pose/mano_theta"] = theta_fn(pose_t)
        f["pose/timestamps"] = pose_t
        f["pose/ik_error"] = np.where(np.arange(frames) == 7, 40.0, 9.7)
        f["pose/mp_confidence"] = np.full(frames, 0.95)
        f["gestures/labels"] = np.array([b"fist", b"pinch"], dtype=h5py.string_dtype())
        f["gestures/start_times"] = np.array([T0 + 0.1, T0 + 1.0])
        f["gestures/end_times"] = np.array([T0 + 0.9, T0 + 1.9])
        attrs = dict(
            subject_id="s07",
            session_id="sess3",
            date="2025-03-01",
            hand="right",
            emg_channels=8,
            emg_sampling_rate=500,
            camera_fps=25.0,
        )
        attrs.update(attr_overrides)
        for key, value in attrs.items():
            if value is not None:
                f.attrs[key] = value
    return path


def test_import_original_recording(tmp_path, caplog):
    src = write_original(tmp_path / "orig.h5", nan_frames=(3,))
    with caplog.at_level(logging.WARNING, logger="emgjax.data.mindrove"):
        dst = import_original_recording(src, tmp_path / "ours.h5")
    assert "dropping 1 of 50 pose frames" in caplog.text
    with MindRoveSession(dst) as session:
        meta = session.metadata
        assert (meta["subject_id"], meta["session_id"], meta["date"], meta["hand"]) == (
            "s07",
            "sess3",
            "2025-03-01",
            "right",
        )
        assert meta["camera_fps"] == 25.0 and meta["imported_from"] == str(src) and session.sample_rate == 500.0
        assert session.streams == ("emg", "imu", "landmarks", "mano_theta", "ik_error")
        np.testing.assert_array_equal(session.read_emg(0, 2), np.arange(16, dtype=np.float32).reshape(2, 8).T)
        stream = session.label_stream("landmarks")
        assert stream.values.shape == (49, 21, 3)  # NaN frame 3 dropped
        np.testing.assert_allclose(stream.values, landmark_fn(stream.timestamps), rtol=1e-5)  # metres -> mm
        theta = session.label_stream("mano_theta")
        assert not theta.frame_ok[6] and theta.frame_ok[5]  # frame 7 (index 6 after the drop) had IK error 40 mm
        gestures = session.gestures()
        assert [g.decode() for g in gestures["labels"]] == ["fist", "pinch"]
        np.testing.assert_allclose(gestures["end_times"], [T0 + 0.9, T0 + 1.9])
        assert "emg/filtered" not in session._file
    with pytest.raises(FileExistsError, match=r"ours\.h5: already exists"):
        import_original_recording(src, dst)
    import_original_recording(src, dst, overwrite=True)


def test_import_original_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"none\.h5"):
        import_original_recording(tmp_path / "none.h5", tmp_path / "o.h5")
    bad = edit(write_original(tmp_path / "a.h5"), lambda f: f.__delitem__("emg/raw"))
    with pytest.raises(SessionFormatError, match=r"a\.h5: missing dataset 'emg/raw'"):
        import_original_recording(bad, tmp_path / "o.h5")
    with pytest.raises(SessionFormatError, match=r"b\.h5: expected 8 EMG channels, found attr emg_channels=16"):
        import_original_recording(write_original(tmp_path / "b.h5", emg_channels=16), tmp_path / "o.h5")
    with pytest.raises(SessionFormatError, match=r"c\.h5: missing attr 'emg_sampling_rate'"):
        import_original_recording(write_original(tmp_path / "c.h5", emg_sampling_rate=None), tmp_path / "o.h5")
    with pytest.raises(
        SessionFormatError,
        match=r"d\.h5: cannot convert: emg_timestamps: timestamps imply 500 Hz but sample_rate is 250 Hz",
    ):
        import_original_recording(write_original(tmp_path / "d.h5", emg_sampling_rate=250), tmp_path / "o.h5")
    notes = tmp_path / "notes.h5"
    notes.write_text("hello")
    with pytest.raises(SessionFormatError, match=r"notes\.h5: not a readable HDF5 file"):
        import_original_recording(notes, tmp_path / "o.h5")
    assert not (tmp_path / "o.h5").exists()
    # Our reader points at the importer when handed an original file.
    with pytest.raises(SessionFormatError, match="use import_original_recording"):
        MindRoveSession(write_original(tmp_path / "e.h5"))


# -- windows ------------------------------------------------------------------------------


def test_mindrove_windows_last(tmp_path):
    path = write(tmp_path / "s.h5")
    ds = MindRoveWindows([path], window_length=50, stride=25, target="landmarks")
    lazy = MindRoveWindows([path], window_length=50, stride=25, target="landmarks", preload=False)
    assert len(lazy) == len(ds)
    for i in (0, 5, len(ds) - 1):
        np.testing.assert_array_equal(lazy[i]["emg"], ds[i]["emg"])
        np.testing.assert_array_equal(lazy[i]["target"], ds[i]["target"])
    with MindRoveSession(path) as session:
        starts = np.arange(0, 1000 - 50 + 1, 25)
        _, valid = session.labels_at(session.timestamps[starts + 49])
        expected_starts = starts[valid]
        times = session.timestamps
    # 39 candidate windows; the last ends after the last label frame.
    assert len(ds) == len(expected_starts) == 38
    for i in (0, 17, len(ds) - 1):
        item = ds[i]
        start = expected_starts[i]
        assert ds.window_bounds(i) == (path, start, start + 50)
        assert item["emg"].shape == (8, 50) and item["emg"].dtype == np.float32
        np.testing.assert_array_equal(item["emg"][0], np.arange(start, start + 50))
        assert item["target"].shape == (21, 3) and bool(item["valid"])
        np.testing.assert_allclose(item["target"], landmark_fn(times[start + 49 : start + 50])[0], rtol=1e-5)
    angles = MindRoveWindows([path], target="joint_angles")
    assert angles[0]["target"].shape == (20,)
    theta = MindRoveWindows([path], target="mano_theta")
    assert theta[0]["target"].shape == (45,)


def test_mindrove_windows_sequence_normalizer_filter(tmp_path):
    path = write(tmp_path / "s.h5")
    ds = MindRoveWindows([path], window_length=50, stride=50, target="joint_angles", mode="sequence")
    assert len(ds) == 20
    first = ds[0]
    assert first["target"].shape == (50, 20) and first["valid"].shape == (50,)
    assert not first["valid"][:6].any() and first["valid"][7:].all()  # first frame at +13 ms = sample 6.5
    calls = []

    def session_filter(emg, rate):
        calls.append(rate)
        return emg - emg.mean(axis=1, keepdims=True)

    filtered = MindRoveWindows(
        [path],
        window_length=50,
        stride=50,
        mode="sequence",
        session_filter=session_filter,
        normalizer=lambda e: e / 2.0,
    )
    assert calls == [500.0]
    np.testing.assert_allclose(filtered[3]["emg"][1], (np.arange(150, 200) - 499.5) / 2.0)
    with pytest.raises(ValueError, match=r"session_filter must return shape \(8, 1000\)"):
        MindRoveWindows([path], session_filter=lambda e, r: e[:, :10])


def test_mindrove_windows_skips_and_errors(tmp_path, caplog):
    good = write(tmp_path / "good.h5")
    short = write_mindrove_session(tmp_path / "short.h5", emg=np.zeros((40, 8)), emg_timestamps=np.arange(40) / RATE)
    no_labels = write_mindrove_session(
        tmp_path / "nolabels.h5", emg=np.zeros((400, 8)), emg_timestamps=np.arange(400) / RATE
    )
    with pytest.warns(UserWarning, match=r"short\.h5: 40 samples, shorter than one window \(50\)"):
        ds = MindRoveWindows([good, short])
    assert ds.sessions == [good]
    with pytest.raises(SessionFormatError, match=r"nolabels\.h5: no 'landmarks' labels to use as targets"):
        MindRoveWindows([good, no_labels])
    with caplog.at_level(logging.WARNING, logger="emgjax.data.windows"):
        ds = MindRoveWindows([good, no_labels], on_error="skip")
    assert "nolabels.h5" in caplog.text and len(ds.skipped) == 1
    # Every target invalid (all frames low-confidence): the session yields nothing.
    args = session_arrays()
    dark = write(tmp_path / "dark.h5", landmark_confidence=np.zeros_like(args["landmark_confidence"]))
    with pytest.warns(UserWarning, match=r"dark\.h5: no window with a valid 'landmarks' target"):
        MindRoveWindows([good, dark])
    for kwargs, message in [
        ({"target": "pose"}, "target: expected one of"),
        ({"mode": "first"}, "mode: expected 'last' or 'sequence'"),
        ({"stride": 0}, "stride: expected a positive integer"),
        ({"normalizer": "z"}, "normalizer: expected a callable"),
    ]:
        with pytest.raises(ValueError, match=message):
            MindRoveWindows([good], **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="no windows"):
            MindRoveWindows([short])
