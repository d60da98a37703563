"""Streaming reads and atomic writes of CSV, Parquet and JSON-lines tables.

Inputs are read in chunks of ``chunk_rows`` rows so memory stays flat however large
the file is. CSV columns are read as strings, so every value passes through to the
output exactly as it was written; bytes that are not UTF-8 are repaired (U+FFFD) and
the rows that held them are reported, never dropped. Outputs go to a temporary file
beside the target and are renamed into place only after a complete, fsynced write.
"""

import contextlib
import csv
import hashlib
import io
import itertools
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from emoji_batch.errors import InputError

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
# Column in each chunk naming the rows whose bytes were not valid UTF-8 (then dropped).
INVALID_UTF8 = "__emoji_batch_invalid_utf8__"


def is_stdio(path: Path) -> bool:
    return str(path) == STDIO


def detect_format(path: Path, override: str | None = None) -> FileFormat:
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


def _check_input(path: Path) -> None:
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
    if len(set(names)) != len(names):
        raise InputError(f"{where}: duplicate column names in header {names}")
    return names


def _locate_ragged(path: Path, fields: int) -> int | None:
    """Line number of the first CSV record without ``fields`` fields (error path only)."""
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
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


class ChunkReader:
    """Iterate a CSV, Parquet or JSON-lines file (or stdin) as ``pyarrow.Table`` chunks.

    Chunks hold ``chunk_rows`` rows in file order. CSV chunks carry an extra boolean
    column ``INVALID_UTF8``; ``schema`` is the input's own schema, without it.
    """

    def __init__(self, path: Path, fmt: FileFormat, chunk_rows: int) -> None:
        if chunk_rows < 1:
            raise InputError("--chunk-rows must be at least 1")
        self.path, self.fmt, self.chunk_rows = path, fmt, chunk_rows
        self.total_rows: int | None = None
        self._jsonl_line = 0
        self._jsonl_schema: pa.Schema | None = None
        self._ragged: pacsv.InvalidRow | None = None
        stdin = is_stdio(path)
        if stdin and fmt == "parquet":
            raise InputError("stdin input must be csv or jsonl (--input-format)")
        if not stdin:
            _check_input(path)
        self._stream: BinaryIO = (
            os.fdopen(os.dup(0), "rb") if stdin else open(path, "rb")  # noqa: SIM115
        )
        where = self._where = "stdin" if stdin else str(path)
        try:
            if fmt == "parquet":
                self._parquet = pq.ParquetFile(self._stream)
                self.schema: pa.Schema = self._parquet.schema_arrow
                self.total_rows = self._parquet.metadata.num_rows
            elif fmt == "csv":
                names = _read_csv_header(self._stream, where)
                self.schema = pa.schema([pa.field(n, pa.string()) for n in names])
                self._csv = pacsv.open_csv(
                    self._stream,
                    read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK_BYTES, column_names=names),
                    parse_options=pacsv.ParseOptions(
                        newlines_in_values=True, invalid_row_handler=self._ragged_row
                    ),
                    convert_options=pacsv.ConvertOptions(
                        column_types=dict.fromkeys(names, pa.binary())
                    ),
                )
            else:
                self._jsonl_first = self._read_jsonl_chunk()
                self.schema = self._jsonl_schema = self._jsonl_first.schema
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

    def _ragged_row(self, row: pacsv.InvalidRow) -> str:
        self._ragged = row
        return "error"

    def _csv_error(self, exc: pa.ArrowInvalid) -> InputError:
        row = self._ragged
        if row is None:
            return InputError(f"cannot read {self._where} as csv: {exc}")
        where = self._where
        if not is_stdio(self.path):  # a file can be read again to find the line
            line = _locate_ragged(self.path, row.expected_columns)
            where = f"{where}:{line}" if line else where
        return InputError(
            f"{where}: ragged CSV row: expected {row.expected_columns} fields, "
            f"got {row.actual_columns}: {row.text[:200]!r}"
        )

    def _read_jsonl_chunk(self) -> pa.Table:
        """The next ``chunk_rows`` JSON objects; the first chunk fixes the schema."""
        rows = []
        for raw in itertools.islice(self._stream, self.chunk_rows):
            self._jsonl_line += 1
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except ValueError as exc:
                raise InputError(f"{self._where}:{self._jsonl_line}: invalid JSON ({exc})") from exc
            if not isinstance(row, dict):
                raise InputError(f"{self._where}:{self._jsonl_line}: expected a JSON object")
            rows.append(row)
        if not rows and self._jsonl_schema is None:
            raise InputError(f"{self._where} is empty: expected JSON objects, one per line")
        try:
            return pa.Table.from_pylist(rows, schema=self._jsonl_schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
            raise InputError(
                f"{self._where}: rows up to line {self._jsonl_line} do not match the first "
                f"chunk's columns ({exc})"
            ) from exc

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
                chunk = self._jsonl_first
                while chunk.num_rows:
                    yield chunk
                    chunk = self._read_jsonl_chunk()
        except pa.ArrowInvalid as exc:
            if self.fmt == "csv":
                raise self._csv_error(exc) from exc
            raise InputError(f"cannot read {self._where} as {self.fmt}: {exc}") from exc
        except OSError as exc:
            raise InputError(f"cannot read {self._where} as {self.fmt}: {exc}") from exc
        finally:
            self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._stream.close()


class TableWriter:
    """Append ``pyarrow.Table`` chunks to a CSV, Parquet or JSON-lines sink."""

    def __init__(self, sink: Path | BinaryIO, fmt: FileFormat, schema: pa.Schema) -> None:
        self.schema, self.fmt = schema, fmt
        self._sink = sink
        if fmt == "parquet":
            self._writer: pq.ParquetWriter | pacsv.CSVWriter | None = pq.ParquetWriter(sink, schema)
        elif fmt == "csv":
            self._writer = pacsv.CSVWriter(sink, schema)
        else:
            self._writer = None
            self._jsonl = open(sink, "wb") if isinstance(sink, Path) else sink  # noqa: SIM115

    def write(self, table: pa.Table) -> None:
        table = table.cast(self.schema)
        if self._writer is not None:
            self._writer.write_table(table)
            return
        for row in table.to_pylist():
            self._jsonl.write(json.dumps(row, ensure_ascii=False).encode() + b"\n")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        elif isinstance(self._sink, Path):
            self._jsonl.close()
        else:
            self._jsonl.flush()


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


@contextlib.contextmanager
def atomic_output(path: Path, force: bool) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds."""
    check_output(path, force)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def check_output(path: Path, force: bool) -> None:
    """Refuse an output that exists (without ``force``), is a directory or has no parent."""
    if path.is_dir():
        raise InputError(f"output {path} is a directory")
    if path.exists() and not force:
        raise InputError(f"output {path} already exists; pass --force to overwrite it")
    if not path.parent.is_dir():
        raise InputError(f"output directory {path.parent} does not exist")


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
