"""Tests for emgjax.data.sessions: whole sessions in memory, their users and stages, and splits by user."""

import numpy as np
import pytest

from emgjax.data.sessions import (
    SessionArrays,
    load_emg2pose_sessions,
    prepare_sessions,
    split_heldout,
    synthetic_sessions,
)
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


def _session(name: str, user: str, stage: str = "s") -> SessionArrays:
    return SessionArrays(
        np.zeros((16, 8), np.float32), np.zeros((20, 8), np.float32), np.ones(8, bool), None, name, user, stage
    )


def test_split_sessions_holds_out_users_stages_or_both():
    sessions = [_session("a", "u1", "fist"), _session("b", "u2", "fist"), _session("c", "u1", "pinch")]
    train, held = split_heldout(sessions, heldout_users="u2")
    assert [s.name for s in train] == ["a", "c"] and [s.name for s in held] == ["b"]
    train, held = split_heldout(sessions, heldout_stages=["pinch"])
    assert [s.name for s in train] == ["a", "b"] and [s.name for s in held] == ["c"]
    train, held = split_heldout(sessions, heldout_users=["u2"], heldout_stages=["pinch"])
    assert [s.name for s in train] == ["a"] and [s.name for s in held] == ["b", "c"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "expected heldout_users or heldout_stages, found neither"),
        ({"heldout_users": ["u9"]}, r"held-out user\(s\) \['u9'\] not found; the sessions have \['u1', 'u2'\]"),
        ({"heldout_stages": ["walk"]}, r"held-out stage\(s\) \['walk'\] not found"),
        ({"heldout_users": ["u1", "u2"]}, "expected sessions on both sides, found 0 train and 3 held out"),
        ({"heldout_users": [""]}, "heldout_users: expected non-empty strings"),
    ],
)
def test_split_sessions_errors(kwargs, match):
    sessions = [_session("a", "u1"), _session("b", "u2"), _session("c", "u1")]
    with pytest.raises(ValueError, match=match):
        split_heldout(sessions, **kwargs)


def test_split_sessions_refuses_sessions_without_a_user():
    with pytest.raises(ValueError, match=r"expected every session to name its user .* found none for \['b'\]"):
        split_heldout([_session("a", "u1"), _session("b", "")], heldout_users=["u1"])


def test_multi_user_dataset_round_trip(tmp_path):
    """write_synthetic_dataset(n_users=3): emg2pose metadata.csv, read back by user and split by user."""
    from emgjax.data.emg2pose import METADATA_COLUMNS, read_metadata
    from emgjax.data.synthetic import write_synthetic_dataset
    from emgjax.data.windows import load_splits

    out = tmp_path / "ds"
    cfg = SyntheticConfig(hum_hz=None)
    written = write_synthetic_dataset(out, n_sessions=2, duration_s=0.5, config=cfg, formats=("emg2pose",), n_users=3)
    assert written["users"] == ["user0", "user0", "user1", "user1", "user2", "user2"]
    rows = read_metadata(out / "metadata.csv")
    assert list(rows[0])[: len(METADATA_COLUMNS)] == list(METADATA_COLUMNS)
    assert [(r["user"], r["split"], r["held_out_user"], r["generalization"]) for r in rows] == [
        ("user0", "train", "False", ""),
        ("user0", "test", "False", "session"),
        ("user1", "train", "False", ""),
        ("user1", "test", "False", "session"),
        ("user2", "test", "True", "user"),
        ("user2", "test", "True", "user"),
    ]
    assert {r["held_out_stage"] for r in rows} == {"False"} and {r["moving_hand"] for r in rows} == {"True"}
    assert rows[3]["filename"] == "emg2pose/session003" and rows[3]["session_seed"] == "1"
    assert len(load_splits(out / "metadata.csv")["test"]) == 4
    # User 1's second session is generate_session(seed=1, user=1).
    sessions = load_emg2pose_sessions(out / "emg2pose")
    assert [(s.name, s.user, s.stage) for s in sessions][2:4] == [
        ("session002.hdf5", "user1", "stage0"),
        ("session003.hdf5", "user1", "stage0"),
    ]
    np.testing.assert_array_equal(sessions[3].emg_2k, generate_session(cfg.replace(duration_s=0.5), 1, 1).emg_2k.T)
    train, held = split_heldout(sessions, heldout_users=[r["user"] for r in rows if r["held_out_user"] == "True"])
    assert {s.user for s in train} == {"user0", "user1"} and [s.name for s in held] == [
        "session004.hdf5",
        "session005.hdf5",
    ]


def test_metadata_csv_overrides_the_file_attributes(tmp_path):
    """emg2pose's own metadata.csv names files without folder or suffix; its user and stage win."""
    from emgjax.data.emg2pose import METADATA_COLUMNS, read_metadata
    from emgjax.data.synthetic import write_synthetic_dataset

    write_synthetic_dataset(tmp_path, n_sessions=2, duration_s=0.5, formats=("emg2pose",))
    header = ",".join(METADATA_COLUMNS)
    (tmp_path / "emg2pose" / "metadata.csv").write_text(
        f"{header}\nsession001,u42,sess,pose_stage,right,True,True,False,test,user\n"
    )
    sessions = load_emg2pose_sessions(tmp_path / "emg2pose")
    assert [(s.user, s.stage) for s in sessions] == [("user0", "stage0"), ("u42", "pose_stage")]
    (tmp_path / "emg2pose" / "metadata.csv").write_text("filename,user\nsession001,u42\n")
    with pytest.raises(
        ValueError, match=r"expected emg2pose metadata columns \['filename', 'user', 'stage'\], missing"
    ):
        load_emg2pose_sessions(tmp_path / "emg2pose")
    (tmp_path / "emg2pose" / "metadata.csv").write_text("filename,user,stage\na,u,s\na,u,s\n")
    with pytest.raises(ValueError, match=r"metadata\.csv:3: expected each filename once, found 'a' again"):
        read_metadata(tmp_path / "emg2pose" / "metadata.csv")
    with pytest.raises(FileNotFoundError, match=r"expected an emg2pose metadata\.csv, found no such file"):
        read_metadata(tmp_path / "nope.csv")
