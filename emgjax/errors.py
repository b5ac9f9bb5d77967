"""Shared input checks that raise clear `ValueError`s.

Every check names the argument, says what was expected and what was found, so
a caller sees e.g. ``emg: expected 16 channels (axis 1 of (batch, channels,
time)), found 8 (shape (2, 8, 4000))``. Checks run on the host, *before* any
jitted code, because errors inside traced code are unreadable.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def _shape_str(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(int(d)) for d in shape) + (",)" if len(shape) == 1 else ")")


def check_array_like(name: str, value: Any) -> Any:
    """Refuse anything that is not a NumPy/JAX array (lists, None, torch tensors ...).

    Returns the value unchanged. Torch tensors are refused on purpose: silently
    converting them would hide a device copy and a dtype change.
    """
    if isinstance(value, np.ndarray):
        return value
    # jax.Array without importing jax here (keeps this module dependency-free).
    if type(value).__module__.startswith(("jax", "jaxlib")) and hasattr(value, "shape") and hasattr(value, "dtype"):
        return value
    raise ValueError(f"{name}: expected a NumPy or JAX array, found {type(value).__module__}.{type(value).__name__}")


def check_rank(name: str, value: Any, ndim: int, layout: str) -> None:
    """`value.ndim == ndim`, e.g. ``check_rank("emg", emg, 3, "(batch, channels, time)")``."""
    check_array_like(name, value)
    if value.ndim != ndim:
        raise ValueError(
            f"{name}: expected a {ndim}-d array {layout}, found {value.ndim}-d array of shape {_shape_str(value.shape)}"
        )


def check_axis_size(name: str, value: Any, axis: int, expected: int, what: str, layout: str) -> None:
    """`value.shape[axis] == expected`; `what` names the axis ("channels", "joint angles")."""
    found = value.shape[axis]
    if found != expected:
        raise ValueError(
            f"{name}: expected {expected} {what} (axis {axis} of {layout}), found {found} "
            f"(shape {_shape_str(value.shape)})"
        )


def check_float_dtype(name: str, value: Any) -> None:
    """Real floating dtype (float16/32/64, bfloat16)."""
    kind = np.dtype(value.dtype).kind if str(value.dtype) != "bfloat16" else "f"
    if kind != "f":
        raise ValueError(f"{name}: expected a floating-point array (e.g. float32), found dtype {value.dtype}")


def check_bool_dtype(name: str, value: Any) -> None:
    if np.dtype(value.dtype) != np.bool_:
        raise ValueError(f"{name}: expected a boolean array, found dtype {value.dtype}")


def check_finite(name: str, value: Any) -> None:
    """No NaN or Inf; reports how many and the first bad index."""
    host = np.asarray(value)
    finite = np.isfinite(host)
    if not finite.all():
        bad = np.argwhere(~finite)
        raise ValueError(
            f"{name}: expected only finite values, found {len(bad)} NaN/Inf value(s), "
            f"first at index {tuple(int(i) for i in bad[0])}"
        )


def check_same_size(name_a: str, a: Any, axis_a: int, name_b: str, b: Any, axis_b: int, what: str) -> None:
    """Two arrays agree along one axis each (e.g. batch or time of emg vs joint_angles)."""
    if a.shape[axis_a] != b.shape[axis_b]:
        raise ValueError(
            f"{name_b}: expected {what} {a.shape[axis_a]} to match {name_a} (shape {_shape_str(a.shape)}), "
            f"found {b.shape[axis_b]} (shape {_shape_str(b.shape)})"
        )


def check_min_length(name: str, value: Any, axis: int, minimum: int, why: str) -> None:
    """`value.shape[axis] >= minimum`; `why` explains the minimum (e.g. the left context)."""
    found = value.shape[axis]
    if found < minimum:
        raise ValueError(
            f"{name}: expected at least {minimum} samples along axis {axis} ({why}), found {found} "
            f"(shape {_shape_str(value.shape)})"
        )


def check_nonempty(name: str, value: Any, axis: int, what: str, layout: str) -> None:
    """`value.shape[axis] > 0`, e.g. a batch of at least one (an empty batch breaks means inside jitted code)."""
    if value.shape[axis] == 0:
        raise ValueError(
            f"{name}: expected at least one {what} (axis {axis} of {layout}), found 0 (shape {_shape_str(value.shape)})"
        )


def check_output_path(name: str, value: Any) -> Any:
    """An output folder given as a non-empty path; returns it as a ``pathlib.Path``.

    An empty string would silently mean the working directory (``Path("")`` is ``.``),
    so a run would write into, or an overwrite would clear, wherever the user stands.
    """
    if not isinstance(value, (str, pathlib.PurePath)):
        raise ValueError(f"{name}: expected a directory path, found {type(value).__name__}")
    if not str(value).strip():
        raise ValueError(f"{name}: expected a directory path, found an empty string")
    return pathlib.Path(value)


__all__ = [
    "check_output_path",
    "check_array_like",
    "check_rank",
    "check_axis_size",
    "check_float_dtype",
    "check_bool_dtype",
    "check_finite",
    "check_same_size",
    "check_min_length",
    "check_nonempty",
    "read_json_object",
    "USER_ERRORS",
    "run_command",
]


def read_json_object(path: str | os.PathLike, what: str, error: type[ValueError] = ValueError) -> dict:
    """The JSON object in ``path`` (``what`` names it in messages); ``error`` for unreadable or non-object text."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: expected the {what}, found no such file")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise error(f"{path}: expected JSON, found unreadable text ({err})") from None
    if not isinstance(data, dict):
        raise error(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


# What a user can cause and fix: bad arguments, bad or missing files, unwritable
# folders. Every project error class subclasses ValueError; OSError covers
# FileNotFoundError, PermissionError, IsADirectoryError and a full disk.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)


def run_command(prog: str, body: Callable[[], int | None]) -> int:
    """Run a command's body; a user error becomes one line ``PROG: error: ...`` on stderr and exit code 2.

    The one place where commands turn exceptions into exit codes, so every
    command (``emgjax ...`` and ``experiments/*.py``) reports errors alike.
    Programming errors (anything else) keep their traceback.
    """
    try:
        return int(body() or 0)
    except USER_ERRORS as err:
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
