"""Record what a stream saw in our MindRove session format (`emgjax.data.mindrove`).

`SessionRecorder` appends each chunk's EMG (in the source's µV, before any filtering, at the source's
channel count) and timestamps, and its IMU rows when the chunk has them (``imu`` stream, attr
``imu_sample_rate``), through `MindRoveSessionWriter`, flushing every ``flush_every_s`` of data, so a
crash loses at most that much. Other streams (labels, prompts, camera frames) go through `append_rows`,
root attributes through `set_attrs`. Gaps stay visible: the timestamps jump over lost samples (the
reader checks only that they increase). Samples whose NaN/Inf values were filled, and the samples right
after each gap, are listed at close in ``stream/filled_samples`` and ``stream/gap_samples`` (sample
indices into ``emg/raw``), and the stream's statistics (`SourceStats`, JSON) in ``stream/stats_json``.
Closing (also through ``with`` on an exception or Ctrl-C) flushes and closes the file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from emgjax.data.mindrove import MindRoveSessionWriter
from emgjax.stream.sources import BlockSource, Chunk, SourceStats

__all__ = ["SessionRecorder"]


class SessionRecorder:
    """Append stream chunks to a MindRove session file.

    Args:
      path: the ``.h5`` file to create.
      sample_rate: the stream's rate in Hz.
      channels: the stream's EMG channel count (stored as attr ``emg_channels``).
      board: the source's description (`BlockSource.info`), stored as the ``board`` attribute.
      flush_every_s: flush to disk after this much recorded time.
      overwrite: replace an existing file (default: refuse).
      subject_id, session_id, hand: session attributes.
      streams: further streams to create now (`emgjax.data.mindrove.STREAMS` keys), so the file's
        structure does not change while it grows.
      attrs: root attributes to store now.
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
        streams: Sequence[str] = (),
        attrs: Mapping[str, Any] | None = None,
    ):
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
            channels=self.channels,
        )
        for stream in streams:
            self._writer.ensure_stream(stream)
        if attrs:
            self._writer.set_attrs(attrs)
        self.samples_written = 0
        self._unflushed = 0
        self._filled: list[np.ndarray] = []
        self._gaps: list[np.ndarray] = []
        self.stats: SourceStats | None = None

    @classmethod
    def for_source(cls, path: str | os.PathLike[str], source: BlockSource, **kwargs: Any) -> SessionRecorder:
        """A recorder matching ``source`` (rate, channels, board description, an ``imu`` stream when it has
        IMU rows); its stats are saved at close."""
        streams = (*kwargs.pop("streams", ()), *(("imu",) if source.has_imu else ()))
        attrs = dict(kwargs.pop("attrs", None) or {})
        if source.has_imu:
            attrs.setdefault("imu_sample_rate", source.sample_rate)  # IMU rows come with every EMG sample
        recorder = cls(
            path,
            sample_rate=source.sample_rate,
            channels=source.channels,
            board=source.info(),
            streams=streams,
            attrs=attrs,
            **kwargs,
        )
        recorder.stats = source.stats
        return recorder

    @property
    def closed(self) -> bool:
        return self._writer is None

    def _open_writer(self) -> MindRoveSessionWriter:
        if self._writer is None:
            raise ValueError(f"{self.path}: the recorder is closed")
        return self._writer

    def append(self, chunk: Chunk) -> None:
        """Append one chunk ((channels, n) EMG and its (n,) timestamps; its (6, n) IMU rows, those with
        finite values, when it has them)."""
        writer = self._open_writer()
        if chunk.emg.shape[0] != self.channels:
            raise ValueError(f"chunk: expected {self.channels} channels, found shape {chunk.emg.shape}")
        writer.append("emg", chunk.emg.T, chunk.timestamps)
        if chunk.imu is not None:
            finite = np.all(np.isfinite(chunk.imu), axis=0)  # the format holds no NaN: such IMU rows are left out
            writer.append("imu", chunk.imu.T[finite], chunk.timestamps[finite])
        index = self.samples_written + np.arange(chunk.samples)
        if chunk.filled.any():
            self._filled.append(index[chunk.filled])
        if chunk.gap.any():
            self._gaps.append(index[chunk.gap])
        self.samples_written += chunk.samples
        self._unflushed += chunk.samples
        if self._unflushed >= self.flush_every_s * self.sample_rate:
            self.flush()

    def append_rows(self, stream: str, values: np.ndarray, timestamps: np.ndarray, **extras: np.ndarray) -> None:
        """Append rows to a non-EMG stream, e.g. labels or prompts (see `MindRoveSessionWriter.append`)."""
        if stream == "emg":
            raise ValueError("stream: expected a stream other than 'emg' (EMG goes through append(chunk))")
        self._open_writer().append(stream, values, timestamps, **extras)

    def set_attrs(self, attrs: Mapping[str, Any]) -> None:
        """Set (or replace) root attributes, e.g. statistics updated while recording."""
        self._open_writer().set_attrs(attrs)

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
