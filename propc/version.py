"""`propc.__version__`: the installed distribution's version (pyproject.toml), read
from its metadata; a source tree that was never installed says "unknown"."""
from importlib import metadata

try:
    __version__ = metadata.version("propc")
except metadata.PackageNotFoundError:  # run from a source tree without `pip install`
    __version__ = "unknown"
