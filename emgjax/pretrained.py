"""Load a converted emg2pose model (the output of `emgjax convert`) and run it.

    model = emgjax.load_pretrained("runs/tracking_vemg2pose")
    pred, target, mask = model(emg, joint_angles, no_ik_failure)   # (B,16,T), (B,20,T), (B,T) bool
    feats = model.features(emg)                                    # (B, 64, T')

Inputs may be NumPy or JAX arrays; they are checked (shapes, dtypes, NaN/Inf,
window length) on the host before the jitted code runs. One jitted function
shared by all models, with the config static: JAX's jit cache keeps one compiled
executable per (config, input shape).
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import sys
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from emgjax import errors
from emgjax.models import pose_modules
from emgjax.models.configs import PoseModelConfig

# The on-disk format (written by `write_pretrained`, read by `load_pretrained`): DIR/config.json
# (format name and version, model config, metadata) and DIR/variables/ (an Orbax checkpoint).
FORMAT_NAME = "emgjax-emg2pose"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
VARIABLES_DIR = "variables"

# Shared by all models: the config is a static (hashable) argument, so models with equal configs reuse
# the same compiled executables; jit keeps one per input shape.
_FORWARD = jax.jit(pose_modules.pose_forward, static_argnums=(0,))
_FEATURES = jax.jit(pose_modules.features, static_argnums=(0,))


class PretrainedError(ValueError):
    """A pretrained directory is missing pieces, corrupt, or does not match its config."""


def _as_float32(name: str, value: Any) -> Any:
    errors.check_array_like(name, value)
    errors.check_float_dtype(name, value)
    return (
        value
        if value.dtype == jnp.float32
        else (value.astype(np.float32) if isinstance(value, np.ndarray) else value.astype(jnp.float32))
    )


@dataclass
class Emg2PoseModel:
    """A converted emg2pose pose module.

    config: the `PoseModelConfig`; params: the variables pytree {"params", ["batch_stats"]} (JAX arrays);
    experiment: published experiment name or None; provide_initial_pos: the experiment's default;
    metadata: the directory's config.json.
    """

    config: PoseModelConfig
    params: dict
    experiment: str | None
    provide_initial_pos: bool
    metadata: dict = field(default_factory=dict)

    def __call__(
        self,
        emg,
        joint_angles,
        no_ik_failure,
        provide_initial_pos: bool | None = None,
        *,
        sample_rate: float | None = None,
    ):
        """emg (B, 16, T), joint_angles (B, 20, T), no_ik_failure (B, T) bool ->
        (pred, target, mask): (B, 20, T − left_context), same, (B, T − left_context) bool.

        provide_initial_pos: start the rollout from the true pose at the left context
        (default: the experiment's setting). sample_rate, if given, must equal the model's (2000 Hz).
        """
        self._check_rate(sample_rate)
        emg = _as_float32("emg", emg)
        joint_angles = _as_float32("joint_angles", joint_angles)
        errors.check_array_like("no_ik_failure", no_ik_failure)
        pose_modules.check_pose_inputs(self.config, emg, joint_angles, no_ik_failure)
        errors.check_nonempty("emg", emg, 0, "example", "(batch, channels, time)")
        if provide_initial_pos is None:
            provide_initial_pos = self.provide_initial_pos
        if not isinstance(provide_initial_pos, (bool, np.bool_)):
            raise ValueError(f"provide_initial_pos: expected a bool, found {type(provide_initial_pos).__name__}")
        # provide_initial_pos is traced, so both settings share one compiled function.
        return _FORWARD(self.config, self.params, emg, joint_angles, no_ik_failure, np.bool_(provide_initial_pos))

    def features(self, emg, *, sample_rate: float | None = None) -> jax.Array:
        """Network features: emg (B, 16, T) -> (B, F, T') channel-first, T' = config.network.output_length(T)."""
        self._check_rate(sample_rate)
        emg = _as_float32("emg", emg)
        pose_modules.check_emg(self.config, emg)
        errors.check_nonempty("emg", emg, 0, "example", "(batch, channels, time)")
        return _FEATURES(self.config, self.params, emg)

    def _check_rate(self, sample_rate):
        if sample_rate is not None and float(sample_rate) != float(self.config.sample_rate):
            raise ValueError(
                f"sample_rate: expected {self.config.sample_rate:g} Hz (the model's), found {sample_rate:g} Hz; "
                "resample the EMG first"
            )

    @property
    def left_context(self) -> int:
        return self.config.left_context


def _expected_shapes(config: PoseModelConfig) -> dict:
    abstract = jax.eval_shape(lambda: pose_modules.init_variables(config, jax.random.key(0)))
    return jax.tree_util.tree_map(lambda x: tuple(x.shape), abstract)


def _flatten(tree, prefix=()):
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _flatten(value, (*prefix, key))
    else:
        yield "/".join(prefix), tree


def write_pretrained(
    directory: str | os.PathLike,
    config: PoseModelConfig,
    variables: dict,
    *,
    experiment: str | None,
    provide_initial_pos: bool,
    source: dict,
    extra: dict | None = None,
) -> pathlib.Path:
    """Write the on-disk format that `load_pretrained` reads: Orbax ``variables/`` + ``config.json``.

    The one writer of the format (used by `emgjax convert` and by models trained here).
    Replaces an existing ``variables/``; ``extra`` entries are added to config.json and come
    back in ``model.metadata``.
    """
    import shutil

    import orbax.checkpoint as ocp

    from emgjax._version import __version__

    directory = pathlib.Path(directory).absolute()
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"{directory}: expected a directory for the pretrained model, found a file")
    directory.mkdir(parents=True, exist_ok=True)
    variables_path = directory / VARIABLES_DIR
    if variables_path.exists():
        shutil.rmtree(variables_path)
    checkpointer = ocp.Checkpointer(ocp.StandardCheckpointHandler())
    try:
        checkpointer.save(variables_path, args=ocp.args.StandardSave(variables))
    finally:
        checkpointer.close()
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "experiment": experiment,
        "provide_initial_pos": bool(provide_initial_pos),
        "model": config.to_dict(),
        "num_params": int(sum(np.size(x) for x in jax.tree_util.tree_leaves(variables.get("params", {})))),
        "emgjax_version": __version__,
        "source": source,
        **dict(extra or {}),
    }
    (directory / CONFIG_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    return directory


# What StandardCheckpointHandler writes into variables/ besides the array data.
_ORBAX_FILES = ("_METADATA", "_CHECKPOINT_METADATA")
# Orbax restores all arrays concurrently through tensorstore. When one read fails, Orbax
# closes its event loop while the other reads are still in flight; each of those then
# reports, as an "unraisable" RuntimeError with a traceback, that it could not deliver its
# result ("Event loop is closed"; "cannot schedule new futures after interpreter shutdown"
# at exit). They are about reads whose result nobody wants, after the one PretrainedError
# that matters, so this hook drops exactly those and passes every other report on.
_ORPHANED_READ_ERRORS = ("Event loop is closed", "cannot schedule new futures")


def _drop_orphaned_read_errors() -> None:
    previous = sys.unraisablehook
    if getattr(previous, "emgjax_orphaned_read_filter", False):
        return

    def hook(unraisable: Any) -> None:
        exc = unraisable.exc_value
        if isinstance(exc, RuntimeError) and str(exc).startswith(_ORPHANED_READ_ERRORS):
            return
        previous(unraisable)

    hook.emgjax_orphaned_read_filter = True  # type: ignore[attr-defined]
    sys.unraisablehook = hook


# The reads still in flight when one fails may also end with their own exception, which
# asyncio logs later as "Task exception was never retrieved". Those name the variables
# folder that a PretrainedError has already reported; drop exactly those records.
_REPORTED_VARIABLE_DIRS: set[str] = set()


class _ReportedReadFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None or not str(record.msg).startswith("Task exception was never retrieved"):
            return True
        text = str(exc)
        return not any(path in text for path in _REPORTED_VARIABLE_DIRS)


_ASYNCIO_FILTER = _ReportedReadFilter()


def _orbax_failure(variables_path: pathlib.Path, exc: BaseException) -> PretrainedError:
    """One readable line for a failed Orbax restore; later reports of the same reads are silenced."""
    _REPORTED_VARIABLE_DIRS.add(str(variables_path))
    asyncio_logger = logging.getLogger("asyncio")
    if _ASYNCIO_FILTER not in asyncio_logger.filters:
        asyncio_logger.addFilter(_ASYNCIO_FILTER)
    # tensorstore appends its whole JSON spec to the message: keep the part a person reads.
    message = " ".join(str(exc).split()).split(" [tensorstore_spec", 1)[0]
    return PretrainedError(
        f"{variables_path}: could not restore the Orbax checkpoint ({type(exc).__name__}: {message[:300]})"
    )


def load_pretrained(directory: str | os.PathLike) -> Emg2PoseModel:
    """Load `directory` written by `emgjax convert` (config.json + Orbax variables/)."""
    import orbax.checkpoint as ocp

    directory = pathlib.Path(directory).absolute()
    if not directory.exists():
        raise FileNotFoundError(f"{directory}: no such pretrained directory (create one with `emgjax convert`)")
    if not directory.is_dir():
        raise PretrainedError(f"{directory}: expected a directory written by `emgjax convert`, found a file")
    config_path = directory / CONFIG_FILE
    if not config_path.is_file():
        raise PretrainedError(f"{config_path}: expected the model's config.json, found none")
    try:
        metadata = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PretrainedError(f"{config_path}: expected JSON, found unreadable text ({exc})") from exc
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        found = metadata.get("format") if isinstance(metadata, dict) else type(metadata).__name__
        raise PretrainedError(f"{config_path}: expected format {FORMAT_NAME!r}, found {found!r}")
    version = metadata.get("format_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise PretrainedError(
            f"{config_path}: expected format_version {FORMAT_VERSION}, found {version} (written by a "
            f"newer emgjax, {metadata.get('emgjax_version', 'unknown version')}); upgrade emgjax"
        )
    if version != FORMAT_VERSION:
        raise PretrainedError(f"{config_path}: expected format_version {FORMAT_VERSION}, found {version!r}")
    try:
        config = PoseModelConfig.from_dict(metadata["model"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PretrainedError(f"{config_path}: expected a valid 'model' config, found: {exc}") from exc

    variables_path = directory / VARIABLES_DIR
    if not variables_path.is_dir():
        raise PretrainedError(f"{variables_path}: expected the Orbax variables directory, found none")
    # Check the structure before Orbax opens it: a missing piece then gets a plain message.
    missing = [name for name in _ORBAX_FILES if not (variables_path / name).is_file()]
    if missing:
        raise PretrainedError(
            f"{variables_path}: expected an Orbax checkpoint with {', '.join(_ORBAX_FILES)}, "
            f"found no {', '.join(missing)} (an incomplete or damaged copy)"
        )
    _drop_orphaned_read_errors()
    checkpointer = ocp.Checkpointer(ocp.StandardCheckpointHandler())
    try:
        restored = checkpointer.restore(variables_path)
    except Exception as exc:  # Orbax raises many types for damaged files; report them as one error
        raise _orbax_failure(variables_path, exc) from exc
    finally:
        checkpointer.close()

    # Orbax does not check shapes against a target, so compare against the config here.
    expected = dict(_flatten(_expected_shapes(config)))
    found = {path: tuple(np.shape(value)) for path, value in _flatten(restored)}
    problems = [f"missing {p} (expected {s})" for p, s in expected.items() if p not in found]
    problems += [f"unexpected {p} {s}" for p, s in found.items() if p not in expected]
    problems += [f"{p}: expected {s}, found {found[p]}" for p, s in expected.items() if p in found and found[p] != s]
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise PretrainedError(f"{variables_path}: variables do not match config.json: {shown}")
    non_finite = [path for path, value in _flatten(restored) if not np.isfinite(np.asarray(value)).all()]
    if non_finite:
        raise PretrainedError(
            f"{variables_path}: expected finite weights, found NaN/Inf in {len(non_finite)} "
            f"variable(s), first {non_finite[0]}"
        )
    params = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float32), restored)
    experiment = metadata.get("experiment")
    provide_initial_pos = metadata.get("provide_initial_pos")
    if not isinstance(provide_initial_pos, bool):
        raise PretrainedError(f"{config_path}: expected a boolean 'provide_initial_pos', found {provide_initial_pos!r}")
    return Emg2PoseModel(config, params, experiment, provide_initial_pos, metadata)


__all__ = ["Emg2PoseModel", "load_pretrained", "PretrainedError"]
