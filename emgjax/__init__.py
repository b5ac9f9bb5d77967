"""emgjax: forearm surface EMG to hand pose in JAX/Flax."""

__version__ = "0.1.0"


def load_pretrained(directory):
    """Load a converted emg2pose model written by `emgjax convert`.

    See `emgjax.pretrained.load_pretrained`.
    """
    from emgjax.pretrained import load_pretrained as _load

    return _load(directory)


__all__ = ["__version__", "load_pretrained"]
