"""Command-line overrides of frozen-dataclass configs: parsing, coercion, errors, JSON round trip."""

import argparse
import dataclasses
import json

import pytest

from emgjax.config import (
    ConfigError,
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
        ("x", int | None, "expected int | None"),
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
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['inner\.bogus'\]"):
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
