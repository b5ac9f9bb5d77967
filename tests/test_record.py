"""emgjax.record: camera sources, the label worker, the live recorder, `emgjax check` / `label`, crash safety."""

from __future__ import annotations

import importlib.util
import json
import os
import runpy
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from test_bundle import DIRECT_ARGS  # the tiny direct model the bundle tests train

from emgjax.data.emg2pose import SessionFormatError
from emgjax.data.mindrove import MindRoveSession, MindRoveSessionWriter
from emgjax.record import (
    CameraError,
    HandLabel,
    ImageFolderSource,
    LabelWorker,
    MissingExtraError,
    SyntheticCamera,
    SyntheticTruthSource,
    VideoFileSource,
    check_session,
    format_check,
    open_camera,
    record_session,
    relabel_session,
    require_mediapipe,
)
from emgjax.record.camera import Frame
from emgjax.record.command import add_to_metadata
from emgjax.record.command import main as record_main
from emgjax.stream.sources import Block, BlockSource

ROOT = Path(__file__).resolve().parents[1]
# CI installs the record extra and sets this: the OpenCV and MediaPipe tests must run there, never skip.
REQUIRE_EXTRA = os.environ.get("EMGJAX_REQUIRE_RECORD_EXTRA") == "1"


def _need(module: str) -> Any:
    """``module`` imported; the test is skipped without it, except where the record extra is required (CI)."""
    if REQUIRE_EXTRA:
        return importlib.import_module(module)
    return pytest.importorskip(module)


class FakeClock:
    def __init__(self, start: float = 100.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class HalfHands:
    """A labeller that finds a hand in every other frame (deterministic, no MediaPipe)."""

    name = "half"

    def __init__(self):
        self.calls = 0

    def __call__(self, image: np.ndarray, timestamp: float) -> HandLabel:
        self.calls += 1
        if self.calls % 2 == 0:
            return HandLabel.missing(timestamp)
        lm = np.full((21, 3), 0.5, np.float32)
        return HandLabel(timestamp, lm, lm * 100.0, 1.0, 0.9, True)

    def close(self) -> None:
        pass


def _video(path: Path, frames: int = 12, size: tuple[int, int] = (64, 48)) -> Path:
    cv2 = _need("cv2")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, size)
    camera = SyntheticCamera(width=size[0], height=size[1])
    for i in range(frames):
        writer.write(camera.render(i)[:, :, ::-1].copy())
    writer.release()
    return path


# -- camera sources -----------------------------------------------------------------


def test_synthetic_camera_frames_are_rgb_on_the_given_clock():
    clock = FakeClock()
    camera = SyntheticCamera(width=32, height=24, fps=10.0, seconds=0.5, realtime=True, clock=clock, sleep=clock.sleep)
    with camera:
        frames = list(camera)
    assert len(frames) == 5
    assert all(f.image.shape == (24, 32, 3) and f.image.dtype == np.uint8 for f in frames)
    np.testing.assert_allclose([f.timestamp for f in frames], 100.0 + np.arange(5) / 10.0)
    assert clock.now == pytest.approx(100.4)  # realtime: paced to the frame times
    assert not np.array_equal(frames[0].image, frames[3].image)  # the disc moves


def test_image_folder_source_reads_sorted_images_and_refuses_an_empty_folder(tmp_path):
    from PIL import Image

    for i in (2, 0, 1):
        Image.fromarray(np.full((8, 10, 3), 50 * i, np.uint8)).save(tmp_path / f"f{i}.png")
    (tmp_path / "notes.txt").write_text("ignored")
    with ImageFolderSource(tmp_path, fps=5.0) as source:
        frames = list(source)
    assert [int(f.image[0, 0, 0]) for f in frames] == [0, 50, 100]
    assert np.diff([f.timestamp for f in frames]) == pytest.approx([0.2, 0.2])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CameraError, match="expected images"):
        ImageFolderSource(empty)
    with pytest.raises(CameraError, match="no such folder"):
        open_camera(f"images:{tmp_path / 'missing'}")


def test_open_camera_parses_specs_and_refuses_others(tmp_path):
    assert open_camera("none") is None
    assert isinstance(open_camera("synthetic"), SyntheticCamera)
    with pytest.raises(CameraError, match=r"expected a webcam index .* found 'webcam'"):
        open_camera("webcam")
    with pytest.raises(CameraError, match="video file does not exist"):
        open_camera(f"video:{tmp_path / 'nope.mp4'}")


def test_video_file_source_reads_a_generated_video_and_refuses_garbage(tmp_path):
    path = _video(tmp_path / "v.avi", frames=7)
    with VideoFileSource(path) as source:
        frames = list(source)
    assert len(frames) == 7 and frames[0].image.shape == (48, 64, 3)
    assert source.fps == pytest.approx(30.0)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).bytes(2048))
    with pytest.raises(CameraError, match="expected a video OpenCV can read"):
        VideoFileSource(garbage).open()


def test_no_camera_at_an_index_is_a_clear_error():
    _need("cv2")
    with pytest.raises(CameraError, match="expected a camera at index 97, found none"):
        open_camera("97").open()


# -- labels --------------------------------------------------------------------------


def test_label_worker_drops_frames_when_behind_and_never_blocks():
    release = threading.Event()

    class Slow(HalfHands):
        def __call__(self, image, timestamp):
            release.wait(10.0)
            return super().__call__(image, timestamp)

    worker = LabelWorker(Slow, max_queue=2)
    image = np.zeros((4, 4, 3), np.uint8)
    start = time.monotonic()
    accepted = [worker.submit(Frame(image, i / 1000.0, i)) for i in range(10)]
    assert time.monotonic() - start < 5.0  # submit never waited for the blocked labeller
    assert worker.dropped == accepted.count(False) >= 7
    release.set()
    worker.close()
    labels = worker.drain()
    assert len(labels) == accepted.count(True)
    missing = [x for x in labels if not x.found]
    assert all(x.confidence == 0.0 and not x.world_landmarks.any() for x in missing)


def test_label_worker_reports_a_labeller_that_cannot_start():
    def broken():
        raise MissingExtraError("hand labels need MediaPipe")

    with pytest.raises(MissingExtraError, match="need MediaPipe"):
        LabelWorker(broken)


def test_missing_mediapipe_is_a_one_line_install_hint(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'emgjax\[record\]'"):
        require_mediapipe()
    out = tmp_path / "s.hdf5"
    code = record_main(["--source", "synthetic", "--camera", "synthetic", "--out", str(out), "--no-view"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "emgjax[record]" in err
    assert not out.exists()


def test_mediapipe_finds_no_hand_in_a_blank_frame():
    _need("mediapipe")
    from emgjax.record import MediaPipeLabeller

    labeller = MediaPipeLabeller(static_image_mode=True)
    try:
        label = labeller(np.full((120, 160, 3), 90, np.uint8), 1.5)
    finally:
        labeller.close()
    assert not label.found and label.confidence == 0.0 and label.timestamp == 1.5


# -- recording -------------------------------------------------------------------------


class FiniteCamera(SyntheticCamera):
    """A synthetic camera that says when it has delivered its last frame (``ended``)."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.ended = threading.Event()

    def _read(self):
        got = super()._read()
        if got is None:
            self.ended.set()
        return got


class CameraFirstSource(SyntheticTruthSource):
    """Synthetic EMG that holds its second chunk until ``camera`` has delivered every frame. Neither side
    is paced by a clock here, and the camera thread only starts at the first EMG chunk, so without the
    wait the EMG could reach its target (and the recording stop) before the camera had read its frames."""

    def __init__(self, camera: FiniteCamera, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.camera, self.reads = camera, 0

    def read_chunk(self):
        self.reads += 1
        if self.reads == 2:
            assert self.camera.ended.wait(60.0), "the camera thread did not read its frames within 60 s"
        return super().read_chunk()


def _record(tmp_path, name="s.hdf5", **kwargs):
    source = kwargs.pop("source", None)
    if source is None:
        camera = kwargs.get("camera")
        if isinstance(camera, FiniteCamera):
            source = CameraFirstSource(camera, 8, 500.0, chunk_samples=50, block_seconds=2.0)
        else:
            source = SyntheticTruthSource(8, 500.0, chunk_samples=50, block_seconds=2.0)
    out = tmp_path / name
    stats = record_session(out, source, log=lambda _: None, **kwargs)
    return out, stats


def test_recording_with_camera_labels_keeps_frames_without_a_hand(tmp_path):
    camera = FiniteCamera(width=32, height=24, fps=30.0, seconds=1.0)
    out, stats = _record(tmp_path, camera=camera, labeller=HalfHands, seconds=2.0, max_label_queue=1000)
    with MindRoveSession(out) as session:
        assert len(session) == 1000
        assert {"landmarks", "image_landmarks", "camera_frames"} <= set(session.streams)
        frame_times, _ = session.read_stream("camera_frames")
        times, _ = session.read_stream("landmarks")
        found = session.read_extra("image_landmarks", "hand_found")
        confidence = session.read_extra("landmarks", "confidence")
        assert frame_times.size == 30 == times.size  # every frame labelled, none dropped
        assert found.sum() == 15 and np.all(confidence[found == 0] == 0.0)
        assert np.all(session.label_stream("landmarks").frame_ok == (found > 0))
        meta = session.metadata
    assert json.loads(meta["recording_stats"])["labelled_frames"] == 30 == stats.labelled_frames
    assert meta["labels_source"] == "camera" and "emgjax" in json.loads(meta["software"])
    report = check_session(out)
    assert report["label_coverage"] == pytest.approx(0.5)
    assert report["camera_frames"] == 30 and report["gaps"] == 0
    assert report["duration_s"] == pytest.approx(2.0)


def test_camera_labels_get_ik_joint_angles_in_the_ik_thread(tmp_path):
    """A labeller that sees the synthetic hand in every other frame (FK-made landmarks, mm): the confident
    frames get joint angles fitted in the IK thread, in batches of one compiled shape, and flushes keep
    their interval while it fits."""
    from emgjax.kinematics import synthetic_hand_model
    from emgjax.kinematics.ik import mean_pose, model_landmarks

    model = synthetic_hand_model()
    pose = np.asarray(model_landmarks(mean_pose(model), model), np.float32)

    class FKHands(HalfHands):
        def __call__(self, image, timestamp):
            label = super().__call__(image, timestamp)
            return label if not label.found else HandLabel(timestamp, label.image_landmarks, pose, 1.0, 0.9, True)

    camera = FiniteCamera(width=32, height=24, fps=30.0, seconds=1.0)
    out, stats = _record(tmp_path, camera=camera, labeller=FKHands, seconds=1.0, max_label_queue=1000)
    assert stats.hand_frames == 15 and stats.ik_frames == 15
    report = check_session(out)
    assert report["joint_angle_frames"] == 15 and report["ik_error_mm"]["max"] < 0.5
    with MindRoveSession(out) as session:
        times, angles = session.read_stream("joint_angles")
        np.testing.assert_allclose(angles, np.broadcast_to(np.asarray(mean_pose(model)), angles.shape), atol=0.02)
        np.testing.assert_array_equal(times, session.read_stream("landmarks")[0][::2])


def test_synthetic_labels_prompts_and_check(tmp_path):
    clock = FakeClock()

    class Stepping:  # each call advances the fake clock by one EMG chunk (0.1 s)
        def __call__(self):
            clock.now += 0.1
            return clock.now

    ticking = Stepping()
    prompts_seen: list[str] = []
    from emgjax.record import PromptSchedule

    prompts = PromptSchedule(["fist", "pinch"], seconds_each=0.5, show=prompts_seen.append)
    out, stats = _record(tmp_path, synthetic_labels=True, seconds=2.0, prompts=prompts, clock=ticking)
    report = check_session(out)
    assert report["labels_source"] == "synthetic ground truth"
    assert report["label_frames"] > 50 and report["joint_angle_frames"] == report["label_frames"]
    assert [p["gesture"] for p in report["prompts"]][:3] == ["fist", "pinch", "fist"]
    # a prompt ends at the first clock reading at or after its 0.5 s (the fake clock ticks 0.1 s per reading)
    assert all(0.5 - 1e-9 <= p["duration_s"] < 0.9 for p in report["prompts"][:-1])
    assert len(prompts_seen) == len(report["prompts"]) == stats.prompts
    with MindRoveSession(out) as session:
        values, valid = session.labels_at(session.timestamps, "joint_angles")
    assert valid.mean() > 0.8 and np.all(np.isfinite(values))


class _JumpingSource(BlockSource):
    """8 channels at 500 Hz; the third block's clock goes back by 1 s."""

    name = "jumping"

    def __init__(self):
        super().__init__(channels=8, sample_rate=500.0, chunk_samples=50)
        self._block = 0

    def _start(self):
        pass

    def _read_block(self):
        if self._block == 5:
            return None
        start = self._block * 0.1 - (1.0 if self._block >= 2 else 0.0)
        self._block += 1
        times = start + np.arange(50) / 500.0
        return Block(np.ones((8, 50)), times, np.zeros(50, np.int64))


def test_an_emg_clock_jump_is_shifted_counted_and_the_file_reads(tmp_path):
    out, stats = _record(tmp_path, source=_JumpingSource())
    assert stats.clock_jumps_emg == 1
    with MindRoveSession(out) as session:
        assert len(session) == 250
        assert np.all(np.diff(session.timestamps) > 0)
    assert check_session(out)["recording_stats"]["clock_jumps_emg"] == 1


def test_a_camera_clock_jump_skips_the_frame(tmp_path):
    times = iter([10.0, 10.033, 9.0, 10.1, 10.133])

    class Backwards(FiniteCamera):
        def _read(self):
            got = super()._read()
            return None if got is None else (got[0], next(times))

    camera = Backwards(width=16, height=16, seconds=5 / 30)
    out, stats = _record(tmp_path, camera=camera, seconds=1.0)
    assert stats.clock_jumps_camera == 1 and stats.camera_frames == 4
    assert check_session(out)["camera_frames"] == 4


def test_a_write_failure_stops_cleanly_and_keeps_what_was_flushed(tmp_path, monkeypatch):
    original = MindRoveSessionWriter.append
    calls = {"n": 0}

    def failing(self, stream, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 30:
            raise OSError(28, "No space left on device")
        return original(self, stream, *args, **kwargs)

    monkeypatch.setattr(MindRoveSessionWriter, "append", failing)
    clock = FakeClock()

    def ticking():
        clock.now += 0.05
        return clock.now

    with pytest.raises(OSError, match=r"recording stopped, cannot write .*No space left.* stays readable") as info:
        _record(tmp_path, seconds=5.0, clock=ticking)
    assert "\n" not in str(info.value)
    with MindRoveSession(tmp_path / "s.hdf5") as session:
        assert 0 < len(session) <= 30 * 50
        session.read_emg()


def test_unwritable_output_is_a_one_line_error(tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    code = record_main(["--source", "synthetic", "--out", str(blocker / "s.hdf5"), "--seconds", "1", "--no-view"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("emgjax record: error:") and "cannot create the output folder" in err


def test_check_refuses_other_files_and_names_original_recordings(tmp_path, capsys):
    from emgjax.record.check import main as check_main

    original = tmp_path / "orig.h5"
    with h5py.File(original, "w") as f:
        f["emg/raw"] = np.zeros((10, 8))
        f["emg/filtered"] = np.zeros((10, 8))
        f["pose/joints_3d"] = np.zeros((2, 21, 3))
    with pytest.raises(SessionFormatError, match=r"original project's layout.*import_original_recording"):
        check_session(original)
    noise = tmp_path / "noise.hdf5"
    noise.write_bytes(b"not hdf5" * 100)
    assert check_main([str(noise)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("emgjax check: error:") and "not a readable HDF5 file" in err


def test_relabel_replaces_labels_from_the_video(tmp_path):
    _need("cv2")
    camera = FiniteCamera(width=32, height=24, fps=30.0, seconds=0.5)
    video = tmp_path / "s.avi"
    out, _ = _record(tmp_path, camera=camera, seconds=1.0, video_path=video)
    with MindRoveSession(out) as session:
        assert "landmarks" not in session.streams
        frame_times, _ = session.read_stream("camera_frames")
    result = relabel_session(out, video, labeller=HalfHands)
    assert result == {"frames": 15, "hand_frames": 8, "ik_frames": 0, "video_frames": 15}
    with MindRoveSession(out) as session:
        times, _ = session.read_stream("landmarks")
        np.testing.assert_array_equal(times, frame_times)
        assert len(session) == 500


def test_add_to_metadata_writes_rows_train_direct_reads(tmp_path):
    from emgjax.recipes.common import SessionsConfig, resolve_sessions

    sessions = []
    for name in ("a", "b"):
        path = tmp_path / "rec" / f"{name}.hdf5"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"")
        sessions.append(path)
    metadata = tmp_path / "data" / "metadata.csv"
    add_to_metadata(metadata, sessions[0], "train")
    add_to_metadata(metadata, sessions[1], "val")
    splits = resolve_sessions(SessionsConfig(data_dir=str(metadata.parent)), "mindrove")
    assert [p.resolve() for p in splits["train"]] == [sessions[0].resolve()]
    assert [p.resolve() for p in splits["val"]] == [sessions[1].resolve()]


def test_a_16_channel_2_khz_synthetic_recording_keeps_its_channels(tmp_path, capsys):
    out = tmp_path / "s16.hdf5"
    argv = ["--source", "synthetic", "--channels", "16", "--sample-rate", "2000", "--labels", "synthetic"]
    assert record_main([*argv, "--seconds", "0.3", "--out", str(out), "--no-view"]) == 0
    capsys.readouterr()
    with MindRoveSession(out) as session:
        assert (session.num_channels, session.sample_rate, len(session)) == (16, 2000.0, 600)
        assert session.read_emg().shape == (16, 600) and "joint_angles" in session.label_kinds
    report = check_session(out)
    assert report["channels"] == 16 and "16 EMG channels" in format_check(report)
    assert record_main(["--source", "synthetic-board", "--channels", "16", "--out", str(tmp_path / "b.hdf5")]) == 2
    assert "--channels/--sample-rate: expected with --source synthetic" in capsys.readouterr().err


def test_the_sdk_synthetic_board_records_its_imu(tmp_path):
    pytest.importorskip("mindrove")  # the test extra has it
    from mindrove.board_shim import BoardShim

    from emgjax.stream import SYNTHETIC_BOARD, open_source

    BoardShim.disable_board_logger()
    source = open_source("synthetic-board", chunk_samples=25)
    assert source.has_imu and source.channels == 16
    out, _ = _record(tmp_path, source=source, seconds=0.4)
    with MindRoveSession(out) as session:
        imu = session.read_imu()
        assert imu is not None and session.metadata["imu_sample_rate"] == source.sample_rate
        times, values = imu
        assert values.shape == (6, 100) and np.all(np.isfinite(values)) and values.std(axis=1).min() > 0
        np.testing.assert_array_equal(times, session.timestamps)  # sampled with the EMG
        assert session.num_channels == 16 and session.board["board_id"] == SYNTHETIC_BOARD
    report = check_session(out)
    assert report["imu"]["samples"] == 100 and report["imu"]["coverage"] == 1.0
    assert "IMU: 100 samples (100.0% of the EMG samples)" in format_check(report)


# -- end to end ------------------------------------------------------------------------------


def _cli(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), MPLBACKEND="Agg")
    return subprocess.run(
        [sys.executable, "-m", "emgjax.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slow
def test_record_check_train_chain(tmp_path, capsys):
    """The issue's chain: record (synthetic EMG, a generated video, synthetic labels) -> check -> train; and the
    same video through MediaPipe (the generated video shows no real hand: its labels are recorded and reported,
    not trained on)."""
    camera = f"video:{_video(tmp_path / 'hand.avi', frames=30)}"
    data = tmp_path / "data"
    for name, split in (("s1", "train"), ("s2", "val")):
        done = _cli(
            "record", "--source", "synthetic", "--camera", camera, "--labels", "synthetic", "--seconds", "3",
            "--out", str(data / f"{name}.hdf5"), "--metadata", str(data / "metadata.csv"), "--split", split,
            "--no-view", "--seed", str(len(split)),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    checked = _cli("check", str(data / "s1.hdf5"))
    assert checked.returncode == 0, checked.stderr
    assert "3.00 s, 1500 samples at 500 Hz" in checked.stdout and "confident hand" in checked.stdout
    assert "camera: 30 frames" in checked.stdout
    train = runpy.run_path(str(ROOT / "experiments" / "train_direct.py"))["main"]
    assert train(["--out_dir", str(tmp_path / "run"), "--data_dir", str(data), *DIRECT_ARGS]) == 0
    assert (tmp_path / "run" / "model" / "bundle.json").is_file()
    capsys.readouterr()
    if REQUIRE_EXTRA or importlib.util.find_spec("mediapipe") is not None:
        labelled = tmp_path / "mediapipe.hdf5"  # --labels defaults to MediaPipe with a camera
        assert record_main(["--source", "synthetic", "--camera", camera, "--seconds", "1.5", "--out", str(labelled),
                            "--no-view"]) == 0  # fmt: skip
        report = check_session(labelled)
        stats = report["recording_stats"]
        assert report["labels_source"] == "camera" and stats["labelled_frames"] + stats["dropped_frames"] == 30
        # MediaPipe may or may not see a hand in the moving disc: whatever it says is stored and reported.
        assert report["label_frames"] == stats["labelled_frames"] and 0.0 <= report["label_coverage"] <= 1.0
        capsys.readouterr()


def test_training_on_a_session_without_labels_says_so(tmp_path, capsys):
    data = tmp_path / "data"
    out, _ = _record(data, seconds=1.0, camera=FiniteCamera(width=16, height=16, seconds=0.5))
    add_to_metadata(data / "metadata.csv", out, "train")
    train = runpy.run_path(str(ROOT / "experiments" / "train_direct.py"))["main"]
    assert train(["--out_dir", str(tmp_path / "run"), "--data_dir", str(data), *DIRECT_ARGS]) == 2
    err = capsys.readouterr().err
    assert "no 'landmarks' labels in this session" in err


def test_sigkill_loses_at_most_a_second_and_the_file_reads(tmp_path):
    out = tmp_path / "killed.hdf5"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), MPLBACKEND="Agg")
    args = ["record", "--source", "synthetic", "--labels", "synthetic", "--camera", "synthetic", "--prompts"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "emgjax.cli", *args, "--out", str(out), "--no-view", "--seconds", "60"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(2)]  # "recording to ...", then "EMG is flowing"
        assert "EMG is flowing" in lines[1], lines
        time.sleep(3.0)
        killed_at = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    with MindRoveSession(out) as session:
        emg = session.read_emg()
        last = float(session.timestamps[-1])
        first = float(session.timestamps[0])
        stats = json.loads(session.metadata["recording_stats"])
        assert "landmarks" in session.streams
    lost = killed_at - last
    print(f"SIGKILL: {emg.shape[1]} samples ({last - first:.2f} s) on disk, {lost:.3f} s lost; flush interval "
          f"mean {stats['mean_flush_interval_s']:.3f} s, max {stats['max_flush_interval_s']:.3f} s")  # fmt: skip
    assert last - first > 2.0
    assert lost <= 1.0
    assert check_session(out)["gaps"] == 0
