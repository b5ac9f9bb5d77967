"""The config layer (emgjax.config): command-line overrides, coercion, errors, JSON round trip of every config."""

import argparse
import contextlib
import dataclasses
import enum
import importlib
import json
import pkgutil
import types
import typing
from typing import Literal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import emgjax
from emgjax.config import (
    Config,
    ConfigError,
    TaggedConfig,
    apply_overrides,
    config_diff,
    config_from_dict,
    config_to_dict,
    leaf_fields,
    parse_config,
    parse_value,
    set_field,
)


@dataclasses.dataclass(frozen=True)
class Inner:
    rate: float = 1e-3
    steps: int = 10
    name: str = "adam"
    flag: bool = False

    def __post_init__(self):
        if self.rate <= 0:
            raise ValueError(f"Inner.rate: expected > 0, found {self.rate}")


@dataclasses.dataclass(frozen=True)
class Outer:
    out_dir: str = "runs/x"
    widths: tuple[int, ...] = (64, 128)
    band: tuple[float, float] | None = (20.0, 200.0)
    limit: int | None = None
    inner: Inner = Inner()
    other: Inner = Inner(name="sgd")


def test_parse_value_coerces_by_type():
    assert parse_value("3", int) == 3
    assert parse_value("2.5e-3", float) == 2.5e-3
    assert parse_value("7", float) == 7.0 and isinstance(parse_value("7", float), float)
    for text in ("true", "Yes", "ON", "1"):
        assert parse_value(text, bool) is True
    for text in ("false", "no", "off", "0"):
        assert parse_value(text, bool) is False
    assert parse_value("16,32", tuple[int, ...]) == (16, 32)
    assert parse_value("(16, 32,)", tuple[int, ...]) == (16, 32)
    assert parse_value("[8]", tuple[int, ...]) == (8,)
    assert parse_value("", tuple[int, ...]) == ()
    assert parse_value("none", int | None) is None
    assert parse_value("5", int | None) == 5
    assert parse_value("null", tuple[float, float] | None) is None
    assert parse_value("10,100", tuple[float, float] | None) == (10.0, 100.0)


@pytest.mark.parametrize(
    ("text", "tp", "fragment"),
    [
        ("1.5", int, "expected an integer"),
        ("abc", float, "expected a number"),
        ("nan", float, "found NaN"),
        ("maybe", bool, "expected a boolean"),
        ("1,x", tuple[int, ...], "expected an integer"),
        ("1,2,3", tuple[float, float], "expected 2 comma-separated values"),
        ("x", int | None, "expected an integer, found 'x'"),
        ("x", int | float | None, r"expected int \| float \| None, found .x."),
    ],
)
def test_parse_value_rejects_bad_values(text, tp, fragment):
    with pytest.raises(ConfigError, match=fragment):
        parse_value(text, tp, name="field")


def test_set_field_and_apply_overrides_set_nested_leaves():
    config = apply_overrides(Outer(), ["inner.rate=3e-3", "widths=8,16", "other.flag=yes", "limit=100", "band=none"])
    assert config.inner.rate == 3e-3 and config.inner.steps == 10
    assert config.widths == (8, 16)
    assert config.other.flag is True and config.other.name == "sgd"
    assert config.limit == 100 and config.band is None
    # later assignments win; the original is untouched (frozen copies)
    assert apply_overrides(Outer(), ["limit=1", "limit=2"]).limit == 2
    assert Outer().limit is None
    # values may also be set without parsing
    assert set_field(Outer(), "inner.steps", 5, parse=False).inner.steps == 5


def test_unknown_fields_and_sections_are_clear_errors():
    with pytest.raises(ConfigError, match=r"unknown config field 'inner\.rat'.*did you mean inner\.rate"):
        set_field(Outer(), "inner.rat", "1")
    with pytest.raises(ConfigError, match=r"unknown config field 'nope'.*expected one of: out_dir, widths"):
        set_field(Outer(), "nope", "1")
    with pytest.raises(ConfigError, match=r"unknown config field 'widths\.x'"):
        set_field(Outer(), "widths.x", "1")
    with pytest.raises(ConfigError, match=r"'inner' is a section.*inner\.rate, inner\.steps"):
        set_field(Outer(), "inner", "1")
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        apply_overrides(Outer(), ["inner.rate"])


def test_dataclass_checks_run_on_overrides():
    with pytest.raises(ConfigError, match=r"inner\.rate='-1'.*Inner\.rate: expected > 0, found -1"):
        set_field(Outer(), "inner.rate", "-1")


def test_leaf_fields_lists_dotted_paths_in_order():
    names = [name for name, _ in leaf_fields(Outer())]
    assert names == [
        "out_dir",
        "widths",
        "band",
        "limit",
        "inner.rate",
        "inner.steps",
        "inner.name",
        "inner.flag",
        "other.rate",
        "other.steps",
        "other.name",
        "other.flag",
    ]


def test_json_round_trip_and_strict_loading():
    config = apply_overrides(Outer(), ["widths=1,2,3", "inner.name=sgd"])
    data = json.loads(json.dumps(config_to_dict(config)))
    assert data["widths"] == [1, 2, 3]
    assert config_from_dict(Outer, data) == config
    assert config_from_dict(Outer, {"inner": {"steps": 3}}) == Outer(inner=Inner(steps=3))
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['inner\.bogus'\]"):
        config_from_dict(Outer, {"inner": {"bogus": 1}})
    with pytest.raises(ConfigError, match=r"inner\.steps: expected an integer, found 'x'"):
        config_from_dict(Outer, {"inner": {"steps": "x"}})
    with pytest.raises(ConfigError, match=r"widths: expected a list"):
        config_from_dict(Outer, {"widths": 3})
    with pytest.raises(ConfigError, match=r"Inner\.rate: expected > 0"):
        config_from_dict(Outer, {"inner": {"rate": -2.0}})


def test_config_diff_names_changed_leaves():
    a = Outer()
    b = apply_overrides(a, ["inner.steps=3", "widths=1"])
    assert config_diff(a, b) == {"inner.steps": (10, 3), "widths": ([64, 128], [1])}
    assert config_diff(a, a) == {}


def test_parse_config_options_aliases_and_set(capsys):
    config, _ = parse_config(
        Outer(), ["--out_dir", "runs/y", "--inner.steps", "4", "--set", "other.rate=0.5", "--limit", "7"]
    )
    assert config == Outer(out_dir="runs/y", limit=7, inner=Inner(steps=4), other=Inner(name="sgd", rate=0.5))
    # names unique in the tree get short and dashed aliases; shared names ("rate") only the dotted form
    config, _ = parse_config(Outer(), ["--out-dir", "z", "--inner.flag", "true"])
    assert config.out_dir == "z" and config.inner.flag is True
    with pytest.raises(SystemExit):
        parse_config(Outer(), ["--rate", "1"])
    assert "unrecognized arguments: --rate" in capsys.readouterr().err
    # --set is applied after the options: it wins
    config, _ = parse_config(Outer(), ["--limit", "1", "--set", "limit=2"])
    assert config.limit == 2


def test_parse_config_reports_bad_values_and_shows_config(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_config(Outer(), ["--set", "inner.steps=many"])
    assert exit_info.value.code == 2
    assert "inner.steps: expected an integer, found 'many'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        parse_config(Outer(), ["--set", "inner.typo=1"])
    assert "unknown config field 'inner.typo'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        parse_config(Outer(), ["--limit", "3", "--show-config"])
    assert exit_info.value.code == 0
    assert json.loads(capsys.readouterr().out)["limit"] == 3


def test_parse_config_extends_a_given_parser():
    parser = argparse.ArgumentParser()
    parser.add_argument("--verbose", action="store_true")
    config, namespace = parse_config(Outer(), ["--verbose", "--inner.name", "x"], parser=parser)
    assert namespace.verbose and config.inner.name == "x"


def test_real_experiment_configs_are_fully_overridable():
    from emgjax.recipes.direct import DirectExperiment, FinetuneExperiment
    from emgjax.recipes.emg2pose import Emg2PoseTraining

    for default in (DirectExperiment(), FinetuneExperiment(), Emg2PoseTraining()):
        # every leaf parses back from its own JSON-ish text form
        assert config_from_dict(type(default), json.loads(json.dumps(config_to_dict(default)))) == default
        assert len(leaf_fields(default)) > 10
    exp = apply_overrides(
        DirectExperiment(), ["model.conv_channels=16,32", "optim.learning_rate=2e-3", "data.band_hz=none"]
    )
    assert exp.model.conv_channels == (16, 32) and exp.optim.learning_rate == 2e-3 and exp.data.band_hz is None
    with pytest.raises(ConfigError, match=r"DirectConfig\.mode"):
        apply_overrides(DirectExperiment(), ["model.mode=all"])
    with pytest.raises(ConfigError, match=r"Emg2PoseTraining\.experiment"):
        apply_overrides(Emg2PoseTraining(), ["experiment=foo"])
    assert apply_overrides(Emg2PoseTraining(), ["size.hidden_size=32"]).size.hidden_size == 32


# ----------------------------------------------------------------------------- every config in the package


def _package_modules():
    modules = []
    for info in pkgutil.walk_packages(emgjax.__path__, "emgjax."):
        try:
            modules.append(importlib.import_module(info.name))
        except ImportError:  # an optional dependency (none in CI) is missing
            continue
    return modules


MODULES = _package_modules()
# Every Config subclass in the package: a new config is covered here without listing it.
CONFIG_CLASSES = sorted(
    {
        obj
        for module in MODULES
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, Config) and dataclasses.is_dataclass(obj)
    },
    key=lambda c: f"{c.__module__}.{c.__qualname__}",
)
# Configs with required fields and no published instance get an example here.
REQUIRED_ARG_EXAMPLES = {
    "NormStats": lambda cls: cls(mean=np.array([0.5, -1.0]), std=np.array([1.0, 2.0]), count=3),
    "AdapterModelConfig": lambda cls: cls(
        importlib.import_module("emgjax.models.adapter").variant_config("linear+sinc"),
        importlib.import_module("emgjax.models.configs").EXPERIMENTS["tracking_vemg2pose"].model,
    ),
}


def _walk(value, found, depth=0):
    """Collect config instances reachable from a module global (dicts, tuples, nested fields)."""
    if depth > 6:
        return
    if isinstance(value, Config) and dataclasses.is_dataclass(value):
        found.setdefault(type(value), []).append(value)
        for f in dataclasses.fields(value):
            _walk(getattr(value, f.name), found, depth + 1)
    elif isinstance(value, dict):
        for v in value.values():
            _walk(v, found, depth + 1)
    elif isinstance(value, (tuple, list)):
        for v in value:
            _walk(v, found, depth + 1)


def _examples():
    found: dict[type, list] = {}
    for module in MODULES:
        for value in list(vars(module).values()):
            _walk(value, found)
    for cls in CONFIG_CLASSES:
        if cls.__name__ in REQUIRED_ARG_EXAMPLES:
            _walk(REQUIRED_ARG_EXAMPLES[cls.__name__](cls), found)
        # required fields, or defaults the class refuses (ObjectiveWeights needs a positive weight): a module
        # global or REQUIRED_ARG_EXAMPLES has one
        with contextlib.suppress(TypeError, ValueError):
            _walk(cls(), found)
    return found


EXAMPLES = _examples()


def test_every_config_class_is_found_and_has_an_example():
    names = {c.__name__ for c in CONFIG_CLASSES}
    # the ones this test was written against; more are welcome
    assert {"OptimConfig", "DirectConfig", "PipelineConfig", "PoseModelConfig", "NormStats", "SyntheticConfig"} <= names
    missing = [c.__name__ for c in CONFIG_CLASSES if not EXAMPLES.get(c)]
    assert not missing, f"add an example instance to REQUIRED_ARG_EXAMPLES for {missing}"


def _leaf_strategy(tp):
    """Values of a leaf type, valid or not for the class (the class's own checks decide)."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return st.one_of([st.none() if a is type(None) else _leaf_strategy(a) for a in args])
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers(-2, 4096)
    if tp is float:
        return st.floats(allow_nan=False, allow_infinity=False)
    if tp is str:
        return st.text(max_size=8)
    if typing.get_origin(tp) is Literal:
        return st.sampled_from(args)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return st.sampled_from(list(tp))
    if typing.get_origin(tp) is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return st.lists(_leaf_strategy(args[0]), max_size=4).map(tuple)
        return st.tuples(*(_leaf_strategy(a) for a in args))
    if tp is np.ndarray:
        return st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=3).map(np.array)
    return st.nothing()


@st.composite
def _variant(draw, config):
    """``config`` with some leaves redrawn; a change its class rejects is skipped (the config stays valid)."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        current = getattr(config, f.name)
        if isinstance(current, Config):
            candidate = draw(_variant(current))
        elif isinstance(current, tuple) and current and all(isinstance(v, Config) for v in current):
            candidate = tuple(draw(_variant(v)) for v in current)
        elif draw(st.booleans()):
            candidate = draw(_leaf_strategy(hints[f.name]))
        else:
            continue
        with contextlib.suppress(ValueError, TypeError):
            config = dataclasses.replace(config, **{f.name: candidate})
    return config


@pytest.mark.parametrize("cls", CONFIG_CLASSES, ids=lambda c: c.__name__)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_config_round_trips_through_json(cls, data):
    config = data.draw(_variant(data.draw(st.sampled_from(EXAMPLES[cls]))))
    text = json.dumps(config.to_dict())
    restored = cls.from_dict(json.loads(text))
    assert type(restored) is cls and restored == config
    assert json.dumps(restored.to_dict()) == text  # same JSON again: types (tuples, floats, tags) kept exactly
    assert config_from_dict(cls, json.loads(text)) == config
    if isinstance(config, TaggedConfig):
        assert json.loads(text)["type"] == cls.__name__


def test_union_fields_and_tagged_configs_keep_their_type_key():
    from emgjax.models import configs as C
    from emgjax.models.adapter.pipeline import PipelineConfig

    neuropose = C.EXPERIMENTS["regression_neuropose"].model
    data = neuropose.to_dict()
    assert data["type"] == "PoseModelConfig" and data["network"]["type"] == "NeuroPoseConfig"
    assert data["network"]["encoder_blocks"][0]["type"] == "EncoderBlockConfig"
    assert C.PoseModelConfig.from_dict(data) == neuropose
    assert C.config_from_dict(data) == neuropose  # the untyped entry: the tag picks the class
    # an untagged class holds no "type" keys
    assert "type" not in json.dumps(PipelineConfig().to_dict())
    with pytest.raises(ConfigError, match=r"network: expected 'type' in \['NeuroPoseConfig', 'TdsNetworkConfig'\]"):
        C.PoseModelConfig.from_dict({**data, "network": {**data["network"], "type": "LSTMDecoderConfig"}})
    untagged = {k: v for k, v in data["network"].items() if k != "type"}
    with pytest.raises(ConfigError, match=r"network: expected a 'type' key naming one of"):
        C.PoseModelConfig.from_dict({**data, "network": untagged})
    with pytest.raises(ConfigError, match=r"expected 'type' in .*found 'PoseModelConfig'"):
        C.Emg2PoseExperiment.from_dict(data)
    # old files without the tag on a single-class field still load
    lstm = C.EXPERIMENTS["tracking_vemg2pose"].model.decoder
    assert C.LSTMDecoderConfig.from_dict({k: v for k, v in lstm.to_dict().items() if k != "type"}) == lstm


def test_loading_errors_name_the_field():
    from emgjax.data.signal import NormStats
    from emgjax.models.adapter.pipeline import PipelineConfig
    from emgjax.models.direct import DirectConfig
    from emgjax.train.optim import OptimConfig

    with pytest.raises(ConfigError, match=r"PipelineConfig: unknown key\(s\) \['bogus'\]; expected some of"):
        PipelineConfig.from_dict({"bogus": 1})
    with pytest.raises(ConfigError, match=r"adapter\.kind: expected one of \['zero_fill', .*found 'wide'"):
        PipelineConfig.from_dict({"adapter": {"kind": "wide"}})
    with pytest.raises(ConfigError, match=r"mano_head\.hidden\[1\]: expected an integer, found 'x'"):
        PipelineConfig.from_dict({"mano_head": {"hidden": [1, "x"]}})
    assert PipelineConfig.from_dict({"mano_head": {"hidden": [4]}}).mano_head.hidden == (4,)
    with pytest.raises(ConfigError, match=r"NormStats: missing required field\(s\) \['std'\]; found keys \['mean'\]"):
        NormStats.from_dict({"mean": [0.0]})
    with pytest.raises(ConfigError, match=r"mean: expected a \(nested\) list of numbers, found \['a'\]"):
        NormStats.from_dict({"mean": ["a"], "std": [1.0]})
    with pytest.raises(ConfigError, match=r"NormStats std must be > 0"):
        NormStats.from_dict({"mean": [0.0], "std": [0.0]})
    with pytest.raises(ConfigError, match=r"conv_channels: expected a list, found 64"):
        DirectConfig.from_dict({"conv_channels": 64})
    with pytest.raises(ConfigError, match=r"learning_rate: expected a number, found True"):
        OptimConfig.from_dict({"learning_rate": True})
    with pytest.raises(ConfigError, match=r"PipelineConfig: expected a mapping of fields, found list"):
        PipelineConfig.from_dict([])


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass(frozen=True)
class Choices(Config):
    colour: Colour = Colour.RED
    mode: Literal["a", "b"] = "a"
    size: Literal[1, 2] = 1


def test_enums_and_literals_parse_from_text_and_json():
    config = apply_overrides(Choices(), ["colour=blue", "mode=b", "size=2"])
    assert config == Choices(Colour.BLUE, "b", 2)
    assert config.to_dict() == {"colour": "blue", "mode": "b", "size": 2}
    assert Choices.from_dict(config.to_dict()) == config
    assert apply_overrides(Choices(), ["colour=BLUE"]).colour is Colour.BLUE  # by name too
    with pytest.raises(ConfigError, match=r"colour: expected one of \['red', 'blue'\], found 'green'"):
        apply_overrides(Choices(), ["colour=green"])
    with pytest.raises(ConfigError, match=r"mode: expected one of \['a', 'b'\], found 'c'"):
        Choices.from_dict({"mode": "c"})
    with pytest.raises(ConfigError, match=r"size: expected one of \[1, 2\], found '3'"):
        apply_overrides(Choices(), ["size=3"])


def test_nested_overrides_of_model_configs():
    from emgjax.models.adapter.pipeline import PipelineConfig

    config = apply_overrides(PipelineConfig(), ["adapter.kind=conv", "upsampler.factor=4", "input_rate=500"])
    assert config.adapter.kind == "conv" and config.upsampler.factor == 4
    with pytest.raises(ConfigError, match=r"adapter\.init: expected one of \['random', 'interpolation'\]"):
        apply_overrides(PipelineConfig(), ["adapter.init=zeros"])
    # the union-typed network is a section reached through its current value
    from emgjax.models import configs as C

    exp = C.EXPERIMENTS["tracking_vemg2pose"]
    changed = apply_overrides(exp, ["model.decoder.scale=0.5", "learning_rate=3e-4"])
    assert changed.model.decoder.scale == 0.5 and changed.learning_rate == 3e-4
    assert C.Emg2PoseExperiment.from_dict(json.loads(json.dumps(changed.to_dict()))) == changed


def test_field_help_reaches_the_option(capsys):
    @dataclasses.dataclass(frozen=True)
    class Options:
        out: str = dataclasses.field(default="x", metadata={"help": "where to write"})
        fast: bool = dataclasses.field(default=False, metadata={"help": "go fast"})

    with pytest.raises(SystemExit):
        parse_config(Options(), ["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--out V where to write" in text and "go fast (alone means true)" in text
