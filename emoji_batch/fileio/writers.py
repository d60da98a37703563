"""Writing ``pyarrow.Table`` chunks as CSV, Parquet or JSON lines: what a format cannot
hold is converted, or refused before anything is scored.
"""

import datetime
import decimal
import io
import json
import math
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from emoji_batch.errors import InputError
from emoji_batch.fileio.formats import COMPACT, FileFormat, is_json_type


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
            text = [None if v is None else _dumps(v, COMPACT) for v in column.to_pylist()]
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
