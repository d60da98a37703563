"""Streaming reads and atomic writes of CSV, Parquet and JSON-lines tables.

Inputs are read in chunks of ``chunk_rows`` rows so memory stays flat however large
the file is. CSV columns are read as strings, so every value passes through to the
output exactly as it was written; bytes that are not UTF-8 are repaired (U+FFFD) and
the rows that held them are reported, never dropped. JSON lines are read twice: once
to type every key from all lines, then in chunks, so no chunk decides the columns.
Writers convert what a format cannot hold (or refuse it before anything is scored).
Outputs go to a temporary file beside the target and are renamed into place only after
a complete, fsynced write.
"""

import atexit
import contextlib
import csv
import datetime
import decimal
import gc
import hashlib
import io
import itertools
import json
import math
import os
import re
import shutil
import stat
import tempfile
import threading
import weakref
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Literal, TypeVar

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from emoji_batch.errors import InputError
from emoji_batch.remote import Location, RemoteFile

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
_CSV_BLOCK_BYTES = 1 << 20
# Column in each CSV/JSON-lines chunk naming the rows whose text was not valid UTF-8
# (bytes, or a lone surrogate escape such as a truncated tweet's "\ud83d"), then dropped.
INVALID_UTF8 = "__emoji_batch_invalid_utf8__"
# JSON-lines keys whose values are nested, beyond int64 or of several JSON types keep
# each value's JSON text, so 4 stays 4 beside 4.5 in every output format.
JSON_TEXT = pa.json_(pa.string())
_JSON_TYPES: dict[type, pa.DataType] = {
    bool: pa.bool_(),
    int: pa.int64(),
    float: pa.float64(),
    str: pa.string(),
}
_INT64 = range(-(2**63), 2**63)
_COMPACT = (",", ":")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
T = TypeVar("T")


# --- Python objects lent to Arrow's threads ------------------------------------------
#
# Arrow's CSV reader reads ahead in its own C++ threads, which hold the Python file it
# reads, the blocks read from it and the ragged-row handler, and may go on doing so for
# a while after an error. The thread that lets go of the last reference to one needs the
# GIL for it; if the interpreter is shutting down by then, Python ends that thread inside
# C++ code and the process aborts ("terminate called without an active exception", exit
# 134) after an error that should have exited 2. So every such object is lent through
# ``_lend``, and ``wait_for_arrow`` (called by the CLI before it exits, and at exit for
# library users, before shutdown begins) waits until Arrow has let go of them all.
_lent_cond = threading.Condition(threading.RLock())  # reentrant: gc may run a finalizer
_lent = 0
ARROW_RELEASE_SECONDS = 10.0


def _returned() -> None:
    global _lent
    with _lent_cond:
        _lent -= 1
        _lent_cond.notify_all()


def _lend(obj: T) -> T:
    """``obj``, counted as held by Arrow until it is garbage."""
    global _lent
    with _lent_cond:
        _lent += 1
    weakref.finalize(obj, _returned).atexit = False  # called when obj dies, never at exit
    return obj


def wait_for_arrow(timeout: float = ARROW_RELEASE_SECONDS) -> bool:
    """Wait until Arrow's threads hold no Python object lent to them (after a collection,
    for objects that only a reference cycle kept); False if ``timeout`` passed first."""
    with _lent_cond:
        if not _lent:
            return True
    gc.collect()
    with _lent_cond:
        return _lent_cond.wait_for(lambda: not _lent, timeout)


atexit.register(wait_for_arrow)


class _ArrowSource:
    """``stream`` for Arrow's reader threads, lent with every block it reads (as a NumPy
    array: bytes cannot be weakly referenced), so ``wait_for_arrow`` knows when Arrow is
    done with all of them."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def read(self, size: int = -1) -> np.ndarray:
        return _lend(np.frombuffer(self._stream.read(size), dtype=np.uint8))

    @property
    def closed(self) -> bool:
        return self._stream.closed

    def close(self) -> None:
        self._stream.close()


def _lent_stream(stream: BinaryIO) -> pa.PythonFile:
    return pa.PythonFile(_lend(_ArrowSource(stream)), mode="r")


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


def _check_input(path: Location) -> None:
    if isinstance(path, RemoteFile):
        path.check_input()
        return
    if not path.exists():
        raise InputError(f"input file {path} does not exist")
    if path.is_dir():
        raise InputError(f"input {path} is a directory, not a file")


def check_unique_names(names: list[str], where: str = "the input") -> None:
    """Refuse duplicate column names (a writer would keep one of them) and the reserved
    name the reader uses for its invalid-UTF-8 flags."""
    seen: set[str] = set()
    duplicates = sorted({n for n in names if n in seen or seen.add(n)})
    if duplicates:
        raise InputError(f"{where}: duplicate column names {duplicates}; rename them first")
    if INVALID_UTF8 in names:
        raise InputError(f"{where}: the column name {INVALID_UTF8!r} is reserved; rename it")


def _read_csv_header(stream: BinaryIO, where: str) -> list[str]:
    """Column names from the header record (which may span lines inside quotes)."""
    raw = stream.readline()
    while raw.count(b'"') % 2 and (more := stream.readline()):
        raw += more
    if not raw.strip():
        raise InputError(f"{where} is empty: expected a header row")
    text = raw.decode("utf-8-sig", errors="replace")
    names = next(csv.reader(io.StringIO(text)))
    check_unique_names(names, where)
    return names


def open_binary(path: Location) -> BinaryIO:
    """A local file or a remote object, opened for buffered binary reads."""
    return path.open() if isinstance(path, RemoteFile) else open(path, "rb")


def _locate_ragged(path: Location, fields: int) -> int | None:
    """Line number of the first CSV record without ``fields`` fields (error path only)."""
    with io.TextIOWrapper(open_binary(path), encoding="utf-8", errors="replace", newline="") as fh:
        reader = csv.reader(fh)
        for record in reader:
            if len(record) != fields:
                return reader.line_num
    return None


def _decode_utf8(table: pa.Table) -> pa.Table:
    """Binary CSV columns -> strings; invalid bytes become U+FFFD and their rows are flagged."""
    bad = np.zeros(table.num_rows, dtype=bool)
    columns = []
    for col in table.columns:
        try:
            columns.append(pc.cast(col, pa.string()))
        except pa.ArrowInvalid:
            values = col.to_pylist()
            decoded = []
            for i, v in enumerate(values):
                if v is None:
                    decoded.append(None)
                    continue
                try:
                    decoded.append(v.decode("utf-8"))
                except UnicodeDecodeError:
                    decoded.append(v.decode("utf-8", errors="replace"))
                    bad[i] = True
            columns.append(pa.chunked_array([pa.array(decoded, pa.string())]))
    out = pa.Table.from_arrays(columns, names=table.column_names)
    return out.append_column(INVALID_UTF8, pa.array(bad))


def _rebatch(batches: Iterator[pa.RecordBatch], chunk_rows: int) -> Iterator[pa.Table]:
    """Regroup record batches of any size into tables of exactly ``chunk_rows`` rows."""
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    for batch in batches:
        pending.append(batch)
        pending_rows += batch.num_rows
        while pending_rows >= chunk_rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, chunk_rows).combine_chunks()
            rest = table.slice(chunk_rows)
            pending = rest.to_batches()
            pending_rows = rest.num_rows
    if pending_rows:
        yield pa.Table.from_batches(pending).combine_chunks()


def _jsonl_records(stream: BinaryIO, where: str) -> Iterator[tuple[dict[str, Any], bool]]:
    """Each JSON object of a JSON-lines stream, and whether its text had to be repaired.

    Blank lines are skipped, as JSON-lines readers do. Bytes that are not UTF-8 and lone
    UTF-16 surrogate escapes (``"\\ud83d"`` alone, which UTF-8 cannot hold) become U+FFFD.
    """
    for number, raw in enumerate(stream, start=1):
        if not raw.strip():
            continue
        try:
            line, repaired = raw.decode("utf-8-sig" if number == 1 else "utf-8"), False
        except UnicodeDecodeError:
            line, repaired = raw.decode("utf-8", errors="replace"), True
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise InputError(f"{where}:{number}: invalid JSON ({exc})") from exc
        if not isinstance(row, dict):
            raise InputError(f"{where}:{number}: expected a JSON object")
        if _SURROGATE_ESCAPE.search(raw):  # cheap test first: most lines have none
            text = json.dumps(row, ensure_ascii=False)
            if _SURROGATE.search(text):
                row, repaired = json.loads(_SURROGATE.sub("\ufffd", text)), True
        yield row, repaired


def _json_kind(value: object) -> type:
    """The Python type json gave ``value``; ``object`` for ints int64 cannot hold."""
    kind = type(value)
    return object if kind is int and value not in _INT64 else kind


def _jsonl_schema(rows: Iterable[dict[str, Any]]) -> tuple[pa.Schema, int]:
    """One schema for the whole file, and its number of rows.

    Keys come in the order first seen; a key missing from a line is null there. A key
    with one JSON type gets the Arrow type for it (only nulls: ``null``), any other
    ``JSON_TEXT``, so no value is rounded, widened or dropped.
    """
    kinds: dict[str, set[type]] = {}
    count = 0
    for row in rows:
        count += 1
        for key, value in row.items():
            seen = kinds.setdefault(key, set())
            if value is not None:
                seen.add(_json_kind(value))
    fields = []
    for key, seen in kinds.items():
        if not seen:
            fields.append(pa.field(key, pa.null()))
        elif len(seen) == 1 and (kind := next(iter(seen))) in _JSON_TYPES:
            fields.append(pa.field(key, _JSON_TYPES[kind]))
        else:
            fields.append(pa.field(key, JSON_TEXT))
    return pa.schema(fields), count


def _json_array(values: list[Any], t: pa.DataType) -> pa.Array:
    """One column of parsed JSON values as ``t``; ``JSON_TEXT`` keeps their compact text."""
    if not is_json_type(t):
        return pa.array(values, t)
    text = [
        None if v is None else json.dumps(v, ensure_ascii=False, separators=_COMPACT)
        for v in values
    ]
    return pa.ExtensionArray.from_storage(t, pa.array(text, pa.string()))


class ChunkReader:
    """Iterate a CSV, Parquet or JSON-lines file (or stdin) as ``pyarrow.Table`` chunks.

    Chunks hold ``chunk_rows`` rows in file order. CSV and JSON-lines chunks carry an
    extra boolean column ``INVALID_UTF8``; ``schema`` is the input's own schema, without
    it. JSON lines from stdin are spooled to a temporary file, to be read twice. A
    :class:`~emoji_batch.remote.RemoteFile` is streamed from its store.
    """

    def __init__(self, path: Location, fmt: FileFormat, chunk_rows: int) -> None:
        if chunk_rows < 1:
            raise InputError("--chunk-rows must be at least 1")
        self.path, self.fmt, self.chunk_rows = path, fmt, chunk_rows
        self.total_rows: int | None = None
        self._ragged: list[pacsv.InvalidRow] = []  # filled by Arrow's threads
        self._csv: pacsv.CSVStreamingReader | None = None
        stdin = is_stdio(path)
        if stdin and fmt == "parquet":
            raise InputError("stdin input must be csv or jsonl (--input-format)")
        if not stdin:
            _check_input(path)
        # Arrow opens a Parquet file itself, natively: nothing there needs the GIL.
        self._stream: BinaryIO | None = (
            os.fdopen(os.dup(0), "rb")
            if stdin
            else (None if fmt == "parquet" else open_binary(path))
        )
        where = self._where = "stdin" if stdin else str(path)
        try:
            if fmt == "parquet":
                source = path.open_arrow() if isinstance(path, RemoteFile) else pa.OSFile(str(path))
                self._parquet: pq.ParquetFile | None = pq.ParquetFile(source)
                self.schema: pa.Schema = self._parquet.schema_arrow
                check_unique_names(self.schema.names, where)
                self.total_rows = self._parquet.metadata.num_rows
            elif fmt == "csv":
                names = _read_csv_header(self._stream, where)
                self.schema = pa.schema([pa.field(n, pa.string()) for n in names])
                # With one column, polars and Python's csv write a null as an empty line:
                # read it as a null row (a quoted "" stays an empty string), never skip it.
                one_column = len(names) == 1
                self._csv = pacsv.open_csv(
                    _lent_stream(self._stream),
                    read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK_BYTES, column_names=names),
                    parse_options=pacsv.ParseOptions(
                        newlines_in_values=True,
                        ignore_empty_lines=not one_column,
                        invalid_row_handler=_lend(_RaggedRows(self._ragged)),
                    ),
                    convert_options=pacsv.ConvertOptions(
                        column_types=dict.fromkeys(names, pa.binary()),
                        strings_can_be_null=one_column,
                        quoted_strings_can_be_null=False,
                        null_values=[""],
                    ),
                )
            else:
                if stdin:
                    spool = tempfile.TemporaryFile()  # noqa: SIM115
                    shutil.copyfileobj(self._stream, spool)
                    self._stream.close()
                    self._stream = spool
                self._stream.seek(0)
                rows = (row for row, _ in _jsonl_records(self._stream, where))
                self.schema, self.total_rows = _jsonl_schema(rows)
                check_unique_names(self.schema.names, where)
                if not self.total_rows:
                    raise InputError(f"{where} is empty: expected JSON objects, one per line")
        except pa.ArrowInvalid as exc:
            if fmt == "csv" and "Empty CSV file" in str(exc):  # header only
                self._csv = None
            else:
                self.close()
                if fmt == "csv":
                    raise self._csv_error(exc) from exc
                raise InputError(f"cannot read {where} as {fmt}: {exc}") from exc
        except InputError:
            self.close()
            raise
        except OSError as exc:
            self.close()
            raise InputError(f"cannot read {where} as {fmt}: {exc}") from exc

    def _csv_error(self, exc: pa.ArrowInvalid) -> InputError:
        if not self._ragged:
            return InputError(f"cannot read {self._where} as csv: {exc}")
        row = self._ragged[0]
        where = self._where
        if not is_stdio(self.path):  # a file can be read again to find the line
            line = _locate_ragged(self.path, row.expected_columns)
            where = f"{where}:{line}" if line else where
        return InputError(
            f"{where}: ragged CSV row: expected {row.expected_columns} fields, "
            f"got {row.actual_columns}: {row.text[:200]!r}"
        )

    def _jsonl_table(self, records: list[tuple[dict[str, Any], bool]]) -> pa.Table:
        """A chunk of records in the whole file's schema, flagging the repaired ones."""
        rows = [row for row, _ in records]
        columns = [_json_array([row.get(f.name) for row in rows], f.type) for f in self.schema]
        table = pa.Table.from_arrays(columns, schema=self.schema)
        return table.append_column(INVALID_UTF8, pa.array([bad for _, bad in records]))

    def __iter__(self) -> Iterator[pa.Table]:
        try:
            if self.fmt == "parquet":
                yield from _rebatch(
                    self._parquet.iter_batches(batch_size=self.chunk_rows), self.chunk_rows
                )
            elif self.fmt == "csv":
                if self._csv is not None:
                    for table in _rebatch(iter(self._csv), self.chunk_rows):
                        yield _decode_utf8(table)
            else:
                self._stream.seek(0)
                records = _jsonl_records(self._stream, self._where)
                while chunk := list(itertools.islice(records, self.chunk_rows)):
                    yield self._jsonl_table(chunk)
        except pa.ArrowInvalid as exc:
            if self.fmt == "csv":
                raise self._csv_error(exc) from exc
            raise InputError(f"cannot read {self._where} as {self.fmt}: {exc}") from exc
        except OSError as exc:
            raise InputError(f"cannot read {self._where} as {self.fmt}: {exc}") from exc
        finally:
            self.close()

    def close(self) -> None:
        """Close the input and drop every reference to what Arrow reads: its threads
        then fail fast on a read and let go of it too (see ``wait_for_arrow``)."""
        self._csv = self._parquet = None
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


class _RaggedRows:
    """Arrow's invalid-row handler: keeps the rows (the first names the error) and
    refuses them. Not a bound method of the reader, so that Arrow holds only this."""

    def __init__(self, rows: list[pacsv.InvalidRow]) -> None:
        self.rows = rows

    def __call__(self, row: pacsv.InvalidRow) -> str:
        self.rows.append(row)
        return "error"


def _json_default(value: object) -> str:
    """JSON for what ``to_pylist`` gives nested dates, times and decimals: ISO-8601 text
    and the exact decimal text."""
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _finite(value: Any) -> Any:
    """``value`` with NaN and ±inf, which JSON has no words for, replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _dumps(value: Any, separators: tuple[str, str] | None = None) -> str:
    """Strict JSON text of ``value`` (non-finite floats as null)."""
    try:
        return json.dumps(
            value, ensure_ascii=False, allow_nan=False, separators=separators, default=_json_default
        )
    except ValueError:  # a NaN or an infinity somewhere: rare, so only then look for it
        return _dumps(_finite(value), separators)


def _json_problem(t: pa.DataType, nested: bool = False) -> str | None:
    """Why JSON cannot hold values of ``t`` (as ``_writable_column`` converts them), or None.

    Nested dates and times go through Python's datetime, which stops at microseconds.
    """
    if pa.types.is_dictionary(t):
        return _json_problem(t.value_type, nested)
    if is_json_type(t):
        return None
    if (
        isinstance(t, pa.BaseExtensionType)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_binary_view(t)
        or pa.types.is_fixed_size_binary(t)
        or pa.types.is_duration(t)
        or pa.types.is_interval(t)
        or (nested and pa.types.is_temporal(t) and getattr(t, "unit", None) == "ns")
    ):
        return f"{t} values inside it" if nested else f"{t} values"
    problems = (_json_problem(t.field(i).type, nested=True) for i in range(t.num_fields))
    return next((p for p in problems if p), None)


def _writable_column(column: pa.ChunkedArray, name: str, fmt: FileFormat) -> pa.ChunkedArray:
    """``column`` in a type that ``fmt`` (CSV or JSON lines) can hold.

    Both: dictionaries decoded, string_view as string. CSV: lists, structs and maps as
    compact JSON, JSON text with its strings unquoted. JSON lines: timestamps and times
    as ISO-8601 text (Arrow's, which keeps nanoseconds); the rest in ``_dumps``.
    """
    t = column.type
    if pa.types.is_dictionary(t):
        return _writable_column(column.cast(t.value_type), name, fmt)
    if pa.types.is_string_view(t):
        return column.cast(pa.string())
    if fmt == "csv" and pa.types.is_binary_view(t):
        return column.cast(pa.binary())
    nested = pa.types.is_nested(t)
    if fmt == "jsonl" or nested:
        problem = _json_problem(t)
        if problem:
            where = "JSON lines" if fmt == "jsonl" else "CSV (as JSON)"
            raise InputError(
                f"column {name!r} has {problem}, which {where} cannot hold; "
                "write Parquet instead, or drop the column"
            )
    if fmt == "csv":
        if is_json_type(t):
            text = [v if v is None or v[:1] != '"' else json.loads(v) for v in column.to_pylist()]
        elif nested:
            text = [None if v is None else _dumps(v, _COMPACT) for v in column.to_pylist()]
        else:
            return column
        return pa.chunked_array([pa.array(text, pa.string())])
    if pa.types.is_timestamp(t):
        return pc.strftime(column, format="%Y-%m-%dT%H:%M:%S" + ("%Ez" if t.tz else ""))
    if pa.types.is_time(t):
        return column.cast(pa.string())
    return column


class TableWriter:
    """Append ``pyarrow.Table`` chunks to a CSV, Parquet or JSON-lines sink.

    Columns the format cannot hold are converted (see ``_writable_column``) or refused
    when the writer is made, before anything is written; JSON lines are strict JSON.
    """

    def __init__(self, sink: Path | BinaryIO, fmt: FileFormat, schema: pa.Schema) -> None:
        self.schema, self.fmt = schema, fmt
        self._sink = sink
        written = self._writable(schema.empty_table()).schema
        if fmt == "parquet":
            self._writer: pq.ParquetWriter | pacsv.CSVWriter | None = pq.ParquetWriter(
                sink, written
            )
        elif fmt == "csv":
            self._writer = pacsv.CSVWriter(sink, written)
        else:
            self._writer = None
            self._jsonl = open(sink, "wb") if isinstance(sink, Path) else sink  # noqa: SIM115

    def _writable(self, table: pa.Table) -> pa.Table:
        if self.fmt == "parquet":
            return table
        columns = [
            _writable_column(column, name, self.fmt)
            for name, column in zip(table.column_names, table.columns, strict=True)
        ]
        return pa.Table.from_arrays(columns, names=table.column_names)

    def write(self, table: pa.Table) -> None:
        table = self._writable(table.cast(self.schema))
        if self._writer is not None:
            self._writer.write_table(table)
            return
        columns = [
            [None if v is None else json.loads(v) for v in column.to_pylist()]
            if is_json_type(column.type)
            else column.to_pylist()
            for column in table.columns
        ]
        for values in zip(*columns, strict=True):
            row = dict(zip(table.column_names, values, strict=True))
            self._jsonl.write(_dumps(row).encode() + b"\n")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        elif isinstance(self._sink, Path):
            self._jsonl.close()
        else:
            self._jsonl.flush()


def check_writable(schema: pa.Schema, fmt: FileFormat) -> None:
    """Refuse an output ``fmt`` cannot hold now, before anything is scored: a dry run of
    the writer on no rows, so no run fails on its last chunk for a column's type."""
    try:
        writer = TableWriter(io.BytesIO(), fmt, schema)
        writer.write(schema.empty_table())
        writer.close()
    except pa.ArrowException as exc:
        raise InputError(f"cannot write these columns as {fmt}: {exc}") from exc


def file_digest(*paths: Path) -> str:
    """sha256 over the bytes of ``paths`` in order, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def fsync_path(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _new_file_beside(path: Path) -> Path:
    """An empty ``.NAME.RANDOM.tmp`` beside ``path``, created as any new file is (0666
    less the umask, or the directory's default ACL), unlike mkstemp's private 0600."""
    while True:
        tmp = path.with_name(f".{path.name}.{os.urandom(4).hex()}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
        except OSError as exc:  # read-only file system, or a directory we may not write
            raise InputError(
                f"output directory {path.parent} is not writable ({exc.strerror})"
            ) from exc


@contextlib.contextmanager
def atomic_output(path: Path, force: bool) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    The result has the mode of the file it replaces, else that of a new file, whatever
    mode the writer gave the temporary file.
    """
    check_output(path, force)
    tmp = _new_file_beside(path)
    mode = stat.S_IMODE(tmp.stat().st_mode)
    try:
        yield tmp
        with contextlib.suppress(FileNotFoundError):
            mode = stat.S_IMODE(path.stat().st_mode)
        os.chmod(tmp, mode)
        fsync_path(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def check_output(path: Path, force: bool) -> None:
    """Refuse an output that exists (without ``force``), is a directory, or whose
    directory is missing or not writable: before any work is done, not after."""
    if path.is_dir():
        raise InputError(f"output {path} is a directory")
    if path.exists() and not force:
        raise InputError(f"output {path} already exists; pass --force to overwrite it")
    if not path.parent.is_dir():
        raise InputError(f"output directory {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise InputError(f"output directory {path.parent} is not writable")


def read_table(path: Path, fmt: FileFormat) -> pl.DataFrame:
    """Read a whole (training or evaluation) file; CSV values stay strings."""
    _check_input(path)
    try:
        if fmt == "parquet":
            return pl.read_parquet(path)
        if fmt == "jsonl":
            return pl.read_ndjson(path)
        return pl.read_csv(path, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(f"cannot read {path} as {fmt}: {exc}") from exc
