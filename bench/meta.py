"""Meta's own emg2pose modules, from a checkout the user supplies (``--emg2pose-src DIR``), for side-by-side runs.

Nothing of Meta's is vendored here: ``DIR`` is a checkout of facebookresearch/emg2pose
(``git clone https://github.com/facebookresearch/emg2pose``). Its ``emg2pose/networks.py`` and
``emg2pose/pose_modules.py`` import only torch and ``emg2pose.constants``, so they load without
Lightning, hydra or the data stack: `meta_modules` imports those three files alone (the package's
``__init__`` is not run).

`build_meta_model` instantiates Meta's classes from the same hydra ``network_conf`` a published
Lightning checkpoint carries (``tests/torch_reference.py``'s ``hyper_parameters_for``, whose
``_target_`` strings are Meta's import paths) and loads a state_dict into it with ``strict=True``:
the attribute names of our PyTorch reference and of Meta's modules must agree key for key.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

__all__ = ["add_argument", "build_meta_model", "meta_modules"]

_FILES = ("constants", "networks", "pose_modules")


def add_argument(parser: Any) -> None:
    parser.add_argument(
        "--emg2pose-src",
        default=None,
        metavar="DIR",
        help="a checkout of facebookresearch/emg2pose: adds Meta's own modules beside ours and our PyTorch reference",
    )


def meta_modules(src: str | Path) -> dict[str, types.ModuleType]:
    """Import emg2pose.{constants,networks,pose_modules} from the checkout ``src``: {name: module}."""
    package_dir = Path(src).expanduser().resolve() / "emg2pose"
    missing = [name for name in _FILES if not (package_dir / f"{name}.py").is_file()]
    if missing:
        raise ValueError(
            f"--emg2pose-src: expected a checkout of facebookresearch/emg2pose with emg2pose/{missing[0]}.py, "
            f"found {Path(src)} without it"
        )
    if "emg2pose" not in sys.modules:
        package = types.ModuleType("emg2pose")
        package.__path__ = [str(package_dir)]
        sys.modules["emg2pose"] = package
    modules = {}
    for name in _FILES:  # constants first: pose_modules imports it and networks
        full = f"emg2pose.{name}"
        if full not in sys.modules:
            spec = importlib.util.spec_from_file_location(full, package_dir / f"{name}.py")
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[full] = module
            spec.loader.exec_module(module)
        modules[name] = sys.modules[full]
    return modules


def _instantiate(conf: Any, modules: dict[str, types.ModuleType]) -> Any:
    """hydra-style instantiate of a ``_target_`` tree naming ``emg2pose.<module>.<Class>``."""
    if isinstance(conf, dict):
        kwargs = {key: _instantiate(value, modules) for key, value in conf.items() if key != "_target_"}
        if "_target_" not in conf:
            return kwargs
        package, module, name = conf["_target_"].split(".")
        if package != "emg2pose" or module not in modules:
            raise ValueError(f"expected a _target_ in emg2pose.{{networks,pose_modules}}, found {conf['_target_']!r}")
        return getattr(modules[module], name)(**kwargs)
    if isinstance(conf, list):
        return [_instantiate(value, modules) for value in conf]
    return conf


def build_meta_model(src: str | Path, experiment: str, state_dict: Any, **overrides: Any) -> Any:
    """Meta's pose module of ``experiment`` (hydra network_conf of its published config) with ``state_dict``.

    state_dict: the pose module's (no "model." prefix), e.g. our reference's ``model.state_dict()``;
    overrides: ``hyper_parameters_for``'s size overrides (none: the published size).
    """
    import torch_reference as tr

    model = _instantiate(tr.hyper_parameters_for(experiment, **overrides)["network_conf"], meta_modules(src))
    model.load_state_dict(state_dict, strict=True)
    return model
