"""Tests for emgjax.data.sessions: whole sessions in memory, their users and stages, and splits by user."""

import numpy as np
import pytest

from emgjax.data.sessions import SessionArrays, load_emg2pose_sessions, prepare_sessions, synthetic_sessions
from emgjax.data.synthetic import SyntheticConfig, generate_session


def test_synthetic_sessions_of_one_user():
    cfg = SyntheticConfig(duration_s=99.0, hum_hz=None)
    sessions = synthetic_sessions(2, 0.5, 7, user=2, config=cfg)
    assert [s.name for s in sessions] == ["synthetic-u2-7", "synthetic-u2-8"]
    assert {s.user for s in sessions} == {"user2"} and {s.stage for s in sessions} == {"stage0"}
    expected = generate_session(cfg.replace(duration_s=0.5), seed=8, user=2)
    np.testing.assert_array_equal(sessions[1].emg_2k, expected.emg_2k.T)
    np.testing.assert_array_equal(sessions[1].joint_angles, expected.angles_2k.T)
    # user and stage survive normalisation and the MindRove view.
    prepared = prepare_sessions(sessions, None)
    assert prepared[0].user == "user2" and prepared[0].stage == "stage0" and prepared[0].emg_500 is not None
    with pytest.raises(ValueError, match="config must be a SyntheticConfig, found dict"):
        synthetic_sessions(1, 0.5, 0, config={"duration_s": 1.0})


def test_load_emg2pose_sessions_reads_user_and_stage_from_the_files(tmp_path):
    from emgjax.data.emg2pose import write_emg2pose_session

    n = 400
    for i, (user, stage) in enumerate([("u7", "fist"), ("u9", "pinch")]):
        write_emg2pose_session(
            tmp_path / f"s{i}.hdf5",
            emg=np.zeros((n, 16), np.float32),
            joint_angles=np.full((n, 20), 0.1, np.float32),
            time=np.arange(n) / 2000.0,
            user=user,
            session=f"s{i}",
            stage=stage,
            side="right",
            sample_rate=2000.0,
        )
    sessions = load_emg2pose_sessions(tmp_path)
    assert [(s.name, s.user, s.stage) for s in sessions] == [("s0.hdf5", "u7", "fist"), ("s1.hdf5", "u9", "pinch")]
    assert isinstance(sessions[0], SessionArrays) and sessions[0].emg_2k.shape == (16, n)
