"""The three file formats, how a path names one, and the column rules every reader and
writer shares.
"""

from typing import Literal

import pyarrow as pa

from emoji_batch.errors import InputError
from emoji_batch.remote import Location

FileFormat = Literal["csv", "parquet", "jsonl"]
FORMATS: tuple[FileFormat, ...] = ("csv", "parquet", "jsonl")
STDIO = "-"
_SUFFIXES: dict[str, FileFormat] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
# Column in each CSV/JSON-lines chunk naming the rows whose text was not valid UTF-8
# (bytes, or a lone surrogate escape such as a truncated tweet's "\ud83d"), then dropped.
INVALID_UTF8 = "__emoji_batch_invalid_utf8__"
# JSON-lines keys whose values are nested, beyond int64 or of several JSON types keep
# each value's JSON text, so 4 stays 4 beside 4.5 in every output format.
JSON_TEXT = pa.json_(pa.string())
# Separators of compact JSON text (JSON_TEXT values, nested values in CSV).
COMPACT = (",", ":")


def is_stdio(path: Location) -> bool:
    return str(path) == STDIO


def detect_format(path: Location, override: str | None = None) -> FileFormat:
    """The format named by ``override``, else the one the file suffix says (stdio: CSV)."""
    if override is not None:
        if override not in FORMATS:
            raise InputError(f"unknown format {override!r}; use one of {', '.join(FORMATS)}")
        return override  # type: ignore[return-value]
    if is_stdio(path):
        return "csv"
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise InputError(
            f"cannot tell the format of {path} from its suffix {path.suffix!r}: "
            "use .csv, .parquet or .jsonl, or pass --input-format/--output-format"
        )
    return fmt


def find_column(columns: list[str], wanted: str, what: str = "text") -> str:
    """Match ``wanted`` exactly, then case-insensitively (so 'text' finds 'TEXT')."""
    if wanted in columns:
        return wanted
    folded = [c for c in columns if c.lower() == wanted.lower()]
    if len(folded) == 1:
        return folded[0]
    raise InputError(
        f"{what} column {wanted!r} not found; columns present: {', '.join(columns) or '(none)'}"
    )


def is_text_type(t: pa.DataType) -> bool:
    """Whether values of ``t`` are strings: string, large_string, string_view, or a
    dictionary of those (polars Categorical, pandas category)."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def is_json_type(t: pa.DataType) -> bool:
    """Whether ``t`` holds JSON text (see ``JSON_TEXT``)."""
    return isinstance(t, pa.JsonType)


def check_unique_names(names: list[str], where: str = "the input") -> None:
    """Refuse duplicate column names (a writer would keep one of them) and the reserved
    name the reader uses for its invalid-UTF-8 flags."""
    seen: set[str] = set()
    duplicates = sorted({n for n in names if n in seen or seen.add(n)})
    if duplicates:
        raise InputError(f"{where}: duplicate column names {duplicates}; rename them first")
    if INVALID_UTF8 in names:
        raise InputError(f"{where}: the column name {INVALID_UTF8!r} is reserved; rename it")
