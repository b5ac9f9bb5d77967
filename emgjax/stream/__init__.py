"""emgjax.stream: live EMG for streaming inference.

- `emgjax.stream.sources`: the `Source` interface and its fixed-size timestamped `Chunk`s (with gap
  and NaN-fill marks), file replay (`FileSource`) and the synthetic generator (`SyntheticSource`).
- `emgjax.stream.mindrove_board`: the MindRove armband or the SDK's synthetic board
  (`MindRoveBoardSource`, optional ``mindrove`` extra), with absent-device, stall and reconnection handling.
- `emgjax.stream.preprocess`: the causal `Preprocessor` with carried filter state, `check_input_spec`
  and `ResampledSource`.
- `emgjax.stream.recorder`: `SessionRecorder`, saving a stream in our MindRove session format.

Layering: above `emgjax.data`, below the command line; the MindRove SDK is imported only when a board
source is made.
"""

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
    lost_from_package_numbers,
    lost_from_timestamps,
    ring_resample_matrix,
)

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
    "Preprocessor",
    "ResampledSource",
    "SYNTHETIC_BOARD",
    "SessionRecorder",
    "Source",
    "SourceStats",
    "SpecMismatchError",
    "SyntheticSource",
    "WIFI_BOARD",
    "board_id_from_name",
    "check_input_spec",
    "lost_from_package_numbers",
    "lost_from_timestamps",
    "require_sdk",
    "resampling_filter",
    "ring_resample_matrix",
]
