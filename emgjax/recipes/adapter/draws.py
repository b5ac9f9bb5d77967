"""The adapter benchmark's data: the frozen model's pool of users, and one draw of users per data seed.

Synthetic data (default): every user is a simulated user of the generator
(``generate_session(config, seed, user=u)``: their own electrode placement,
muscle mixing, gains, activation map and hand). The frozen emg2pose gets its
own, larger pool (users ``0 .. frozen_users - 1`` for training, the next
``frozen_val_users`` for early stopping); data seed d draws
``n_train_users`` users for the adapters' training and ``n_heldout_users``
other users for the held-out test, all new (ids from ``1000 + 100 d``), so
held-out users are unseen by every model. The learning-rate sweep uses the
draw of ``sweep_data_seed``, seen by no test.

Real data (``data_dir``, emg2pose HDF5 files with their ``metadata.csv``):
users come from the metadata. The first half of the users (sorted) form the
frozen model's pool when it is trained here (its last ``frozen_val_users``
for validation); the other users are drawn per data seed: a permutation
seeded by the data seed holds ``n_heldout_users`` of them out, and
``split_heldout`` also holds out ``heldout_stages`` (emg2pose's held-out
conditions) from training.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from emgjax.data.sessions import SessionArrays, load_emg2pose_sessions, split_heldout, synthetic_sessions
from emgjax.recipes.adapter.bench_config import BenchmarkConfig

__all__ = ["Draw", "DataSource", "data_source"]

_DRAW_USERS = 1000  # synthetic users of data seed d start at 1000 + 100 d (the frozen pool uses 0 ..)
_SESSIONS_PER_USER = 16  # session seeds of user u: u * 16 ..


@dataclasses.dataclass
class Draw:
    """One data seed's raw (un-normalised) sessions: the adapters' training set and the held-out test set."""

    data_seed: int
    train: list[SessionArrays]
    heldout: list[SessionArrays]

    @property
    def users(self) -> dict[str, list[str]]:
        return {
            "train": sorted({s.user for s in self.train}),
            "heldout": sorted({s.user for s in self.heldout}),
        }


class DataSource:
    """Where the benchmark's sessions come from (synthetic users or an emg2pose directory)."""

    def __init__(self, config: BenchmarkConfig):
        self.config = config
        self._real: list[SessionArrays] | None = None
        if config.data_dir:
            self._real = load_emg2pose_sessions(config.data_dir)
            users = sorted({s.user for s in self._real})
            needed = config.n_heldout_users + 1 + (0 if config.emg2pose_dir else 2)
            if len(users) < needed:
                raise ValueError(
                    f"{config.data_dir}: expected sessions of at least {needed} users (metadata.csv) for a "
                    f"user split{'' if config.emg2pose_dir else ' and a frozen-model pool'}, found {len(users)}"
                )
            self._users = users
            self._pool_users = [] if config.emg2pose_dir else users[: len(users) // 2]
            self._draw_users = [u for u in users if u not in self._pool_users]

    def frozen_pool(self) -> tuple[list[SessionArrays], list[SessionArrays]]:
        """(train, validation) raw sessions of the frozen model's own users."""
        config = self.config
        if self._real is not None:
            n_val = max(1, min(config.frozen_val_users, len(self._pool_users) - 1))
            val_users = tuple(self._pool_users[-n_val:])
            pool = [s for s in self._real if s.user in self._pool_users]
            return split_heldout(pool, heldout_users=val_users)
        users = range(config.frozen_users + config.frozen_val_users)
        sessions = [
            self._user_sessions(u, config.frozen_sessions_per_user, config.frozen_session_seconds) for u in users
        ]
        return _flat(sessions[: config.frozen_users]), _flat(sessions[config.frozen_users :])

    def draw(self, data_seed: int) -> Draw:
        """The adapters' train and held-out sessions of one data seed (users disjoint from each other and the pool)."""
        config = self.config
        if self._real is not None:
            rng = np.random.default_rng(data_seed)
            users = [self._draw_users[i] for i in rng.permutation(len(self._draw_users))]
            n_heldout = min(config.n_heldout_users, len(users) - 1)
            pool = [s for s in self._real if s.user in users]
            train, heldout = split_heldout(
                pool, heldout_users=tuple(users[:n_heldout]), heldout_stages=config.heldout_stages
            )
            if not train or not heldout:
                raise ValueError(
                    f"data seed {data_seed}: expected train and held-out sessions after the user/stage split, "
                    f"found {len(train)} and {len(heldout)}"
                )
            return Draw(data_seed, train, heldout)
        first = _DRAW_USERS + 100 * data_seed
        train_users = range(first, first + config.n_train_users)
        heldout_users = range(first + 50, first + 50 + config.n_heldout_users)
        return Draw(
            data_seed,
            _flat([self._user_sessions(u, 1, config.session_seconds) for u in train_users]),
            _flat([self._user_sessions(u, 1, config.session_seconds) for u in heldout_users]),
        )

    def _user_sessions(self, user: int, n: int, seconds: float) -> list[SessionArrays]:
        from emgjax.data.synthetic import SyntheticConfig

        generator = SyntheticConfig(duration_s=seconds, high_band_info=self.config.high_band_info)
        return synthetic_sessions(n, seconds, user * _SESSIONS_PER_USER, user=user, config=generator)


def data_source(config: BenchmarkConfig) -> DataSource:
    """The benchmark's data source (reads ``data_dir`` now, so a bad directory fails before any training)."""
    return DataSource(config)


def _flat(groups: Sequence[Sequence[SessionArrays]]) -> list[SessionArrays]:
    return [s for group in groups for s in group]
