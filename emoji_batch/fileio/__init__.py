"""Reading and writing tables: CSV, Parquet and JSON lines, streamed in chunks, written
whole or not at all.

The rooms: ``formats`` (the three formats, how a path names one, column rules),
``readers`` (:class:`ChunkReader`, :func:`read_table`), ``writers`` (:class:`TableWriter`,
:func:`check_writable`), ``atomic`` (atomic files and JSON, file digests; standard
library only) and ``arrow_threads`` (Python objects lent to Arrow's reader threads).
Every public name is importable from ``emoji_batch.fileio`` too; it is imported on first
use, so writing a manifest (``fileio.atomic``) never loads Arrow.
"""

from importlib import import_module
from typing import Any

_ROOMS = {
    "arrow_threads": ("ARROW_RELEASE_SECONDS", "wait_for_arrow"),
    "atomic": (
        "atomic_output",
        "check_output",
        "file_digest",
        "file_fingerprint",
        "fsync_path",
        "write_json",
    ),
    "formats": (
        "FORMATS",
        "INVALID_UTF8",
        "JSON_TEXT",
        "STDIO",
        "FileFormat",
        "check_unique_names",
        "detect_format",
        "find_column",
        "is_json_type",
        "is_stdio",
        "is_text_type",
    ),
    "readers": ("ChunkReader", "open_binary", "read_table"),
    "writers": ("TableWriter", "check_writable"),
}
_HOME = {name: room for room, names in _ROOMS.items() for name in names}
__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(import_module(f"emoji_batch.fileio.{_HOME[name]}"), name)
    raise AttributeError(f"module 'emoji_batch.fileio' has no attribute {name!r}")
