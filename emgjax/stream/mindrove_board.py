"""MindRove armband (and the SDK's synthetic board) as a `Source`, through the ``mindrove`` SDK.

Install the optional SDK with ``pip install 'emgjax[mindrove]'``. Everything about the board is read
from ``BoardShim`` for the given board id, never hard-coded: the EMG rows (``get_emg_channels``), the
rate (``get_sampling_rate``), the timestamp row and the package-number row (the WiFi armband: 8 EMG
rows at 500 Hz; the SDK's ``SYNTHETIC_BOARD``: 16 rows at 250 Hz), and the accelerometer and gyroscope
rows (``get_accel_channels``, ``get_gyro_channels``): a board with three of each delivers them in
`Chunk.imu` (6, n) at the EMG's timestamps, in the SDK's units (no ``scale``).

Units. BrainFlow-derived SDKs return ExG rows in µV, so ``scale=1.0`` (the default) keeps the SDK's
values as µV. Firmware or SDK versions that deliver raw ADC counts need the count size, e.g.
``scale=0.045`` (µV per bit at 12× gain, as reported by users); check the SDK's documentation for yours.

Drop-outs. The SDK starts a session silently even with no armband and then delivers nothing, so
this source watches the samples itself:

* no sample within ``no_data_timeout_s`` (3 s) of starting: `DeviceNotFoundError`;
* no sample for ``stall_timeout_s`` mid-stream: a stall. The session is released and re-opened after
  each delay of ``reconnect_backoff_s`` in turn (each attempt waits ``no_data_timeout_s`` for data); if
  none brings data back, `DeviceLostError` (the board is released first, so the stream stops cleanly);
* dropped packets: the package-number row jumps (wrapping at ``package_modulus``). The lost samples are
  marked as a gap (`Chunk.gap`), counted, and the timestamps jump by the lost time.

Timestamps. The SDK's timestamp row is the host's arrival time (packets arrive in bursts, so samples of
one packet share or jitter around a time). Chunk timestamps are therefore the sample clock: the SDK
timestamp of the first sample plus (samples received + samples lost) / rate. Across a reconnection
the device's counter restarts, so the samples lost in between are counted from the SDK clock.

The WiFi board talks to the armband's own access point: tests never open it; they use the SDK's
``SYNTHETIC_BOARD`` or inject a fake ``shim`` (any object with BoardShim's static descriptor methods
and constructor).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from emgjax.stream.sources import (
    Block,
    BlockSource,
    Clock,
    DeviceLostError,
    DeviceNotFoundError,
    NanFill,
    Sleep,
    lost_from_package_numbers,
    lost_from_timestamps,
)

__all__ = [
    "MindRoveSDKMissingError",
    "require_sdk",
    "board_id_from_name",
    "MindRoveBoardSource",
    "WIFI_BOARD",
    "SYNTHETIC_BOARD",
]

# The SDK's BoardIds values (mindrove 5.3); used only as defaults, the board's layout comes from BoardShim.
WIFI_BOARD = 0
SYNTHETIC_BOARD = -1


class MindRoveSDKMissingError(ModuleNotFoundError, ValueError):
    """The optional ``mindrove`` SDK is not installed (a ValueError too, so commands print one line)."""


def require_sdk() -> Any:
    """The SDK's ``mindrove.board_shim`` module, or a clear `MindRoveSDKMissingError`."""
    try:
        from mindrove import board_shim
    except ImportError as err:
        raise MindRoveSDKMissingError(
            f"the MindRove SDK is not installed ({err}); install it with: pip install 'emgjax[mindrove]'",
            name="mindrove",
        ) from None
    return board_shim


def board_id_from_name(name: str | int) -> int:
    """A board id from an SDK ``BoardIds`` name (``"MINDROVE_WIFI_BOARD"``, ``"SYNTHETIC_BOARD"``) or int."""
    if isinstance(name, (int, np.integer)) and not isinstance(name, bool):
        return int(name)
    board_ids = require_sdk().BoardIds
    key = str(name).strip().upper().replace("-", "_")
    if key not in board_ids.__members__:
        raise ValueError(f"board: expected one of {sorted(board_ids.__members__)} or an integer id, found {name!r}")
    return int(board_ids[key].value)


def _sdk_version() -> str | None:
    try:
        return importlib.metadata.version("mindrove")
    except importlib.metadata.PackageNotFoundError:
        return None


class MindRoveBoardSource(BlockSource):
    """A MindRove board streamed through ``BoardShim`` (see the module docstring for drop-outs and units).

    Args:
      board_id: SDK board id (0: the WiFi armband, -1: the SDK's synthetic board).
      chunk_samples: samples per chunk.
      input_params: ``MindRoveInputParams`` fields to set (e.g. ``{"ip_address": ...}``); default none.
      scale: multiplies the SDK's EMG values to give µV (``units``).
      no_data_timeout_s: start-up (and per reconnection) wait for a first sample.
      stall_timeout_s: silence mid-stream that counts as a stall.
      reconnect_backoff_s: the delay before each reconnection attempt (its length bounds the attempts).
      poll_interval_s: sleep between polls of the SDK's buffer when it is empty.
      package_modulus: the package counter wraps at this value (256 on the SDK's boards).
      shim: the ``BoardShim`` class, or a fake with the same interface (default: the SDK's).
      clock, sleep: injectable time functions.
    """

    def __init__(
        self,
        board_id: int = WIFI_BOARD,
        *,
        chunk_samples: int,
        input_params: Mapping[str, Any] | None = None,
        scale: float = 1.0,
        units: str = "uV",
        no_data_timeout_s: float = 3.0,
        stall_timeout_s: float = 1.0,
        reconnect_backoff_s: Sequence[float] = (0.5, 1.0, 2.0, 4.0),
        poll_interval_s: float = 0.005,
        package_modulus: int = 256,
        shim: Any = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        nan_fill: NanFill = "hold",
    ):
        self._sdk: Any = None
        if shim is None:
            self._sdk = require_sdk()
            shim = self._sdk.BoardShim
        self._shim: Any = shim
        self.board_id = int(board_id)
        try:
            rows = [int(r) for r in self._shim.get_emg_channels(self.board_id)]
            rate = float(self._shim.get_sampling_rate(self.board_id))
            self._timestamp_row = int(self._shim.get_timestamp_channel(self.board_id))
        except Exception as err:  # the SDK raises its own MindRoveError for unknown boards
            raise ValueError(
                f"board_id {self.board_id}: the MindRove SDK cannot describe this board (no EMG rows, rate or "
                f"timestamp row): {err}"
            ) from None
        if not rows:
            raise ValueError(f"board_id {self.board_id}: the MindRove SDK lists no EMG rows for this board")
        try:
            self._package_row: int | None = int(self._shim.get_package_num_channel(self.board_id))
        except Exception:  # boards without a package counter: gaps come from the timestamps only
            self._package_row = None
        self.imu_rows = self._imu_rows()
        self.emg_rows = tuple(rows)
        self.scale = float(scale)
        if not (math.isfinite(self.scale) and self.scale != 0):
            raise ValueError(f"scale: expected a finite non-zero number of {units} per SDK unit, found {scale!r}")
        super().__init__(
            channels=len(rows),
            sample_rate=rate,
            chunk_samples=chunk_samples,
            units=units,
            nan_fill=nan_fill,
            imu=bool(self.imu_rows),
        )
        self.board_name = self._board_name()
        self.name = f"MindRove {self.board_name} (board id {self.board_id})"
        self.input_params = dict(input_params or {})
        for key, value in (
            ("no_data_timeout_s", no_data_timeout_s),
            ("stall_timeout_s", stall_timeout_s),
            ("poll_interval_s", poll_interval_s),
        ):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{key}: expected a positive number of seconds, found {value!r}")
        self.no_data_timeout_s = float(no_data_timeout_s)
        self.stall_timeout_s = float(stall_timeout_s)
        self.poll_interval_s = float(poll_interval_s)
        self.reconnect_backoff_s = tuple(float(d) for d in reconnect_backoff_s)
        if any(not (math.isfinite(d) and d >= 0) for d in self.reconnect_backoff_s):
            raise ValueError(f"reconnect_backoff_s: expected delays >= 0 s, found {tuple(reconnect_backoff_s)!r}")
        if not isinstance(package_modulus, int) or package_modulus < 2:
            raise ValueError(f"package_modulus: expected an integer >= 2, found {package_modulus!r}")
        self.package_modulus = package_modulus
        self._clock, self._sleep = clock, sleep
        self._board: Any = None
        self._received = 0
        self._last_data_time = 0.0
        self._prev_package: float | None = None
        self._prev_sdk_time: float | None = None
        self._anchor: float | None = None  # SDK time of the first sample: the sample clock's origin
        self._next_position = 0  # samples received + lost so far

    def _imu_rows(self) -> tuple[int, ...]:
        """The accelerometer then gyroscope rows (3 + 3), or () when the board (or a fake shim) has none."""
        try:
            accel = [int(r) for r in self._shim.get_accel_channels(self.board_id)]
            gyro = [int(r) for r in self._shim.get_gyro_channels(self.board_id)]
        except Exception:  # the SDK raises for boards without them; fakes may not describe them
            return ()
        return tuple(accel + gyro) if len(accel) == 3 and len(gyro) == 3 else ()

    def _board_name(self) -> str:
        if self._sdk is not None:
            try:
                return str(self._sdk.BoardIds(self.board_id).name)
            except ValueError:
                pass
        return f"board {self.board_id}"

    def info(self) -> dict[str, Any]:
        return {
            "name": self.board_name,
            "board_id": self.board_id,
            "emg_channel_rows": list(self.emg_rows),
            "imu_rows": list(self.imu_rows),
            "scale_uv_per_unit": self.scale,
            "sdk_version": _sdk_version(),
        }

    # -- SDK session ------------------------------------------------------

    def _params(self) -> Any:
        if self._sdk is None:  # a fake shim: hand it the fields as given
            return dict(self.input_params)
        params = self._sdk.MindRoveInputParams()
        for key, value in self.input_params.items():
            if not hasattr(params, key):
                raise ValueError(f"input_params: MindRoveInputParams has no field {key!r}")
            setattr(params, key, value)
        return params

    def _open_board(self) -> None:
        board = self._shim(self.board_id, self._params())
        self._board = board
        board.prepare_session()
        board.start_stream()

    def _release_board(self) -> None:
        board, self._board = self._board, None
        if board is None:
            return
        for step in ("stop_stream", "release_session"):
            # Already stopped, or the device vanished: releasing must not raise.
            with contextlib.suppress(Exception):
                getattr(board, step)()

    def _start(self) -> None:
        try:
            self._open_board()
        except Exception as err:
            self._release_board()
            raise ConnectionError(f"{self.name}: cannot start the session: {err}") from None
        self._last_data_time = self._clock()

    def _stop(self) -> None:
        self._release_board()

    # -- reading ----------------------------------------------------------

    def _poll(self) -> np.ndarray | None:
        data = np.asarray(self._board.get_board_data())
        if data.ndim != 2 or data.shape[1] == 0:
            return None
        return data

    def _read_block(self) -> Block | None:
        while True:
            data = self._poll()
            if data is not None:
                self._last_data_time = self._clock()
                return self._block(data)
            silent = self._clock() - self._last_data_time
            if self._received == 0 and silent >= self.no_data_timeout_s:
                self.close()
                raise DeviceNotFoundError(
                    f"{self.name}: no data within {self.no_data_timeout_s:g} s of starting the stream (the SDK "
                    "starts silently without an armband): is the armband switched on, charged, and this "
                    "computer connected to its WiFi network?"
                )
            if self._received > 0 and silent >= self.stall_timeout_s:
                data = self._reconnect()
                self._last_data_time = self._clock()
                return self._block(data)
            self._sleep(self.poll_interval_s)

    def _reconnect(self) -> np.ndarray:
        """Re-open the session with back-off until data flows; the first data, or `DeviceLostError`."""
        self.stats.stalls += 1
        stalled_at = self._clock()
        last_error = "no data"
        self._release_board()
        for delay in self.reconnect_backoff_s:
            self._sleep(delay)
            self.stats.reconnect_attempts += 1
            try:
                self._open_board()
            except Exception as err:
                last_error = f"cannot start the session: {err}"
                self._release_board()
                continue
            opened = self._clock()
            while self._clock() - opened < self.no_data_timeout_s:
                data = self._poll()
                if data is not None:
                    self.stats.reconnects += 1
                    self._prev_package = None  # the device's counter restarts with the session
                    return data
                self._sleep(self.poll_interval_s)
            last_error = f"no data within {self.no_data_timeout_s:g} s"
            self._release_board()
        self.close()
        raise DeviceLostError(
            f"{self.name}: the device stopped sending after {self._received} samples and "
            f"{len(self.reconnect_backoff_s)} reconnection attempt(s) over {self._clock() - stalled_at:.1f} s "
            f"failed (last: {last_error}); the stream was stopped. Is the armband on, charged and in range?"
        )

    def _block(self, data: np.ndarray) -> Block:
        emg = data[list(self.emg_rows)].astype(np.float64) * self.scale
        sdk_times = data[self._timestamp_row].astype(np.float64)
        k = data.shape[1]
        by_clock = lost_from_timestamps(sdk_times, self.sample_rate, self._prev_sdk_time)
        if self._package_row is not None:
            packages = data[self._package_row]
            lost = lost_from_package_numbers(packages, self._prev_package, self.package_modulus, by_clock)
            if self._prev_package is None:
                # First data of a session: within it the counter tells; across the silence before it, the clock.
                lost[0] = by_clock[0]
        else:
            lost = by_clock
        if self._anchor is None:
            self._anchor = float(sdk_times[0])
        # Position of each sample on the sample clock: every received and every lost sample counts.
        positions = self._next_position + np.arange(k) + np.cumsum(lost)
        times = self._anchor + positions / self.sample_rate
        self._next_position = int(positions[-1]) + 1
        if self._package_row is not None:
            self._prev_package = float(data[self._package_row, -1])
        self._prev_sdk_time = float(sdk_times[-1])
        self._received += k
        imu = data[list(self.imu_rows)].astype(np.float64) if self.imu_rows else None
        return Block(emg, times, lost, imu=imu)
