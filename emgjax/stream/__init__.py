"""emgjax.stream: live EMG for streaming inference.

- `emgjax.stream.sources`: the `Source` interface and its fixed-size timestamped `Chunk`s (with gap
  and NaN-fill marks, and IMU rows where the device has them), file replay (`FileSource`), the synthetic
  generator (`SyntheticSource`, `SyntheticTruthSource`), and `open_source`, the one factory of the
  sources the commands name (``mindrove``, ``synthetic-board``, ``file``, ``synthetic``).
- `emgjax.stream.mindrove_board`: the MindRove armband or the SDK's synthetic board
  (`MindRoveBoardSource`, optional ``mindrove`` extra), with absent-device, stall and reconnection handling.
- `emgjax.stream.preprocess`: the causal `Preprocessor` with carried filter state, `check_input_spec`
  and `ResampledSource`.
- `emgjax.stream.recorder`: `SessionRecorder`, saving a stream in our MindRove session format.
- `emgjax.stream.runner`: `run_stream`, a source through a model bundle's streaming step, timed, with
  its `StreamReport` (pose FPS, latency percentiles, real-time factor, gaps, NaN fills).
- `emgjax.stream.view`: live views (terminal line, matplotlib window, Rerun) and `make_view`.
- `emgjax.stream.command`: the `emgjax stream` command.

Layering: above `emgjax.data`, below the command line; the MindRove SDK is imported only when a board
source is made.
"""

from emgjax.stream.factory import open_source
from emgjax.stream.mindrove_board import (
    SYNTHETIC_BOARD,
    WIFI_BOARD,
    MindRoveBoardSource,
    MindRoveSDKMissingError,
    board_id_from_name,
    require_sdk,
)
from emgjax.stream.preprocess import (
    Preprocessor,
    ResampledSource,
    SpecMismatchError,
    check_input_spec,
    resampling_filter,
)
from emgjax.stream.recorder import SessionRecorder
from emgjax.stream.runner import StreamReport, run_stream
from emgjax.stream.sources import (
    ArraySource,
    Block,
    BlockSource,
    Chunk,
    DeviceLostError,
    DeviceNotFoundError,
    FileSource,
    Source,
    SourceStats,
    SyntheticSource,
    SyntheticTruthSource,
    lost_from_package_numbers,
    lost_from_timestamps,
    ring_resample_matrix,
)
from emgjax.stream.view import MatplotlibView, RerunView, TerminalView, Throttle, make_view

__all__ = [
    "ArraySource",
    "Block",
    "BlockSource",
    "Chunk",
    "DeviceLostError",
    "DeviceNotFoundError",
    "FileSource",
    "MindRoveBoardSource",
    "MindRoveSDKMissingError",
    "MatplotlibView",
    "Preprocessor",
    "ResampledSource",
    "RerunView",
    "SYNTHETIC_BOARD",
    "SessionRecorder",
    "Source",
    "SourceStats",
    "SpecMismatchError",
    "StreamReport",
    "SyntheticSource",
    "SyntheticTruthSource",
    "TerminalView",
    "Throttle",
    "WIFI_BOARD",
    "board_id_from_name",
    "check_input_spec",
    "lost_from_package_numbers",
    "lost_from_timestamps",
    "make_view",
    "open_source",
    "require_sdk",
    "resampling_filter",
    "ring_resample_matrix",
    "run_stream",
]
