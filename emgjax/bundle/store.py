"""Writing and reading bundle directories: the atomic writer `save_model` and the checked reader `load_model`."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pathlib
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from emgjax import errors
from emgjax.bundle.kinds import adapter_specs
from emgjax.bundle.model import (
    BUNDLE_FILE,
    FORMAT_NAME,
    FORMAT_VERSION,
    KINDS,
    LEGACY_CONFIG_FILE,
    LEGACY_FORMAT_NAME,
    VARIABLES_DIR,
    BundleError,
    BundleParts,
    Emg2PoseModel,
    InputSpec,
    Model,
    OutputSpec,
    emg2pose_specs,
)
from emgjax.models.adapter.pipeline import AdapterModelConfig
from emgjax.models.configs import PoseModelConfig


def _flatten(tree: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    if isinstance(tree, Mapping):
        for key, value in tree.items():
            yield from _flatten(value, (*prefix, str(key)))
    else:
        yield "/".join(prefix), tree


def _drop_empty(tree: Any) -> Any:
    """The pytree without empty sub-dicts (Orbax does not store them; loading tolerates their absence)."""
    if not isinstance(tree, Mapping):
        return tree
    kept = {k: _drop_empty(v) for k, v in tree.items()}
    return {k: v for k, v in kept.items() if not (isinstance(v, dict) and not v)}


def _shape_problems(expected: Any, found: Any) -> list[str]:
    want = {path: tuple(np.shape(v)) for path, v in _flatten(expected)}
    have = {path: tuple(np.shape(v)) for path, v in _flatten(found)}
    problems = [f"missing {p} (expected {s})" for p, s in want.items() if p not in have]
    problems += [f"unexpected {p} {s}" for p, s in have.items() if p not in want]
    problems += [f"{p}: expected {s}, found {have[p]}" for p, s in want.items() if p in have and have[p] != s]
    return problems


def _summarise(problems: list[str]) -> str:
    return "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")


def _staging_dir(out_dir: pathlib.Path) -> pathlib.Path:
    """A new empty directory beside `out_dir` (same file system, so publishing it is one rename)."""
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        return pathlib.Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    except OSError as exc:
        raise ValueError(
            f"{out_dir}: cannot write the model directory ({exc.strerror or exc} in {out_dir.parent})"
        ) from exc


def _publish(staging: pathlib.Path, out_dir: pathlib.Path) -> None:
    """Move the finished `staging` directory to `out_dir`, replacing an empty or existing one."""
    if not out_dir.exists() or not any(out_dir.iterdir()):
        os.replace(staging, out_dir)  # atomic, also over an empty directory
        return
    # A non-empty directory cannot be renamed over: move it aside first, put it back if the second rename fails.
    old = pathlib.Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".old", dir=out_dir.parent))
    os.replace(out_dir, old)
    try:
        os.replace(staging, out_dir)
    except OSError:
        os.replace(old, out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


def is_bundle(directory: str | os.PathLike[str]) -> bool:
    """Whether ``directory`` holds a model (a bundle, or an older emgjax-emg2pose directory)."""
    directory = pathlib.Path(directory)
    return (directory / BUNDLE_FILE).is_file() or (
        (directory / LEGACY_CONFIG_FILE).is_file() and (directory / VARIABLES_DIR).is_dir()
    )


def _local_checkpointer() -> Any:
    """An Orbax checkpointer that involves only this process.

    A bundle holds host (NumPy) arrays and is written or read by one process alone: in a multi-process
    run the recipes export it from process 0, and every process reads it. Orbax's default would wait
    for all processes at barriers (or skip the write on non-primary processes).
    """
    import orbax.checkpoint as ocp

    this = jax.process_index()
    options = ocp.options.MultiprocessingOptions(primary_host=this, active_processes={this})
    if jax.process_count() == 1:
        options = ocp.options.MultiprocessingOptions()
    return ocp.Checkpointer(ocp.StandardCheckpointHandler(), multiprocessing_options=options)


def _write_variables(path: pathlib.Path, variables: Any) -> None:
    import orbax.checkpoint as ocp

    checkpointer = _local_checkpointer()
    try:
        checkpointer.save(path, args=ocp.args.StandardSave(variables))
    finally:
        checkpointer.close()


def save_model(
    directory: str | os.PathLike[str],
    kind: str,
    config: Any,
    variables: Mapping[str, Any],
    *,
    input_spec: InputSpec,
    output_spec: OutputSpec,
    metadata: Mapping[str, Any] | None = None,
    references: Mapping[str, Mapping[str, Any]] | None = None,
    overwrite: bool = False,
) -> pathlib.Path:
    """Write a model bundle to ``directory`` atomically; returns its absolute path.

    The one writer of the format (`emgjax convert`, the recipes, the adapter pipelines).
    variables: the pytree {"params", ["batch_stats"]} (JAX or NumPy), checked against the shapes
    ``config`` builds before anything is written. An existing bundle in ``directory`` is replaced;
    any other non-empty directory only with ``overwrite=True``. ``metadata`` gets
    ``emgjax_version`` and ``num_params`` added. ``references``: parts stored in other bundles
    (see `save_adapter_pipeline`).
    """
    from emgjax._version import __version__

    if kind not in KINDS:
        raise BundleError(f"model kind: expected one of {sorted(KINDS)}, found {kind!r}")
    record = KINDS[kind]
    if not isinstance(config, record.config_type):
        raise BundleError(f"{kind} config: expected a {record.config_type.__name__}, found {type(config).__name__}")
    directory = pathlib.Path(directory).absolute()
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"{directory}: expected a directory for the model, found a file")
    if directory.is_dir() and any(directory.iterdir()) and not is_bundle(directory) and not overwrite:
        raise ValueError(
            f"{directory}: expected a new, empty or model directory to write the model to, found other files "
            "(pass overwrite=True to replace them)"
        )
    host = _drop_empty(jax.tree_util.tree_map(lambda x: np.asarray(jax.device_get(x), np.float32), dict(variables)))
    problems = _shape_problems(_drop_empty(record.abstract_variables(config, frozenset(references or ()))), host)
    if problems:
        raise BundleError(f"{directory}: the {kind} variables do not match its config: {_summarise(problems)}")
    info = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "config": record.config_to_dict(config),
        "input_spec": input_spec.to_dict(),
        "output_spec": output_spec.to_dict(),
        "metadata": {
            "emgjax_version": __version__,
            "num_params": int(sum(np.size(x) for x in jax.tree_util.tree_leaves(host.get("params", {})))),
            **dict(metadata or {}),
        },
    }
    if references:
        info["references"] = {name: dict(ref) for name, ref in references.items()}
    text = json.dumps(info, indent=2, allow_nan=False) + "\n"  # fails before anything is written
    staging = _staging_dir(directory)
    try:
        _write_variables(staging / VARIABLES_DIR, host)
        (staging / BUNDLE_FILE).write_text(text)
        _publish(staging, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already unless something failed
    return directory


def bundle_checksum(directory: str | os.PathLike[str]) -> str:
    """sha256 over a bundle's bundle.json and every file under variables/ (names and bytes, sorted)."""
    directory = pathlib.Path(directory)
    digest = hashlib.sha256()
    files = [directory / BUNDLE_FILE, *sorted(p for p in (directory / VARIABLES_DIR).rglob("*") if p.is_file())]
    for path in files:
        digest.update(str(path.relative_to(directory)).encode() + b"\0")
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def save_adapter_pipeline(
    directory: str | os.PathLike[str],
    pipeline_config: Any,
    emg2pose_config: PoseModelConfig,
    variables: Mapping[str, Any],
    *,
    emg2pose_ref: str | os.PathLike[str] | None = None,
    normalisation: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> pathlib.Path:
    """Save an `AdapterPipeline`'s variables with the frozen emg2pose they were trained against.

    variables: {"params": {"adapter", "emg2pose", ["mano_head"]}, "batch_stats": {...}} (as
    ``AdapterPipeline.init`` makes). The emg2pose part is embedded, unless ``emg2pose_ref`` names
    an emg2pose bundle holding exactly those variables: then only the adapter part is written and
    bundle.json records the reference's path (relative to ``directory``) and checksum, both checked
    on load. normalisation: {"mean", "std"} (8 values) the pipeline's input is z-scored with.
    """
    config = AdapterModelConfig(pipeline_config, emg2pose_config)
    variables = {name: dict(tree) for name, tree in variables.items()}
    references = None
    if emg2pose_ref is not None:
        ref_dir = pathlib.Path(emg2pose_ref).absolute()
        frozen = load_pretrained(ref_dir)
        if frozen.config != emg2pose_config:
            raise BundleError(f"{ref_dir}: expected the emg2pose the adapter was trained against, found another config")
        mine = {
            "params": variables["params"].get("emg2pose", {}),
            "batch_stats": variables.get("batch_stats", {}).get("emg2pose", {}),
        }
        same = jax.tree_util.tree_map(
            lambda a, b: bool(np.array_equal(np.asarray(a), np.asarray(b))),
            _drop_empty(mine),
            _drop_empty(frozen.params),
        )
        if not all(jax.tree_util.tree_leaves(same)):
            raise BundleError(f"{ref_dir}: expected the emg2pose weights the adapter was trained against, found others")
        target = pathlib.Path(directory).absolute()
        references = {
            "emg2pose": {
                "path": os.path.relpath(ref_dir, target),
                "sha256": bundle_checksum(ref_dir),
                "format": FORMAT_NAME,
                "format_version": FORMAT_VERSION,
            }
        }
        variables = {name: {k: v for k, v in tree.items() if k != "emg2pose"} for name, tree in variables.items()}
    input_spec, output_spec = adapter_specs(config, normalisation)
    return save_model(
        directory,
        "adapter_pipeline",
        config,
        variables,
        input_spec=input_spec,
        output_spec=output_spec,
        metadata=metadata,
        references=references,
        overwrite=overwrite,
    )


# ============================================================================= reading

# What StandardCheckpointHandler writes into variables/ besides the array data.
_ORBAX_FILES = ("_METADATA", "_CHECKPOINT_METADATA")
# Orbax restores all arrays concurrently through tensorstore. When one read fails, Orbax
# closes its event loop while the other reads are still in flight; each of those then
# reports, as an "unraisable" RuntimeError with a traceback, that it could not deliver its
# result ("Event loop is closed"; "cannot schedule new futures after interpreter shutdown"
# at exit). They are about reads whose result nobody wants, after the one BundleError
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
# asyncio logs later as "Task exception was never retrieved" (or "Future exception ..."). Those name the variables
# folder that a BundleError has already reported; drop exactly those records.
_REPORTED_VARIABLE_DIRS: set[str] = set()
_UNRETRIEVED = ("Task exception was never retrieved", "Future exception was never retrieved")


class _ReportedReadFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None or not str(record.msg).startswith(_UNRETRIEVED):
            return True
        text = str(exc)
        return not any(path in text for path in _REPORTED_VARIABLE_DIRS)


_ASYNCIO_FILTER = _ReportedReadFilter()


def _orbax_failure(variables_path: pathlib.Path, exc: BaseException) -> BundleError:
    """One readable line for a failed Orbax restore; later reports of the same reads are silenced."""
    _REPORTED_VARIABLE_DIRS.add(str(variables_path))
    asyncio_logger = logging.getLogger("asyncio")
    if _ASYNCIO_FILTER not in asyncio_logger.filters:
        asyncio_logger.addFilter(_ASYNCIO_FILTER)
    # tensorstore appends its whole JSON spec to the message: keep the part a person reads.
    message = " ".join(str(exc).split()).split(" [tensorstore_spec", 1)[0]
    return BundleError(
        f"{variables_path}: could not restore the Orbax checkpoint ({type(exc).__name__}: {message[:300]})"
    )


def _check_version(path: pathlib.Path, data: Mapping[str, Any], name: str) -> None:
    if data.get("format") != name:
        raise BundleError(f"{path}: expected format {name!r}, found {data.get('format')!r}")
    version = data.get("format_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        written_by = data.get("metadata", {}).get("emgjax_version") if isinstance(data.get("metadata"), dict) else None
        raise BundleError(
            f"{path}: expected format_version {FORMAT_VERSION}, found {version} (written by a newer emgjax, "
            f"{written_by or data.get('emgjax_version') or 'unknown version'}); upgrade emgjax"
        )
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise BundleError(f"{path}: expected format_version {FORMAT_VERSION}, found {version!r}")


def _legacy_info(path: pathlib.Path, data: dict) -> dict:
    """An "emgjax-emg2pose" v1 config.json as the bundle.json it stands for."""
    _check_version(path, data, LEGACY_FORMAT_NAME)
    if "model" not in data:
        raise BundleError(f"{path}: expected a valid 'model' config, found none")
    metadata = {k: v for k, v in data.items() if k not in ("format", "format_version", "model")}
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "kind": "emg2pose",
        "config": data["model"],
        "metadata": metadata,
    }


def read_bundle_info(directory: str | os.PathLike[str]) -> tuple[pathlib.Path, dict]:
    """(path of the JSON read, its contents as a bundle.json) of a model directory, weights not read.

    Checks the format and version; older "emgjax-emg2pose" config.json directories read as kind emg2pose.
    """
    directory = pathlib.Path(directory).absolute()
    if not directory.exists():
        raise FileNotFoundError(
            f"{directory}: no such model directory (create one with `emgjax convert` or a training recipe)"
        )
    if not directory.is_dir():
        raise BundleError(f"{directory}: expected a model directory, found a file")
    path = directory / BUNDLE_FILE
    if path.is_file():
        data = errors.read_json_object(path, "the model's description", BundleError)
        _check_version(path, data, FORMAT_NAME)
        return path, data
    legacy = directory / LEGACY_CONFIG_FILE
    if legacy.is_file():
        data = errors.read_json_object(legacy, "the model's description", BundleError)
        if data.get("format") == LEGACY_FORMAT_NAME:
            return legacy, _legacy_info(legacy, data)
    raise BundleError(f"{path}: expected the model's {BUNDLE_FILE}, found none")


def read_config(directory: str | os.PathLike[str], *, kind: str | None = None) -> Any:
    """A model directory's config object, without reading the weights (kind: refuse another kind)."""
    json_path, info = read_bundle_info(directory)
    found = info.get("kind")
    if found not in KINDS:
        raise BundleError(f"{json_path}: expected a model kind among {sorted(KINDS)}, found {found!r}")
    if kind is not None and found != kind:
        raise BundleError(f"{json_path}: expected a {kind} model, found a {found} model")
    try:
        return KINDS[found].config_from_dict(info["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{json_path}: expected a valid {found} config, found: {exc}") from exc


def _restore(variables_path: pathlib.Path) -> dict:

    if not variables_path.is_dir():
        raise BundleError(f"{variables_path}: expected the Orbax variables directory, found none")
    # Check the structure before Orbax opens it: a missing piece then gets a plain message.
    missing = [name for name in _ORBAX_FILES if not (variables_path / name).is_file()]
    if missing:
        raise BundleError(
            f"{variables_path}: expected an Orbax checkpoint with {', '.join(_ORBAX_FILES)}, "
            f"found no {', '.join(missing)} (an incomplete or damaged copy)"
        )
    _drop_orphaned_read_errors()
    checkpointer = _local_checkpointer()
    try:
        return dict(checkpointer.restore(variables_path))
    except Exception as exc:  # Orbax raises many types for damaged files; report them as one error
        raise _orbax_failure(variables_path, exc) from exc
    finally:
        checkpointer.close()


def _resolve_references(directory: pathlib.Path, json_path: pathlib.Path, info: dict, variables: dict) -> dict:
    """Splice referenced parts (so far: an adapter pipeline's emg2pose) into ``variables``."""
    references = info.get("references") or {}
    if not isinstance(references, dict) or set(references) - {"emg2pose"}:
        raise BundleError(f"{json_path}: expected references among ['emg2pose'], found {references!r}")
    ref = references.get("emg2pose")
    if ref is None:
        return variables
    if not isinstance(ref, dict) or not isinstance(ref.get("path"), str):
        raise BundleError(f"{json_path}: expected the emg2pose reference as {{path, sha256}}, found {ref!r}")
    ref_dir = (directory / ref["path"]).resolve()
    if (ref.get("format"), ref.get("format_version")) != (FORMAT_NAME, FORMAT_VERSION):
        raise BundleError(
            f"{json_path}: expected a reference to a {FORMAT_NAME!r} v{FORMAT_VERSION} bundle, found "
            f"{ref.get('format')!r} v{ref.get('format_version')!r}"
        )
    if not (ref_dir / BUNDLE_FILE).is_file():
        raise BundleError(f"{json_path}: the referenced emg2pose bundle {ref_dir} is missing")
    if bundle_checksum(ref_dir) != ref.get("sha256"):
        raise BundleError(
            f"{json_path}: the referenced emg2pose bundle {ref_dir} changed since the adapter was saved "
            "(sha256 differs); expected the emg2pose it was trained against"
        )
    frozen = load_pretrained(ref_dir)
    if frozen.config != KINDS["adapter_pipeline"].config_from_dict(info["config"]).emg2pose:
        raise BundleError(f"{json_path}: the referenced emg2pose {ref_dir} has another config than the adapter's")
    params = dict(variables.get("params", {}), emg2pose=frozen.params["params"])
    stats = dict(variables.get("batch_stats", {}), emg2pose=frozen.params.get("batch_stats", {}))
    return {"params": params, "batch_stats": stats}


def resolve_model_dir(path: str | os.PathLike[str]) -> pathlib.Path:
    """``path`` if it is a model directory, else ``path/model`` (where a training run exports its model)."""
    path = pathlib.Path(path)
    return path if is_bundle(path) or not (path / "model").is_dir() else path / "model"


def load_model(directory: str | os.PathLike[str], *, kind: str | None = None) -> Model:
    """Load any model directory (a bundle, or an older `emgjax convert` directory).

    kind: if given, refuse a model of another kind. Returns a `Model` (an `Emg2PoseModel` for
    kind "emg2pose"). Raises FileNotFoundError for a missing directory and `BundleError` (a
    ValueError) naming the file for everything else.
    """
    config = read_config(directory, kind=kind)
    json_path, info = read_bundle_info(directory)
    directory = json_path.parent
    found = info["kind"]
    record = KINDS[found]
    try:
        if "input_spec" in info:
            input_spec, output_spec = InputSpec.from_dict(info["input_spec"]), OutputSpec.from_dict(info["output_spec"])
        else:  # an older emgjax-emg2pose directory
            input_spec, output_spec = emg2pose_specs(config, info["metadata"].get("emg_norm"))
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{json_path}: expected a valid {found} config and specs, found: {exc}") from exc
    metadata = info.get("metadata", {})
    if not isinstance(metadata, dict):
        raise BundleError(f"{json_path}: expected 'metadata' to be a JSON object, found {type(metadata).__name__}")

    variables_path = directory / VARIABLES_DIR
    restored = _restore(variables_path)
    references = frozenset(info.get("references") or ())
    # Orbax does not check shapes against a target, so compare against the config here.
    problems = _shape_problems(_drop_empty(record.abstract_variables(config, references)), restored)
    if problems:
        raise BundleError(f"{variables_path}: variables do not match {json_path.name}: {_summarise(problems)}")
    non_finite = [path for path, value in _flatten(restored) if not np.isfinite(np.asarray(value)).all()]
    if non_finite:
        raise BundleError(
            f"{variables_path}: expected finite weights, found NaN/Inf in {len(non_finite)} "
            f"variable(s), first {non_finite[0]}"
        )
    variables = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float32), restored)
    variables = _resolve_references(directory, json_path, info, variables)
    parts = BundleParts(config, variables, input_spec, output_spec, metadata, directory, json_path)
    if record.make_model is not None:
        return record.make_model(parts)
    return Model(found, config, variables, input_spec, output_spec, metadata, directory)


def load_pretrained(directory: str | os.PathLike[str]) -> Emg2PoseModel:
    """Load an emg2pose model (from `emgjax convert` or trained here); refuses other kinds."""
    model = load_model(directory, kind="emg2pose")
    assert isinstance(model, Emg2PoseModel)
    return model
