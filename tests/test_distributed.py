"""Two processes x 2 CPU devices with jax.distributed on localhost == one process on the global batch."""

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from emgjax.train import initialize_distributed, initialize_distributed_from_environment

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "_scripts"))
import train_tiny

SCRIPTS = os.path.dirname(os.path.abspath(train_tiny.__file__))  # tests/_scripts

STEPS = 3


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _outputs_of_successful(procs: list[subprocess.Popen]) -> list[str]:
    """Each process's output once all have finished (any still running after 300 s is killed); each must exit 0."""
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=300)[0])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for proc, output in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, output[-4000:]
    return outputs


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_process_training_equals_single_process(tmp_path):
    try:
        port = _free_port()
    except OSError as err:  # pragma: no cover - platform without loopback sockets
        pytest.skip(f"cannot open a localhost socket for the coordinator: {err}")
    env = dict(os.environ)
    env.update(
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
        JAX_PLATFORMS="cpu",
        JAX_DEFAULT_MATMUL_PRECISION="highest",
    )
    env[train_tiny.INIT_ENV] = train_tiny.save_initial_variables(tmp_path / "init.npz")
    # Process 0 joins with explicit arguments, process 1 as a launcher would start it: from the environment.
    env_1 = dict(env, JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES="2", JAX_PROCESS_ID="1")
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                os.path.join(SCRIPTS, "train_distributed.py"),
                "--port",
                str(port),
                "--process-id",
                str(i),
                "--steps",
                str(STEPS),
                "--out",
                str(tmp_path / f"p{i}.npz"),
                *(["--from-environment"] if i == 1 else []),
            ],
            env=env_1 if i == 1 else env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    outputs = _outputs_of_successful(procs)
    assert "devices 4 local 2" in outputs[0] and "devices 4 local 2" in outputs[1]

    p0, p1 = np.load(tmp_path / "p0.npz"), np.load(tmp_path / "p1.npz")
    state, history, _ = train_tiny.single_device_reference(STEPS)
    losses = np.array([float(m["loss"]) for m in history])
    reference = train_tiny.flat_params({"params": state.params, "batch_stats": state.batch_stats})
    names = sorted(reference)
    assert sorted(n for n in p0.files if n not in ("losses", "eval_loss")) == names
    for name in names:
        np.testing.assert_array_equal(p0[name], p1[name], err_msg=name)  # replicas agree exactly
        np.testing.assert_allclose(p0[name], reference[name], rtol=0, atol=1e-5, err_msg=name)
    np.testing.assert_allclose(p0["losses"], losses, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_process_recipe_writes_one_run_folder(tmp_path):
    """`experiments/train_direct.py --distributed` in two processes sharing one out_dir: process 0
    prepares the folder and exports the model (written by it alone), then both evaluate that model.
    Before, both processes wrote the bundle at once and each failed to read it back."""
    from emgjax.data.synthetic import write_synthetic_dataset

    try:
        port = _free_port()
    except OSError as err:  # pragma: no cover - platform without loopback sockets
        pytest.skip(f"cannot open a localhost socket for the coordinator: {err}")
    data, out = tmp_path / "data", tmp_path / "run"
    write_synthetic_dataset(data, n_sessions=3, duration_s=6.0, seed=3, formats=("mindrove",))
    script = os.path.join(os.path.dirname(SCRIPTS), os.pardir, "experiments", "train_direct.py")  # tests/..
    sets = [
        "model.conv_channels=4,8", "model.lstm_hidden=8", "model.head_hidden=8", "data.window_length=32",
        "data.stride=16", "data.eval_stride=32", "loop.batch_size=8", "loop.max_steps=2", "loop.progress=false",
    ]  # fmt: skip
    command = [sys.executable, script, "--distributed", "--data_dir", str(data), "--out_dir", str(out)]
    for item in sets:
        command += ["--set", item]
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES="2")
    env.pop("XLA_FLAGS", None)  # one CPU device per process
    procs = [
        subprocess.Popen(
            command, env=dict(env, JAX_PROCESS_ID=str(i)), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for i in range(2)
    ]
    outputs = _outputs_of_successful(procs)
    from emgjax.recipes.direct import load_direct

    model = load_direct(out)
    assert model.metadata["exported_step"] == 2
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "checkpoints",
        "config.json",
        "evaluation_test.json",
        "metrics.jsonl",
        "model",
        "statistics.json",
        "trajectories.png",
    ]
    # Both processes evaluated the same exported model on the same test session.
    reports = [line for output in outputs for line in output.splitlines() if line.strip().startswith("mpjpe_mm")]
    assert len(reports) == 2 and reports[0] == reports[1], reports


def test_initialize_distributed_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"'host:port', found '127\.0\.0\.1'"):
        initialize_distributed("127.0.0.1", 2, 0)
    with pytest.raises(ValueError, match="0 <= process_id < 2, found 2"):
        initialize_distributed("127.0.0.1:1234", 2, 2)
    with pytest.raises(ValueError, match="num_processes >= 1, found 0"):
        initialize_distributed("127.0.0.1:1234", 0, 0)


def test_initialize_distributed_from_environment_rejects_partial_settings():
    with pytest.raises(ValueError, match="JAX_PROCESS_ID unset"):
        initialize_distributed_from_environment({"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "2"})
    with pytest.raises(ValueError, match="JAX_NUM_PROCESSES to be an integer, found 'two'"):
        initialize_distributed_from_environment(
            {"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "two", "JAX_PROCESS_ID": "0"}
        )
    with pytest.raises(ValueError, match="0 <= process_id < 2, found 5"):
        initialize_distributed_from_environment(
            {"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "5"}
        )
