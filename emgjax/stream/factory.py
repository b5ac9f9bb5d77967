"""`open_source`: the one factory of live EMG sources by name, for `emgjax stream`, `record` and `calibrate`.

Its own module (not `sources.py`) because it reaches the MindRove board source, which builds on
`sources.py`.
"""

from __future__ import annotations

import os

from emgjax.stream import mindrove_board
from emgjax.stream.sources import BlockSource, FileSource, SyntheticSource, SyntheticTruthSource

__all__ = ["SOURCES", "open_source"]


# The names `open_source` knows; "file" takes a path.
SOURCES = ("mindrove", "synthetic-board", "file", "synthetic")


def open_source(
    name: str,
    path: str | os.PathLike[str] | None = None,
    *,
    chunk_samples: int,
    channels: int = 8,
    sample_rate: float = 500.0,
    seed: int = 0,
    realtime: bool = True,
    board_id: int | None = None,
    truth: bool = False,
) -> BlockSource:
    """The EMG source called ``name`` on the command line (``emgjax record``, ``stream``, ``calibrate``).

    Args:
      name: ``mindrove`` (the armband over WiFi, or SDK board ``board_id``), ``synthetic-board`` (the SDK's
        synthetic board), ``file`` (a recorded session at ``path``), ``synthetic`` (our generator at
        ``channels`` and ``sample_rate``).
      chunk_samples: samples per chunk.
      seed: the synthetic generator's first seed.
      realtime: deliver file and synthetic data at the speed of the clock (False: as fast as possible).
      board_id: the SDK board id for ``mindrove`` / ``synthetic-board`` (default: the WiFi armband / the
        SDK's synthetic board).
      truth: ``synthetic`` only: a `SyntheticTruthSource`, keeping the generator's ground-truth labels.
    Raises:
      ValueError: an unknown name, a path with a source other than ``file`` (or none with it), ``truth``
        with another source; `emgjax.stream.MindRoveSDKMissingError` for a board without the SDK.
    """
    if name not in SOURCES:
        raise ValueError(f"source: expected one of {list(SOURCES)}, found {name!r}")
    if (path is None) == (name == "file"):
        raise ValueError(
            "source file: expected a session file path"
            if name == "file"
            else f"source {name}: expected no path (only 'file' reads one), found {str(path)!r}"
        )
    if truth and name != "synthetic":
        raise ValueError(f"ground-truth labels: expected the synthetic source, found {name!r}")
    if board_id is not None and name not in ("mindrove", "synthetic-board"):
        raise ValueError(f"board id: expected with the mindrove or synthetic-board source, found {name!r}")
    if name == "synthetic":
        kind = SyntheticTruthSource if truth else SyntheticSource
        return kind(channels, sample_rate, chunk_samples=chunk_samples, seed=seed, realtime=realtime)
    if name == "file":
        assert path is not None
        return FileSource(path, chunk_samples=chunk_samples, realtime=realtime)
    if board_id is None:
        board_id = mindrove_board.WIFI_BOARD if name == "mindrove" else mindrove_board.SYNTHETIC_BOARD
    # Looked up on the module at call time: tests put a fake armband there.
    return mindrove_board.MindRoveBoardSource(board_id, chunk_samples=chunk_samples)
