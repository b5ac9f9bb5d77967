"""emg2pose sessions, Emg2PoseWindows, augmentations and session splits."""

from __future__ import annotations

import functools
import json
import logging
import operator
import re
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emgjax.data.emg2pose import (
    Emg2PoseSession,
    SessionFormatError,
    contiguous_runs,
    ik_failure_free,
    timeseries_dtype,
    write_emg2pose_session,
)
from emgjax.data.windows import (
    ChannelDownsampling,
    Emg2PoseWindows,
    RandomChannelRotation,
    check_disjoint_splits,
    downsample_channels,
    load_splits,
    rotate_channels,
    split_sessions,
)

RATE = 2000.0


def make_arrays(n: int, ik_failures=(), t0: float = 1.7e9):
    """EMG channel c at sample i is 1000*c + i, so windows show where they came from."""
    emg = (np.arange(n)[:, None] + 1000.0 * np.arange(16)[None, :]).astype(np.float32)
    angles = 0.1 + 0.01 * np.arange(n)[:, None] + 0.001 * np.arange(20)[None, :]
    for start, stop in ik_failures:
        angles[start:stop] = 0.0
    time = t0 + np.arange(n) / RATE
    return emg, angles, time


def write_session(path, n: int, ik_failures=(), **kwargs):
    emg, angles, time = make_arrays(n, ik_failures)
    return write_emg2pose_session(path, emg=emg, joint_angles=angles, time=time, **kwargs)


def write_raw(path, records, attrs=None, group="emg2pose", name="timeseries"):
    """A file with arbitrary (possibly malformed) contents."""
    with h5py.File(path, "w") as f:
        g = f.create_group(group)
        g.create_dataset(name, data=records)
        base = {"sample_rate": RATE, "num_channels": 16}
        base.update(attrs or {})
        for key, value in base.items():
            if value is not None:
                g.attrs[key] = value
    return path


def good_records(n=50):
    emg, angles, time = make_arrays(n)
    records = np.empty(n, timeseries_dtype())
    records["emg"], records["joint_angles"], records["time"] = emg, angles, time
    return records


# -- sessions ----------------------------------------------------------------


def test_round_trip(tmp_path):
    emg, angles, time = make_arrays(300, ik_failures=[(10, 20)])
    path = write_emg2pose_session(
        tmp_path / "s.hdf5",
        emg=emg,
        joint_angles=angles,
        time=time,
        user="u7",
        session="s3",
        stage="pinch",
        side="left",
    )
    with Emg2PoseSession(path) as session:
        assert len(session) == 300
        assert session.sample_rate == RATE and session.num_channels == 16
        meta = session.metadata
        assert (meta["user"], meta["session"], meta["stage"], meta["side"]) == ("u7", "s3", "pinch", "left")
        assert meta["filename"] == "s" and meta["start"] == time[0] and meta["end"] == time[-1]
        data = session.read(5, 25)
        assert data["emg"].shape == (16, 20) and data["emg"].dtype == np.float32
        np.testing.assert_array_equal(data["emg"], emg[5:25].T)
        assert data["joint_angles"].shape == (20, 20) and data["joint_angles"].dtype == np.float32
        np.testing.assert_allclose(data["joint_angles"], angles[5:25].T.astype(np.float32))
        np.testing.assert_array_equal(data["time"], time[5:25])
        np.testing.assert_array_equal(data["no_ik_failure"], ~((np.arange(5, 25) >= 10) & (np.arange(5, 25) < 20)))
        assert session.read(7, 7)["emg"].shape == (16, 0)
        with pytest.raises(ValueError, match="start <= stop <= 300"):
            session.read(10, 301)
    with pytest.raises(ValueError, match=r"s\.hdf5: session is closed"):
        session.read(0, 1)


def test_ik_mask_and_valid_runs(tmp_path):
    failures = [(0, 3), (40, 45), (98, 100)]
    emg, angles, time = make_arrays(100, failures)
    angles[60] = 0.0
    angles[60, 0] = 1e-12  # np.isclose to zero everywhere: still an IK failure
    angles[70, :19] = 0.0  # one non-zero angle: a valid sample
    path = write_emg2pose_session(tmp_path / "s.hdf5", emg=emg, joint_angles=angles, time=time)
    with Emg2PoseSession(path) as session:
        mask = session.no_ik_failure
        assert mask.dtype == bool and mask.shape == (100,)
        assert not mask[60] and mask[70]
        np.testing.assert_array_equal(session.valid_runs(), [[3, 40], [45, 60], [61, 98]])
        np.testing.assert_array_equal(session.read(0, 100)["no_ik_failure"], mask)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.sampled_from([0.0, -0.0, 1e-9, -1e-8, 1.0000001e-8, 2e-8, -0.5, 1e-300, np.nan, np.inf]),
        min_size=20,
        max_size=20,
    )
)
def test_ik_mask_equals_isclose(values):
    angles = np.array(values).reshape(1, 20)
    assert ik_failure_free(angles)[0] == (not np.all(np.isclose(angles, 0.0)))


def test_contiguous_runs_edges():
    np.testing.assert_array_equal(contiguous_runs(np.array([], bool)).shape, (0, 2))
    np.testing.assert_array_equal(contiguous_runs(np.ones(4, bool)), [[0, 4]])
    np.testing.assert_array_equal(contiguous_runs(np.array([1, 0, 1, 1, 0], bool)), [[0, 1], [2, 4]])
    with pytest.raises(ValueError, match="1-D mask"):
        contiguous_runs(np.ones((2, 2), bool))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.update(emg=a["emg"][:, :8]), r"emg: expected shape \(N, 16\), found \(10, 8\)"),
        (lambda a: a.update(joint_angles=a["joint_angles"][:-1]), "same number of samples"),
        (lambda a: a["emg"].__setitem__((3, 2), np.nan), "emg: expected finite values, found 1"),
        (lambda a: a["joint_angles"].__setitem__((0, 0), np.inf), "joint_angles: expected finite"),
        (lambda a: a["time"].__setitem__(5, a["time"][4]), r"strictly increasing.*t\[5\]"),
        (lambda a: a.update(time=a["time"] * 3 - 2 * a["time"][0]), r"imply 66\d\.\d+ Hz but sample_rate is 2000 Hz"),
        (lambda a: a.update(side="up"), "side: expected 'left' or 'right'"),
        (lambda a: a.update(sample_rate=-1.0), "sample_rate: expected a positive"),
        (lambda a: a.update(emg=a["emg"].astype(bool)), "expected real numbers"),
    ],
)
def test_writer_rejects_bad_input(tmp_path, change, message):
    emg, angles, time = make_arrays(10)
    args = {"emg": emg.copy(), "joint_angles": angles.copy(), "time": time.copy()}
    change(args)
    with pytest.raises(ValueError, match=message):
        write_emg2pose_session(tmp_path / "bad.hdf5", **args)


def test_reader_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.hdf5"):
        Emg2PoseSession(tmp_path / "nope.hdf5")


def test_reader_non_hdf5(tmp_path):
    path = tmp_path / "text.hdf5"
    path.write_text("user,session\n" * 100)
    with pytest.raises(SessionFormatError, match=r"text\.hdf5: not a readable HDF5 file") as info:
        Emg2PoseSession(path)
    assert info.value.path == path and isinstance(info.value, ValueError)


def test_reader_truncated(tmp_path):
    path = write_session(tmp_path / "cut.hdf5", 4000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SessionFormatError, match=r"cut\.hdf5: (not a readable HDF5 file|cannot read)"):
        Emg2PoseSession(path)


def test_reader_missing_group_and_dataset(tmp_path):
    path = write_raw(tmp_path / "g.hdf5", good_records(), group="other")
    with pytest.raises(SessionFormatError, match=r"expected a group 'emg2pose', found top-level keys \['other'\]"):
        Emg2PoseSession(path)
    path = write_raw(tmp_path / "d.hdf5", good_records(), name="series")
    with pytest.raises(SessionFormatError, match=r"d\.hdf5: expected a dataset 'emg2pose/timeseries'.*series"):
        Emg2PoseSession(path)


def test_reader_missing_field(tmp_path):
    records = good_records()
    dtype = np.dtype([("time", "<f8"), ("emg", "<f4", (16,))])
    stripped = np.empty(len(records), dtype)
    stripped["time"], stripped["emg"] = records["time"], records["emg"]
    with pytest.raises(SessionFormatError, match=r"lacks fields \['joint_angles'\]"):
        Emg2PoseSession(write_raw(tmp_path / "f.hdf5", stripped))
    with pytest.raises(SessionFormatError, match="expected a compound"):
        Emg2PoseSession(write_raw(tmp_path / "plain.hdf5", np.zeros(10)))


def test_reader_wrong_field_shapes(tmp_path):
    n = 20
    dtype = np.dtype([("time", "<f8"), ("joint_angles", "<f8", (22,)), ("emg", "<f4", (16,))])
    records = np.zeros(n, dtype)
    records["time"] = np.arange(n) / RATE
    with pytest.raises(SessionFormatError, match=r"'joint_angles': expected shape \(20,\), found \(22,\)"):
        Emg2PoseSession(write_raw(tmp_path / "a.hdf5", records))
    dtype = np.dtype([("time", "<f8"), ("joint_angles", "<f8", (20,)), ("emg", "<f4", (8,))])
    records = np.zeros(n, dtype)
    records["time"] = np.arange(n) / RATE
    with pytest.raises(SessionFormatError, match="expected 16 channels, found 8"):
        Emg2PoseSession(write_raw(tmp_path / "b.hdf5", records, attrs={"num_channels": 8}))
    with pytest.raises(SessionFormatError, match="num_channels=16 does not match the emg field width 8"):
        Emg2PoseSession(write_raw(tmp_path / "c.hdf5", records), expected_num_channels=None)


def test_reader_sample_rate(tmp_path):
    path = write_raw(tmp_path / "r.hdf5", good_records(), attrs={"sample_rate": 1000.0})
    with pytest.raises(SessionFormatError, match=r"expected sample_rate 2000\.0 Hz, found 1000\.0 Hz"):
        Emg2PoseSession(path)
    # Accepting any attr still catches a clock that contradicts it.
    with pytest.raises(SessionFormatError, match="timestamps imply 2000 Hz but sample_rate is 1000 Hz"):
        Emg2PoseSession(path, expected_sample_rate=None)
    with pytest.raises(SessionFormatError, match="missing group attr 'sample_rate'"):
        Emg2PoseSession(write_raw(tmp_path / "m.hdf5", good_records(), attrs={"sample_rate": None}))


def test_reader_non_monotonic_time_and_nan(tmp_path):
    records = good_records()
    records["time"][30] = records["time"][10]
    with pytest.raises(SessionFormatError, match=r"t\[30\].*<= t\[29\]"):
        Emg2PoseSession(write_raw(tmp_path / "t.hdf5", records))
    records = good_records()
    records["time"][3] = np.nan
    with pytest.raises(SessionFormatError, match="time: expected finite values, found NaN/inf at sample 3"):
        Emg2PoseSession(write_raw(tmp_path / "tn.hdf5", records))
    records = good_records()
    records["emg"][25, 4] = np.nan
    with Emg2PoseSession(write_raw(tmp_path / "n.hdf5", records)) as session:
        session.read(0, 25)  # the NaN is outside this slice
        with pytest.raises(SessionFormatError, match=r"n\.hdf5: emg has NaN/inf values in samples \[20, 30\)"):
            session.read(20, 30)


def test_reader_checks_clock_lazily_beyond_the_head(tmp_path):
    # Opening checks the first 4096 timestamps only (the records interleave
    # time with EMG, so a full check reads the whole file); later glitches are
    # caught by the reads that touch them.
    records = good_records(9000)
    records["time"][6000] = records["time"][5000]
    path = write_raw(tmp_path / "late.hdf5", records)
    with Emg2PoseSession(path) as session:
        assert session.read(0, 5000)["emg"].shape == (16, 5000)
        with pytest.raises(SessionFormatError, match=r"late\.hdf5: time: expected strictly increasing.*t\[6000\]"):
            session.read(5990, 6010)
        with pytest.raises(SessionFormatError, match=r"t\[6000\]"):
            _ = session.time
    # Block edges are covered by the full scan (block size 65,536).
    records = good_records(70_000)
    records["time"][65_536] = records["time"][65_535]
    with (
        Emg2PoseSession(write_raw(tmp_path / "edge.hdf5", records)) as session,
        pytest.raises(SessionFormatError, match=r"t\[65536\]"),
    ):
        _ = session.time
    with Emg2PoseSession(write_raw(tmp_path / "fine.hdf5", good_records(70_000))) as session:
        np.testing.assert_array_equal(session.time, good_records(70_000)["time"])


# -- augmentations --------------------------------------------------------------


def test_rotate_channels():
    emg = np.arange(16 * 3, dtype=np.float32).reshape(16, 3)
    seen = set()
    for seed in range(40):
        out = rotate_channels(emg, np.random.default_rng(seed))
        shift = [s for s in (-1, 0, 1) if np.array_equal(out, np.roll(emg, s, axis=0))]
        assert len(shift) == 1
        seen.add(shift[0])
    assert seen == {-1, 0, 1}
    np.testing.assert_array_equal(rotate_channels(emg, np.random.default_rng(0), offsets=(2,)), np.roll(emg, 2, axis=0))
    batched = np.stack([emg, emg + 1])
    np.testing.assert_array_equal(
        rotate_channels(batched, np.random.default_rng(0), offsets=(1,))[1], np.roll(emg + 1, 1, axis=0)
    )
    with pytest.raises(ValueError, match=r"\(\.\.\., C, T\)"):
        rotate_channels(np.zeros(5), np.random.default_rng(0))
    with pytest.raises(ValueError, match="at least one offset"):
        rotate_channels(emg, np.random.default_rng(0), offsets=())


def test_downsample_channels():
    emg = np.arange(16 * 2).reshape(16, 2)
    out = downsample_channels(emg, every=2)
    assert out.shape == (8, 2)
    np.testing.assert_array_equal(out[:, 0], np.arange(0, 32, 4))
    assert downsample_channels(emg, every=3).shape == (6, 2)
    np.testing.assert_array_equal(ChannelDownsampling(4)(emg, None), emg[::4])
    for bad in (0, 17, 2.0):
        with pytest.raises(ValueError, match="1 <= every <= 16"):
            downsample_channels(emg, every=bad)


# -- windows ----------------------------------------------------------------------


def test_windows_hand_computed_padding(tmp_path):
    path = write_session(tmp_path / "s.hdf5", 100)
    ds = Emg2PoseWindows([path], window_length=20, stride=15, padding=(5, 3))
    # Cores live in [5, 97): (92 - 20) // 15 + 1 = 5 windows at 5, 20, 35, 50, 65.
    assert len(ds) == 5
    for index, core in enumerate([5, 20, 35, 50, 65]):
        assert ds.window_bounds(index) == (path, core - 5, core + 23)
        item = ds[index]
        assert item["emg"].shape == (16, 28) and item["joint_angles"].shape == (20, 28)
        assert item["no_ik_failure"].shape == (28,)
        np.testing.assert_array_equal(item["emg"][0], np.arange(core - 5, core + 23))
        np.testing.assert_array_equal(item["emg"][3], 3000 + np.arange(core - 5, core + 23))
    np.testing.assert_array_equal(ds[-1]["emg"], ds[4]["emg"])
    with pytest.raises(IndexError):
        ds[5]
    assert list(ds.window_bounds(0)[1:]) == [0, 28]


def test_windows_default_stride_and_many_files(tmp_path):
    paths = [write_session(tmp_path / f"s{i}.hdf5", n) for i, n in enumerate([100, 45, 60])]
    ds = Emg2PoseWindows(paths, window_length=20, max_open_files=1)
    assert len(ds) == 5 + 2 + 3
    assert [ds.window_bounds(i)[0].name for i in range(len(ds))] == ["s0.hdf5"] * 5 + ["s1.hdf5"] * 2 + ["s2.hdf5"] * 3
    # Alternating files with one open handle: the cache reopens correctly.
    np.testing.assert_array_equal(ds[9]["emg"][0], np.arange(40, 60))
    np.testing.assert_array_equal(ds[0]["emg"][0], np.arange(0, 20))
    np.testing.assert_array_equal(ds[9]["emg"][0], np.arange(40, 60))
    ds.close()


def test_windows_jitter(tmp_path):
    path = write_session(tmp_path / "s.hdf5", 100)
    ds = Emg2PoseWindows([path], window_length=20, stride=15, padding=(5, 3), jitter=True)
    assert len(ds) == 5
    first, last = set(), set()
    for seed in range(300):
        first.add(ds.window_bounds(0, np.random.default_rng(seed))[1] - 0)
        last.add(ds.window_bounds(4, np.random.default_rng(seed))[1] - 60)
    # Window 0: leftover 97 - 25 = 72, so jitter < min(15, 72) = 15.
    assert first == set(range(15))
    # Window 4 (core 65): leftover 97 - 85 = 12, so jitter < 12.
    assert last == set(range(12))
    a = ds.__getitem__(2, rng=np.random.default_rng(7))
    b = ds.__getitem__(2, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a["emg"], b["emg"])
    assert a["emg"].shape == (16, 28)


def test_windows_skip_ik_failures(tmp_path):
    path = write_session(tmp_path / "s.hdf5", 100, ik_failures=[(30, 35), (80, 82)])
    # Valid runs [0, 30), [35, 80), [82, 100): 2 + 3 + 0 windows of 20 at stride 10.
    ds = Emg2PoseWindows([path], window_length=20, stride=10, skip_ik_failures=True)
    assert [ds.window_bounds(i)[1] for i in range(len(ds))] == [0, 10, 35, 45, 55]
    for i in range(len(ds)):
        assert ds[i]["no_ik_failure"].all()
    plain = Emg2PoseWindows([path], window_length=20, stride=10)
    assert len(plain) == 9 and not all(plain[i]["no_ik_failure"].all() for i in range(9))
    # Left context must exist: run [0, 30) keeps one core at 5; padding may cover IK failures.
    padded = Emg2PoseWindows([path], window_length=20, stride=10, padding=(5, 0), skip_ik_failures=True)
    assert [padded.window_bounds(i)[1] + 5 for i in range(len(padded))] == [5, 35, 45, 55]
    item = padded[1]
    assert not item["no_ik_failure"][:5].all() and item["no_ik_failure"][5:].all()
    # Jitter stays inside the run.
    jittered = Emg2PoseWindows([path], window_length=20, stride=10, skip_ik_failures=True, jitter=True)
    for seed in range(50):
        for i in range(len(jittered)):
            assert jittered.__getitem__(i, rng=np.random.default_rng(seed))["no_ik_failure"].all()


def test_windows_short_sessions_warn(tmp_path):
    long = write_session(tmp_path / "long.hdf5", 100)
    short = write_session(tmp_path / "short.hdf5", 19)
    with pytest.warns(UserWarning, match=r"short\.hdf5: 19 samples, shorter than one window \(0 \+ 20 \+ 0\)"):
        ds = Emg2PoseWindows([long, short], window_length=20)
    assert ds.sessions == [long] and ds.skipped[0][0] == short
    broken = write_session(tmp_path / "broken.hdf5", 100, ik_failures=[(10, 90)])
    with pytest.warns(UserWarning, match=r"broken\.hdf5: no run of 20 samples without IK failure"):
        Emg2PoseWindows([long, broken], window_length=20, skip_ik_failures=True)
    with (
        pytest.warns(UserWarning, match=r"short\.hdf5: 19 samples, shorter than one window \(0 \+ 20 \+ 0\)"),
        pytest.raises(ValueError, match="no windows: every session was skipped"),
    ):
        Emg2PoseWindows([short], window_length=20)


def test_windows_corrupt_file_raises_or_skips(tmp_path, caplog):
    good = write_session(tmp_path / "good.hdf5", 100)
    bad = tmp_path / "bad.hdf5"
    bad.write_bytes(b"\x89HDF\r\n" + b"\x00" * 64)
    with pytest.raises(SessionFormatError, match=r"bad\.hdf5"):
        Emg2PoseWindows([good, bad], window_length=20)
    with caplog.at_level(logging.WARNING, logger="emgjax.data.windows"):
        ds = Emg2PoseWindows([good, bad, tmp_path / "missing.hdf5"], window_length=20, on_error="skip")
    assert len(ds) == 5
    assert "bad.hdf5" in caplog.text and "missing.hdf5" in caplog.text
    assert [p.name for p, _ in ds.skipped] == ["bad.hdf5", "missing.hdf5"]


def test_windows_skip_drops_bad_samples_at_build_time(tmp_path, caplog):
    """on_error="skip" promises no SessionFormatError mid-epoch: sessions whose samples are bad
    (NaN EMG or angles, a timestamp going backwards past the 4096-sample head, across a scan-block edge)
    are dropped when the dataset is built, and a Loader then reads every window."""
    from emgjax.data.loader import Loader

    n = 70_000  # beyond the 4096-sample head checked on open and across one 65,536-record block edge
    good = write_raw(tmp_path / "good.hdf5", good_records(n))
    nan_emg = good_records(n)
    nan_emg["emg"][60_001, 3] = np.nan
    nan_angles = good_records(n)
    nan_angles["joint_angles"][9_000, 0] = np.inf
    backwards = good_records(n)
    backwards["time"][65_536] = backwards["time"][65_535]  # at the block edge
    late = good_records(n)
    late["time"][20_000] = late["time"][19_000]
    bad = {
        "nan_emg.hdf5": (nan_emg, "emg: expected finite values, found NaN/inf at sample 60001"),
        "nan_angles.hdf5": (nan_angles, "joint_angles: expected finite values, found NaN/inf at sample 9000"),
        "backwards.hdf5": (backwards, r"t\[65536\]"),
        "late.hdf5": (late, r"t\[20000\]"),
    }
    paths = [good] + [write_raw(tmp_path / name, records) for name, (records, _) in bad.items()]
    # Without skipping, building stays cheap (head only) and the bad samples surface when read.
    unchecked = Emg2PoseWindows(paths, window_length=10_000)
    assert len(unchecked) == 5 * 7
    with pytest.raises(SessionFormatError):
        for _batch in Loader(unchecked, batch_size=7, shuffle=False, process_index=0, process_count=1):
            pass
    with caplog.at_level(logging.WARNING, logger="emgjax.data.windows"):
        ds = Emg2PoseWindows(paths, window_length=10_000, on_error="skip")
    assert ds.sessions == [good]
    skipped = {p.name: reason for p, reason in ds.skipped}
    assert sorted(skipped) == sorted(bad)
    for name, (_, message) in bad.items():
        assert re.search(message, skipped[name]), (name, skipped[name])
        assert name in caplog.text
    batches = list(Loader(ds, batch_size=7, shuffle=True, seed=0, process_index=0, process_count=1))
    assert len(batches) == 1 and batches[0]["emg"].shape == (7, 16, 10_000)
    # The scan also fills the IK-failure mask, equal to the one computed from the angles.
    with Emg2PoseSession(good) as session:
        session.check_samples()
        np.testing.assert_array_equal(session.no_ik_failure, ik_failure_free(good_records(n)["joint_angles"], axis=-1))


def test_windows_transforms_and_args(tmp_path):
    path = write_session(tmp_path / "s.hdf5", 100)
    ds = Emg2PoseWindows([path], window_length=20, transforms=[RandomChannelRotation((1,)), ChannelDownsampling(2)])
    emg = ds.__getitem__(0, rng=np.random.default_rng(0))["emg"]
    expected = np.roll(np.arange(20)[None, :] + 1000.0 * np.arange(16)[:, None], 1, axis=0)[::2]
    np.testing.assert_array_equal(emg, expected)
    for kwargs, message in [
        ({"window_length": 0}, "window_length: expected a positive integer, found 0"),
        ({"window_length": 10, "stride": -1}, "stride: expected a positive integer"),
        ({"window_length": 10, "padding": (1,)}, r"padding: expected \(left, right\)"),
        ({"window_length": 10, "padding": (-1, 0)}, r"padding: expected \(left, right\)"),
        ({"window_length": 10, "on_error": "ignore"}, "on_error: expected 'raise' or 'skip'"),
        ({"window_length": 10, "transforms": [3]}, "transforms: expected callables"),
    ]:
        with pytest.raises(ValueError, match=message):
            Emg2PoseWindows([path], **kwargs)
    with pytest.raises(ValueError, match="at least one session"):
        Emg2PoseWindows([], window_length=10)
    with pytest.raises(SessionFormatError, match=r"expected sample_rate 1000\.0 Hz"):
        Emg2PoseWindows([path], window_length=10, expected_sample_rate=1000.0)


def test_windows_pickle_reopens(tmp_path):
    import pickle

    path = write_session(tmp_path / "s.hdf5", 100)
    ds = Emg2PoseWindows([path], window_length=20)
    before = ds[3]["emg"]
    clone = pickle.loads(pickle.dumps(ds))
    np.testing.assert_array_equal(clone[3]["emg"], before)


@pytest.fixture(scope="module")
def sessions_by_length(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lengths")
    return {n: write_session(folder / f"n{n}.hdf5", n) for n in (1, 37, 100, 257)}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.sampled_from([1, 37, 100, 257]),
    window=st.integers(1, 120),
    stride=st.one_of(st.none(), st.integers(1, 60)),
    left=st.integers(0, 30),
    right=st.integers(0, 30),
    jitter=st.booleans(),
)
def test_window_count_and_shape_property(sessions_by_length, n, window, stride, left, right, jitter):
    usable = n - left - right
    step = window if stride is None else stride
    expected = (usable - window) // step + 1 if usable >= window else 0
    kwargs = dict(window_length=window, stride=stride, padding=(left, right), jitter=jitter)
    if expected == 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(ValueError, match="no windows"):
                Emg2PoseWindows([sessions_by_length[n]], **kwargs)
        return
    ds = Emg2PoseWindows([sessions_by_length[n]], **kwargs)
    assert len(ds) == expected
    rng = np.random.default_rng(n * window)
    for index in {0, expected // 2, expected - 1}:
        item = ds.__getitem__(index, rng=rng)
        t = left + window + right
        assert item["emg"].shape == (16, t) and item["joint_angles"].shape == (20, t)
        assert item["no_ik_failure"].shape == (t,)
        start = int(item["emg"][0, 0])
        # Full context inside the session; cores on the stride grid (+ jitter < stride).
        assert start >= 0 and start + t <= n
        assert 0 <= (start + left) - left - index * step < (step if jitter else 1)


# -- splits ------------------------------------------------------------------------


def test_split_sessions(tmp_path):
    paths = [tmp_path / f"s{i:02d}.h5" for i in range(20)]
    splits = split_sessions(paths, val_fraction=0.2, test_fraction=0.1, seed=3)
    assert [len(splits[k]) for k in ("train", "val", "test")] == [14, 4, 2]
    assert sorted(functools.reduce(operator.iadd, splits.values(), [])) == paths
    check_disjoint_splits(splits)
    assert split_sessions(list(reversed(paths)), 0.2, 0.1, seed=3) == splits
    assert split_sessions(paths, 0.2, 0.1, seed=4) != splits
    # Small fractions still give every requested split a session.
    few = split_sessions(paths[:4], 0.05, 0.05, seed=0)
    assert (len(few["val"]), len(few["test"])) == (1, 1)
    assert split_sessions(paths[:4], 0.0, 0.0, seed=0)["train"] == paths[:4]


def test_split_sessions_groups_and_errors(tmp_path):
    paths = [tmp_path / f"user{u}_stage{s}.hdf5" for u in range(6) for s in range(3)]
    splits = split_sessions(paths, 0.2, 0.2, seed=1, group_by=lambda p: p.name.split("_")[0])
    users = {k: {p.name.split("_")[0] for p in v} for k, v in splits.items()}
    assert (
        not (users["train"] & users["val"])
        and not (users["train"] & users["test"])
        and not (users["val"] & users["test"])
    )
    assert all(len(v) % 3 == 0 for v in splits.values())
    with pytest.raises(ValueError, match="must be < 1"):
        split_sessions(paths, 0.5, 0.5, seed=0)
    with pytest.raises(ValueError, match=r"val_fraction: expected a number in \[0, 1\)"):
        split_sessions(paths, -0.1, 0.1, seed=0)
    with pytest.raises(ValueError, match="duplicates"):
        split_sessions(paths + paths[:1], 0.1, 0.1, seed=0)
    with pytest.raises(ValueError, match="leaves 0 for training"):
        split_sessions(paths[:2], 0.3, 0.3, seed=0)


def test_load_splits_csv_json_and_lists(tmp_path):
    csv_path = tmp_path / "metadata.csv"
    csv_path.write_text(
        "filename,user,session,stage,side,split\n"
        "a,u1,s1,pinch,left,train\n"
        "b,u1,s1,pinch,right,train\n"
        "c,u2,s2,fist,left,val\n"
        "d.hdf5,u3,s3,fist,left,test\n"
    )
    splits = load_splits(csv_path, data_dir=tmp_path / "data")
    assert splits == {
        "train": [tmp_path / "data" / "a.hdf5", tmp_path / "data" / "b.hdf5"],
        "val": [tmp_path / "data" / "c.hdf5"],
        "test": [tmp_path / "data" / "d.hdf5"],
    }
    json_path = tmp_path / "splits.json"
    json_path.write_text(json.dumps({"train": ["x.h5", "y.h5"], "val": ["z.h5"]}))
    assert load_splits(json_path) == {"train": [tmp_path / "x.h5", tmp_path / "y.h5"], "val": [tmp_path / "z.h5"]}
    assert load_splits({"train": ["/abs/x.h5"]}) == {"train": [Path("/abs/x.h5")]}
    with pytest.raises(ValueError, match=r"x\.h5 is in both split 'train' and split 'val'"):
        load_splits({"train": ["x.h5"], "val": ["x.h5"]})
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("filename,split\na,train\n")
    with pytest.raises(
        ValueError,
        match=r"bad\.csv: expected emg2pose metadata columns.*missing \['user', 'session', 'stage', 'side'\]",
    ):
        load_splits(bad_csv)
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"bad\.json: expected a JSON object"):
        load_splits(bad_json)
    with pytest.raises(FileNotFoundError, match=r"none\.csv"):
        load_splits(tmp_path / "none.csv")
