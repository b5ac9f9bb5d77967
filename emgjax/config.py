"""Frozen-dataclass experiment configs, overridable from the command line.

An experiment config is a tree of frozen dataclasses (sections) whose leaves
are ``bool``, ``int``, ``float``, ``str``, ``None``-able versions of those, or
tuples of them. This module turns such a tree into command-line options and
back, with type coercion and clear errors:

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
dataclass's own ``__post_init__`` check) rejects raises ``ValueError`` saying
what was expected and what was found.

``config_to_dict`` / ``config_from_dict`` give the JSON form (saved next to
every run), checked the same way: unknown keys and wrongly typed values are
errors, lists become tuples.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import functools
import json
import math
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "ConfigError",
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


class ConfigError(ValueError):
    """A config override or config file names an unknown field or holds a bad value."""


def _is_config(obj: Any) -> bool:
    return dataclasses.is_dataclass(obj)


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
    return getattr(tp, "__name__", str(tp))


def _section_type(tp: Any) -> type | None:
    """The dataclass a field holds (also through ``X | None``), or None for a leaf."""
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return tp
    args = _union_args(tp)
    if args is not None:
        classes = [a for a in args if isinstance(a, type) and dataclasses.is_dataclass(a)]
        if len(classes) == 1:
            return classes[0]
    return None


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
        errors = []
        for option in args:
            if option is type(None):
                continue
            try:
                return parse_value(text, option, name=name)
            except ConfigError as err:
                errors.append(str(err))
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
    if tp is str:
        return text
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
    if tp is Any:
        return text
    raise ConfigError(f"{name}: fields of type {_type_name(tp)} cannot be set from the command line")


def _check_json_value(value: Any, tp: Any, name: str) -> Any:
    """A JSON value as type ``tp`` (lists -> tuples, ints -> floats), or ConfigError."""
    args = _union_args(tp)
    if args is not None:
        if value is None and type(None) in args:
            return None
        for option in args:
            if option is type(None):
                continue
            try:
                return _check_json_value(value, option, name)
            except ConfigError:
                continue
        raise ConfigError(f"{name}: expected {_type_name(tp)}, found {value!r}")
    section = _section_type(tp)
    if section is not None:
        if not isinstance(value, dict):
            raise ConfigError(f"{name}: expected a mapping of {section.__name__} fields, found {type(value).__name__}")
        return config_from_dict(section, value, _prefix=name + ".")
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
    if typing.get_origin(tp) is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}: expected a list, found {value!r}")
        inner = typing.get_args(tp)
        if len(inner) == 2 and inner[1] is Ellipsis:
            return tuple(_check_json_value(v, inner[0], f"{name}[{i}]") for i, v in enumerate(value))
        if len(value) != len(inner):
            raise ConfigError(f"{name}: expected a list of {len(inner)} values, found {len(value)}")
        return tuple(_check_json_value(v, t, f"{name}[{i}]") for i, (v, t) in enumerate(zip(value, inner, strict=True)))
    return value


# -- dicts -----------------------------------------------------------------


def config_to_dict(config: Any) -> Any:
    """JSON-ready nested dicts of a config tree (tuples become lists)."""
    if _is_config(config) and not isinstance(config, type):
        return {f.name: config_to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, (tuple, list)):
        return [config_to_dict(v) for v in config]
    return config


def config_from_dict(cls: type, data: Any, *, _prefix: str = "") -> Any:
    """Build ``cls`` from ``config_to_dict`` output; missing keys keep their defaults.

    Raises ConfigError for unknown keys or wrongly typed values (naming the
    dotted field) and for values the dataclass's own checks reject.
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise ConfigError(f"config_from_dict: expected a dataclass type, found {cls!r}")
    if not isinstance(data, dict):
        raise ConfigError(f"{_prefix or cls.__name__}: expected a mapping of fields, found {type(data).__name__}")
    types_ = _field_types(cls)
    unknown = sorted(set(data) - set(types_))
    if unknown:
        raise ConfigError(
            f"{cls.__name__}: unknown field(s) {[_prefix + u for u in unknown]}; expected some of "
            f"{[_prefix + k for k in types_]}"
        )
    kwargs = {key: _check_json_value(value, types_[key], _prefix + key) for key, value in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as err:  # a required field is missing
        raise ConfigError(f"{_prefix or cls.__name__}: {err}") from None
    except ValueError as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"{_prefix or cls.__name__}: {err}") from None


# -- dotted paths ------------------------------------------------------------


def leaf_fields(config: Any, _prefix: str = "") -> list[tuple[str, Any]]:
    """[(dotted name, annotated type)] of every settable leaf of a config tree, in field order."""
    cls = config if isinstance(config, type) else type(config)
    out = []
    for name, tp in _field_types(cls).items():
        section = _section_type(tp)
        value = None if isinstance(config, type) else getattr(config, name)
        if section is not None and (value is not None or isinstance(config, type)):
            out.extend(leaf_fields(value if value is not None else section, _prefix + name + "."))
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
        if section is None or current is None:
            raise _unknown_field(path, root)
        new_value = _set(current, parts, depth + 1, value, parse, root=root, path=path)
    else:
        if section is not None:
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
        current = default
        for part in path.split("."):
            current = getattr(current, part)
        names = [f"--{path}"]
        short = path.rsplit(".", 1)[-1]
        if "." in path and short_counts[short] == 1:
            names.append(f"--{short}")
        names += [n.replace("_", "-") for n in list(names) if "_" in n]
        names = [n for n in dict.fromkeys(names) if n not in taken]
        taken.update(names)
        shown = json.dumps(config_to_dict(current))
        if tp is bool:
            # A bare boolean option means true (``--overwrite``); ``--overwrite false`` still works.
            group.add_argument(
                *names,
                dest=_dest(path),
                default=None,
                metavar="V",
                nargs="?",
                const="true",
                help=f"bool, alone means true (default {shown})",
            )
        else:
            group.add_argument(
                *names, dest=_dest(path), default=None, metavar="V", help=f"{_type_name(tp)} (default {shown})"
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
        parser = argparse.ArgumentParser(
            prog=prog,
            description=description,
            allow_abbrev=False,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            usage="%(prog)s [-h] [--show-config] [--set KEY=VALUE ...] [--<field> VALUE ...]",
        )
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
