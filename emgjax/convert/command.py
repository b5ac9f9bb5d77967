"""`emgjax convert IN.ckpt OUT_DIR [--experiment NAME]`: Meta emg2pose Lightning checkpoint -> emgjax.

Reads the checkpoint without torch (`ckpt_reader`), derives the model config
from its Hydra ``hyper_parameters`` (or takes a published experiment's config
with ``--experiment`` when the file has none), maps every tensor
(`emg2pose_map`), and writes

a model bundle (`emgjax.bundle`, kind "emg2pose"):

  OUT_DIR/bundle.json    model config, input/output specs; metadata: experiment,
                         provide_initial_pos, emgjax version, source file name and sha256
  OUT_DIR/variables/     Orbax checkpoint of {"params", ["batch_stats"]}

OUT_DIR appears only when complete (`emgjax.bundle.save_model` writes beside it,
then renames), so a failed or killed run leaves no half-written OUT_DIR.

Optimizer state, loops and callbacks in the checkpoint are ignored (logged).
Load the result with `emgjax.load_pretrained(OUT_DIR)` or `emgjax.load_model(OUT_DIR)`.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import pathlib
import sys

from emgjax.models.configs import EXPERIMENTS, PoseModelConfig

LOG = logging.getLogger("emgjax.convert")

LICENSE_NOTE = (
    "Converted from Meta's emg2pose weights, which are licensed CC-BY-NC-SA-4.0; "
    "the converted parameters keep that licence."
)


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def resolve_model(
    hyper_parameters: dict, experiment: str | None, source: str
) -> tuple[PoseModelConfig, str | None, bool]:
    """(model config, experiment name, provide_initial_pos) from a checkpoint's hyper_parameters and --experiment."""
    from emgjax.convert import emg2pose_map as mapping

    if experiment is not None and experiment not in EXPERIMENTS:
        raise ValueError(f"--experiment: expected one of {sorted(EXPERIMENTS)}, found {experiment!r}")
    if isinstance(hyper_parameters, dict) and "network_conf" in hyper_parameters:
        config = mapping.model_config_from_hyper_parameters(hyper_parameters)
        recognised = mapping.experiment_name_from_hyper_parameters(hyper_parameters)
        if experiment is not None and recognised is not None and experiment != recognised:
            raise ValueError(
                f"{source}: --experiment {experiment} does not match the checkpoint, whose network_conf "
                f"describes {recognised}"
            )
        name = experiment or recognised
        if name is None:
            LOG.warning(
                "%s: network_conf matches no published experiment; converting it as a custom %r model",
                source,
                config.kind,
            )
    elif experiment is not None:
        LOG.info("%s: no network_conf in hyper_parameters; using the published %s config", source, experiment)
        config, name = EXPERIMENTS[experiment].model, experiment
    else:
        raise ValueError(
            f"{source}: expected hyper_parameters with a 'network_conf' (Meta's Hydra config), found "
            f"{sorted(hyper_parameters) if isinstance(hyper_parameters, dict) else 'none'}; "
            f"pass --experiment NAME (one of {sorted(EXPERIMENTS)}) to use a published config"
        )
    provide_initial_pos = mapping.provide_initial_pos_from_hyper_parameters(hyper_parameters, name)
    return config, name, provide_initial_pos


def check_output_dir(out_dir: pathlib.Path, overwrite: bool) -> None:
    """Refuse an OUT_DIR that is a file, is not writable, or (without --overwrite) holds files."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir}: expected an output directory, found a file")
    if out_dir.is_dir():
        if any(out_dir.iterdir()) and not overwrite:
            raise ValueError(
                f"{out_dir}: expected a new or empty output directory, found existing files "
                f"(pass --overwrite to replace them)"
            )
        if not os.access(out_dir, os.W_OK):
            raise ValueError(f"{out_dir}: expected a writable output directory, found a read-only one")
    parent = out_dir.parent
    while not parent.exists():  # created on publishing; check the nearest existing ancestor
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{out_dir}: expected an output directory path, found that {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{out_dir}: expected a writable location, found {parent} read-only")


def convert_checkpoint(
    checkpoint_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    experiment: str | None = None,
    *,
    overwrite: bool = False,
) -> pathlib.Path:
    """Convert one Lightning .ckpt into an emgjax model bundle (kind "emg2pose"); returns the directory.

    The output is written into a hidden directory beside OUT_DIR and renamed into place
    when complete, so a failure or a kill never leaves a half-written OUT_DIR.
    """
    import jax

    from emgjax.bundle import emg2pose_specs, save_model
    from emgjax.convert import emg2pose_map as mapping
    from emgjax.convert.ckpt_reader import read_lightning_checkpoint

    checkpoint_path = pathlib.Path(checkpoint_path)
    out_dir = pathlib.Path(out_dir).absolute()
    check_output_dir(out_dir, overwrite)

    checkpoint = read_lightning_checkpoint(checkpoint_path)
    source = str(checkpoint_path)
    config, name, provide_initial_pos = resolve_model(checkpoint.hyper_parameters, experiment, source)
    ignored = [k for k in checkpoint.top_level_keys if k not in ("state_dict", "hyper_parameters")]
    if "optimizer_states" in ignored:
        LOG.info("%s: optimizer state (optimizer_states) is ignored; only the model weights are converted", source)
    if ignored:
        LOG.info("%s: also ignored: %s", source, ", ".join(k for k in ignored if k != "optimizer_states"))
    variables = mapping.convert_state_dict(checkpoint.state_dict, config, source=source)

    input_spec, output_spec = emg2pose_specs(config)
    save_model(
        out_dir,
        "emg2pose",
        config,
        variables,
        input_spec=input_spec,
        output_spec=output_spec,
        metadata={
            "experiment": name,
            "provide_initial_pos": provide_initial_pos,
            "source": {
                "file": checkpoint_path.name,
                "sha256": sha256_of(checkpoint_path),
                "top_level_keys": list(checkpoint.top_level_keys),
            },
            "license": LICENSE_NOTE,
        },
        overwrite=overwrite,
    )
    num_params = sum(int(v.size) for v in jax.tree_util.tree_leaves(variables.get("params", {})))
    LOG.info(
        "wrote %s (%s, %d parameters, provide_initial_pos=%s)",
        out_dir,
        name or "custom",
        num_params,
        provide_initial_pos,
    )
    return out_dir


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emgjax convert",
        description="Convert a PyTorch Lightning emg2pose checkpoint (.ckpt) into emgjax parameters "
        "(no torch needed). Load the result with emgjax.load_pretrained(OUT_DIR).",
    )
    parser.add_argument("checkpoint", help="input Lightning .ckpt file")
    parser.add_argument("out_dir", help="output directory (new or empty)")
    parser.add_argument(
        "--experiment",
        choices=sorted(EXPERIMENTS),
        help="published experiment; required when the checkpoint has no hyper_parameters, "
        "otherwise checked against them",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace the contents of a non-empty OUT_DIR")
    return parser


def main(argv: list[str] | None = None) -> int:
    from emgjax.cli import run_command

    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        print(convert_checkpoint(args.checkpoint, args.out_dir, args.experiment, overwrite=args.overwrite))
        return 0

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("emgjax convert: %(message)s"))
    LOG.addHandler(handler)
    LOG.setLevel(logging.INFO)
    LOG.propagate = False
    try:
        return run_command("emgjax convert", body)
    finally:
        LOG.removeHandler(handler)


if __name__ == "__main__":
    sys.exit(main())
