"""Record what a stream saw in our MindRove session format (`emgjax.data.mindrove`).

`SessionRecorder` appends each chunk's EMG (in the source's µV, before any filtering) and timestamps
through `MindRoveSessionWriter`, flushing every ``flush_every_s`` of data, so a crash loses at most that
much. Gaps stay visible: the timestamps jump over lost samples (the reader checks only that they
increase). Samples whose NaN/Inf values were filled, and the samples right after each gap, are listed at
close in ``stream/filled_samples`` and ``stream/gap_samples`` (sample indices into ``emg/raw``), and the
stream's statistics (`SourceStats`, JSON) in ``stream/stats_json``. Closing (also through ``with`` on an
exception or Ctrl-C) flushes and closes the file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from emgjax.data.mindrove import NUM_CHANNELS, MindRoveSessionWriter
from emgjax.stream.sources import BlockSource, Chunk, SourceStats

__all__ = ["SessionRecorder"]


class SessionRecorder:
    """Append stream chunks to a MindRove session file.

    Args:
      path: the ``.h5`` file to create.
      sample_rate: the stream's rate in Hz.
      channels: the stream's channel count (the format stores 8 EMG channels).
      board: the source's description (`BlockSource.info`), stored as the ``board`` attribute.
      flush_every_s: flush to disk after this much recorded time.
      overwrite: replace an existing file (default: refuse).
      subject_id, session_id, hand: session attributes.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        sample_rate: float,
        channels: int,
        board: Mapping[str, Any] | None = None,
        flush_every_s: float = 1.0,
        overwrite: bool = False,
        subject_id: str = "live",
        session_id: str = "stream",
        hand: str = "right",
    ):
        if channels != NUM_CHANNELS:
            raise ValueError(
                f"record: the MindRove session format stores {NUM_CHANNELS} EMG channels, this stream has "
                f"{channels}; record a {NUM_CHANNELS}-channel source"
            )
        self.path = Path(path)
        self.sample_rate = float(sample_rate)
        self.channels = int(channels)
        self.flush_every_s = float(flush_every_s)
        self._writer: MindRoveSessionWriter | None = MindRoveSessionWriter(
            self.path,
            sample_rate=self.sample_rate,
            board=board,
            subject_id=subject_id,
            session_id=session_id,
            hand=hand,
            overwrite=overwrite,
        )
        self.samples_written = 0
        self._unflushed = 0
        self._filled: list[np.ndarray] = []
        self._gaps: list[np.ndarray] = []
        self.stats: SourceStats | None = None

    @classmethod
    def for_source(cls, path: str | os.PathLike[str], source: BlockSource, **kwargs: Any) -> SessionRecorder:
        """A recorder matching ``source`` (rate, channels, board description); its stats are saved at close."""
        recorder = cls(path, sample_rate=source.sample_rate, channels=source.channels, board=source.info(), **kwargs)
        recorder.stats = source.stats
        return recorder

    def append(self, chunk: Chunk) -> None:
        """Append one chunk ((channels, n) EMG and its (n,) timestamps)."""
        if self._writer is None:
            raise ValueError(f"{self.path}: the recorder is closed")
        if chunk.emg.shape[0] != self.channels:
            raise ValueError(f"chunk: expected {self.channels} channels, found shape {chunk.emg.shape}")
        self._writer.append("emg", chunk.emg.T, chunk.timestamps)
        index = self.samples_written + np.arange(chunk.samples)
        if chunk.filled.any():
            self._filled.append(index[chunk.filled])
        if chunk.gap.any():
            self._gaps.append(index[chunk.gap])
        self.samples_written += chunk.samples
        self._unflushed += chunk.samples
        if self._unflushed >= self.flush_every_s * self.sample_rate:
            self.flush()

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()
            self._unflushed = 0

    def close(self) -> None:
        """Write the gap/fill indices and stats, flush and close (idempotent)."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        try:
            for name, parts in (("filled_samples", self._filled), ("gap_samples", self._gaps)):
                writer.add_group_data("stream", name, np.concatenate(parts) if parts else np.zeros(0, np.int64))
            if self.stats is not None:
                writer.add_group_data("stream", "stats_json", np.array(json.dumps(vars(self.stats)).encode()))
        finally:
            writer.close()

    def __enter__(self) -> SessionRecorder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
