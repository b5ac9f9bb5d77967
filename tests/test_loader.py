"""Loader: determinism, resume, sharding, prefetch, errors."""

from __future__ import annotations

import functools
import json
import operator
import threading

import numpy as np
import pytest

from emgjax.data.emg2pose import write_emg2pose_session
from emgjax.data.loader import Loader, collate, window_rng
from emgjax.data.windows import Emg2PoseWindows, RandomChannelRotation


class IndexDataset:
    """Item i is {"index": i, "noise": a draw from the window's rng (if given)}."""

    def __init__(self, n: int, fail_at: int | None = None):
        self.n, self.fail_at = n, fail_at

    def __len__(self):
        return self.n

    def __getitem__(self, index, rng=None):
        if index == self.fail_at:
            raise RuntimeError(f"cannot read window {index}")
        noise = rng.standard_normal(2) if rng is not None else np.zeros(2)
        return {"index": np.int64(index), "noise": noise}


class NoRngDataset(list):
    pass


def batches(loader):
    return [(b["index"].tolist(), b["noise"].copy()) for b in loader]


def same(a, b):
    return len(a) == len(b) and all(x[0] == y[0] and np.array_equal(x[1], y[1]) for x, y in zip(a, b, strict=True))


def make(n=23, **kwargs):
    kwargs.setdefault("process_index", 0)
    kwargs.setdefault("process_count", 1)
    return Loader(IndexDataset(n), **kwargs)


def test_epochs_are_seeded_permutations():
    loader = make(batch_size=4, seed=5)
    assert len(loader) == 5  # 23 // 4, remainder dropped
    epoch0, epoch1 = batches(loader), batches(loader)
    assert loader.state() == {"epoch": 2, "position": 0, "seed": 5}
    flat0 = functools.reduce(operator.iadd, (b[0] for b in epoch0), [])
    assert len(flat0) == 20 and len(set(flat0)) == 20 and flat0 != sorted(flat0)
    assert [b[0] for b in epoch0] != [b[0] for b in epoch1]
    assert all(b[1].shape == (4, 2) for b in epoch0)
    again = make(batch_size=4, seed=5)
    assert same(batches(again), epoch0)
    assert not same(batches(make(batch_size=4, seed=6)), epoch0)
    # Window randomness depends on (seed, epoch, index) only.
    index = epoch0[1][0][2]
    np.testing.assert_array_equal(epoch0[1][1][2], window_rng(5, 0, index).standard_normal(2))


def test_no_shuffle_and_keep_remainder():
    loader = make(n=10, batch_size=4, shuffle=False, drop_remainder=False)
    assert len(loader) == 3
    assert [b[0] for b in batches(loader)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


@pytest.mark.parametrize(("prefetch", "num_workers"), [(0, 1), (1, 1), (3, 1), (0, 3), (2, 2)])
def test_resume_is_bitwise_identical(prefetch, num_workers):
    reference = make(batch_size=3, seed=11)
    full = batches(reference) + batches(reference)
    loader = make(batch_size=3, seed=11, prefetch=prefetch, num_workers=num_workers)
    consumed = []
    for batch in loader:
        consumed.append((batch["index"].tolist(), batch["noise"].copy()))
        if len(consumed) == 4:
            break
    state = json.loads(json.dumps(loader.state()))  # plain ints survive JSON
    assert state == {"epoch": 0, "position": 4, "seed": 11}
    resumed = make(batch_size=3, state=state, prefetch=2)
    rest = batches(resumed) + batches(resumed)
    assert same(consumed + rest, full)


def test_resume_at_epoch_boundary():
    loader = make(batch_size=5, seed=1)
    epoch0 = []
    for batch in loader:
        epoch0.append(batch["index"].tolist())
    # After the last batch the state already points at the next epoch.
    assert loader.state() == {"epoch": 1, "position": 0, "seed": 1}
    loader2 = make(batch_size=5, state={"epoch": 0, "position": 4, "seed": 1})
    assert loader2.state() == {"epoch": 1, "position": 0, "seed": 1}
    reference = make(batch_size=5, seed=1)
    batches(reference)
    assert same(batches(loader2), batches(reference))


def test_shards_are_disjoint_and_cover():
    n = 23
    for drop_remainder in (True, False):
        shards = [
            make(n=n, batch_size=2, seed=3, process_index=p, process_count=2, drop_remainder=drop_remainder)
            for p in range(2)
        ]
        for epoch in range(2):
            seen = [functools.reduce(operator.iadd, (b[0] for b in batches(loader)), []) for loader in shards]
            assert not set(seen[0]) & set(seen[1])
            indices = [set(loader.epoch_indices(epoch).tolist()) for loader in shards]
            assert not indices[0] & indices[1]
            if drop_remainder:
                # Equal batch counts across processes; only the remainder is left out.
                assert len(shards[0]) == len(shards[1]) == 5
                assert len(indices[0] | indices[1]) == 22
            else:
                assert indices[0] | indices[1] == set(range(n))
                assert set(seen[0]) | set(seen[1]) == set(range(n))
    # Shards of one epoch are slices of the same permutation as the single-process loader.
    single = make(n=n, batch_size=1, seed=3, drop_remainder=False).epoch_indices(0)
    np.testing.assert_array_equal(
        make(n=n, batch_size=1, seed=3, process_index=1, process_count=2, drop_remainder=False).epoch_indices(0),
        single[1::2],
    )


def test_emg2pose_windows_resume_with_jitter_and_augmentation(tmp_path):
    rate = 2000.0
    paths = []
    for i, n in enumerate([400, 330]):
        emg = np.random.default_rng(i).standard_normal((n, 16)).astype(np.float32)
        angles = np.random.default_rng(10 + i).uniform(-1, 1, (n, 20))
        paths.append(
            write_emg2pose_session(tmp_path / f"s{i}.hdf5", emg=emg, joint_angles=angles, time=np.arange(n) / rate)
        )
    dataset = Emg2PoseWindows(
        paths, window_length=50, stride=30, padding=(10, 0), jitter=True, transforms=[RandomChannelRotation()]
    )
    kwargs = dict(batch_size=4, seed=2, process_index=0, process_count=1)
    reference = Loader(dataset, **kwargs)
    full = [b for _ in range(2) for b in reference]
    assert full[0]["emg"].shape == (4, 16, 60) and full[0]["joint_angles"].shape == (4, 20, 60)
    assert full[0]["no_ik_failure"].shape == (4, 60) and full[0]["no_ik_failure"].dtype == bool
    loader = Loader(dataset, **kwargs)
    iterator = iter(loader)
    head = [next(iterator) for _ in range(3)]
    state = loader.state()
    del iterator
    resumed = Loader(
        Emg2PoseWindows(
            paths, window_length=50, stride=30, padding=(10, 0), jitter=True, transforms=[RandomChannelRotation()]
        ),
        batch_size=4,
        state=state,
        process_index=0,
        process_count=1,
    )
    tail = [b for _ in range(2) for b in resumed][: len(full) - 3]
    for a, b in zip(head + tail, full, strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    # Jitter actually varies across epochs.
    assert not np.array_equal(full[0]["emg"], full[len(reference)]["emg"])


def test_rng_skipped_when_dataset_does_not_need_it():
    class Deterministic(IndexDataset):
        needs_rng = False

    loader = Loader(Deterministic(8), batch_size=4, process_index=0, process_count=1)
    assert all(not b[1].any() for b in batches(loader))  # zeros: no rng was passed
    assert any(b[1].any() for b in batches(make(n=8, batch_size=4)))


def test_dataset_without_rng_and_collate():
    data = NoRngDataset([{"x": np.full(3, i)} for i in range(8)])
    loader = Loader(data, batch_size=4, shuffle=False, process_index=0, process_count=1)
    out = [b["x"] for b in loader]
    assert out[0].shape == (4, 3) and out[1][0, 0] == 4
    with pytest.raises(ValueError, match="disagree on the shape of 'x'"):
        collate([{"x": np.zeros(2)}, {"x": np.zeros(3)}])
    with pytest.raises(ValueError, match="different keys"):
        collate([{"x": 1}, {"x": 1, "y": 2}])
    with pytest.raises(ValueError, match="at least one sample"):
        collate([])


def test_errors_in_prefetch_thread_propagate_and_threads_stop():
    before = threading.active_count()
    loader = Loader(IndexDataset(20, fail_at=13), batch_size=4, shuffle=False, process_index=0, process_count=1)
    with pytest.raises(RuntimeError, match="cannot read window 13"):
        batches(loader)
    assert loader.state() == {"epoch": 0, "position": 3, "seed": 0}
    for _ in make(n=200, batch_size=2, prefetch=4, num_workers=3):
        break  # stop early: the prefetch thread and the workers must exit
    loader = Loader(
        IndexDataset(20, fail_at=5), batch_size=4, shuffle=False, num_workers=2, process_index=0, process_count=1
    )
    with pytest.raises(RuntimeError, match="cannot read window 5"):
        batches(loader)
    assert threading.active_count() == before


def test_progress_bar(capsys):
    loader = make(n=8, batch_size=2, progress=True)
    assert len(batches(loader)) == 4
    assert "epoch 0" in capsys.readouterr().err


def test_default_process_from_jax():
    import jax

    loader = Loader(IndexDataset(8), batch_size=2)
    assert (loader.process_index, loader.process_count) == (jax.process_index(), jax.process_count())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size: expected a positive integer"),
        ({"batch_size": 2, "prefetch": -1}, "prefetch: expected a non-negative integer"),
        ({"batch_size": 2, "num_workers": 0}, "num_workers: expected a positive integer"),
        ({"batch_size": 2, "process_index": 2, "process_count": 2}, "expected 0 <= process_index < process_count"),
        ({"batch_size": 30}, "no batches: 23 windows over 1 processes"),
        (
            {"batch_size": 2, "state": {"epoch": 0, "position": 1}},
            "state: expected a dict with keys epoch, position, seed",
        ),
        (
            {"batch_size": 2, "state": {"epoch": -1, "position": 0, "seed": 0}},
            r"state\['epoch'\]: expected a non-negative integer",
        ),
        ({"batch_size": 2, "state": {"epoch": 0, "position": 12, "seed": 0}}, "exceeds the 11 batches per epoch"),
        (
            {"batch_size": 2, "seed": 1, "state": {"epoch": 0, "position": 0, "seed": 0}},
            "contradicts the resumed state's seed 0",
        ),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make(**kwargs)
    with pytest.raises(ValueError, match="expected an object with __len__ and __getitem__"):
        Loader(object(), batch_size=1, process_index=0, process_count=1)
