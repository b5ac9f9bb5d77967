"""One config layer: frozen dataclasses, JSON round trip, ``--section.field`` overrides.

A config is a tree of frozen dataclasses (sections) whose leaves are ``bool``,
``int``, ``float``, ``str``, ``Literal[...]`` choices, enums, ``None``-able
versions of those, tuples of them, or NumPy arrays (JSON only). Nothing here is
written per class: the JSON form, the checks on loading and the command-line
options all come from the fields and their type hints.

JSON (saved next to every run and in every model directory): ``config_to_dict``
/ ``config_from_dict``, or the same as methods ``.to_dict()`` / ``Cls.from_dict(d)``
on classes deriving from `Config`. Unknown keys, missing required fields and
wrongly typed values are errors naming the dotted field; lists become tuples;
the dataclass's own ``__post_init__`` checks run. A dict carries its class name
under ``"type"`` where the annotation admits several dataclasses (e.g.
``TdsNetworkConfig | NeuroPoseConfig``) and for classes deriving from
`TaggedConfig` (the emg2pose configs: their saved format); on loading, a
``"type"`` key selects the class or must name the expected one.

Command line: ``parse_config(default, argv)``.

- ``--set optim.learning_rate=3e-3`` (repeatable) sets any leaf by its dotted
  path;
- ``--optim.learning_rate 3e-3`` does the same as its own option, and a leaf
  whose name is unique in the tree also gets a short alias
  (``--learning_rate``, and the dashed spelling ``--learning-rate``).

Values are parsed by the field's annotated type: booleans accept
true/false/yes/no/on/off/1/0, ``None``-able fields accept ``none``/``null``,
tuples are comma separated (``64,128``; brackets optional; empty for ``()``);
a boolean option given alone means true (``--overwrite`` = ``--overwrite true``).
An unknown field, a section given a value, or a value the type (or the
dataclass's own ``__post_init__`` check) rejects raises `ConfigError`
(a ``ValueError``) saying what was expected and what was found; the parser
prints it as ``PROG: error: <one line>`` and exits with status 2. A field's
``metadata={"help": ...}`` becomes its option's help text.

Why not ``tyro`` (evaluated for issue 9 with tyro 1.0.17 on ``DirectExperiment``):
it does build ``--model.conv-channels 16 32`` options for nested frozen
dataclasses, but (1) every error is a multi-line box of 5 to 11 lines (also when
stderr is not a terminal), e.g. a bad int gives ``╭─ Value error ─…`` around
``Error parsing --loop.batch-size: invalid literal for int() with base 10:
'many'`` plus the option's help, where ours prints ``train_direct.py: error:
loop.batch_size: expected an integer, found 'many'``; a ``__post_init__``
rejection reads ``Error parsing model: DirectConfig.mode: …`` in a box; (2)
booleans become ``--x/--no-x`` flags, so ``--overwrite false`` (used by our
tests and scripts) is an "Unrecognized options: false" error; (3) it has no
``--set KEY=VALUE`` nor short aliases, and tuples are space separated; (4) it
adds three dependencies (tyro, docstring-parser, typeguard) and ~60 ms to
import (this module: ~30 ms; it does not import NumPy); (5) it would replace only
the argparse part (~115 lines): the type-aware JSON loader and ``set_field``
that the run directories and ``config_diff`` use are needed either way.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import enum
import functools
import json
import math
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Literal, Self

__all__ = [
    "Config",
    "TaggedConfig",
    "ConfigError",
    "config_parser",
    "config_to_dict",
    "config_from_dict",
    "leaf_fields",
    "parse_value",
    "set_field",
    "apply_overrides",
    "add_config_arguments",
    "config_from_args",
    "parse_config",
    "config_diff",
]

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
_NONE = ("none", "null")
_TAG = "type"  # the key naming a dict's dataclass


class ConfigError(ValueError):
    """A config override or config file names an unknown field or holds a bad value."""


class Config:
    """Base of frozen-dataclass configs: ``to_dict()`` / ``from_dict()`` derived from the fields' type hints."""

    __slots__ = ()
    #: True: every dict of this class carries its name under "type" (see the module docstring).
    json_type_tag: ClassVar[bool] = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready nested dicts (tuples and arrays become lists); see `config_to_dict`."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Inverse of `to_dict`; missing keys keep their defaults. Raises ConfigError (see `config_from_dict`)."""
        return config_from_dict(cls, data)


class TaggedConfig(Config):
    """A `Config` whose dicts always carry ``"type": class name`` (the emg2pose configs' saved format)."""

    __slots__ = ()
    json_type_tag: ClassVar[bool] = True


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    """Resolved annotations of a dataclass's fields (``from __future__`` strings evaluated)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _union_args(tp: Any) -> tuple | None:
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        return typing.get_args(tp)
    return None


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _dataclass_options(tp: Any) -> list[type]:
    """The dataclasses a field may hold: ``[tp]``, those of a union, or []."""
    if _is_dataclass_type(tp):
        return [tp]
    return [a for a in _union_args(tp) or () if _is_dataclass_type(a)]


def _is_instance(value: Any) -> bool:
    """A dataclass instance (a section of a config tree), not a class."""
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def _is_numpy(tp: Any) -> bool:
    """A NumPy array or scalar type (told by its module, so that this module need not import NumPy)."""
    return isinstance(tp, type) and tp.__module__ == "numpy" and hasattr(tp, "tolist")


def _is_enum(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, enum.Enum)


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "None"
    args = _union_args(tp)
    if args is not None:
        return " | ".join(_type_name(a) for a in args)
    if typing.get_origin(tp) is tuple:
        inner = typing.get_args(tp)
        if len(inner) == 2 and inner[1] is Ellipsis:
            return f"comma-separated {_type_name(inner[0])}s"
        return "tuple"
    if typing.get_origin(tp) is Literal:
        return "one of " + "/".join(str(a) for a in typing.get_args(tp))
    if _is_enum(tp):
        return "one of " + "/".join(str(m.value) for m in tp)
    return getattr(tp, "__name__", str(tp))


def _section_type(tp: Any) -> type | None:
    """The dataclass a field holds (also through ``X | None``), or None for a leaf."""
    classes = _dataclass_options(tp)
    return classes[0] if len(classes) == 1 else None


def _choice(value: Any, choices: Sequence[Any], name: str) -> Any:
    if value not in choices:
        raise ConfigError(f"{name}: expected one of {list(choices)}, found {value!r}")
    return value


# -- values ----------------------------------------------------------------


def parse_value(text: str, tp: Any, *, name: str = "value") -> Any:
    """Parse the command-line string ``text`` as type ``tp`` (see module docstring)."""
    if not isinstance(text, str):
        raise ConfigError(f"{name}: expected a string to parse, found {type(text).__name__}")
    stripped = text.strip()
    args = _union_args(tp)
    if args is not None:
        if type(None) in args and stripped.lower() in _NONE:
            return None
        if len(args) == 2 and type(None) in args:  # X | None: X's own message says more
            return parse_value(text, next(a for a in args if a is not type(None)), name=name)
        for option in args:
            if option is type(None):
                continue
            try:
                return parse_value(text, option, name=name)
            except ConfigError:
                continue
        raise ConfigError(f"{name}: expected {_type_name(tp)}, found {text!r}")
    if tp is bool:
        lowered = stripped.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigError(f"{name}: expected a boolean (true/false, yes/no, on/off, 1/0), found {text!r}")
    if tp is int:
        try:
            return int(stripped)
        except ValueError:
            raise ConfigError(f"{name}: expected an integer, found {text!r}") from None
    if tp is float:
        try:
            value = float(stripped)
        except ValueError:
            raise ConfigError(f"{name}: expected a number, found {text!r}") from None
        if math.isnan(value):
            raise ConfigError(f"{name}: expected a number, found NaN")
        return value
    if tp is str or tp is Any:
        return text
    if typing.get_origin(tp) is Literal:
        choices = typing.get_args(tp)
        by_text = {str(c): c for c in choices}
        return by_text[stripped] if stripped in by_text else _choice(stripped, choices, name)
    if _is_enum(tp):
        return _enum_member(tp, stripped, name)
    if typing.get_origin(tp) is tuple:
        inner = typing.get_args(tp)
        body = stripped
        if len(body) >= 2 and body[0] + body[-1] in ("()", "[]"):
            body = body[1:-1]
        parts = [p.strip() for p in body.split(",")] if body.strip() else []
        if parts and parts[-1] == "":  # a trailing comma, as in "(64,)"
            parts = parts[:-1]
        if len(inner) == 2 and inner[1] is Ellipsis:
            return tuple(parse_value(p, inner[0], name=f"{name}[{i}]") for i, p in enumerate(parts))
        if len(parts) != len(inner):
            raise ConfigError(f"{name}: expected {len(inner)} comma-separated values, found {len(parts)} in {text!r}")
        return tuple(parse_value(p, t, name=f"{name}[{i}]") for i, (p, t) in enumerate(zip(parts, inner, strict=True)))
    raise ConfigError(f"{name}: fields of type {_type_name(tp)} cannot be set from the command line")


def _enum_member(tp: type[enum.Enum], value: Any, name: str) -> enum.Enum:
    """The member of enum ``tp`` with this value (or, for strings, this name)."""
    for member in tp:
        if member.value == value or (isinstance(value, str) and member.name == value):
            return member
    raise ConfigError(f"{name}: expected one of {[m.value for m in tp]}, found {value!r}")


# -- JSON ------------------------------------------------------------------


def config_to_dict(config: Any) -> Any:
    """JSON-ready nested dicts of a config tree (tuples and arrays become lists, enums their values).

    ``"type": class name`` is added to the dicts of `TaggedConfig` classes and
    where the field's annotation admits several dataclasses (see the module docstring).
    """
    return _to_json(config, type(config))


def _to_json(value: Any, tp: Any) -> Any:
    if _is_instance(value):
        cls = type(value)
        out: dict[str, Any] = {}
        if getattr(cls, "json_type_tag", False) or len(_dataclass_options(tp)) > 1:
            out[_TAG] = cls.__name__
        types_ = _field_types(cls)
        for f in dataclasses.fields(value):
            out[f.name] = _to_json(getattr(value, f.name), types_[f.name])
        return out
    if isinstance(value, (tuple, list)):
        inner = typing.get_args(tp) if typing.get_origin(tp) is tuple else ()
        if len(inner) == 2 and inner[1] is Ellipsis:
            inner = (inner[0],) * len(value)
        return [_to_json(v, inner[i] if i < len(inner) else Any) for i, v in enumerate(value)]
    if isinstance(value, enum.Enum):
        return value.value
    if _is_numpy(type(value)):  # arrays and scalars; numpy is imported only where a config holds them
        return value.tolist()
    return value


def config_from_dict(cls: Any, data: Any, *, _prefix: str = "") -> Any:
    """Build ``cls`` (a dataclass, or a union of them told apart by ``"type"``) from `config_to_dict` output.

    Missing keys keep their defaults. Raises ConfigError for unknown keys,
    missing required fields, a ``"type"`` naming another class and wrongly
    typed values (naming the dotted field), and for values the dataclass's own
    checks reject.
    """
    options = _dataclass_options(cls)
    if not options:
        raise ConfigError(f"config_from_dict: expected a dataclass type, found {cls!r}")
    where = _prefix[:-1] or "/".join(c.__name__ for c in options)
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of fields, found {type(data).__name__}")
    target = _pick_class(options, data, where)
    types_ = _field_types(target)
    keys = set(data) - ({_TAG} if _TAG not in types_ else set())
    unknown = sorted(keys - set(types_))
    if unknown:
        raise ConfigError(
            f"{target.__name__}: unknown key(s) {[_prefix + u for u in unknown]}; expected some of "
            f"{[_prefix + k for k in types_]}"
        )
    required = [f.name for f in dataclasses.fields(target) if _is_required(f) and f.init]
    missing = [name for name in required if name not in keys]
    if missing:
        raise ConfigError(
            f"{target.__name__}: missing required field(s) {[_prefix + m for m in missing]}; found keys {sorted(keys)}"
        )
    kwargs = {key: _from_json(data[key], types_[key], _prefix + key) for key in keys}
    try:
        return target(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: {err}") from None


def _is_required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _pick_class(options: list[type], data: Mapping[str, Any], where: str) -> type:
    """The dataclass among ``options`` that a dict's ``"type"`` key names (optional when there is one option)."""
    names = sorted(c.__name__ for c in options)
    if _TAG not in data or (len(options) == 1 and _TAG in _field_types(options[0])):
        if len(options) == 1:
            return options[0]
        raise ConfigError(f"{where}: expected a 'type' key naming one of {names}, found keys {sorted(data)}")
    for option in options:
        if data[_TAG] == option.__name__:
            return option
    raise ConfigError(f"{where}: expected 'type' in {names}, found {data[_TAG]!r}")


def _from_json(value: Any, tp: Any, name: str) -> Any:
    """A JSON value as type ``tp`` (lists -> tuples or arrays, ints -> floats), or ConfigError."""
    if _dataclass_options(tp) and isinstance(value, Mapping):
        return config_from_dict(tp, value, _prefix=name + ".")
    args = _union_args(tp)
    if args is not None:
        if value is None and type(None) in args:
            return None
        if len(args) == 2 and type(None) in args:  # X | None: X's own message says more
            return _from_json(value, next(a for a in args if a is not type(None)), name)
        for option in args:
            if option is type(None) or _is_dataclass_type(option):
                continue
            try:
                return _from_json(value, option, name)
            except ConfigError:
                continue
        raise ConfigError(f"{name}: expected {_type_name(tp)}, found {value!r}")
    if _is_dataclass_type(tp):
        raise ConfigError(f"{name}: expected a mapping of {tp.__name__} fields, found {type(value).__name__}")
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: expected a boolean, found {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name}: expected an integer, found {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name}: expected a number, found {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name}: expected a string, found {value!r}")
        return value
    if typing.get_origin(tp) is Literal:
        return _choice(value, typing.get_args(tp), name)
    if _is_enum(tp):
        return _enum_member(tp, value, name)
    if typing.get_origin(tp) is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}: expected a list, found {value!r}")
        inner = typing.get_args(tp)
        if len(inner) == 2 and inner[1] is Ellipsis:
            return tuple(_from_json(v, inner[0], f"{name}[{i}]") for i, v in enumerate(value))
        if len(value) != len(inner):
            raise ConfigError(f"{name}: expected a list of {len(inner)} values, found {len(value)}")
        return tuple(_from_json(v, t, f"{name}[{i}]") for i, (v, t) in enumerate(zip(value, inner, strict=True)))
    if _is_numpy(tp) and tp.__name__ == "ndarray":
        import numpy as np

        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}: expected a list of numbers, found {value!r}")
        try:
            array = np.array(value)
        except ValueError:  # ragged
            array = np.array(None)
        if array.dtype.kind not in "biuf":
            raise ConfigError(f"{name}: expected a (nested) list of numbers, found {value!r}")
        return array
    return value


# -- dotted paths ------------------------------------------------------------


def leaf_fields(config: Any, _prefix: str = "") -> list[tuple[str, Any]]:
    """[(dotted name, annotated type)] of every settable leaf of a config tree, in field order."""
    cls = config if isinstance(config, type) else type(config)
    out = []
    for name, tp in _field_types(cls).items():
        section = _section_type(tp)
        value = None if isinstance(config, type) else getattr(config, name)
        if _is_instance(value):  # also a union of dataclasses (e.g. the network): the current value's fields
            out.extend(leaf_fields(value, _prefix + name + "."))
        elif section is not None and isinstance(config, type):
            out.extend(leaf_fields(section, _prefix + name + "."))
        else:
            out.append((_prefix + name, tp))
    return out


def _unknown_field(path: str, config: Any) -> ConfigError:
    known = [name for name, _ in leaf_fields(config)]
    close = difflib.get_close_matches(path, known, n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return ConfigError(f"unknown config field {path!r}{hint}; expected one of: {', '.join(known)}")


def set_field(config: Any, path: str, value: Any, *, parse: bool = True) -> Any:
    """A copy of ``config`` with the leaf at dotted ``path`` set to ``value``.

    ``parse=True`` parses ``value`` (a string) by the field's type; otherwise
    the value is used as given. The dataclasses' own checks run on the copy.
    """
    if not isinstance(path, str) or not path:
        raise ConfigError(f"expected a dotted field name such as 'optim.learning_rate', found {path!r}")
    return _set(config, path.split("."), 0, value, parse, root=config, path=path)


def _set(config: Any, parts: list[str], depth: int, value: Any, parse: bool, *, root: Any, path: str) -> Any:
    head = parts[depth]
    types_ = _field_types(type(config))
    if head not in types_:
        raise _unknown_field(path, root)
    tp = types_[head]
    section = _section_type(tp)
    current = getattr(config, head)
    if depth + 1 < len(parts):
        if not _is_instance(current):
            raise _unknown_field(path, root)
        new_value = _set(current, parts, depth + 1, value, parse, root=root, path=path)
    else:
        if section is not None or _is_instance(current):
            prefix = ".".join(parts[: depth + 1])
            fields = ", ".join(f"{prefix}.{n}" for n, _ in leaf_fields(current if current is not None else section))
            raise ConfigError(f"{path!r} is a section, not a value; set one of its fields: {fields}")
        new_value = parse_value(value, tp, name=path) if parse else value
    try:
        return dataclasses.replace(config, **{head: new_value})
    except ValueError as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"{path}={value!r}: {err}") from None


def apply_overrides(config: Any, assignments: Iterable[str]) -> Any:
    """Apply ``["a.b=value", ...]`` in order (later assignments win)."""
    for assignment in assignments:
        if not isinstance(assignment, str) or "=" not in assignment:
            raise ConfigError(f"--set: expected KEY=VALUE such as optim.learning_rate=3e-3, found {assignment!r}")
        key, _, value = assignment.partition("=")
        config = set_field(config, key.strip(), value)
    return config


def config_diff(a: Any, b: Any) -> dict[str, tuple[Any, Any]]:
    """{dotted name: (value in a, value in b)} for every leaf that differs."""
    flat_a, flat_b = _flatten(config_to_dict(a)), _flatten(config_to_dict(b))
    return {
        k: (flat_a.get(k), flat_b.get(k)) for k in sorted(set(flat_a) | set(flat_b)) if flat_a.get(k) != flat_b.get(k)
    }


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


# -- argparse ----------------------------------------------------------------

_DEST_PREFIX = "cfg__"


def _dest(path: str) -> str:
    return _DEST_PREFIX + path.replace(".", "__")


def add_config_arguments(parser: argparse.ArgumentParser, default: Any) -> argparse.ArgumentParser:
    """Add ``--set KEY=VALUE`` and one ``--<dotted.field>`` option per leaf of ``default``.

    Leaves with a unique name also get ``--name`` and ``--dashed-name`` aliases.
    Option values stay strings here; ``config_from_args`` parses them.
    """
    group = parser.add_argument_group(
        "config",
        "every field of the experiment config (also settable as --set KEY=VALUE; run with --show-config to print it)",
    )
    group.add_argument(
        "--set",
        dest=_DEST_PREFIX + "set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a config field by its dotted name, e.g. --set optim.learning_rate=3e-3 (repeatable)",
    )
    group.add_argument(
        "--show-config",
        dest=_DEST_PREFIX + "show",
        action="store_true",
        help="print the resolved config as JSON and exit",
    )
    leaves = leaf_fields(default)
    short_counts: dict[str, int] = {}
    for path, _ in leaves:
        short = path.rsplit(".", 1)[-1]
        short_counts[short] = short_counts.get(short, 0) + 1
    taken = {a for action in parser._actions for a in action.option_strings}
    for path, tp in leaves:
        current, owner = default, default
        for part in path.split("."):
            owner, current = current, getattr(current, part)
        # A field's own help (metadata) replaces the generic type and default.
        own_help = next(f for f in dataclasses.fields(owner) if f.name == part).metadata.get("help")
        shown = json.dumps(config_to_dict(current))
        names = [f"--{path}"]
        short = path.rsplit(".", 1)[-1]
        if "." in path and short_counts[short] == 1:
            names.append(f"--{short}")
        names += [n.replace("_", "-") for n in list(names) if "_" in n]
        names = [n for n in dict.fromkeys(names) if n not in taken]
        taken.update(names)
        if tp is bool:
            # A bare boolean option means true (``--overwrite``); ``--overwrite false`` still works.
            group.add_argument(
                *names,
                dest=_dest(path),
                default=None,
                metavar="V",
                nargs="?",
                const="true",
                help=f"{own_help} (alone means true)" if own_help else f"bool, alone means true (default {shown})",
            )
        else:
            group.add_argument(
                *names,
                dest=_dest(path),
                default=None,
                metavar="V",
                help=own_help or f"{_type_name(tp)} (default {shown})",
            )
    return parser


def config_from_args(default: Any, namespace: argparse.Namespace) -> Any:
    """The config from ``default`` with the parsed options applied (options first, then --set in order)."""
    config = default
    for path, _ in leaf_fields(default):
        raw = getattr(namespace, _dest(path), None)
        if raw is not None:
            config = set_field(config, path, raw)
    return apply_overrides(config, getattr(namespace, _DEST_PREFIX + "set", []) or [])


def config_parser(prog: str | None, description: str | None, extra_usage: str = "") -> argparse.ArgumentParser:
    """The parser ``parse_config`` fills with a config's fields; ``extra_usage`` names options a caller adds."""
    return argparse.ArgumentParser(
        prog=prog,
        description=description,
        allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage=f"%(prog)s [-h] [--show-config]{extra_usage} [--set KEY=VALUE ...] [--<field> VALUE ...]",
    )


def parse_config(
    default: Any,
    argv: Sequence[str] | None = None,
    *,
    prog: str | None = None,
    description: str | None = None,
    parser: argparse.ArgumentParser | None = None,
) -> tuple[Any, argparse.Namespace]:
    """Parse ``argv`` into ``(config, namespace)``; exits with status 2 on a bad option (argparse style).

    ``--show-config`` prints the resolved config as JSON and exits 0.
    """
    if parser is None:
        parser = config_parser(prog, description)
    add_config_arguments(parser, default)
    namespace = parser.parse_args(argv)
    try:
        config = config_from_args(default, namespace)
    except ConfigError as err:
        parser.error(str(err))
    if getattr(namespace, _DEST_PREFIX + "show", False):
        print(json.dumps(config_to_dict(config), indent=2))
        parser.exit(0)
    return config, namespace
