"""The one mapping table between Meta's emg2pose PyTorch state_dicts and emgjax variables.

`mapping_table(config)` lists, for a `PoseModelConfig`, every PyTorch key with
its PyTorch shape, the Flax variable it becomes (collection + path) and the
layout change:

  conv1d   (out, in, k)        -> kernel (k, in, out)          transpose(2, 1, 0)
  tdsconv  (ch, ch, 1, k)      -> kernel (k, ch_in, ch_out)     [:, :, 0, :].transpose(2, 1, 0)
  conv2d   (out, in, kh, kw)   -> kernel (kh, kw, in, out)      transpose(2, 3, 1, 0)
  linear   (out, in)           -> kernel (in, out)              .T   (LSTM weight_ih/hh too: gate order kept)
  vector   (n,)                -> (n,)                          biases, LayerNorm/BatchNorm affine and running stats

BatchNorm's `num_batches_tracked` is accepted and ignored (PyTorch only uses it
when momentum is None, which emg2pose never sets).

`model_config_from_hyper_parameters` reads Meta's Hydra ``network_conf``
(``_target_`` strings and constructor kwargs) into a `PoseModelConfig`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from emgjax.models.configs import (
    EXPERIMENTS,
    Conv1dBlockConfig,
    DecoderBlockConfig,
    EncoderBlockConfig,
    LSTMDecoderConfig,
    MLPDecoderConfig,
    NeuroPoseConfig,
    PoseModelConfig,
    ResidualBlockConfig,
    TdsNetworkConfig,
    TdsStageConfig,
)
from emgjax.models.decoders import mlp_layer_indices

DEFAULT_PREFIX = "model."  # the Lightning module holds the pose module as `self.model`

# ----------------------------------------------------------------------------- layout changes

_TO_FLAX: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "conv1d": lambda w: w.transpose(2, 1, 0),
    "tdsconv": lambda w: w[:, :, 0, :].transpose(2, 1, 0),
    "conv2d": lambda w: w.transpose(2, 3, 1, 0),
    "linear": lambda w: w.T,
    "vector": lambda w: w,
}
_TO_TORCH: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "conv1d": lambda k: k.transpose(2, 1, 0),
    "tdsconv": lambda k: k.transpose(2, 1, 0)[:, :, None, :],
    "conv2d": lambda k: k.transpose(3, 2, 0, 1),
    "linear": lambda k: k.T,
    "vector": lambda k: k,
}


@dataclass(frozen=True)
class MapEntry:
    """One tensor: PyTorch key and shape, Flax collection and path, layout change."""

    torch_key: str
    torch_shape: tuple[int, ...]
    collection: str  # "params" or "batch_stats"
    path: tuple[str, ...]
    layout: str  # a key of _TO_FLAX


class StateDictMismatchError(ValueError):
    """The state_dict does not fit the model config; lists every missing, unexpected and misshapen key."""

    def __init__(self, message: str, missing: list[str], unexpected: list[str], misshapen: list[str]):
        super().__init__(message)
        self.missing, self.unexpected, self.misshapen = missing, unexpected, misshapen


# ----------------------------------------------------------------------------- the table


class _Table:
    def __init__(self, prefix: str):
        self.prefix = prefix
        self.entries: list[MapEntry] = []
        self.ignored: list[str] = []  # accepted if present (num_batches_tracked)

    def add(self, torch_key, shape, path, layout, collection="params"):
        self.entries.append(
            MapEntry(self.prefix + torch_key, tuple(int(s) for s in shape), collection, tuple(path), layout)
        )

    def linear(self, torch_key, in_f, out_f, path):
        self.add(f"{torch_key}.weight", (out_f, in_f), (*path, "kernel"), "linear")
        self.add(f"{torch_key}.bias", (out_f,), (*path, "bias"), "vector")

    def layer_norm(self, torch_key, n, path):
        self.add(f"{torch_key}.weight", (n,), (*path, "scale"), "vector")
        self.add(f"{torch_key}.bias", (n,), (*path, "bias"), "vector")

    def batch_norm(self, torch_key, n, path):
        self.layer_norm(torch_key, n, path)
        self.add(f"{torch_key}.running_mean", (n,), (*path, "mean"), "vector", "batch_stats")
        self.add(f"{torch_key}.running_var", (n,), (*path, "var"), "vector", "batch_stats")
        self.ignored.append(self.prefix + f"{torch_key}.num_batches_tracked")


def _conv1d_block(t: _Table, key: str, cfg: Conv1dBlockConfig, path: tuple[str, ...]):
    t.add(
        f"{key}.conv.0.weight",
        (cfg.out_channels, cfg.in_channels, cfg.kernel_size),
        (*path, "conv", "kernel"),
        "conv1d",
    )
    t.add(f"{key}.conv.0.bias", (cfg.out_channels,), (*path, "conv", "bias"), "vector")
    if cfg.norm_type == "batch":
        t.batch_norm(f"{key}.conv.1.bn", cfg.out_channels, (*path, "bn"))
    elif cfg.norm_type == "layer":
        t.layer_norm(f"{key}.norm", cfg.out_channels, (*path, "norm"))


def _tds_network(t: _Table, cfg: TdsNetworkConfig):
    index = 0
    for block in cfg.conv_blocks:
        _conv1d_block(t, f"network.layers.{index}", block, ("network", f"layers_{index}"))
        index += 1
    for stage in cfg.tds_stages:
        key, path = f"network.layers.{index}", ("network", f"layers_{index}")
        _conv1d_block(t, f"{key}.layers.conv1dblock", stage.conv_block, (*path, "conv1dblock"))
        ch, c = stage.channels, stage.num_features
        for k in range(stage.num_blocks):
            conv_key = f"{key}.layers.tds_block.tds_conv_blocks.{2 * k}"
            conv_path = (*path, f"tds_conv_blocks_{2 * k}")
            t.add(
                f"{conv_key}.conv2d.weight",
                (ch, ch, 1, stage.kernel_width),
                (*conv_path, "conv2d", "kernel"),
                "tdsconv",
            )
            t.add(f"{conv_key}.conv2d.bias", (ch,), (*conv_path, "conv2d", "bias"), "vector")
            t.layer_norm(f"{conv_key}.layer_norm", c, (*conv_path, "layer_norm"))
            fc_key = f"{key}.layers.tds_block.tds_conv_blocks.{2 * k + 1}"
            fc_path = (*path, f"tds_conv_blocks_{2 * k + 1}")
            t.linear(f"{fc_key}.fc_block.0", c, c, (*fc_path, "fc_block_0"))
            t.linear(f"{fc_key}.fc_block.2", c, c, (*fc_path, "fc_block_2"))
            t.layer_norm(f"{fc_key}.layer_norm", c, (*fc_path, "layer_norm"))
        if stage.out_channels is not None:
            t.linear(f"{key}.linear_layer", c, stage.out_channels, (*path, "linear_layer"))
        index += 1


def _neuropose(t: _Table, cfg: NeuroPoseConfig):
    for j, block in enumerate(cfg.blocks):
        num_convs = block.num_convs if isinstance(block, ResidualBlockConfig) else 1
        for i in range(num_convs):
            in_ch = block.in_channels if i == 0 else block.out_channels
            kh, kw = block.kernel_size
            key, path = f"network.network.{j}.network", ("network", f"network_{j}")
            t.add(
                f"{key}.{4 * i}.weight",
                (block.out_channels, in_ch, kh, kw),
                (*path, f"network_{4 * i}", "kernel"),
                "conv2d",
            )
            t.add(f"{key}.{4 * i}.bias", (block.out_channels,), (*path, f"network_{4 * i}", "bias"), "vector")
            t.batch_norm(f"{key}.{4 * i + 1}", block.out_channels, (*path, f"network_{4 * i + 1}"))
    t.linear("network.linear", cfg.linear_in_channels, cfg.out_channels, ("network", "linear"))


def _lstm_decoder(t: _Table, cfg: LSTMDecoderConfig):
    four_h = 4 * cfg.hidden_size
    for n in range(cfg.num_layers):
        in_f = cfg.in_channels if n == 0 else cfg.hidden_size
        path = ("decoder", "lstm", f"layer_{n}")
        t.add(f"decoder.lstm.weight_ih_l{n}", (four_h, in_f), (*path, "kernel_ih"), "linear")
        t.add(f"decoder.lstm.weight_hh_l{n}", (four_h, cfg.hidden_size), (*path, "kernel_hh"), "linear")
        t.add(f"decoder.lstm.bias_ih_l{n}", (four_h,), (*path, "bias_ih"), "vector")
        t.add(f"decoder.lstm.bias_hh_l{n}", (four_h,), (*path, "bias_hh"), "vector")
    t.linear("decoder.mlp_out.1", cfg.hidden_size, cfg.out_channels, ("decoder", "mlp_out_1"))


def _mlp_decoder(t: _Table, cfg: MLPDecoderConfig):
    sizes = [cfg.in_channels, *cfg.layer_sizes, cfg.out_channels]
    linear_count = 0
    for kind, index in mlp_layer_indices(cfg):
        path = ("decoder", f"mlp_{index}")
        if kind == "linear":
            t.linear(f"decoder.mlp.{index}", sizes[linear_count], sizes[linear_count + 1], path)
            linear_count += 1
        else:
            t.layer_norm(f"decoder.mlp.{index}", sizes[linear_count], path)


def mapping_table(config: PoseModelConfig, prefix: str = DEFAULT_PREFIX) -> tuple[list[MapEntry], list[str]]:
    """(entries, ignorable keys) for `config`; keys carry `prefix` ("model." in Lightning files)."""
    table = _Table(prefix)
    if isinstance(config.network, TdsNetworkConfig):
        _tds_network(table, config.network)
    elif isinstance(config.network, NeuroPoseConfig):
        _neuropose(table, config.network)
    else:
        raise ValueError(
            f"network config: expected TdsNetworkConfig or NeuroPoseConfig, found {type(config.network).__name__}"
        )
    if isinstance(config.decoder, LSTMDecoderConfig):
        _lstm_decoder(table, config.decoder)
    elif isinstance(config.decoder, MLPDecoderConfig):
        _mlp_decoder(table, config.decoder)
    return table.entries, table.ignored


# ----------------------------------------------------------------------------- conversion


def _set(tree: dict, path: tuple[str, ...], value) -> None:
    for name in path[:-1]:
        tree = tree.setdefault(name, {})
    tree[path[-1]] = value


def _get(tree: dict, path: tuple[str, ...]):
    for name in path:
        tree = tree[name]
    return tree


def _limited(items: list[str], limit: int = 60) -> str:
    shown = "\n".join(f"    {item}" for item in items[:limit])
    return shown + (f"\n    ... and {len(items) - limit} more" if len(items) > limit else "")


def convert_state_dict(
    state_dict: dict[str, np.ndarray],
    config: PoseModelConfig,
    *,
    prefix: str = DEFAULT_PREFIX,
    source: str = "state_dict",
) -> dict:
    """Meta's emg2pose state_dict -> emgjax variables {"params": …, ["batch_stats": …]} (float32 numpy).

    Raises `StateDictMismatchError` (a ValueError) listing every missing, unexpected, misshapen,
    non-float or non-finite tensor at once; `source` (e.g. the file name) opens the message.
    """
    entries, ignored = mapping_table(config, prefix)
    expected = {e.torch_key for e in entries}
    ignorable = set(ignored)
    missing = [f"{e.torch_key} (expected shape {e.torch_shape})" for e in entries if e.torch_key not in state_dict]
    unexpected = [
        f"{key} (shape {tuple(np.shape(value))})"
        for key, value in state_dict.items()
        if key not in expected and key not in ignorable
    ]
    misshapen, bad_values = [], []
    variables: dict = {}
    for e in entries:
        if e.torch_key not in state_dict:
            continue
        value = np.asarray(state_dict[e.torch_key])
        if tuple(value.shape) != e.torch_shape:
            misshapen.append(f"{e.torch_key}: expected shape {e.torch_shape}, found {tuple(value.shape)}")
            continue
        if value.dtype.kind != "f":
            bad_values.append(f"{e.torch_key}: expected a floating-point tensor, found dtype {value.dtype}")
            continue
        if not np.isfinite(value).all():
            bad_values.append(
                f"{e.torch_key}: expected finite values, found {int((~np.isfinite(value)).sum())} NaN/Inf"
            )
            continue
        converted = np.ascontiguousarray(_TO_FLAX[e.layout](value.astype(np.float32)))
        _set(variables.setdefault(e.collection, {}), e.path, converted)
    if missing or unexpected or misshapen or bad_values:
        parts = [f"{source}: does not match the {_describe(config)} model (expected {len(entries)} tensors)"]
        if missing:
            parts.append(f"  missing ({len(missing)}):\n{_limited(missing)}")
        if unexpected:
            parts.append(f"  unexpected ({len(unexpected)}):\n{_limited(unexpected)}")
        if misshapen:
            parts.append(f"  misshapen ({len(misshapen)}):\n{_limited(misshapen)}")
        if bad_values:
            parts.append(f"  bad values ({len(bad_values)}):\n{_limited(bad_values)}")
        raise StateDictMismatchError("\n".join(parts), missing, unexpected, misshapen + bad_values)
    return variables


def variables_to_state_dict(
    variables: dict, config: PoseModelConfig, *, prefix: str = DEFAULT_PREFIX
) -> dict[str, np.ndarray]:
    """Inverse of `convert_state_dict`: emgjax variables -> PyTorch-layout float32 arrays
    (plus int64 `num_batches_tracked` = 0 for each BatchNorm, so torch's strict loading accepts it)."""
    entries, ignored = mapping_table(config, prefix)
    out = {}
    for e in entries:
        try:
            value = np.asarray(_get(variables[e.collection], e.path), dtype=np.float32)
        except KeyError as exc:
            raise ValueError(
                f"variables: expected {e.collection}/{'/'.join(e.path)} for {e.torch_key}, found none"
            ) from exc
        out[e.torch_key] = np.ascontiguousarray(_TO_TORCH[e.layout](value))
    for key in ignored:
        out[key] = np.zeros((), np.int64)
    return out


def _describe(config: PoseModelConfig) -> str:
    network = type(config.network).__name__.removesuffix("Config")
    decoder = "" if config.decoder is None else " + " + type(config.decoder).__name__.removesuffix("Config")
    return f"{config.kind!r} ({network}{decoder})"


# ----------------------------------------------------------------------------- hyper_parameters


_POSE_KINDS = {"PoseModule": "pose", "StatePoseModule": "state", "VEMG2PoseWithInitialState": "vemg2pose"}


def _target(node: Any, where: str) -> str:
    if not isinstance(node, dict) or "_target_" not in node:
        found = type(node).__name__ if not isinstance(node, dict) else f"keys {sorted(node)}"
        raise ValueError(f"hyper_parameters {where}: expected a Hydra node with a '_target_', found {found}")
    return str(node["_target_"]).rsplit(".", 1)[-1]


def _kwargs(node: dict, where: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict:
    """Constructor kwargs of a Hydra node, refusing unknown or missing ones (they could change the maths)."""
    args = {k: v for k, v in node.items() if not k.startswith("_")}
    unknown = sorted(set(args) - set(required) - set(optional))
    missing = sorted(set(required) - set(args))
    if unknown or missing:
        raise ValueError(
            f"hyper_parameters {where} ({node.get('_target_')}): expected arguments {list(required)}"
            f"{' and optionally ' + str(list(optional)) if optional else ''}, found "
            f"{'unknown ' + str(unknown) if unknown else ''}{' and ' if unknown and missing else ''}"
            f"{'missing ' + str(missing) if missing else ''}"
        )
    return args


def _pair(value, where: str) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return (int(value[0]), int(value[1]))
    raise ValueError(f"hyper_parameters {where}: expected an int or a pair of ints, found {value!r}")


def _network_from_node(node: Any, where: str):
    name = _target(node, where)
    if name == "TdsNetwork":
        args = _kwargs(node, where, ("conv_blocks", "tds_stages"))
        conv_blocks = []
        for i, block in enumerate(args["conv_blocks"] or []):
            w = f"{where}.conv_blocks[{i}]"
            if _target(block, w) != "Conv1dBlock":
                raise ValueError(f"hyper_parameters {w}: expected a Conv1dBlock, found {block.get('_target_')}")
            a = _kwargs(block, w, ("in_channels", "out_channels", "kernel_size", "stride"), ("norm_type", "dropout"))
            conv_blocks.append(Conv1dBlockConfig(**a))
        stages = []
        for i, stage in enumerate(args["tds_stages"] or []):
            w = f"{where}.tds_stages[{i}]"
            if _target(stage, w) != "TdsStage":
                raise ValueError(f"hyper_parameters {w}: expected a TdsStage, found {stage.get('_target_')}")
            a = _kwargs(
                stage,
                w,
                (
                    "in_channels",
                    "in_conv_kernel_width",
                    "in_conv_stride",
                    "num_blocks",
                    "channels",
                    "feature_width",
                    "kernel_width",
                ),
                ("out_channels",),
            )
            stages.append(TdsStageConfig(**a))
        return TdsNetworkConfig(tuple(conv_blocks), tuple(stages))
    if name == "NeuroPose":
        args = _kwargs(
            node,
            where,
            ("encoder_blocks", "residual_blocks", "decoder_blocks", "linear_in_channels"),
            ("out_channels",),
        )
        kinds = {
            "encoder_blocks": ("EncoderBlock", EncoderBlockConfig, "max_pool_size"),
            "residual_blocks": ("ResidualBlock", ResidualBlockConfig, "num_convs"),
            "decoder_blocks": ("DecoderBlock", DecoderBlockConfig, "upsampling"),
        }
        blocks = {}
        for field_name, (target, cls, extra) in kinds.items():
            parsed = []
            for i, block in enumerate(args[field_name] or []):
                w = f"{where}.{field_name}[{i}]"
                if _target(block, w) != target:
                    raise ValueError(f"hyper_parameters {w}: expected a {target}, found {block.get('_target_')}")
                a = _kwargs(block, w, ("in_channels", "out_channels", "kernel_size", extra), ("dropout_rate",))
                a["kernel_size"] = _pair(a["kernel_size"], f"{w}.kernel_size")
                if extra != "num_convs":
                    a[extra] = _pair(a[extra], f"{w}.{extra}")
                parsed.append(cls(**a))
            blocks[field_name] = tuple(parsed)
        extra_args = {"out_channels": args["out_channels"]} if "out_channels" in args else {}
        return NeuroPoseConfig(linear_in_channels=args["linear_in_channels"], **blocks, **extra_args)
    raise ValueError(
        f"hyper_parameters {where}: expected network TdsNetwork or NeuroPose, found {node.get('_target_')}"
    )


def _decoder_from_node(node: Any, where: str):
    name = _target(node, where)
    if name == "SequentialLSTM":
        a = _kwargs(node, where, ("in_channels", "out_channels", "hidden_size", "num_layers"), ("scale",))
        return LSTMDecoderConfig(**a)
    if name == "MLP":
        a = _kwargs(node, where, ("in_channels", "layer_sizes", "out_channels"), ("layer_norm", "scale"))
        a["layer_sizes"] = tuple(int(s) for s in a["layer_sizes"])
        return MLPDecoderConfig(**a)
    raise ValueError(f"hyper_parameters {where}: expected decoder SequentialLSTM or MLP, found {node.get('_target_')}")


def model_config_from_hyper_parameters(hyper_parameters: dict) -> PoseModelConfig:
    """Meta's Lightning ``hyper_parameters`` (its ``network_conf``) -> `PoseModelConfig`."""
    if not isinstance(hyper_parameters, dict) or "network_conf" not in hyper_parameters:
        found = sorted(hyper_parameters) if isinstance(hyper_parameters, dict) else type(hyper_parameters).__name__
        raise ValueError(f"hyper_parameters: expected a 'network_conf' entry (Meta's Hydra pose module), found {found}")
    node = hyper_parameters["network_conf"]
    name = _target(node, "network_conf")
    if name not in _POSE_KINDS:
        raise ValueError(
            f"hyper_parameters network_conf: expected one of {sorted(_POSE_KINDS)}, found {node.get('_target_')}"
        )
    kind = _POSE_KINDS[name]
    if kind == "pose":
        a = _kwargs(node, "network_conf", ("network",), ("predict_vel", "out_channels"))
        return PoseModelConfig(
            "pose",
            _network_from_node(a["network"], "network_conf.network"),
            predict_vel=bool(a.get("predict_vel", False)),
        )
    if kind == "state":
        a = _kwargs(
            node,
            "network_conf",
            ("network", "decoder"),
            ("state_condition", "predict_vel", "rollout_freq", "out_channels"),
        )
    else:
        a = _kwargs(
            node,
            "network_conf",
            ("network", "decoder"),
            ("num_position_steps", "state_condition", "rollout_freq", "out_channels"),
        )
    optional = {k: a[k] for k in ("state_condition", "predict_vel", "rollout_freq", "num_position_steps") if k in a}
    return PoseModelConfig(
        kind,
        _network_from_node(a["network"], "network_conf.network"),
        _decoder_from_node(a["decoder"], "network_conf.decoder"),
        **optional,
    )


def experiment_name_for_config(config: PoseModelConfig, provide_initial_pos: bool | None = None) -> str | None:
    """The published experiment with the same structure (sizes may differ), or None.

    ``tracking_emg2pose`` and ``regression_emg2pose`` have the same network and
    decoder and differ only in ``provide_initial_pos`` (True / False); for that
    structure ``provide_initial_pos=None`` (unknown) gives ``tracking_emg2pose``.
    """
    if config.kind == "state" and isinstance(config.decoder, LSTMDecoderConfig) and config.predict_vel:
        return "tracking_vemg2pose"
    if config.kind == "vemg2pose" and isinstance(config.decoder, LSTMDecoderConfig):
        return "regression_vemg2pose"
    if config.kind == "state" and isinstance(config.decoder, MLPDecoderConfig) and not config.predict_vel:
        return "regression_emg2pose" if provide_initial_pos is False else "tracking_emg2pose"
    if config.kind == "pose" and isinstance(config.network, NeuroPoseConfig):
        return "regression_neuropose"
    return None


def experiment_name_from_hyper_parameters(hyper_parameters: dict) -> str | None:
    """Recognise which published experiment a checkpoint's hyper_parameters describe (None if none fits):
    the structure of its ``network_conf`` and, where that is ambiguous, its ``provide_initial_pos``."""
    flag = hyper_parameters.get("provide_initial_pos") if isinstance(hyper_parameters, dict) else None
    return experiment_name_for_config(
        model_config_from_hyper_parameters(hyper_parameters), flag if isinstance(flag, bool) else None
    )


def provide_initial_pos_from_hyper_parameters(hyper_parameters: dict, experiment: str | None) -> bool:
    """The file's `provide_initial_pos`, else the published experiment's."""
    value = hyper_parameters.get("provide_initial_pos") if isinstance(hyper_parameters, dict) else None
    if isinstance(value, bool):
        return value
    if experiment is not None:
        return EXPERIMENTS[experiment].provide_initial_pos
    raise ValueError(
        f"hyper_parameters: expected a boolean 'provide_initial_pos' (or a known experiment), found {value!r}"
    )


__all__ = [
    "MapEntry",
    "StateDictMismatchError",
    "mapping_table",
    "convert_state_dict",
    "variables_to_state_dict",
    "model_config_from_hyper_parameters",
    "experiment_name_from_hyper_parameters",
    "experiment_name_for_config",
    "provide_initial_pos_from_hyper_parameters",
    "DEFAULT_PREFIX",
]
