"""The one version source: the package metadata (pyproject.toml), `emgjax.__version__` and the on-disk formats."""

__version__ = "0.1.0"
