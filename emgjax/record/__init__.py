"""emgjax.record: make training data from an armband and a camera.

- `emgjax.record.camera`: camera sources (webcam, video file, image folder, synthetic) on ``time.monotonic``.
- `emgjax.record.labels`: MediaPipe Hands labels in a worker that never blocks EMG; the IK hook.
- `emgjax.record.recorder`: `record_session`, writing a MindRove session incrementally and crash-safely.
- `emgjax.record.inputs`: `choose_labels` and `open_inputs`, the source, camera, labeller and preview of a
  recording (``emgjax record`` and ``emgjax calibrate``).
- `emgjax.record.check`: ``emgjax check`` (duration, gaps, label coverage, IK error, prompts).
- `emgjax.record.relabel`: ``emgjax label`` (labels recomputed from a session's video).
- `emgjax.record.preview`: the live view (camera + landmarks + EMG strip chart).

Layering: above `emgjax.stream`, `emgjax.data` and `emgjax.kinematics`, below the command line. OpenCV and
MediaPipe are optional (``pip install 'emgjax[record]'``), imported only when used.
"""

from emgjax.record.camera import (
    CameraError,
    CameraSource,
    Frame,
    ImageFolderSource,
    MissingExtraError,
    SyntheticCamera,
    VideoFileSource,
    WebcamSource,
    open_camera,
)
from emgjax.record.check import check_session, format_check
from emgjax.record.inputs import RecordingInputs, choose_labels, open_inputs
from emgjax.record.labels import (
    HandLabel,
    LabelWorker,
    MediaPipeLabeller,
    joint_angles_from_landmarks,
    require_mediapipe,
)
from emgjax.record.recorder import (
    LiveRecorder,
    PromptSchedule,
    RecordingStats,
    SyntheticTruthSource,
    record_session,
)
from emgjax.record.relabel import relabel_session

__all__ = [
    "CameraError",
    "CameraSource",
    "Frame",
    "HandLabel",
    "ImageFolderSource",
    "LabelWorker",
    "LiveRecorder",
    "MediaPipeLabeller",
    "MissingExtraError",
    "PromptSchedule",
    "RecordingInputs",
    "RecordingStats",
    "SyntheticCamera",
    "SyntheticTruthSource",
    "VideoFileSource",
    "WebcamSource",
    "check_session",
    "choose_labels",
    "format_check",
    "joint_angles_from_landmarks",
    "open_camera",
    "open_inputs",
    "record_session",
    "relabel_session",
    "require_mediapipe",
]
