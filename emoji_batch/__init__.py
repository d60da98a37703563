"""emoji-batch: predict the emoji a tweet would carry, for whole files at a time."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("emoji-batch")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
