"""emgjax: forearm surface EMG to hand pose in JAX/Flax."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the real import is lazy: `import emgjax` must not pull in jax
    from emgjax.pretrained import Emg2PoseModel

from emgjax._version import __version__


def load_pretrained(directory: str | os.PathLike[str]) -> Emg2PoseModel:
    """Load a converted emg2pose model written by `emgjax convert`.

    See `emgjax.pretrained.load_pretrained`.
    """
    from emgjax.pretrained import load_pretrained as _load

    return _load(directory)


__all__ = ["__version__", "load_pretrained"]
