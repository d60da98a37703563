"""Streaming reads and atomic writes of CSV and Parquet tables.

Inputs are read in chunks of ``chunk_rows`` rows so memory stays flat however large
the file is. CSV columns are read as strings, so every value passes through to the
output exactly as it was written. Outputs go to a temporary file beside the target
and are renamed into place only after a complete, fsynced write.
"""

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from emoji_batch.errors import InputError

FileFormat = Literal["csv", "parquet"]
FORMATS: tuple[FileFormat, ...] = ("csv", "parquet")
_SUFFIXES: dict[str, FileFormat] = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_CSV_BLOCK_BYTES = 1 << 20


def detect_format(path: Path, override: str | None = None) -> FileFormat:
    """The format named by ``override``, else the one the file suffix says."""
    if override is not None:
        if override not in FORMATS:
            raise InputError(f"unknown format {override!r}; use one of {', '.join(FORMATS)}")
        return override  # type: ignore[return-value]
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise InputError(
            f"cannot tell the format of {path} from its suffix {path.suffix!r}: "
            "use .csv or .parquet, or pass --input-format"
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


def _csv_names(path: Path) -> list[str]:
    with pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK_BYTES)) as r:
        return r.schema.names


def _open_csv(path: Path) -> pacsv.CSVStreamingReader:
    names = _csv_names(path)
    return pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK_BYTES),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string())),
    )


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
    """Iterate a CSV or Parquet file as ``pyarrow.Table`` chunks, in file order."""

    def __init__(self, path: Path, fmt: FileFormat, chunk_rows: int) -> None:
        if chunk_rows < 1:
            raise InputError("--chunk-rows must be at least 1")
        _check_input(path)
        self.path, self.fmt, self.chunk_rows = path, fmt, chunk_rows
        try:
            if fmt == "parquet":
                self._parquet = pq.ParquetFile(path)
                self.schema: pa.Schema = self._parquet.schema_arrow
                self.total_rows: int | None = self._parquet.metadata.num_rows
            else:
                self._csv = _open_csv(path)
                self.schema = self._csv.schema
                self.total_rows = None
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"cannot read {path} as {fmt}: {exc}") from exc

    def __iter__(self) -> Iterator[pa.Table]:
        if self.fmt == "parquet":
            batches = self._parquet.iter_batches(batch_size=self.chunk_rows)
        else:
            batches = iter(self._csv)
        try:
            yield from _rebatch(batches, self.chunk_rows)
        except pa.ArrowInvalid as exc:
            raise InputError(f"cannot read {self.path} as {self.fmt}: {exc}") from exc


class TableWriter:
    """Append ``pyarrow.Table`` chunks to a CSV or Parquet file with a fixed schema."""

    def __init__(self, sink: Path, fmt: FileFormat, schema: pa.Schema) -> None:
        self.schema = schema
        if fmt == "parquet":
            self._writer: pq.ParquetWriter | pacsv.CSVWriter = pq.ParquetWriter(sink, schema)
        else:
            self._writer = pacsv.CSVWriter(sink, schema)

    def write(self, table: pa.Table) -> None:
        self._writer.write_table(table.cast(self.schema))

    def close(self) -> None:
        self._writer.close()


@contextlib.contextmanager
def atomic_output(path: Path, force: bool) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds."""
    if path.exists() and not force:
        raise InputError(f"output {path} already exists; pass --force to overwrite it")
    if path.is_dir():
        raise InputError(f"output {path} is a directory")
    if not path.parent.is_dir():
        raise InputError(f"output directory {path.parent} does not exist")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_table(path: Path, fmt: FileFormat) -> pl.DataFrame:
    """Read a whole (training or evaluation) file; CSV values stay strings."""
    _check_input(path)
    try:
        if fmt == "parquet":
            return pl.read_parquet(path)
        return pl.read_csv(path, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(f"cannot read {path} as {fmt}: {exc}") from exc
