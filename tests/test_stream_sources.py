"""emgjax.stream sources: chunking, drop-outs (absent device, stall, reconnection, give-up, lost packets),
NaN bursts, the input-spec check, causal filtering and resampling in chunks, file replay and recording.

Board tests run against a fake BoardShim driven by a fake clock (no sleeping) and, when the SDK is
installed, against its SYNTHETIC_BOARD. The WiFi board is never opened: a guard below makes any
attempt fail.
"""

from __future__ import annotations

import json
import math
import sys
from typing import ClassVar

import h5py
import numpy as np
import pytest
import scipy.signal

from emgjax.data.emg2pose import write_emg2pose_session
from emgjax.data.mindrove import MindRoveSession, write_mindrove_session
from emgjax.data.signal import NormStats, design_emg_filter, filter_causal, normalize
from emgjax.stream import (
    ArraySource,
    Chunk,
    DeviceLostError,
    DeviceNotFoundError,
    FileSource,
    MindRoveBoardSource,
    MindRoveSDKMissingError,
    Preprocessor,
    ResampledSource,
    SessionRecorder,
    Source,
    SpecMismatchError,
    SyntheticSource,
    SyntheticTruthSource,
    check_input_spec,
    lost_from_package_numbers,
    mindrove_board,
    open_source,
    ring_resample_matrix,
)


@pytest.fixture(autouse=True)
def _never_open_the_wifi_board(monkeypatch):
    """Any real BoardShim for a non-synthetic board fails the test (it would send UDP to an armband)."""
    try:
        from mindrove import board_shim
    except ImportError:
        return
    original = board_shim.BoardShim.__init__

    def guarded(self, board_id, params):
        if int(board_id) != board_shim.BoardIds.SYNTHETIC_BOARD.value:
            raise AssertionError(f"a test tried to open MindRove board {board_id}")
        original(self, board_id, params)

    monkeypatch.setattr(board_shim.BoardShim, "__init__", guarded)


# -- a fake device behind a fake BoardShim, on a fake clock ------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(float(seconds), 0.0)


class FakeDevice:
    """A WiFi-like armband: 8 EMG rows at 500 Hz, package numbers (row 26, wrapping at 256), timestamps (row 27).

    Sample i exists at clock time i / 500. It is not delivered when it falls in a ``silent`` interval
    (device away), is in ``drop`` (a lost packet), or no session is streaming; ``nan`` samples carry NaN in
    ``nan_channels``. ``present=False``: the SDK starts but nothing ever arrives.
    """

    rate = 500
    sdk_t0 = 1_700_000_000.0

    def __init__(self, clock, *, present=True, silent=(), drop=(), nan=(), nan_channels=(3,)):
        self.clock, self.present = clock, present
        self.silent, self.drop, self.nan, self.nan_channels = list(silent), set(drop), set(nan), list(nan_channels)
        self.next = 0

    @staticmethod
    def value(i: np.ndarray) -> np.ndarray:
        return 50.0 * np.sin(0.1 * i[None, :] + np.arange(8)[:, None]) + 10.0 * np.arange(8)[:, None]

    def connect(self) -> None:
        self.next = math.floor(self.clock() * self.rate + 1e-9)  # what was sent while unconnected is lost

    def take(self) -> np.ndarray:
        due = math.floor(self.clock() * self.rate + 1e-9)
        i = np.arange(self.next, due)
        self.next = max(self.next, due)
        if not self.present:
            i = i[:0]
        t = i / self.rate
        keep = np.ones(i.size, bool)
        for start, stop in self.silent:
            keep &= ~((t >= start) & (t < stop))
        keep &= ~np.isin(i, list(self.drop))
        i = i[keep]
        data = np.zeros((39, i.size))
        data[:8] = self.value(i)
        rows_nan = np.isin(i, list(self.nan))
        for c in self.nan_channels:
            data[c, rows_nan] = np.nan
        data[26] = i % 256
        data[27] = self.sdk_t0 + i / self.rate
        return data


def fake_shim(device: FakeDevice):
    class FakeShim:
        boards: ClassVar[list[FakeShim]] = []

        def __init__(self, board_id, params):
            self.board_id, self.params, self.state = board_id, params, "created"
            FakeShim.boards.append(self)

        @staticmethod
        def get_emg_channels(board_id):
            return list(range(8))

        @staticmethod
        def get_sampling_rate(board_id):
            return device.rate

        @staticmethod
        def get_timestamp_channel(board_id):
            return 27

        @staticmethod
        def get_package_num_channel(board_id):
            return 26

        def prepare_session(self):
            self.state = "prepared"

        def start_stream(self):
            self.state = "streaming"
            device.connect()

        def get_board_data(self):
            assert self.state == "streaming", "read from a board that is not streaming"
            return device.take()

        def stop_stream(self):
            self.state = "stopped"

        def release_session(self):
            self.state = "released"

    return FakeShim


def board_source(device: FakeDevice, clock: FakeClock, **kwargs) -> tuple[MindRoveBoardSource, type]:
    shim = fake_shim(device)
    kwargs = {"chunk_samples": 50, "stall_timeout_s": 0.5, "reconnect_backoff_s": (0.5, 1.0), **kwargs}
    return MindRoveBoardSource(0, shim=shim, clock=clock, sleep=clock.sleep, **kwargs), shim


def read_until(source, seconds: float, clock: FakeClock) -> list[Chunk]:
    chunks = []
    while clock.t < seconds:
        chunks.append(source.read_chunk())
    return chunks


def test_board_source_reads_layout_from_shim_and_streams_regular_chunks():
    clock = FakeClock()
    source, shim = board_source(FakeDevice(clock), clock)
    assert isinstance(source, Source)
    assert (source.channels, source.sample_rate, source.emg_rows, source.units) == (8, 500.0, tuple(range(8)), "uV")
    with source:
        chunks = [source.read_chunk() for _ in range(10)]
    assert all(c.emg.shape == (8, 50) and c.emg.dtype == np.float32 for c in chunks)
    times = np.concatenate([c.timestamps for c in chunks])
    np.testing.assert_allclose(np.diff(times), 1 / 500, atol=1e-6)
    assert times[0] == FakeDevice.sdk_t0
    emg = np.concatenate([c.emg for c in chunks], axis=1)
    np.testing.assert_allclose(emg, FakeDevice.value(np.arange(500)), rtol=1e-6, atol=1e-4)
    assert not any(c.has_gap for c in chunks) and source.stats.gaps == 0
    assert [c.index for c in chunks] == list(range(10))
    assert [b.state for b in shim.boards] == ["released"]


def test_scale_converts_sdk_units():
    clock = FakeClock()
    source, _ = board_source(FakeDevice(clock), clock, scale=0.045)
    with source:
        chunk = source.read_chunk()
    np.testing.assert_allclose(chunk.emg, 0.045 * FakeDevice.value(np.arange(50)), rtol=1e-6, atol=1e-5)


def test_absent_armband_is_reported_within_3_s():
    clock = FakeClock()
    source, shim = board_source(FakeDevice(clock, present=False), clock)
    with pytest.raises(DeviceNotFoundError, match=r"no data within 3 s .*armband"):
        source.read_chunk()
    assert 3.0 <= clock.t < 3.05
    assert [b.state for b in shim.boards] == ["released"]
    assert isinstance(DeviceNotFoundError("x"), OSError)  # emgjax.cli.run_command prints it as one line


def test_lost_packets_are_marked_as_gaps_from_package_numbers():
    clock = FakeClock()
    # 3 lost samples, then 300 lost samples (more than the counter's 256: the clock resolves the wrap).
    device = FakeDevice(clock, drop=[100, 101, 102, *range(600, 900)])
    source, _ = board_source(device, clock, stall_timeout_s=1.0)
    with source:
        chunks = read_until(source, 2.5, clock)
    gaps = [(c.timestamps[np.argmax(c.gap)], c.lost_samples) for c in chunks if c.has_gap]
    assert [lost for _, lost in gaps] == [3, 300]
    t0 = FakeDevice.sdk_t0
    np.testing.assert_allclose([t for t, _ in gaps], [t0 + 103 / 500, t0 + 900 / 500])
    assert (source.stats.gaps, source.stats.lost_samples, source.stats.stalls) == (2, 303, 0)
    times = np.concatenate([c.timestamps for c in chunks])
    assert np.all(np.diff(times) > 0)
    # Never stitched: the samples after a gap keep their own values and times.
    emg = np.concatenate([c.emg for c in chunks], axis=1)
    kept = np.setdiff1d(np.arange(emg.shape[1] + 303), sorted(device.drop))[: emg.shape[1]]
    np.testing.assert_allclose(emg, FakeDevice.value(kept), rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(times, t0 + kept / 500)


def test_package_numbers_wrap():
    lost = lost_from_package_numbers(np.array([254.0, 255.0, 1.0, 2.0]), 253.0, 256)
    assert lost.tolist() == [0, 0, 1, 0]


def test_stall_mid_stream_reconnects_and_marks_the_gap():
    clock = FakeClock()
    device = FakeDevice(clock, silent=[(1.0, 3.0)])
    source, shim = board_source(device, clock, reconnect_backoff_s=(0.5, 1.0))
    with source:
        chunks = read_until(source, 4.0, clock)
    assert (source.stats.stalls, source.stats.reconnect_attempts, source.stats.reconnects) == (1, 1, 1)
    assert sum(c.has_gap for c in chunks) == 1
    times = np.concatenate([c.timestamps for c in chunks])
    gap = np.concatenate([c.gap for c in chunks])
    j = int(np.flatnonzero(gap)[0])
    # Samples 500 .. 1499 (t = 1 .. 3 s) never arrived; the next one is sample 1500.
    assert source.stats.lost_samples == 1000 and j == 500
    assert times[j] - times[j - 1] == pytest.approx(1001 / 500)
    np.testing.assert_allclose(times, FakeDevice.sdk_t0 + np.r_[0:500, 1500 : 1500 + times.size - 500] / 500)
    assert [b.state for b in shim.boards] == ["released", "released"]


def test_device_that_stays_away_stops_the_stream_with_a_clear_message():
    clock = FakeClock()
    device = FakeDevice(clock, silent=[(1.0, math.inf)])
    source, shim = board_source(device, clock, reconnect_backoff_s=(0.1, 0.2, 0.4), no_data_timeout_s=0.5)
    with source, pytest.raises(DeviceLostError, match=r"after 500 samples and 3 reconnection attempt\(s\).*stopped"):
        read_until(source, 60.0, clock)
    assert source.stats.reconnect_attempts == 3 and source.stats.reconnects == 0
    assert all(b.state == "released" for b in shim.boards) and len(shim.boards) == 4
    # 1.0 s of data, a 0.5 s stall, three back-off delays and three 0.5 s waits: bounded.
    assert clock.t == pytest.approx(1.0 + 0.5 + 0.7 + 1.5, abs=0.02)


def test_nan_bursts_are_filled_marked_counted_and_the_stream_continues():
    clock = FakeClock()
    device = FakeDevice(clock, nan=[*range(120, 130), 260], nan_channels=(3, 5))
    source, _ = board_source(device, clock)
    with source:
        chunks = [source.read_chunk() for _ in range(8)]
    emg = np.concatenate([c.emg for c in chunks], axis=1)
    filled = np.concatenate([c.filled for c in chunks])
    assert np.all(np.isfinite(emg))
    assert np.flatnonzero(filled).tolist() == [*range(120, 130), 260]
    assert (source.stats.nan_bursts, source.stats.filled_samples) == (2, 11)
    expected = FakeDevice.value(np.arange(400))
    np.testing.assert_allclose(emg[3, 120:130], expected[3, 119], rtol=1e-6)  # held at the last finite value
    np.testing.assert_allclose(emg[[0, 1, 2, 4, 6, 7]], expected[[0, 1, 2, 4, 6, 7]], rtol=1e-6, atol=1e-4)
    assert "2 NaN burst(s) (11 samples filled)" in source.stats.summary()


def test_nan_fill_zero():
    emg = np.ones((2, 20))
    emg[1, 5:8] = np.nan
    with ArraySource(emg, 100.0, chunk_samples=10, nan_fill="zero") as source:
        chunk = source.read_chunk()
    assert chunk.emg[1, 5:8].tolist() == [0, 0, 0] and chunk.filled[5:8].all()


def test_sdk_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "mindrove", None)
    with pytest.raises(MindRoveSDKMissingError, match=r"pip install 'emgjax\[mindrove\]'") as info:
        MindRoveBoardSource(chunk_samples=20)
    assert isinstance(info.value, ValueError)


def test_unknown_board_is_refused():
    pytest.importorskip("mindrove")
    with pytest.raises(ValueError, match="board_id 12345"):
        MindRoveBoardSource(12345, chunk_samples=20)


def test_sdk_synthetic_board():
    pytest.importorskip("mindrove")
    from mindrove.board_shim import BoardIds, BoardShim

    board_id = BoardIds.SYNTHETIC_BOARD.value
    BoardShim.disable_board_logger()
    source = MindRoveBoardSource(board_id, chunk_samples=10)
    assert source.channels == len(BoardShim.get_emg_channels(board_id))
    assert source.sample_rate == BoardShim.get_sampling_rate(board_id)
    assert source.info()["name"] == "SYNTHETIC_BOARD"
    with source:
        chunks = [source.read_chunk() for _ in range(3)]  # 30 samples at 250 Hz: ~0.12 s
    assert all(c.emg.shape == (source.channels, 10) for c in chunks)
    # its accelerometer and gyroscope rows come with every sample
    assert source.imu_rows == (*BoardShim.get_accel_channels(board_id), *BoardShim.get_gyro_channels(board_id))
    assert all(c.imu is not None and c.imu.shape == (6, 10) and np.all(np.isfinite(c.imu)) for c in chunks)
    times = np.concatenate([c.timestamps for c in chunks])
    np.testing.assert_allclose(np.diff(times), 1 / source.sample_rate, atol=1e-6)
    assert np.all(np.isfinite(np.concatenate([c.emg for c in chunks], axis=1)))


# -- chunking, spec, filtering, resampling ----------------------------------------------------------


def test_chunks_do_not_depend_on_block_size():
    rng = np.random.default_rng(0)
    emg = rng.standard_normal((4, 1000))
    ref = [c.emg for c in ArraySource(emg, 500.0, chunk_samples=64, read_samples=1000)]
    other = ArraySource(emg, 500.0, chunk_samples=64, read_samples=7)
    got = [c.emg for c in other]
    assert len(ref) == len(got) == 15
    np.testing.assert_array_equal(np.concatenate(ref, axis=1), emg[:, :960].astype(np.float32))
    np.testing.assert_array_equal(np.concatenate(got, axis=1), np.concatenate(ref, axis=1))
    assert other.stats.tail_dropped_samples == 40


def test_spec_mismatch_is_refused_before_streaming():
    source = ArraySource(np.zeros((8, 100)), 500.0, chunk_samples=20)
    with pytest.raises(SpecMismatchError, match="delivers 8 channels at 500 Hz; the model expects 16 channels at 2000"):
        check_input_spec(source, {"channels": 16, "sample_rate": 2000.0})
    with pytest.raises(SpecMismatchError, match=r"expects 8 channels at 2000 Hz .*resampling"):
        check_input_spec(source, {"channels": 8, "sample_rate": 2000})
    with pytest.raises(ValueError, match="'channels' and 'sample_rate'"):
        check_input_spec(source, {"channels": 8})
    assert check_input_spec(source, {"channels": 8, "sample_rate": 500}) is source
    resampled = check_input_spec(source, {"channels": 8, "sample_rate": 2000}, resample=True)
    assert isinstance(resampled, ResampledSource)
    assert (resampled.sample_rate, resampled.chunk_samples) == (2000.0, 80)
    assert not source._started  # nothing streamed


def test_preprocessor_in_chunks_equals_one_shot_causal_filter():
    rng = np.random.default_rng(1)
    emg = (rng.standard_normal((8, 1200)) * 30 + 200).astype(np.float32)
    stats = NormStats(mean=np.full(8, 1.0), std=np.full(8, 20.0))
    pre = Preprocessor(500.0, 8, norm=stats)
    out = np.concatenate([pre(c).emg for c in ArraySource(emg, 500.0, chunk_samples=37)], axis=1)
    n = out.shape[1]
    sos = design_emg_filter(500.0)
    expected = normalize(filter_causal(emg[:, :n], sos, steady_state=True), stats)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    assert out.dtype == np.float32
    # The band's high edge follows the rate (the SDK's synthetic board runs at 250 Hz).
    Preprocessor(250.0, 16)


@pytest.mark.parametrize(
    ("rate_in", "rate_out", "chunk"), [(500.0, 2000.0, 25), (2000.0, 500.0, 30), (500.0, 750.0, 7)]
)
def test_resampled_chunks_equal_one_shot_polyphase_filter(rate_in, rate_out, chunk):
    rng = np.random.default_rng(2)
    emg = rng.standard_normal((3, 900))
    source = ResampledSource(ArraySource(emg, rate_in, chunk_samples=chunk), rate_out, chunk_samples=16)
    with source:
        out = np.concatenate([c.emg for c in source], axis=1)
    up, down = source.up, source.down
    expected = scipy.signal.upfirdn(source.taps, emg[:, : (900 // chunk) * chunk], up, down, axis=1)
    np.testing.assert_allclose(out, expected[:, : out.shape[1]], rtol=1e-5, atol=1e-5)
    assert out.shape[1] >= (900 // chunk) * chunk * up // down - 16


def test_resampling_keeps_gaps():
    times = np.concatenate([np.arange(100), 150 + np.arange(100)]) / 500.0
    source = ResampledSource(ArraySource(np.zeros((2, 200)), 500.0, chunk_samples=50, timestamps=times), 1000.0)
    chunks = list(source)
    assert source.stats.gaps == 1 and source.stats.lost_samples == 100  # 50 lost at 500 Hz
    gap_times = [c.timestamps[c.gap] for c in chunks if c.has_gap]
    np.testing.assert_allclose(np.concatenate(gap_times), [150 / 500])


# -- synthetic generator ----------------------------------------------------------------------------


def test_ring_resample_matrix():
    np.testing.assert_array_equal(ring_resample_matrix(16, 8), np.eye(16)[::2])
    matrix = ring_resample_matrix(8, 5)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
    assert matrix[0, 0] == 1.0 and matrix[1].tolist()[1:3] == pytest.approx([0.4, 0.6])


def test_synthetic_source_at_any_spec():
    from emgjax.data.synthetic import SyntheticConfig, generate_session

    with SyntheticSource(16, 2000.0, chunk_samples=80, seconds=0.5, block_seconds=2.0) as source:
        chunks = list(source)
    assert len(chunks) == 12 and source.stats.tail_dropped_samples == 40
    emg = np.concatenate([c.emg for c in chunks], axis=1)
    session = generate_session(SyntheticConfig(duration_s=2.0), seed=0)
    np.testing.assert_allclose(emg, session.emg_2k[:960].T, rtol=1e-6, atol=1e-3)
    np.testing.assert_allclose(np.concatenate([c.timestamps for c in chunks]), np.arange(960) / 2000.0)

    clock = FakeClock()
    odd = SyntheticSource(
        5, 250.0, chunk_samples=25, seconds=3.0, block_seconds=1.0, realtime=True, clock=clock, sleep=clock.sleep
    )
    odd_chunks = list(odd)
    assert len(odd_chunks) == 30 and all(c.emg.shape == (5, 25) for c in odd_chunks)
    assert np.all(np.diff(np.concatenate([c.timestamps for c in odd_chunks])) == pytest.approx(1 / 250))
    assert clock.t == pytest.approx(odd_chunks[-1].timestamps[-1])  # paced by the clock, across 3 blocks


# -- file replay and recording ----------------------------------------------------------------------


def _mindrove_file(path, n=1000, gap=(300, 350)):
    rng = np.random.default_rng(3)
    keep = np.r_[0 : gap[0], gap[1] : n]
    emg = rng.standard_normal((keep.size, 8)).astype(np.float32) * 40
    write_mindrove_session(path, emg=emg, emg_timestamps=100.0 + keep / 500.0)
    return emg, 100.0 + keep / 500.0


def test_replay_mindrove_session_marks_gaps(tmp_path):
    emg, times = _mindrove_file(tmp_path / "s.h5")
    with FileSource(tmp_path / "s.h5", chunk_samples=64, read_samples=100) as source:
        assert (source.channels, source.sample_rate, source.format) == (8, 500.0, "mindrove")
        chunks = list(source)
    n = len(chunks) * 64
    np.testing.assert_array_equal(np.concatenate([c.emg for c in chunks], axis=1), emg[:n].T)
    np.testing.assert_array_equal(np.concatenate([c.timestamps for c in chunks]), times[:n])
    gap = np.concatenate([c.gap for c in chunks])
    assert np.flatnonzero(gap).tolist() == [300]
    assert (source.stats.gaps, source.stats.lost_samples, source.stats.tail_dropped_samples) == (1, 50, 950 - n)


def test_replay_emg2pose_session_at_real_speed(tmp_path):
    rng = np.random.default_rng(4)
    emg = rng.standard_normal((16, 2000)).astype(np.float32)
    write_emg2pose_session(
        tmp_path / "e.hdf5", emg=emg.T, joint_angles=np.zeros((2000, 20)), time=50.0 + np.arange(2000) / 2000.0
    )
    clock = FakeClock()
    source = FileSource(tmp_path / "e.hdf5", chunk_samples=80, realtime=True, clock=clock, sleep=clock.sleep)
    assert (source.channels, source.sample_rate, source.format) == (16, 2000.0, "emg2pose")
    seen = []
    for chunk in source:
        seen.append((chunk.timestamps[-1] - 50.0, clock.t))
    source.close()
    assert len(seen) == 25
    np.testing.assert_allclose([wall for _, wall in seen], [t for t, _ in seen])  # each chunk at its own time


def test_replay_refuses_other_files(tmp_path):
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["data"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"expected a MindRove session .* or an emg2pose session"):
        FileSource(tmp_path / "x.h5", chunk_samples=10)
    with pytest.raises(FileNotFoundError):
        FileSource(tmp_path / "missing.h5", chunk_samples=10)


def test_recorder_round_trip_keeps_gaps_and_fills(tmp_path):
    emg = np.random.default_rng(5).standard_normal((8, 600)) * 40
    emg[2, 100:103] = np.nan
    times = np.r_[np.arange(250), 300 + np.arange(350)] / 500.0
    source = ArraySource(emg, 500.0, chunk_samples=50, timestamps=times)
    with source, SessionRecorder.for_source(tmp_path / "rec.h5", source, flush_every_s=0.2) as recorder:
        chunks = [recorder.append(c) or c for c in source]
    with MindRoveSession(tmp_path / "rec.h5") as session:
        np.testing.assert_array_equal(session.timestamps, np.concatenate([c.timestamps for c in chunks]))
        np.testing.assert_array_equal(session.read_emg(), np.concatenate([c.emg for c in chunks], axis=1))
        assert session.board["name"] == "array"
    with h5py.File(tmp_path / "rec.h5", "r") as f:
        assert f["stream/gap_samples"][()].tolist() == [250]
        assert f["stream/filled_samples"][()].tolist() == [100, 101, 102]
        assert json.loads(f["stream/stats_json"][()])["lost_samples"] == 50
    with pytest.raises(FileExistsError):
        SessionRecorder(tmp_path / "rec.h5", sample_rate=500.0, channels=8)
    wide = ArraySource(np.arange(16 * 40, dtype=np.float32).reshape(16, 40), 2000.0, chunk_samples=20)
    with SessionRecorder.for_source(tmp_path / "r16.h5", wide) as recorder16:  # the writer takes the source's width
        chunks16 = [recorder16.append(c) or c for c in wide]
        with pytest.raises(ValueError, match=r"expected 16 channels, found shape \(8, 50\)"):
            recorder16.append(chunks[0])
    with MindRoveSession(tmp_path / "r16.h5") as session:
        assert session.num_channels == 16 and session.metadata["emg_channels"] == 16
        np.testing.assert_array_equal(session.read_emg(), np.concatenate([c.emg for c in chunks16], axis=1))


def test_recorder_flushes_on_keyboard_interrupt(tmp_path):
    source = ArraySource(np.ones((8, 200)), 500.0, chunk_samples=50)

    def stream_until_ctrl_c() -> None:
        with source, SessionRecorder.for_source(tmp_path / "r.h5", source) as recorder:
            for i, chunk in enumerate(source):
                recorder.append(chunk)
                if i == 1:
                    raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stream_until_ctrl_c()
    with MindRoveSession(tmp_path / "r.h5") as session:
        assert len(session) == 100
    assert source._closed


def test_board_source_is_isolated_from_the_sdk(monkeypatch):
    """A fake shim needs no SDK at all (the module never imports it for an injected shim)."""
    monkeypatch.setitem(sys.modules, "mindrove", None)
    clock = FakeClock()
    source, _ = board_source(FakeDevice(clock), clock)
    assert source.info()["name"] == "board 0"
    assert mindrove_board.WIFI_BOARD == 0


def test_open_source_makes_each_named_source_and_refuses_others(tmp_path):
    synthetic = open_source("synthetic", chunk_samples=20, channels=16, sample_rate=2000.0, realtime=False)
    assert type(synthetic) is SyntheticSource and (synthetic.channels, synthetic.sample_rate) == (16, 2000.0)
    truth = open_source("synthetic", chunk_samples=20, truth=True, realtime=False)
    assert isinstance(truth, SyntheticTruthSource) and truth.read_chunk() is not None and truth.truth
    path = write_mindrove_session(
        tmp_path / "s.h5", emg=np.zeros((100, 8)), emg_timestamps=np.arange(100) / 500.0, sample_rate=500.0
    )
    replay = open_source("file", path, chunk_samples=50, realtime=False)
    assert isinstance(replay, FileSource) and len(list(replay)) == 2
    for args, kwargs, message in (
        (("usb",), {}, r"expected one of \['mindrove', 'synthetic-board', 'file', 'synthetic'\], found 'usb'"),
        (("file",), {}, "source file: expected a session file path"),
        (("synthetic", path), {}, "source synthetic: expected no path"),
        (("file", path), {"truth": True}, "ground-truth labels: expected the synthetic source, found 'file'"),
        (("synthetic",), {"board_id": 0}, "board id: expected with the mindrove or synthetic-board source"),
    ):
        with pytest.raises(ValueError, match=message):
            open_source(*args, chunk_samples=20, **kwargs)
