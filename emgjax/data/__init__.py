"""emgjax.data: session files, windowed datasets and the batching loader.

- `emgjax.data.emg2pose`: emg2pose HDF5 sessions (lazy reader, writer).
- `emgjax.data.mindrove`: emgjax's versioned MindRove session schema, reader,
  incremental writer and importer of the original project's recordings.
- `emgjax.data.windows`: windowed datasets, augmentations, session splits.
- `emgjax.data.loader`: seeded, sharded, prefetching, resumable batching.

Signal processing (`emgjax.data.signal`) and the synthetic generator
(`emgjax.data.synthetic`) are imported from their own modules.
"""

from emgjax.data.emg2pose import (
    Emg2PoseSession,
    SessionFormatError,
    contiguous_runs,
    ik_failure_free,
    write_emg2pose_session,
)
from emgjax.data.loader import Loader, collate, window_rng
from emgjax.data.mindrove import (
    MindRoveSession,
    MindRoveSessionWriter,
    import_original_recording,
    interpolate_labels,
    write_mindrove_session,
)
from emgjax.data.windows import (
    ChannelDownsampling,
    Emg2PoseWindows,
    MindRoveWindows,
    RandomChannelRotation,
    check_disjoint_splits,
    downsample_channels,
    load_splits,
    rotate_channels,
    split_sessions,
)

__all__ = [
    "ChannelDownsampling",
    "Emg2PoseSession",
    "Emg2PoseWindows",
    "Loader",
    "MindRoveSession",
    "MindRoveSessionWriter",
    "MindRoveWindows",
    "RandomChannelRotation",
    "SessionFormatError",
    "check_disjoint_splits",
    "collate",
    "contiguous_runs",
    "downsample_channels",
    "ik_failure_free",
    "import_original_recording",
    "interpolate_labels",
    "load_splits",
    "rotate_channels",
    "split_sessions",
    "window_rng",
    "write_emg2pose_session",
    "write_mindrove_session",
]
