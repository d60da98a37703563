"""Streaming reads of CSV, Parquet and JSON lines (:class:`ChunkReader`), and whole-file
reads for training and evaluation (:func:`read_table`).

Inputs are read in chunks of ``chunk_rows`` rows so memory stays flat however large
the file is. CSV columns are read as strings, so every value passes through to the
output exactly as it was written; bytes that are not UTF-8 are repaired (U+FFFD) and
the rows that held them are reported, never dropped. JSON lines are read twice: once
to type every key from all lines, then in chunks, so no chunk decides the columns.
"""

import contextlib
import csv
import io
import itertools
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from emoji_batch.errors import InputError
from emoji_batch.fileio.arrow_threads import lend, lent_stream
from emoji_batch.fileio.formats import (
    COMPACT,
    INVALID_UTF8,
    JSON_TEXT,
    FileFormat,
    check_unique_names,
    is_json_type,
    is_stdio,
)
from emoji_batch.remote import Location, RemoteFile

_CSV_BLOCK_BYTES = 1 << 20
_JSON_TYPES: dict[type, pa.DataType] = {
    bool: pa.bool_(),
    int: pa.int64(),
    float: pa.float64(),
    str: pa.string(),
}
_INT64 = range(-(2**63), 2**63)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_input(path: Location) -> None:
    if isinstance(path, RemoteFile):
        path.check_input()
        return
    if not path.exists():
        raise InputError(f"input file {path} does not exist")
    if path.is_dir():
        raise InputError(f"input {path} is a directory, not a file")


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
        None if v is None else json.dumps(v, ensure_ascii=False, separators=COMPACT) for v in values
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
        self._parquet: pq.ParquetFile | None = None
        self.schema: pa.Schema
        stdin = is_stdio(path)
        self._stream = self._open(stdin)
        self._where = "stdin" if stdin else str(path)
        try:
            if fmt == "parquet":
                self._open_parquet()
            elif fmt == "csv":
                self._open_csv()
            else:
                self._open_jsonl(stdin)
        except pa.ArrowInvalid as exc:
            if fmt == "csv" and "Empty CSV file" in str(exc):  # header only
                self._csv = None
            else:
                self.close()
                if fmt == "csv":
                    raise self._csv_error(exc) from exc
                raise InputError(f"cannot read {self._where} as {fmt}: {exc}") from exc
        except InputError:
            self.close()
            raise
        except OSError as exc:
            self.close()
            raise InputError(f"cannot read {self._where} as {fmt}: {exc}") from exc

    def _open(self, stdin: bool) -> BinaryIO | None:
        """The stream CSV and JSON lines are read from; None for Parquet, which Arrow
        opens itself, natively: nothing there needs the GIL."""
        if stdin and self.fmt == "parquet":
            raise InputError("stdin input must be csv or jsonl (--input-format)")
        if stdin:
            return os.fdopen(os.dup(0), "rb")
        _check_input(self.path)
        return None if self.fmt == "parquet" else open_binary(self.path)

    def _open_parquet(self) -> None:
        path = self.path
        source = path.open_arrow() if isinstance(path, RemoteFile) else pa.OSFile(str(path))
        self._parquet = pq.ParquetFile(source)
        self.schema = self._parquet.schema_arrow
        check_unique_names(self.schema.names, self._where)
        self.total_rows = self._parquet.metadata.num_rows

    def _open_csv(self) -> None:
        """Read the header, then start Arrow's streaming reader on the rest, every
        column as bytes (decoded per chunk, so invalid UTF-8 is repaired, not fatal)."""
        assert self._stream is not None
        names = _read_csv_header(self._stream, self._where)
        self.schema = pa.schema([pa.field(n, pa.string()) for n in names])
        # With one column, polars and Python's csv write a null as an empty line:
        # read it as a null row (a quoted "" stays an empty string), never skip it.
        one_column = len(names) == 1
        self._csv = pacsv.open_csv(
            lent_stream(self._stream),
            read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK_BYTES, column_names=names),
            parse_options=pacsv.ParseOptions(
                newlines_in_values=True,
                ignore_empty_lines=not one_column,
                invalid_row_handler=lend(_RaggedRows(self._ragged)),
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.binary()),
                strings_can_be_null=one_column,
                quoted_strings_can_be_null=False,
                null_values=[""],
            ),
        )

    def _open_jsonl(self, stdin: bool) -> None:
        """Type every key from all lines (a first pass; stdin is spooled to a temporary
        file for it) so no chunk decides the columns."""
        assert self._stream is not None
        if stdin:
            spool = tempfile.TemporaryFile()  # noqa: SIM115
            shutil.copyfileobj(self._stream, spool)
            self._stream.close()
            self._stream = spool
        self._stream.seek(0)
        rows = (row for row, _ in _jsonl_records(self._stream, self._where))
        self.schema, self.total_rows = _jsonl_schema(rows)
        check_unique_names(self.schema.names, self._where)
        if not self.total_rows:
            raise InputError(f"{self._where} is empty: expected JSON objects, one per line")

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
