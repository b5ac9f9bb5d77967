"""Orbax checkpoints (keep-last-k + best, extras, atomicity), early stopping, fit, and crash-resume."""

import json
import os
import pathlib
import queue
import subprocess
import sys
import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emgjax.train import (
    Checkpointer,
    EarlyStopping,
    OptimConfig,
    create_train_state,
    fit,
    make_optimizer,
    read_metrics,
)
from emgjax.train.logging import MetricsLog, plot_curves

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "_scripts"))
import train_tiny

SCRIPTS = os.path.dirname(os.path.abspath(train_tiny.__file__))  # tests/_scripts


def _small_state(trainable=None):
    params = {
        "encoder": {"kernel": jnp.arange(6.0).reshape(2, 3)},
        "head": {"kernel": jnp.ones((3, 2)), "bias": jnp.zeros(2)},
    }
    tx = make_optimizer(OptimConfig(), params, trainable=trainable)
    return create_train_state(params, tx, 0, {"bn": {"mean": jnp.zeros(3)}})


# ---------------------------------------------------------------------------- Checkpointer


def test_checkpoint_round_trip_with_frozen_optimizer_state_and_extras(tmp_path):
    state = _small_state(trainable=lambda path, _: path[0] == "head")
    state = state.replace(step=jnp.int32(5), params=jax.tree_util.tree_map(lambda x: x + 0.25, state.params))
    extra = {"loader": {"epoch": 2, "next_batch": 7}, "normalisation": {"mean": [0.5] * 8}, "config": {"lr": 1e-3}}
    with Checkpointer(tmp_path / "ckpt") as checkpointer:
        assert checkpointer.restore_latest(state) is None
        checkpointer.save(5, state, extra=extra)
        checkpointer.wait_until_finished()
        template = _small_state(trainable=lambda path, _: path[0] == "head")  # fresh values, same structure
        restored, restored_extra = checkpointer.restore_latest(template)
    assert restored_extra == extra
    assert int(restored.step) == 5
    for a, b in zip(jax.tree_util.tree_leaves(restored), jax.tree_util.tree_leaves(state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert jax.tree_util.tree_structure(restored.opt_state) == jax.tree_util.tree_structure(state.opt_state)


def test_keep_last_k_and_best(tmp_path):
    state = _small_state()
    val_loss = {2: 0.5, 4: 0.1, 6: 0.3, 8: 0.4, 10: 0.35}
    with Checkpointer(tmp_path / "ckpt", max_to_keep=2, best_metric="val_loss", best_mode="min") as checkpointer:
        for step in range(1, 11):
            metrics = {"val_loss": val_loss[step]} if step in val_loss else None
            checkpointer.save(step, state, extra={"step": step}, metrics=metrics)
        checkpointer.wait_until_finished()
        assert checkpointer.all_steps() == [4, 9, 10]  # the last two, plus the best (0.1 at step 4)
        assert checkpointer.best_step() == 4
        assert checkpointer.latest_step() == 10
        assert checkpointer.restore(4, state)[1] == {"step": 4}
    with Checkpointer(tmp_path / "max", max_to_keep=1, best_metric="acc", best_mode="max") as checkpointer:
        for step, acc in [(1, 0.2), (2, 0.9), (3, 0.5)]:
            checkpointer.save(step, state, metrics={"acc": acc})
        checkpointer.wait_until_finished()
        assert checkpointer.all_steps() == [2, 3] and checkpointer.best_step() == 2


def test_checkpointer_errors(tmp_path):
    state = _small_state()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="expected a directory, found a file"):
        Checkpointer(tmp_path / "file")
    with pytest.raises(ValueError, match="best_mode"):
        Checkpointer(tmp_path / "a", best_mode="lowest")
    with Checkpointer(tmp_path / "ckpt", best_metric="val_loss") as checkpointer:
        with pytest.raises(ValueError, match="JSON-able"):
            checkpointer.save(1, state, extra={"array": np.zeros(3)})
        with pytest.raises(ValueError, match="JSON-able"):
            checkpointer.save(1, state, extra={"bad": float("nan")})
        with pytest.raises(ValueError, match="expected the best metric 'val_loss'"):
            checkpointer.save(1, state, metrics={"loss": 1.0})
        with pytest.raises(ValueError, match="finite"):
            checkpointer.save(1, state, metrics={"val_loss": float("inf")})
        checkpointer.save(1, state)
        with pytest.raises(ValueError, match="step 1 already exists"):
            checkpointer.save(1, state)
        checkpointer.save(1, state, extra={"again": True}, overwrite=True)
        checkpointer.wait_until_finished()
        assert checkpointer.restore(1, state)[1] == {"again": True}
        with pytest.raises(ValueError, match=r"expected one of the saved steps \[1\]"):
            checkpointer.restore(3, state)
        other = state.replace(params={"other": jnp.zeros(4)})
        with pytest.raises(ValueError, match="does not match the expected state structure"):
            checkpointer.restore(1, other)


def test_unfinished_save_is_invisible(tmp_path):
    """A save killed before Orbax's final rename leaves a temporary directory that resume ignores."""
    state = _small_state()
    directory = tmp_path / "ckpt"
    with Checkpointer(directory) as checkpointer:
        checkpointer.save(3, state, extra={"ok": 3})
    partial = directory / "7.orbax-checkpoint-tmp-1234567"
    (partial / "state").mkdir(parents=True)
    (partial / "state" / "garbage").write_bytes(b"\x00truncated")
    with Checkpointer(directory) as checkpointer:
        assert checkpointer.all_steps() == [3]
        _, extra = checkpointer.restore_latest(state)
        assert extra == {"ok": 3}


# ---------------------------------------------------------------------------- early stopping, logs


def test_early_stopping():
    stopper = EarlyStopping(patience=2, min_delta=0.01)
    assert [stopper.update(v) for v in (1.0, 0.995, 0.98, 0.99, float("nan"))] == [False, False, False, False, True]
    assert stopper.best == 0.98
    resumed = EarlyStopping(patience=2)
    resumed.load_state_dict(json.loads(json.dumps(stopper.state_dict())))
    assert resumed.should_stop and resumed.best == 0.98
    higher = EarlyStopping(patience=1, mode="max")
    assert [higher.update(v) for v in (0.1, 0.2, 0.15)] == [False, False, True]
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=0)
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(patience=1, mode="up")


def test_metrics_log_and_plot(tmp_path):
    path = tmp_path / "logs" / "metrics.jsonl"
    log = MetricsLog(path)
    for step in (1, 2, 3):
        log.log(
            {
                "kind": "epoch",
                "epoch": step,
                "step": step * 10,
                "train_loss": 1.0 / step,
                "val_loss": float("nan") if step == 2 else 2.0 / step,
            }
        )
    records = read_metrics(path)
    assert [r["step"] for r in records] == [10, 20, 30] and records[1]["val_loss"] is None
    resumed = MetricsLog(path, keep=lambda r: r["step"] <= 20)
    assert [r["step"] for r in resumed.records] == [10, 20] and len(read_metrics(path)) == 2
    png = plot_curves(path, tmp_path / "curves.png")
    assert pathlib.Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    path.write_text('{"step": 1}\nnot json\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl: line 2: expected a JSON object"):
        read_metrics(path)
    with pytest.raises(ValueError, match="found none"):
        plot_curves([{"step": 1, "lr": 3}], tmp_path / "x.png")


def test_curves_plot_periodic_and_epoch_validation_as_separate_lines(tmp_path):
    """Every-N-steps evaluations and end-of-epoch ones are two series: joined, the line zig-zagged between them."""
    from emgjax.train.logging import curves_figure

    records = []
    for epoch in (1, 2, 3):
        for step in (100 * epoch - 60, 100 * epoch - 30):  # periodic evaluations inside the epoch
            records.append({"kind": "eval", "step": step, "epoch": epoch - 1, "val_loss": 10.0 - step / 100})
        records.append(
            {"kind": "epoch", "epoch": epoch, "step": 100 * epoch, "train_loss": 5.0 / epoch, "val_loss": 50.0 + epoch}
        )  # on another scale: any mixing shows
    figure = curves_figure(records)
    (axis,) = figure.axes
    lines = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in axis.get_lines()}
    assert lines == {
        "train (epoch mean)": ([100.0, 200.0, 300.0], [5.0, 2.5, 5.0 / 3]),
        "val (epoch end)": ([100.0, 200.0, 300.0], [51.0, 52.0, 53.0]),
        "val (every N steps)": ([40.0, 70.0, 140.0, 170.0, 240.0, 270.0], [9.6, 9.3, 8.6, 8.3, 7.6, 7.3]),
    }
    assert [t.get_text() for t in axis.get_legend().get_texts()] == list(lines)
    png = plot_curves(records, tmp_path / "curves.png")
    assert pathlib.Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_failing_early_prints_one_error_not_orbax_thread_tracebacks(tmp_path):
    """A run that fails right after its Checkpointer was created (bad data, config error) must close it: Orbax's
    temporary-directory clean-up thread otherwise hits interpreter shutdown and prints "cannot schedule new futures
    after interpreter shutdown" / "Event loop is closed" tracebacks after the user's error."""
    code = (
        "import sys\n"
        "from emgjax.cli import run_command\n"
        "from emgjax.train import Checkpointer\n"
        "def body():\n"
        "    with Checkpointer(sys.argv[1]):\n"
        "        raise ValueError('no batches: the data is too short')\n"
        "sys.exit(run_command('prog', body))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}
    for attempt in range(3):  # the thread races with shutdown: before the fix 2 runs in 3 printed tracebacks
        proc = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path / f"ckpt{attempt}")],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 2
        assert proc.stderr == "prog: error: no batches: the data is too short\n", proc.stderr


def test_closed_checkpointer_says_so(tmp_path):
    checkpointer = Checkpointer(tmp_path / "c")
    checkpointer.close()
    checkpointer.close()  # idempotent
    with pytest.raises(ValueError, match="expected an open checkpointer, found it closed"):
        checkpointer.latest_step()


# ---------------------------------------------------------------------------- fit


def test_fit_with_eval_early_stopping_best_checkpoint_and_logs(tmp_path, capsys):
    _, mesh, _, state, _, train_step, eval_step = train_tiny.build(jax.devices()[:1])
    data = train_tiny.make_dataset(16)
    held_out = train_tiny.make_dataset(16, seed=9)

    def eval_loader():  # the same shape as the training batches: no extra compilation
        return [{k: v[i : i + 8] for k, v in held_out.items()} for i in range(0, 16, 8)]

    stopper = EarlyStopping(patience=1, min_delta=1e6)  # nothing counts as an improvement: stop after epoch 2
    with Checkpointer(tmp_path / "ckpt", max_to_keep=1, best_metric="val_loss") as checkpointer:
        result = fit(
            state,
            train_step,
            lambda epoch, position: train_tiny.IndexLoader(data, 8, epoch, position),
            mesh=mesh,
            num_epochs=5,
            eval_step=eval_step,
            make_eval_loader=eval_loader,
            eval_every_steps=3,
            checkpointer=checkpointer,
            checkpoint_every_steps=1,
            extra={"experiment": "tiny"},
            early_stopping=stopper,
            log_dir=tmp_path / "logs",
            progress=False,
        )
        assert result.stopped_early and len(result.history) == 2 and int(result.state.step) == 4
        assert checkpointer.latest_step() == 4
        best = checkpointer.best_step()
        assert best in (2, 4)
        expected_best = min((r["val_loss"], r["step"]) for r in result.history)[1]
        assert best == expected_best
    out = capsys.readouterr().out
    assert "epoch 1/5 step 2" in out and "val_loss" in out and "early stopping" in out
    records = read_metrics(tmp_path / "logs" / "metrics.jsonl")
    assert [r["kind"] for r in records] == ["epoch", "eval", "epoch"]
    assert {"train_loss", "train_joint_distance", "val_loss", "val_joint_distance", "time_s"} <= set(records[0])
    assert os.path.getsize(tmp_path / "logs" / "curves.png") > 1000
    # Running fit again resumes from the early-stopped checkpoint and does nothing more.
    with Checkpointer(tmp_path / "ckpt", max_to_keep=1, best_metric="val_loss") as checkpointer:
        again = fit(
            state,
            train_step,
            lambda e, p: train_tiny.IndexLoader(data, 8, e, p),
            mesh=mesh,
            num_epochs=5,
            eval_step=eval_step,
            make_eval_loader=eval_loader,
            checkpointer=checkpointer,
            early_stopping=EarlyStopping(patience=1),
            progress=False,
            verbose=False,
        )
    assert again.resumed_from_step == 4 and again.stopped_early and again.extra == {"experiment": "tiny"}
    np.testing.assert_array_equal(
        np.asarray(again.state.params["head_out"]["kernel"]), np.asarray(result.state.params["head_out"]["kernel"])
    )


def test_fit_argument_errors():
    _, mesh, _, state, _, train_step, eval_step = train_tiny.build(jax.devices()[:1])
    with pytest.raises(ValueError, match="num_epochs"):
        fit(state, train_step, None, mesh=mesh, num_epochs=0)
    with pytest.raises(ValueError, match="eval_step and make_eval_loader together"):
        fit(state, train_step, None, mesh=mesh, num_epochs=1, eval_step=eval_step)
    with pytest.raises(ValueError, match="early_stopping needs evaluation"):
        fit(state, train_step, None, mesh=mesh, num_epochs=1, early_stopping=EarlyStopping(patience=1))
    with pytest.raises(ValueError, match="state\\(\\) method"):
        fit(state, train_step, lambda e, p: [], mesh=mesh, num_epochs=1, progress=False)


# ---------------------------------------------------------------------------- crash-resume


def _child_env(cache_dir, init_path):
    env = dict(os.environ)
    env[train_tiny.INIT_ENV] = train_tiny.save_initial_variables(init_path)
    env.update(
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
        JAX_PLATFORMS="cpu",
        JAX_DEFAULT_MATMUL_PRECISION="highest",
        # All three runs share compiled executables: only the first one compiles.
        JAX_COMPILATION_CACHE_DIR=str(cache_dir),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
    )
    return env


def _run_child(args, env, *, kill_on=None, timeout=420):
    """Run train_tiny.py; with ``kill_on``, SIGKILL it as soon as that line is printed."""
    command = [sys.executable, os.path.join(SCRIPTS, "train_tiny.py"), *args]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout] + [lines.put(None)], daemon=True)
    reader.start()
    seen = []
    try:
        while True:
            line = lines.get(timeout=timeout)
            if line is None:
                break
            seen.append(line.rstrip())
            if kill_on is not None and line.strip() == kill_on:
                proc.kill()  # SIGKILL: no cleanup, no final save
                break
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, seen


@pytest.mark.slow
def test_crash_resume_matches_uninterrupted_run(tmp_path):
    env = _child_env(tmp_path / "jax_cache", tmp_path / "init.npz")
    common = ["--epochs", "4", "--every", "2", "--windows", "24", "--batch", "8"]  # 3 steps/epoch, 12 steps
    code, out = _run_child(
        [
            "--ckpt",
            str(tmp_path / "ref_ckpt"),
            "--out",
            str(tmp_path / "ref.npz"),
            "--logs",
            str(tmp_path / "ref_logs"),
            *common,
        ],
        env,
    )
    assert code == 0, "\n".join(out)

    args = [
        "--ckpt",
        str(tmp_path / "ckpt"),
        "--out",
        str(tmp_path / "resumed.npz"),
        "--logs",
        str(tmp_path / "logs"),
        *common,
    ]
    code, out = _run_child([*args, "--slow-after", "4"], env, kill_on="SAVED 4")
    assert code == -9, f"expected the run to be killed mid-training, got exit code {code}:\n" + "\n".join(out)
    assert not (tmp_path / "resumed.npz").exists() and "DONE" not in out
    # What a kill during a save would leave behind: must be ignored on resume.
    (tmp_path / "ckpt" / "6.orbax-checkpoint-tmp-99").mkdir()

    code, out = _run_child(args, env)
    assert code == 0, "\n".join(out)
    resumed_lines = [line for line in out if line.startswith("RESUMED")]
    assert resumed_lines and 4 <= int(resumed_lines[0].split()[1]) < 12, out

    reference, resumed = np.load(tmp_path / "ref.npz"), np.load(tmp_path / "resumed.npz")
    assert int(reference["step"]) == int(resumed["step"]) == 12
    assert sorted(reference.files) == sorted(resumed.files)
    for name in reference.files:
        np.testing.assert_array_equal(resumed[name], reference[name], err_msg=name)  # bitwise
    # The epoch log of the resumed run (restored running sums, truncated log) equals the reference's.
    ref_log = [
        {k: v for k, v in r.items() if k != "time_s"} for r in read_metrics(tmp_path / "ref_logs" / "metrics.jsonl")
    ]
    log = [{k: v for k, v in r.items() if k != "time_s"} for r in read_metrics(tmp_path / "logs" / "metrics.jsonl")]
    assert log == ref_log and len(log) == 4
