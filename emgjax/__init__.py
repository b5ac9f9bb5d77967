"""emgjax: forearm surface EMG to hand pose in JAX/Flax."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the real import is lazy: `import emgjax` must not pull in jax
    from emgjax.bundle import Emg2PoseModel, Model

from emgjax._version import __version__


def load_model(directory: str | os.PathLike[str]) -> Model:
    """Load any emgjax model directory (emg2pose, direct, adapter pipeline).

    See `emgjax.bundle.load_model`.
    """
    from emgjax.bundle import load_model as _load

    return _load(directory)


def load_pretrained(directory: str | os.PathLike[str]) -> Emg2PoseModel:
    """Load an emg2pose model (written by `emgjax convert` or trained here); refuses other kinds.

    See `emgjax.bundle.load_pretrained`.
    """
    from emgjax.bundle import load_pretrained as _load

    return _load(directory)


__all__ = ["__version__", "load_model", "load_pretrained"]
