"""emgjax's one on-disk model format, for every model kind, and the one reader and writer of it.

    model = emgjax.load_model("runs/direct/model")          # any kind
    pose = model.predict(raw_emg)                           # raw EMG in, preprocessing applied here
    model.kind, model.config, model.params, model.input_spec, model.output_spec, model.metadata

A model directory (a "bundle")::

    DIR/bundle.json   {"format": "emgjax-model", "format_version": 1, "kind": ...,
                       "config": the kind's config (its to_dict),
                       "input_spec": {channels, sample_rate, units, preprocessing},
                       "output_spec": {what, shape, units, rate, alignment, offset_s, postprocessing},
                       "metadata": {emgjax_version, num_params, source, training report, ...},
                       ["references": {"emg2pose": {path, sha256, format, format_version}}]}
    DIR/variables/    Orbax checkpoint (StandardCheckpointHandler) of the variables pytree

The JSON is ``bundle.json`` rather than ``config.json``: a training run's folder already holds the
experiment's ``config.json``, and the distinct name tells a bundle from the older
"emgjax-emg2pose" directories (``config.json`` + ``variables/``), which `load_model` still reads.

`save_model` is the one writer. It writes into a hidden directory beside DIR and renames it into
place when complete (an existing bundle is moved aside first, then deleted), so a failed or killed
save never leaves a DIR that loads half-written. `load_model` is the one reader; it checks the
format and version, the kind, every variable's shape against the one the config builds, and that
every weight is finite, and reports each problem as one line naming the file.

Kinds (`KINDS`, the one place a new model kind plugs in; see `ModelKind`):

- ``emg2pose``: Meta's emg2pose network (converted, or trained here); `Emg2PoseModel`.
- ``direct``: the MindRove Conv1D + LSTM model (joints or MANO theta).
- ``adapter_pipeline``: channel adapter + upsampler + the frozen emg2pose it was trained against
  (embedded, or by reference to another bundle checked by checksum).
"""

from emgjax.bundle.kinds import adapter_specs, direct_specs
from emgjax.bundle.model import (
    BUNDLE_FILE,
    FORMAT_NAME,
    FORMAT_VERSION,
    KINDS,
    VARIABLES_DIR,
    BundleError,
    Emg2PoseModel,
    InputSpec,
    Model,
    ModelKind,
    OutputSpec,
    Preprocessing,
    PretrainedError,
    StreamState,
    emg2pose_specs,
    register_kind,
)
from emgjax.bundle.store import (
    bundle_checksum,
    is_bundle,
    load_model,
    load_pretrained,
    read_bundle_info,
    read_config,
    resolve_model_dir,
    save_adapter_pipeline,
    save_model,
)
from emgjax.models.adapter.pipeline import AdapterModelConfig

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "BUNDLE_FILE",
    "VARIABLES_DIR",
    "BundleError",
    "PretrainedError",
    "InputSpec",
    "OutputSpec",
    "Preprocessing",
    "StreamState",
    "ModelKind",
    "KINDS",
    "register_kind",
    "AdapterModelConfig",
    "Model",
    "Emg2PoseModel",
    "save_model",
    "save_adapter_pipeline",
    "load_model",
    "load_pretrained",
    "read_bundle_info",
    "read_config",
    "bundle_checksum",
    "is_bundle",
    "resolve_model_dir",
    "direct_specs",
    "adapter_specs",
    "emg2pose_specs",
]
