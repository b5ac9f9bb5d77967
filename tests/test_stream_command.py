"""`emgjax stream` and its library: `run_stream` (timing, chunk counts, Ctrl-C, recording), the views'
throttling, and the command's bad inputs.

The runner is tested against `CountingModel`, a small jitted model with the bundle's streaming interface
whose poses number the samples they complete, on a fake clock (latencies are set, not measured). The
command end to end runs a tiny real bundle. No test opens the MindRove WiFi board.
"""

from __future__ import annotations

import functools
import io
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emgjax.bundle import InputSpec, OutputSpec
from emgjax.data.mindrove import MindRoveSession, write_mindrove_session
from emgjax.stream import (
    ArraySource,
    SpecMismatchError,
    StreamReport,
    SyntheticSource,
    TerminalView,
    Throttle,
    make_view,
    run_stream,
)
from emgjax.stream.view import Frame, PoseDisplay, ViewSetup


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@functools.partial(jax.jit, static_argnums=2)
def _count_step(seen: jax.Array, chunk: jax.Array, stride: int = 10) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One pose every ``stride`` samples; pose j's 20 values are all j (so counts and order can be checked)."""
    n = chunk.shape[-1]
    k_max = n // stride + 1
    first = (seen + stride - 1) // stride  # index of the first pose completed at or after sample `seen`
    index = first + jnp.arange(k_max)
    valid = (index + 1) * stride <= seen + n
    poses = jnp.broadcast_to(index.astype(jnp.float32), (chunk.shape[0], 20, k_max))
    return seen + n, poses, jnp.broadcast_to(valid, (chunk.shape[0], k_max))


class CountingModel:
    """The bundle's streaming interface (init_stream / stream_step / specs) on a counting step.

    ``latencies``: seconds each `stream_step` advances ``clock`` by (the warm-up call included).
    """

    kind = "counting"

    def __init__(self, channels=8, rate=500.0, chunk=20, stride=10, clock=None, latencies=None):
        self.input_spec = InputSpec(channels, rate)
        self.output_spec = OutputSpec("joint_angles", (20,), "rad", rate / stride, "sample")
        self.default_chunk_samples = chunk
        self.stream_rate = rate / stride
        self.stride = stride
        self.clock, self.latencies = clock, list(latencies or [])
        self.calls = 0

    def init_stream(self, batch_size=1, chunk_samples=None, initial_pose=None):
        assert chunk_samples == self.default_chunk_samples
        return jnp.zeros((), jnp.int32)

    def stream_step(self, state, chunk):
        assert chunk.shape == (1, self.input_spec.channels, self.default_chunk_samples), chunk.shape
        assert chunk.dtype == np.float32
        if self.clock is not None and self.latencies:
            self.clock.t += self.latencies[self.calls % len(self.latencies)]
        self.calls += 1
        return _count_step(state, jnp.asarray(chunk), self.stride)


def array_source(seconds=2.0, channels=8, rate=500.0, chunk=20, **kwargs):
    emg = np.random.default_rng(0).normal(size=(channels, round(seconds * rate))).astype(np.float32)
    return ArraySource(emg, rate, chunk_samples=chunk, **kwargs)


# -- the runner ------------------------------------------------------------------------------------


def test_latency_statistics_come_from_the_step_times_and_exclude_compilation():
    clock = FakeClock()
    # The warm-up (compile) call takes 2 s; then 10 chunks of 1..10 ms.
    latencies = [2.0] + [i / 1000 for i in range(1, 11)]
    model = CountingModel(clock=clock, latencies=latencies)
    report = run_stream(model, array_source(seconds=0.4), clock=clock)
    assert isinstance(report, StreamReport)
    assert report.chunks == 10 and report.stop == "end of source"
    assert report.compile_s == pytest.approx(2.0)
    np.testing.assert_allclose(report.latencies_s, np.arange(1, 11) / 1000)
    assert report.latency_ms(50) == pytest.approx(5.5)
    assert report.latency_ms(100) == pytest.approx(10.0)
    assert report.latency_ms(99) == pytest.approx(np.percentile(np.arange(1, 11), 99))
    # 0.4 s of EMG in 55 ms of processing; 200 samples / stride 10 = 20 poses over 55 ms of wall time.
    assert report.emg_seconds == pytest.approx(0.4)
    assert report.realtime_factor == pytest.approx(0.4 / 0.055)
    assert report.poses == 20 and report.pose_fps == pytest.approx(20 / 0.055)
    text = report.format()
    assert "p50 5.500 ms, p99" in text and "compile before streaming: 2.00 s" in text and "20 (50 per second" in text


@pytest.mark.parametrize(("seconds", "chunks"), [(1.0, 25), (0.99, 25), (0.04, 1), (0.041, 2), (1e-6, 1)])
def test_seconds_streams_the_chunks_that_cover_it(seconds, chunks):
    model = CountingModel()
    report = run_stream(model, SyntheticSource(8, 500.0, chunk_samples=20), seconds=seconds)
    assert report.chunks == chunks == math.ceil(seconds * 500 / 20 - 1e-9) and report.stop == "seconds"
    assert model.calls == chunks + 1  # + the warm-up


def test_on_poses_gets_every_pose_once_in_order():
    got = []
    report = run_stream(CountingModel(), array_source(seconds=1.0), on_poses=lambda chunk, poses: got.append(poses))
    poses = np.concatenate(got)
    assert poses.shape == (50, 20) and report.poses == 50
    np.testing.assert_array_equal(poses[:, 0], np.arange(50))


class InterruptedSource(ArraySource):
    """Ctrl-C arrives while the source waits for chunk ``at``."""

    def __init__(self, *args, at: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.at = at
        self.closed = False

    def read_chunk(self):
        if self.stats.chunks == self.at:
            raise KeyboardInterrupt
        return super().read_chunk()

    def _stop(self):
        self.closed = True


def test_ctrl_c_mid_stream_flushes_the_recording_and_reports(tmp_path):
    emg = np.random.default_rng(1).normal(size=(8, 1000)).astype(np.float32)
    source = InterruptedSource(emg, 500.0, chunk_samples=20, at=7)
    out = tmp_path / "rec" / "session.h5"
    report = run_stream(CountingModel(), source, record=out)
    assert report.stop == "interrupted" and report.chunks == 7 and source.closed
    assert report.recorded == out and report.recorded_samples == 140
    assert "stopped: Ctrl-C" in report.format()
    with MindRoveSession(out) as session:
        assert len(session) == 140 and session.num_channels == 8
        np.testing.assert_allclose(session.read_emg(0, 140), emg[:, :140], rtol=1e-6)


def test_ctrl_c_during_compilation_waits_for_it_then_stops():
    import os
    import signal

    class InterruptedWhileCompiling(CountingModel):
        def stream_step(self, state, chunk):
            if self.calls == 0:
                os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the first step (the compile) runs
            return super().stream_step(state, chunk)

    model = InterruptedWhileCompiling()
    source = InterruptedSource(np.zeros((8, 100), np.float32), 500.0, chunk_samples=20, at=99)
    # Python's own Ctrl-C handling, as in a terminal: a worker of the parallel test run can find SIGINT's handler
    # changed by an earlier test (it failed once in CI that way, never alone), and that would not test run_stream.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    report = run_stream(model, source)
    assert report.stop == "interrupted" and report.chunks == 0 and source._closed and not source.closed  # never started
    assert model.calls == 1 and report.compile_s > 0  # the compile finished before the stream stopped
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert "no chunk streamed" in report.format()


def test_a_16_channel_stream_is_recorded_at_its_width(tmp_path):
    model = CountingModel(channels=16)
    source = SyntheticSource(16, 500.0, chunk_samples=20, seconds=0.2)
    report = run_stream(model, source, record=tmp_path / "x.h5")
    with MindRoveSession(tmp_path / "x.h5") as session:
        assert session.num_channels == 16 and len(session) == report.recorded_samples == 100
        np.testing.assert_array_equal(session.read_emg().shape, (16, 100))


def test_source_of_another_rate_is_refused_unless_resampled():
    model = CountingModel(rate=500.0)
    with pytest.raises(SpecMismatchError, match=r"delivers 8 channels at 250 Hz; the model expects 8 channels at 500"):
        run_stream(model, array_source(rate=250.0, chunk=10))
    assert model.calls == 0
    report = run_stream(model, array_source(seconds=2.0, rate=250.0, chunk=10), resample=True)
    assert report.sample_rate == 500.0 and report.chunk_samples == 20 and "resampled" in report.source
    assert 45 <= report.chunks <= 50  # 2 s at 500 Hz, less what the resampler still holds at the end


def test_nan_bursts_are_counted_and_the_stream_goes_on():
    emg = np.ones((8, 1000), np.float32)
    emg[2, 100:130] = np.nan
    emg[:, 600:601] = np.inf
    report = run_stream(CountingModel(), ArraySource(emg, 500.0, chunk_samples=20))
    assert report.chunks == 50 and report.poses == 100
    assert (report.stats.nan_bursts, report.stats.filled_samples) == (2, 31)
    assert "2 NaN burst(s) (31 samples filled)" in report.format()


@pytest.mark.parametrize("seconds", [0, -1.0, math.nan, math.inf, "soon"])
def test_bad_seconds_are_refused(seconds):
    with pytest.raises(ValueError, match=r"seconds: expected a positive number of seconds"):
        run_stream(CountingModel(), array_source(), seconds=seconds)


# -- views ------------------------------------------------------------------------------------------


class RecordingView:
    name = "recording"

    def __init__(self, clock=None, draw_s=0.0):
        self.pushed, self.rendered, self.opened, self.closed = 0, [], None, False
        self.clock, self.draw_s = clock, draw_s

    def open(self, setup):
        self.opened = setup

    def push(self, frame):
        self.pushed += 1
        self.frame = frame

    def render(self):
        self.rendered.append(self.frame.chunks)
        if self.clock is not None:
            self.clock.t += self.draw_s

    def close(self):
        self.closed = True


def test_view_is_throttled_and_drops_frames():
    clock = FakeClock()
    view = RecordingView()
    # Chunks of 40 ms arrive every 40 ms (the step takes it all); the view may draw every 50 ms.
    model = CountingModel(clock=clock, latencies=[0.04])
    report = run_stream(model, array_source(seconds=2.0), view=view, view_hz=20.0, clock=clock)
    assert view.pushed == 50 and view.closed and view.opened.what == "joint_angles"
    assert view.rendered == [*range(1, 51, 2), 50]  # every other chunk, and the last one at the end
    assert (report.view_frames, report.view_dropped) == (26, 25)


def test_throttle_backs_off_from_a_slow_view():
    clock = FakeClock()
    throttle = Throttle(20.0, budget=0.25, clock=clock)
    view = RecordingView(clock, draw_s=0.03)
    view.frame = Frame(0.0, np.zeros((8, 1)), None, 0, 1, 0.0, 0.0, 0, 0)
    drawn = 0
    for _ in range(100):  # 1 s in 10 ms steps
        if throttle.due():
            throttle.render(view)
            drawn += 1
        clock.t += 0.01
    # A 30 ms draw may use a quarter of the time: one draw per 120 ms (at 20 Hz it would be one per 50 ms).
    assert drawn == len(view.rendered) == throttle.rendered
    assert clock.t / 0.13 <= drawn <= math.ceil(clock.t / 0.12)
    assert throttle.render_s == pytest.approx(0.03 * drawn) and throttle.render_s <= 0.25 * clock.t + 0.03


def test_terminal_view_shows_numbers_and_finger_bars():
    out = io.StringIO()
    view = TerminalView(out)
    view.open(ViewSetup("joint_angles", (20,), 8, 500.0, "test"))
    bent = np.zeros(20, np.float32)
    bent[4:8] = [0.0, 1.2, 1.2, 0.8]  # the index finger curls
    view.push(Frame(1.5, np.zeros((8, 20)), bent, 30, 3, 0.25, 60.0, 1, 2))
    view.render()
    view.close()
    line = view.lines[-1]
    assert "t    1.50 s" in line and "30 poses" in line and "latency   0.25 ms" in line and "NaN bursts 2" in line
    thumb, index = line.split("thumb ")[1][:5], line.split("index ")[1][:5]
    assert thumb == "....." and index.count("#") >= 3
    assert out.getvalue().startswith("t ")  # not a terminal: whole lines


def test_pose_display_of_joints_and_mano():
    display = PoseDisplay("joints", (21, 3))
    landmarks = np.random.default_rng(0).normal(size=(21, 3)).astype(np.float32)
    np.testing.assert_array_equal(display.landmarks(landmarks), landmarks)
    mano = PoseDisplay("mano_theta", (45,))
    theta = np.zeros(45)
    theta[36:45:3] = math.pi / 2  # the thumb's three joints, 90 degrees each
    assert mano.landmarks(theta) is None and mano.bend(theta) == {
        "thumb": 1.0,
        "index": 0.0,
        "middle": 0.0,
        "ring": 0.0,
        "pinky": 0.0,
    }
    with pytest.raises(ValueError, match=r"expected joints poses of shape \(21, 3\), found \(20,\)"):
        PoseDisplay("joints", (20,))


def test_no_display_falls_back_to_the_terminal_view(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    view, note = make_view(None)
    assert isinstance(view, TerminalView) and "no display" in note and "terminal view" in note
    view, note = make_view("matplotlib")
    assert isinstance(view, TerminalView) and "instead of the matplotlib window" in note
    view, note = make_view("terminal")
    assert isinstance(view, TerminalView) and note is None
    with pytest.raises(ValueError, match=r"--save-rrd: expected with the Rerun view, found --view terminal"):
        make_view("terminal", save_rrd="x.rrd")


def test_a_display_without_a_gui_backend_falls_back_to_the_terminal_view(monkeypatch):
    import matplotlib.pyplot as plt

    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.delenv("MPLBACKEND", raising=False)
    monkeypatch.setattr(plt, "get_backend", lambda: "agg")  # what pyplot settles on when no toolkit starts
    view, note = make_view(None)
    assert isinstance(view, TerminalView) and "the matplotlib backend 'agg' cannot open a window" in note


# -- the command ----------------------------------------------------------------------------------


def run_cli(argv, capsys):
    """(exit status, stdout, stderr) of ``emgjax stream ARGV``."""
    from emgjax.cli import main

    code = main(["stream", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_error(code, err, pattern):
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in err and lines[-1].startswith("emgjax stream: error: "), err
    assert sum(line.startswith("emgjax stream: error: ") for line in lines) == 1, err
    import re

    assert re.search(pattern, lines[-1]), lines[-1]


@pytest.fixture
def fake_bundle(monkeypatch, tmp_path):
    """``load_model`` returns a `CountingModel` (8 channels at 500 Hz) for the directory ``tmp_path / "model"``."""
    models = []

    def load(directory, *, kind=None):
        assert str(directory) == str(tmp_path / "model")
        models.append(CountingModel())
        return models[-1]

    monkeypatch.setattr("emgjax.bundle.load_model", load)
    return tmp_path / "model", models


def mindrove_file(path, seconds=2.0, rate=500.0, nan=()):
    n = round(seconds * rate)
    emg = np.random.default_rng(2).normal(size=(n, 8)).astype(np.float32)
    for start, stop in nan:
        emg[start:stop, 3] = np.nan
    write_mindrove_session(path, emg=emg, emg_timestamps=np.arange(n) / rate, sample_rate=rate)
    return path


def test_command_streams_synthetic_and_prints_the_report(fake_bundle, capsys):
    model_dir, models = fake_bundle
    code, out, err = run_cli(
        ["--model", model_dir, "--source", "synthetic", "--seconds", 1, "--no-view", "--fast"], capsys
    )
    assert code == 0, err
    assert "25 chunks of 20 samples" in out and "stopped: --seconds reached" in out
    assert "poses          50" in out and "latency/chunk  p50" in out and "real-time" in out
    assert "0 gap(s)" in out and "0 NaN burst(s)" in out and "compile before streaming" in out
    assert models[0].calls == 26


@pytest.mark.parametrize(
    ("argv", "pattern"),
    [
        (["--seconds", 0], r"seconds: expected a positive number of seconds, found 0\.0"),
        (["--seconds", -2], r"seconds: expected a positive number of seconds"),
        (["--source", "file"], r"--source file: expected one session file path, found 0"),
        (["--source", "webcam"], r"--source: expected one of \['mindrove', 'synthetic-board', 'file', 'synthetic'\]"),
        (["--source", "synthetic", "x"], r"--source synthetic: expected no further argument"),
        (["--no-view", "--view", "terminal"], r"--no-view: expected no --view or --save-rrd"),
        (["--board-id", 3], r"--board-id: expected with --source mindrove or synthetic-board"),
    ],
)
def test_command_bad_options(fake_bundle, capsys, argv, pattern):
    model_dir, models = fake_bundle
    base = ["--model", model_dir, "--source", "synthetic", "--no-view", "--fast"]
    if "--source" in argv:
        base = ["--model", model_dir, "--fast"]
    if "--no-view" in argv:
        base = ["--model", model_dir, "--source", "synthetic"]
    code, _, err = run_cli([*base, *argv], capsys)
    assert_one_error(code, err, pattern)
    assert not models  # refused before the model was loaded


def test_command_refuses_a_file_of_another_rate_unless_resampled(fake_bundle, capsys, tmp_path):
    model_dir, _ = fake_bundle
    session = mindrove_file(tmp_path / "slow.h5", rate=250.0)
    argv = ["--model", model_dir, "--source", "file", session, "--fast", "--no-view"]
    code, _, err = run_cli(argv, capsys)
    assert_one_error(code, err, r"file slow\.h5 delivers 8 channels at 250 Hz; the model expects 8 channels at 500 Hz")
    code, out, err = run_cli([*argv, "--resample"], capsys)
    assert code == 0 and "resampled to 500 Hz" in out, err


def test_command_refuses_unwritable_record_path(fake_bundle, capsys, tmp_path):
    model_dir, models = fake_bundle
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    argv = ["--model", model_dir, "--source", "synthetic", "--fast", "--no-view", "--record", blocker / "out.h5"]
    code, _, err = run_cli(argv, capsys)
    assert_one_error(code, err, r"record: cannot create .*blocker/out\.h5")
    assert models[0].calls == 0  # nothing streamed


def test_command_without_the_mindrove_sdk(fake_bundle, capsys, monkeypatch):
    model_dir, models = fake_bundle
    monkeypatch.setitem(__import__("sys").modules, "mindrove", None)  # import mindrove now fails
    for source in ("mindrove", "synthetic-board"):
        code, _, err = run_cli(["--model", model_dir, "--source", source, "--no-view"], capsys)
        assert_one_error(code, err, r"MindRove SDK is not installed.*pip install 'emgjax\[mindrove\]'")
    assert not models


def fake_board_shim(clock, *, present=True, nan=()):
    """A BoardShim for an 8-channel 500 Hz armband on ``clock``: sample i is due at i / 500 s; ``nan``
    samples carry NaN in channel 3; ``present=False``: the session starts but nothing ever arrives."""

    class Shim:
        next = 0

        def __init__(self, board_id, params):
            assert board_id == 0  # the WiFi board's id, but behind this fake

        get_emg_channels = staticmethod(lambda board_id: list(range(8)))
        get_sampling_rate = staticmethod(lambda board_id: 500)
        get_timestamp_channel = staticmethod(lambda board_id: 27)
        get_package_num_channel = staticmethod(lambda board_id: 26)

        def prepare_session(self):
            pass

        def start_stream(self):
            Shim.next = math.floor(clock.t * 500)

        def get_board_data(self):
            due = math.floor(clock.t * 500 + 1e-9)
            i = np.arange(Shim.next, due) if present else np.arange(0)
            Shim.next = max(Shim.next, due)
            data = np.zeros((39, i.size))
            data[:8] = np.sin(0.1 * i + np.arange(8)[:, None])
            data[3, np.isin(i, list(nan))] = np.nan
            data[26], data[27] = i % 256, 1.7e9 + i / 500
            return data

        def stop_stream(self):
            pass

        def release_session(self):
            pass

    return Shim


@pytest.fixture
def fake_armband(monkeypatch):
    """``--source mindrove`` opens a fake armband on a fake clock: set ``state["shim"]`` to a `fake_board_shim`."""
    import emgjax.stream

    original = emgjax.stream.MindRoveBoardSource
    clock = FakeClock()
    state = {"clock": clock}

    def sleep(seconds):
        clock.t += seconds

    def board(board_id, **kwargs):
        return original(board_id, shim=state["shim"], clock=clock, sleep=sleep, **kwargs)

    monkeypatch.setattr(emgjax.stream.mindrove_board, "MindRoveBoardSource", board)
    return state


def test_command_reports_an_absent_armband(fake_bundle, fake_armband, capsys):
    model_dir, models = fake_bundle
    clock = fake_armband["clock"]
    fake_armband["shim"] = fake_board_shim(clock, present=False)
    code, _, err = run_cli(["--model", model_dir, "--source", "mindrove", "--no-view", "--seconds", 5], capsys)
    assert_one_error(code, err, r"no data within 3 s of starting the stream .*armband switched on")
    assert 3.0 <= clock.t < 3.1 and models[0].calls == 1  # only the warm-up ran


def test_command_masks_nan_bursts_from_the_armband_and_records_them(fake_bundle, fake_armband, capsys, tmp_path):
    model_dir, _ = fake_bundle
    fake_armband["shim"] = fake_board_shim(fake_armband["clock"], nan=[*range(100, 110), 300])
    out_file = tmp_path / "out.h5"
    argv = ["--model", model_dir, "--source", "mindrove", "--seconds", 1, "--view", "terminal", "--record", out_file]
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    assert "stopped: --seconds reached" in out and "2 NaN burst(s) (11 samples filled)" in out
    assert "NaN/Inf values from the device" in err and "view           terminal" in out
    with MindRoveSession(out_file) as recorded:
        assert len(recorded) == 500
        emg = recorded.read_emg(0, 500)
        assert np.isfinite(emg).all() and emg[3, 100] == emg[3, 99]  # held, not stitched


def test_command_refuses_a_directory_that_is_not_a_bundle(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    code, _, err = run_cli(["--model", tmp_path, "--source", "synthetic", "--no-view"], capsys)
    assert_one_error(code, err, str(tmp_path))


def test_rerun_view_saves_a_recording(tmp_path):
    pytest.importorskip("rerun")
    from emgjax.stream import RerunView

    path = tmp_path / "run.rrd"
    view = RerunView(spawn=False, save=path)
    report = run_stream(CountingModel(), array_source(seconds=1.0), view=view, view_hz=1000.0)
    assert report.view == "rerun" and report.view_frames >= 2  # the first chunk's and the end's at least
    assert path.stat().st_size > 1000


def test_missing_rerun_is_one_clear_error(monkeypatch):
    from emgjax.stream import RerunView

    monkeypatch.setitem(__import__("sys").modules, "rerun", None)
    with pytest.raises(ValueError, match=r"needs rerun-sdk .*pip install 'emgjax\[view\]'"):
        RerunView(spawn=False, save="x.rrd")


def test_matplotlib_view_draws_the_skeleton_and_the_emg(monkeypatch):
    import warnings

    import matplotlib.pyplot as plt

    from emgjax.stream import MatplotlibView

    plt.switch_backend("Agg")  # no window: draw off screen
    view = MatplotlibView(seconds=0.5)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*non-interactive.*")
        clock = FakeClock()  # 40 ms per chunk: every chunk is drawn
        model = CountingModel(clock=clock, latencies=[0.04])
        report = run_stream(model, array_source(seconds=1.0), view=view, view_hz=1000.0, clock=clock)
    assert report.view_frames == 25
    # The last pose drawn: pose 49 (all 20 angles 49 rad), wrist-centred FK in MediaPipe order.
    display = PoseDisplay("joint_angles", (20,))
    points = display.landmarks(np.full(20, 49.0, np.float32))
    points = points - points[0]
    x, y, z = view._bones[1].get_data_3d()  # the index finger's strip 0-5-6-7-8
    np.testing.assert_allclose(np.stack([x, y, z], 1), points[[0, 5, 6, 7, 8]], rtol=1e-5, atol=1e-3)
    emg_line = view._lines[2].get_ydata()
    assert emg_line.shape == (250,) and np.ptp(emg_line) > 0


# -- a real bundle ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    """A tiny emg2pose bundle (16 channels at 2 kHz, random weights)."""
    from emgjax.models import pose_modules
    from emgjax.recipes.adapter.frozen import save_pretrained, tiny_emg2pose_config

    config = tiny_emg2pose_config()
    variables = pose_modules.init_variables(config, jax.random.key(0))
    return save_pretrained(tmp_path_factory.mktemp("stream") / "model", config, variables, provide_initial_pos=False)


def test_cli_end_to_end_on_a_real_bundle(tiny_bundle, capsys):
    code, out, err = run_cli(["--model", tiny_bundle, "--source", "synthetic", "--seconds", 2, "--no-view"], capsys)
    assert code == 0, err
    assert "Traceback" not in err and "emg2pose model (16 ch at 2000 Hz) <- synthetic 16 ch at 2000 Hz" in err
    assert "streamed 2.00 s of EMG" in out and "stopped: --seconds reached" in out, out
    poses = int(out.split("poses          ")[1].split()[0])
    assert poses > 0 and "latency/chunk  p50" in out and "real-time" in out


def test_run_stream_gives_the_offline_streaming_poses(tiny_bundle):
    import emgjax

    model = emgjax.load_model(tiny_bundle)
    spec = model.input_spec
    emg = SyntheticSource(spec.channels, spec.sample_rate, chunk_samples=1000, seconds=1.0).read_chunk().emg
    got = []
    source = ArraySource(emg, spec.sample_rate, chunk_samples=model.default_chunk_samples)
    report = run_stream(model, source, on_poses=lambda chunk, poses: got.append(poses))
    streamed = np.concatenate(got)  # (N, 20)
    offline = model.predict(emg[None], streaming=True)[0]  # (20, N')
    n = report.chunks * report.chunk_samples
    expected = model.predict(emg[None, :, :n], streaming=True)[0]
    assert report.poses == streamed.shape[0] == expected.shape[-1] <= offline.shape[-1]
    np.testing.assert_allclose(streamed, expected.T, rtol=1e-4, atol=1e-4)
