"""Path to path on Spark (:func:`score_path`): a file or directory Spark can read scored
into one Spark can write, CSV and JSON lines through the local reader and writer.
"""

import contextlib
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import pyarrow as pa

from emoji_batch import logs
from emoji_batch.errors import InputError
from emoji_batch.fileio import (
    JSON_TEXT,
    FileFormat,
    check_writable,
    detect_format,
    is_stdio,
)
from emoji_batch.options import ScoreOptions
from emoji_batch.output import output_format, scored_name
from emoji_batch.scoring import (
    ScoreSummary,
    output_schema,
)
from emoji_batch.spark.frame import arrow_schema, check_names, checked_job, job_for, user_errors
from emoji_batch.spark.session import ARROW_BATCH_ROWS, spark_session
from emoji_batch.spark.worker import Files, Job, inspect_file, score_batches, spark_table

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# --- path to path ---------------------------------------------------------------------


def default_output_uri(input_uri: str) -> str:
    """``s3a://b/tweets.parquet`` -> ``s3a://b/tweets.scored.parquet``, like local score."""
    head, slash, name = input_uri.rstrip("/").rpartition("/")
    return f"{head}{slash}{scored_name(name)}"


def _fs(spark: "SparkSession", uri: str) -> tuple[Any, Any]:
    """The Hadoop filesystem holding ``uri`` and its Path, as Spark's configuration reaches it."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)  # type: ignore[union-attr]
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path  # type: ignore[union-attr]


def _exists(spark: "SparkSession", uri: str) -> bool:
    """Whether ``uri`` exists, on whatever filesystem Spark's Hadoop configuration reaches."""
    fs, path = _fs(spark, uri)
    return bool(fs.exists(path))


def _is_dir(spark: "SparkSession", uri: str) -> bool:
    fs, path = _fs(spark, uri)
    return bool(fs.getFileStatus(path).isDirectory())


@contextlib.contextmanager
def _case_sensitive(spark: "SparkSession") -> Iterator[None]:
    """Column names compared exactly while a file is scored (``text`` beside ``Text`` is
    two columns, as locally), the session's own setting restored after."""
    key = "spark.sql.caseSensitive"
    before = spark.conf.get(key, "false")
    spark.conf.set(key, "true")
    try:
        yield
    finally:
        spark.conf.set(key, before)


def _qualified(spark: "SparkSession", uri: str) -> str:
    """``uri`` as its filesystem names it (scheme, authority, absolute path), for comparing."""
    fs, path = _fs(spark, uri)
    return str(fs.makeQualified(path).toString()).rstrip("/")


def _input_root(input_uri: str) -> str:
    """The part of INPUT before any glob, cut back to its last whole directory."""
    match = _GLOB.search(input_uri)
    if match is None:
        return input_uri.rstrip("/")
    return input_uri[: match.start()].rpartition("/")[0] or "."


def check_output_apart(spark: "SparkSession", input_uri: str, output_uri: str) -> None:
    """Refuse an OUTPUT that is, lies inside or holds INPUT: Spark's writer removes
    OUTPUT (with ``--force``) or writes into it before the input has been read, which
    would destroy the input."""
    source = _qualified(spark, _input_root(input_uri))
    target = _qualified(spark, output_uri)
    if source == target:
        relation = "is the input"
    elif source.startswith(target + "/"):
        relation = "holds the input"
    elif target.startswith(source + "/"):
        relation = "lies inside the input"
    else:
        return
    raise InputError(
        f"output {output_uri} {relation} {input_uri}; the Spark engine writes OUTPUT before "
        "it has read the input: choose an output apart from it"
    )


def _merge(schemas: list[pa.Schema], fmt: FileFormat, names: list[str]) -> pa.Schema:
    """One schema for files read in order: CSV files must share their header; JSON-lines
    keys are merged as one file's lines would be (first-seen order; one JSON type keeps
    its type, several become JSON text)."""
    first = schemas[0]
    if fmt == "csv":
        for schema, name in zip(schemas[1:], names[1:], strict=True):
            if schema.names != first.names:
                raise InputError(
                    f"{name}: columns {schema.names} differ from {names[0]}'s {first.names}"
                )
        return first
    types: dict[str, pa.DataType] = {}
    for schema in schemas:
        for field in schema:
            seen = types.get(field.name)
            if seen is None or pa.types.is_null(seen):
                types[field.name] = field.type
            elif not pa.types.is_null(field.type) and field.type != seen:
                types[field.name] = JSON_TEXT
    return pa.schema([pa.field(name, t) for name, t in types.items()])


def _read_files(
    spark: "SparkSession", uri: str, fmt: FileFormat, chunk_rows: int
) -> "tuple[DataFrame, Files]":
    """CSV or JSON lines as local ``score`` reads them: each file read whole by the local
    reader on a worker (checked in full first, so a bad row fails the job before anything
    is written), files in name order."""
    files = spark.read.format("binaryFile").load(uri).select("path", "content")
    paths = sorted(r.path for r in files.select("path").collect())
    if not paths:
        raise InputError(f"no input files in {uri}")
    if _GLOB.search(uri):  # the files the pattern matched, by their own names
        names = {p: unquote(p) for p in paths}
    elif _is_dir(spark, uri):
        base = uri.rstrip("/")
        names = {p: f"{base}/{unquote(p.rsplit('/', 1)[-1])}" for p in paths}
    else:
        names = {paths[0]: uri}
    checking = Files(fmt, chunk_rows, pa.schema([]), names)
    with user_errors():
        found = dict(files.rdd.map(partial(inspect_file, checking)).collect())
    schema = _merge([found[p] for p in paths], fmt, [names[p] for p in paths])
    if len(paths) > 1:
        files = files.orderBy("path")  # part files in the input files' order
    return files, Files(fmt, chunk_rows, schema, names)


def _read_parquet(spark: "SparkSession", uri: str) -> "DataFrame":
    """Parquet as Spark reads it, rows in the files' name order and each file's order."""
    from pyspark.sql import functions as F

    df = spark.read.parquet(uri)
    # The order keys get names of their own and the input's columns are never named, so
    # columns called file_path or row_index, dotted names (user.name) and names differing
    # only in case (text, Text) pass through untouched.
    ordered = df.select(
        "*",
        F.col("_metadata.file_path").alias(_FILE_KEY),
        F.col("_metadata.row_index").alias(_ROW_KEY),
    ).orderBy(_FILE_KEY, _ROW_KEY)
    return ordered.drop(_FILE_KEY, _ROW_KEY)


def _rename_parts(spark: "SparkSession", uri: str, suffix: str) -> None:
    """Spark's text writer names its part files ``.txt``: give them the format's suffix."""
    fs, path = _fs(spark, uri)
    jvm = spark.sparkContext._jvm
    for status in fs.listStatus(path):
        name = status.getPath().getName()
        if name.startswith("part-") and name.endswith(".txt"):
            target = jvm.org.apache.hadoop.fs.Path(path, name[: -len(".txt")] + suffix)  # type: ignore[union-attr]
            fs.rename(status.getPath(), target)


def score_path(
    input_uri: str,
    output_uri: str | None = None,
    options: ScoreOptions | None = None,
    *,
    master: str | None = None,
    force: bool = False,
    spark_logs: bool = False,
    **settings: Any,
) -> ScoreSummary:
    """Score a file or directory Spark can read into one Spark can write (any path or URI:
    local, hdfs://, s3a://), committed by Spark (a ``_SUCCESS`` marker).

    CSV and JSON lines are read and written by the local reader and writer inside the
    tasks (one file per task, read whole), so their bytes are local ``score``'s; Parquet
    is read and written by Spark. Rows keep the input's order: files by name, then each
    file's rows, across part files in name order. ``chunk_rows`` is the rows per chunk
    scored. An existing OUTPUT is refused unless ``force`` (then it is overwritten,
    Spark's way: removed when the job starts, not swapped atomically as local ``score``
    does); an OUTPUT that is, holds or lies inside INPUT is always refused. The summary's
    row counts are Spark accumulators: a stage Spark recomputes would count twice.
    """
    started = time.perf_counter()
    options = ScoreOptions.of(options, settings)
    if is_stdio(Path(input_uri)) or (output_uri is not None and is_stdio(Path(output_uri))):
        raise InputError("--engine spark reads and writes paths or URIs, not stdin/stdout (-)")
    in_fmt = detect_format(Path(input_uri.rstrip("/")), options.input_format)
    output_uri = output_uri or default_output_uri(input_uri)
    # A directory such as ``scored/`` has no suffix: it takes INPUT's format.
    out_fmt = output_format(
        Path(output_uri.rstrip("/")), options.output_format, in_fmt, directory=True
    )
    spark = spark_session(master, spark_logs)
    with _case_sensitive(spark):
        _check_paths(spark, input_uri, output_uri, force)
        spark.conf.set(ARROW_BATCH_ROWS, str(options.chunk_rows))
        sc = spark.sparkContext
        counts = (sc.accumulator(0), sc.accumulator(0))
        df, files, arrow_in = _read_input(spark, input_uri, in_fmt, options.chunk_rows)
        job, info = checked_job(spark, job_for(arrow_in.names, options), options.top_k)
        schema = output_schema(arrow_in, job.k, options.insert)
        check_writable(schema, out_fmt)
        job = replace(job, files=files, schema=schema)
        logs.emit(
            "start",
            f"model {info.name} ({info.precision}) on {info.device}, Spark {sc.master}",
            model=info.name,
            device=info.device,
            precision=info.precision,
            master=sc.master,
            bundle=info.directory,
            input=input_uri,
            output=output_uri,
        )
        _write_scored(spark, df, job, counts, out_fmt, output_uri, force)
        return SparkSummary(
            counts[0].value,
            counts[1].value,
            time.perf_counter() - started,
            output_uri,
            info.name,
            f"{info.device}, Spark {sc.master}",
            info.precision,
        )


def _check_paths(spark: "SparkSession", input_uri: str, output_uri: str, force: bool) -> None:
    """INPUT exists (a glob may match later), OUTPUT lies apart from it, and OUTPUT is new
    unless ``force``."""
    if not _GLOB.search(input_uri) and not _exists(spark, input_uri):
        raise InputError(f"input file {input_uri} does not exist")
    check_output_apart(spark, input_uri, output_uri)
    if not force and _exists(spark, output_uri):
        raise InputError(f"output {output_uri} exists; pass --force to overwrite it")


def _read_input(
    spark: "SparkSession", input_uri: str, in_fmt: FileFormat, chunk_rows: int
) -> tuple["DataFrame", Files | None, pa.Schema]:
    """The input DataFrame, the CSV/JSON lines file list (None for Parquet, which Spark
    reads itself) and the input's Arrow schema."""
    with user_errors():
        if in_fmt == "parquet":
            df = _read_parquet(spark, input_uri)
            check_names(df.columns)
            return df, None, arrow_schema(spark, df)
        df, files = _read_files(spark, input_uri, in_fmt, chunk_rows)
        return df, files, files.schema


def _write_scored(
    spark: "SparkSession",
    df: "DataFrame",
    job: Job,
    counts: tuple[Any, Any],
    out_fmt: FileFormat,
    output_uri: str,
    force: bool,
) -> None:
    """Score ``df`` in the tasks and let Spark commit OUTPUT: Parquet by Spark's writer,
    CSV and JSON lines as the local writer's bytes, one text part per task."""
    from pyspark.sql.pandas.types import from_arrow_schema
    from pyspark.sql.types import StringType, StructField, StructType

    mode = "overwrite" if force else "errorifexists"
    with user_errors():
        if out_fmt == "parquet":
            spark_schema = from_arrow_schema(spark_table(job.schema.empty_table()).schema)
            scored = df.mapInArrow(partial(score_batches, job, counts), spark_schema)
            scored.write.mode(mode).parquet(output_uri)
        else:
            job = replace(job, serialize=out_fmt)
            text = StructType([StructField("value", StringType())])
            scored = df.mapInArrow(partial(score_batches, job, counts), text)
            scored.write.mode(mode).text(output_uri)
            _rename_parts(spark, output_uri, ".csv" if out_fmt == "csv" else ".jsonl")


_GLOB = re.compile(r"[*?\[{]")
_FILE_KEY, _ROW_KEY = "__emoji_batch_file_path__", "__emoji_batch_row_index__"


class SparkSummary(ScoreSummary):
    """The summary of a Spark job: its rate over the whole run (Spark's start-up too),
    to two significant figures when small, never a rounded ``0 rows/s``."""

    def rate(self) -> str:
        if not (self.rows and self.seconds > 0):
            return ""
        rate = self.rows_per_second
        return f" ({rate:,.0f} rows/s)" if rate >= 100 else f" ({rate:.2g} rows/s)"

    def fields(self) -> dict[str, object]:
        rate = self.rows_per_second
        return {**super().fields(), "rows_per_second": float(f"{rate:.3g}") if self.rows else None}
