"""Score on Apache Spark: the local scoring code run inside ``DataFrame.mapInArrow``.

Each Python worker process loads the model once (cached here, keyed by bundle and
options) and scores the Arrow batches Spark hands it with :func:`scoring.score_table`,
so cleaning, bad-row reasons and the appended columns are exactly those of local
``score``. Batches stay Arrow end to end; pandas is never used.

The bundle must be where the workers can read it: a directory on shared storage (a path,
or a name the driver resolves to an absolute path), or shipped with the job
(``--archives bundle.zip#NAME`` or ``SparkContext.addArchive``) and named ``NAME``,
which workers look up under :func:`pyspark.SparkFiles.getRootDirectory`.

pyspark is imported only by this module (``pip install "emoji-batch[spark]"``).
"""

import contextlib
import io
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal
from urllib.parse import unquote

import pyarrow as pa

from emoji_batch import errors, logs
from emoji_batch.bundle import resolve_model, shipped_models_dir
from emoji_batch.device import DeviceChoice
from emoji_batch.errors import EmojiBatchError, InputError, ModelError
from emoji_batch.fileio import (
    JSON_TEXT,
    ChunkReader,
    FileFormat,
    TableWriter,
    check_writable,
    detect_format,
    find_column,
    is_json_type,
    is_stdio,
)
from emoji_batch.loading import AnyPredictor, load_predictor
from emoji_batch.manifests import MANIFEST
from emoji_batch.options import ScoreOptions
from emoji_batch.position import PositionModel, load_position_model
from emoji_batch.predict import PrecisionChoice
from emoji_batch.scoring import (
    ERROR_COLUMN,
    ScoreSummary,
    output_schema,
    score_table,
)

if TYPE_CHECKING:
    from pyspark import Accumulator
    from pyspark.sql import DataFrame, Row, SparkSession

INSTALL_HINT = 'the Spark engine needs pyspark: pip install "emoji-batch[spark]"'
ARROW_BATCH_ROWS = "spark.sql.execution.arrow.maxRecordsPerBatch"


def _pyspark() -> None:
    """Fail with the install hint, exit code 2, when pyspark is missing."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise InputError(INSTALL_HINT) from None


# --- where workers find the bundle --------------------------------------------------


@dataclass(frozen=True)
class _Location:
    """A bundle as workers find it: ``path`` (absolute, shared storage), ``shipped``
    (a bundle inside the installed package, wherever the worker's package lies) or
    ``job`` (a relative name, looked up in the files shipped with the job).

    ``alias`` is ``--model`` as given when it is a relative name: a bundle shipped with
    the job under that name wins on the workers, whatever the driver found (the driver's
    ``./my_bundle`` is not on the other hosts)."""

    kind: Literal["path", "shipped", "job"]
    value: str
    alias: str | None = None


def _locate(model: str | None, models_dir: Path | None) -> _Location:
    """Resolve ``model`` on the driver like local ``score``; a relative name the driver
    cannot find is left for the workers to find among the job's files."""
    alias = model if model is not None and not Path(model).is_absolute() else None
    try:
        directory = resolve_model(model, models_dir).resolve()
    except ModelError:
        if alias is None:
            raise
        return _Location("job", alias, alias)
    if directory.parent == shipped_models_dir().resolve():
        return _Location("shipped", directory.name, alias)
    return _Location("path", str(directory), alias)


def _job_bundle(name: str) -> Path | None:
    """``NAME`` among the job's files: the archive's root, or its one top directory
    (``zip -r b.zip mybundle/`` unpacks to ``NAME/mybundle/``)."""
    from pyspark import SparkFiles

    for root in (Path(SparkFiles.getRootDirectory()), Path.cwd()):
        directory = root / name
        if (directory / MANIFEST).is_file():
            return directory
        inner = [d for d in directory.glob("*") if (d / MANIFEST).is_file()]
        if len(inner) == 1:
            return inner[0]
    return None


def _bundle_dir(location: _Location, models_dir: str | None) -> str:
    if location.alias is not None and (shipped := _job_bundle(location.alias)) is not None:
        return str(shipped)
    if location.kind == "path":
        return location.value
    if location.kind == "shipped":
        return str(shipped_models_dir() / location.value)
    # Not shipped with the job: the worker's own models directory, as a last resort.
    return str(resolve_model(location.value, Path(models_dir) if models_dir else None))


# --- the worker side ------------------------------------------------------------------


@dataclass(frozen=True)
class _Files:
    """CSV or JSON-lines input, read on the workers by the local reader, one whole file
    per row of Spark's ``binaryFile`` source: ``schema`` is the one every file's chunks
    are given (the files' schemas merged), ``names`` how messages name each file."""

    fmt: FileFormat
    chunk_rows: int
    schema: pa.Schema
    names: dict[str, str]


@dataclass(frozen=True)
class _Job:
    """Everything a worker needs, pickled into each task."""

    location: _Location
    models_dir: str | None
    device: DeviceChoice
    batch_size: int | None
    precision: PrecisionChoice
    text_column: str
    k: int = 0
    insert: bool = False
    fingerprint: str | None = None  # the bundle's content, as checked when the job began
    files: _Files | None = None  # read these files, not the Arrow batches Spark hands over
    serialize: FileFormat | None = None  # CSV/JSON-lines bytes of each chunk, as a text row
    schema: pa.Schema | None = None  # the scored chunks' schema, for ``serialize``


# One per Python worker process: Spark reuses workers across tasks, so a model is loaded
# once per process, not once per task or batch. Keyed by where the bundle lies and the
# options, holding the content hash it was loaded with: a job for other content (the
# bundle, or an ensemble member, changed since) loads it again.
_PREDICTORS: dict[tuple[object, ...], tuple[str, AnyPredictor]] = {}
_PLACERS: dict[str | None, PositionModel] = {}


def _load(job: _Job) -> tuple[str, AnyPredictor]:
    """The predictor for ``job`` and the hash of its files as they are now: the cached one
    while its files are unchanged, else loaded afresh."""
    models_dir = Path(job.models_dir) if job.models_dir else None
    directory = _bundle_dir(job.location, job.models_dir)
    key = (directory, job.models_dir, job.device, job.batch_size, job.precision)
    cached = _PREDICTORS.get(key)
    if cached is not None:
        if job.fingerprint is not None and cached[0] == job.fingerprint:
            return cached  # the content this job was checked against: no need to rehash
        try:
            if cached[1].fingerprint() == cached[0]:
                return cached
        except OSError:  # a file went: load again, which says what is missing
            pass
    predictor = load_predictor(directory, models_dir, job.device, job.batch_size, job.precision)
    loaded = (predictor.fingerprint(), predictor)
    _PREDICTORS[key] = loaded
    return loaded


def _predictor(job: _Job) -> AnyPredictor:
    fingerprint, predictor = _load(job)
    if job.fingerprint is not None and fingerprint != job.fingerprint:
        where = _bundle_dir(job.location, job.models_dir)
        raise ModelError(
            f"model {predictor.name} on this worker ({where}) is not the one "
            "checked when the job started: its files differ, or changed"
        )
    return predictor


def _placer(job: _Job) -> PositionModel:
    if job.models_dir not in _PLACERS:
        models_dir = Path(job.models_dir) if job.models_dir else None
        _PLACERS[job.models_dir] = load_position_model(models_dir)
    return _PLACERS[job.models_dir]


@dataclass(frozen=True)
class _ModelInfo:
    name: str
    n_labels: int
    device: str
    precision: str
    fingerprint: str
    directory: str


def _describe(job: _Job, _: object) -> _ModelInfo:
    """Load the model on a worker (checking it there, and caching it for the tasks that
    follow) and say what the driver needs: the output schema and the content hash every
    other worker's copy must have."""
    fingerprint, predictor = _load(job)
    if job.insert:
        _placer(job)
    return _ModelInfo(
        predictor.name,
        predictor.n_labels,
        predictor.device,
        predictor.precision,
        fingerprint,
        _bundle_dir(job.location, job.models_dir),
    )


@contextlib.contextmanager
def _local_copy(content: bytes) -> Iterator[Path]:
    """``content`` as a temporary file, for the local reader (which reads some files twice)."""
    with tempfile.NamedTemporaryFile(prefix="emoji-batch-", delete=False) as fh:
        fh.write(content)
    try:
        yield Path(fh.name)
    finally:
        os.unlink(fh.name)


@contextlib.contextmanager
def _named(tmp: Path, name: str) -> Iterator[None]:
    """The local reader's errors naming the input file, not the temporary copy."""
    try:
        yield
    except InputError as exc:
        raise InputError(str(exc).replace(str(tmp), name)) from exc


def _inspect(files: _Files, row: "Row") -> tuple[str, pa.Schema]:
    """Read one whole file as local ``score`` would (every row, so a ragged CSV row or a
    broken JSON line is refused before anything is written) and return its schema."""
    name = files.names.get(row.path, row.path)
    with _local_copy(row.content) as tmp, _named(tmp, name):
        reader = ChunkReader(tmp, files.fmt, files.chunk_rows)
        for _ in reader:
            pass
        return row.path, reader.schema


def _file_tables(files: _Files, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.Table]:
    """Each file's chunks, read by the local reader, in the merged schema."""
    for batch in batches:
        for path, content in zip(
            batch.column("path").to_pylist(), batch.column("content").to_pylist(), strict=True
        ):
            name = files.names.get(path, path)
            with _local_copy(content) as tmp, _named(tmp, name):
                reader = ChunkReader(tmp, files.fmt, files.chunk_rows)
                if files.fmt == "csv" and reader.schema.names != files.schema.names:
                    raise InputError(f"{name}: columns {reader.schema.names} differ")
                reader.schema = files.schema  # JSON lines: rows built in the merged types
                yield from reader


def _spark_table(table: pa.Table) -> pa.Table:
    """``table`` in types Spark holds: JSON text as its strings, all-null as string."""
    columns = []
    for column in table.columns:
        if is_json_type(column.type):
            column = pa.chunked_array([c.storage for c in column.chunks], pa.string())
        elif pa.types.is_null(column.type):
            column = column.cast(pa.string())
        columns.append(column)
    return pa.Table.from_arrays(columns, names=table.column_names)


def _score_batches(
    job: _Job,
    counts: "tuple[Accumulator[int], Accumulator[int]] | None",
    batches: Iterator[pa.RecordBatch],
) -> Iterator[pa.RecordBatch]:
    """The ``mapInArrow`` function: each Arrow batch (or each chunk of each file) scored
    as local ``score`` scores a chunk; with ``serialize``, written as local ``score``
    writes it, one text row per chunk (the partition's first holds the CSV header)."""
    placer = _placer(job) if job.insert else None
    predictor = _predictor(job)
    if job.files is not None:
        tables: Iterator[pa.Table] = _file_tables(job.files, batches)
    else:
        tables = (pa.Table.from_batches([b]) for b in batches if b.num_rows)
    sink = io.BytesIO()
    writer = None
    if job.serialize is not None:
        assert job.schema is not None
        writer = TableWriter(sink, job.serialize, job.schema)
    wrote = False
    for table in tables:
        if table.num_rows == 0:
            continue
        scored = score_table(table, job.text_column, predictor, job.k, placer=placer)
        if counts is not None:
            counts[0].add(scored.num_rows)
            counts[1].add(scored.num_rows - scored.column(ERROR_COLUMN).null_count)
        if writer is None:
            yield from _spark_table(scored).to_batches()
            continue
        writer.write(scored)
        yield _text_row(sink)
        wrote = True
    if writer is not None:
        writer.close()
        from pyspark import TaskContext

        context = TaskContext.get()
        if not wrote and sink.getvalue() and context is not None and context.partitionId() == 0:
            yield _text_row(sink)  # no rows at all: a CSV header, as locally


def _text_row(sink: io.BytesIO) -> pa.RecordBatch:
    """What ``sink`` holds, less its last newline (Spark's text writer adds it back)."""
    data = sink.getvalue()
    sink.seek(0)
    sink.truncate()
    text = data.decode("utf-8").removesuffix("\n")
    return pa.record_batch([pa.array([text], pa.string())], names=["value"])


# --- the driver side ------------------------------------------------------------------

_WORKER_ERROR = re.compile(r"emoji_batch\.errors\.(\w+): (.*)")
_SPARK_ERROR = re.compile(r"\[([A-Z][A-Z_.]+)\] (.*?)(?: SQLSTATE: \w+)?$", re.MULTILINE)
_CAUSE = re.compile(r"^Caused by: [\w.$]+: (.*)$", re.MULTILINE)
# Spark error classes a user fixes (a path, a file): exit code 2.
# PARQUET_TYPE_ILLEGAL: a column Spark cannot read, e.g. nanosecond timestamps (pandas'
# default), which local score reads.
_INPUT_ERRORS = (
    "FAILED_READ_FILE",
    "PATH_NOT_FOUND",
    "UNABLE_TO_INFER_SCHEMA",
    "CANNOT_READ",
    "PARQUET_TYPE_ILLEGAL",
)


class SparkJobError(EmojiBatchError):
    """A Spark failure that is not the input's or the model's: exit code 1, one line."""


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Errors of a Spark job as one line: a worker's emoji-batch error (a missing bundle,
    an unchecked precision, a ragged CSV row) as itself, with its exit code; an input
    Spark cannot read (a corrupt Parquet file, a missing path) as an input error naming
    it; anything else as a one-line job failure. The Java trace stays on the exception's
    chain (``--debug`` prints it)."""
    try:
        yield
    except EmojiBatchError:
        raise
    except Exception as exc:
        text = str(exc)
        found = _WORKER_ERROR.findall(text)
        kind = getattr(errors, found[-1][0], None) if found else None
        if isinstance(kind, type) and issubclass(kind, EmojiBatchError):
            raise kind(found[-1][1]) from exc
        spark_error = _SPARK_ERROR.search(text)
        if spark_error is None:
            if type(exc).__module__.startswith(("py4j", "pyspark")):
                first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
                raise SparkJobError(
                    f"Spark job failed: {first} (--debug shows Spark's trace)"
                ) from exc
            raise
        error_class, message = spark_error.groups()
        if error_class.startswith(_INPUT_ERRORS):
            causes = _CAUSE.findall(text)
            cause = f": {causes[0].strip()}" if causes else ""
            raise InputError(f"{message.strip().rstrip('.')}{cause}") from exc
        raise SparkJobError(
            f"Spark job failed: [{error_class}] {message.strip()} (--debug shows Spark's trace)"
        ) from exc


@dataclass
class _Scoring:
    """The scored frame (lazy) and the model a worker loaded for it."""

    frame: "DataFrame"
    info: _ModelInfo


def _check_names(columns: list[str]) -> None:
    """Refuse column names PySpark cannot hand to a Python function: ``mapInArrow``
    selects every column by its name, and a dot there means a struct field."""
    dotted = [c for c in columns if "." in c or "`" in c]
    if dotted:
        raise InputError(
            f"column(s) {dotted}: the Spark engine cannot pass names with dots or backticks "
            "to Python; rename them, or score with --engine local, which keeps them"
        )


def _job(columns: list[str], options: ScoreOptions) -> _Job:
    models_dir = options.models_dir
    return _Job(
        location=_locate(options.model, models_dir),
        models_dir=str(Path(models_dir).resolve()) if models_dir else None,
        device=options.device,
        batch_size=options.batch_size,
        precision=options.precision,
        text_column=find_column(columns, options.text_column, "text"),
        insert=options.insert,
    )


def _checked(spark: "SparkSession", job: _Job, top_k: int) -> tuple[_Job, _ModelInfo]:
    """Load the model on a worker now (a bad bundle or option fails here) and pin the
    job to what it loaded: its content hash and label count."""
    with _user_errors():
        info = spark.sparkContext.parallelize([0], 1).map(partial(_describe, job)).collect()[0]
    return replace(job, k=min(top_k, info.n_labels), fingerprint=info.fingerprint), info


def _arrow_schema(spark: "SparkSession", df: "DataFrame") -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(
        df.schema, timezone=spark.conf.get("spark.sql.session.timeZone") or "UTC"
    )


def _scoring(
    df: "DataFrame",
    options: ScoreOptions,
    counts: "tuple[Accumulator[int], Accumulator[int]] | None" = None,
) -> _Scoring:
    """:func:`score_dataframe`; ``counts`` (rows, rows not scorable) are added to as
    batches are scored, for the summary of a job that evaluates the frame once."""
    from pyspark.sql.pandas.types import from_arrow_schema
    from pyspark.sql.types import StructType

    spark = df.sparkSession
    _check_names(df.columns)
    job, info = _checked(spark, _job(df.columns, options), options.top_k)
    arrow_in = _arrow_schema(spark, df)
    arrow_out = output_schema(arrow_in, job.k, insert=job.insert)
    # Input columns keep their Spark types as they are; only the appended ones convert.
    added = from_arrow_schema(pa.schema(list(arrow_out)[len(arrow_in) :]))
    schema = StructType([*df.schema.fields, *added.fields])
    return _Scoring(df.mapInArrow(partial(_score_batches, job, counts), schema), info)


def score_dataframe(
    df: "DataFrame", options: ScoreOptions | None = None, **settings: Any
) -> "DataFrame":
    """``df`` with local ``score``'s columns appended: emoji_1..K, prob_1..K, score_error
    (and text_with_emoji with ``insert``), every input column unchanged, rows in ``df``'s
    order. ``options`` or keyword ``settings`` (any :class:`ScoreOptions` field: ``model=``,
    ``top_k=``, ``insert=``, ...) say what to score with; ``text_column`` is matched
    exactly, then case-insensitively. The file options (formats, chunk rows) do not apply.

    Lazy like any transformation, except for one small task run now: it loads the model
    on a worker, so a bad bundle or option fails here and the schema can be declared; the
    tasks score with a model of the same content (a bundle changed in between is loaded
    again, or refused if it changed while the job ran). ``model`` is a path or a name
    resolved on the driver like locally; a relative name is first looked up among the
    job's files (``--archives bundle.zip#NAME``, ``SparkContext.addArchive``) on the
    workers.
    """
    return _scoring(df, ScoreOptions.of(options, settings)).frame


# --- starting Spark -------------------------------------------------------------------

_MASTER = re.compile(
    r"local(\[(\*|\d+)(,\s*\d+)?\])?|local-cluster\[.+\]|yarn|(spark|k8s|mesos)://.+"
)


def _check_java() -> None:
    """Refuse, naming the cause, what would only say JAVA_GATEWAY_EXITED: no Java."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        if not os.access(Path(java_home, "bin", "java"), os.X_OK):
            raise InputError(
                f"JAVA_HOME={java_home} has no bin/java: point JAVA_HOME at a Java 17 (or "
                "newer) installation, or unset it to use the java on PATH"
            )
    elif shutil.which("java") is None:
        raise InputError(
            "the Spark engine needs Java 17 or newer: no JAVA_HOME is set and no java is on PATH"
        )


def _start_failure(text: str) -> str:
    """The reason a JVM start-up log gives, in one line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith(("Error:", "Exception", "Caused by:")) or "Exception:" in line:
            return re.sub(r"^(Exception in thread \"\w+\" )?([\w.$]+(Exception|Error): )", "", line)
    return lines[-1] if lines else "the JVM exited"


def spark_session(master: str | None = None, spark_logs: bool = False) -> "SparkSession":
    """The active SparkSession, or a new one on ``master`` (None: spark-submit's, else
    ``local[*]``) logging errors only.

    Started outside spark-submit on a local master, workers run this interpreter
    (PYSPARK_PYTHON, unless set), the one emoji-batch is installed in. Unless
    ``spark_logs``, the JVM's start-up chatter is kept from stderr: it writes there
    before any log level can be set. A JVM that cannot start (no Java, a master URL
    Spark refuses) is an input error with the reason its log gave.
    """
    _pyspark()
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    launched_here = "PYSPARK_GATEWAY_PORT" not in os.environ  # not under spark-submit
    starting = SparkContext._active_spark_context is None
    if starting and master is not None and not _MASTER.fullmatch(master):
        raise InputError(
            f"--spark-master {master!r} is not a Spark master URL: use local, local[N], "
            "local[*], spark://HOST:PORT, yarn or k8s://URL"
        )
    if starting and launched_here:
        _check_java()
    if launched_here and (master is None or master.startswith("local")):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("emoji-batch").config(
        "spark.ui.showConsoleProgress", "false"
    )
    if master:
        builder = builder.master(master)
    with (
        tempfile.TemporaryFile() as log,
        contextlib.nullcontext() if spark_logs else _stderr_to(log),
    ):
        try:
            spark = builder.getOrCreate()
        except Exception as exc:
            if not starting:
                raise
            log.flush()
            log.seek(0)
            reason = _start_failure(log.read().decode("utf-8", "replace") or str(exc))
            where = f"master {master}" if master else "its default master"
            raise InputError(f"cannot start Spark on {where}: {reason}") from exc
    spark.sparkContext.setLogLevel("INFO" if spark_logs else "ERROR")
    return spark


@contextlib.contextmanager
def _stderr_to(sink: IO[bytes]) -> Iterator[None]:
    """File descriptor 2 (the JVM's too, which it inherits) written to ``sink``."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        os.dup2(sink.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


# --- path to path ---------------------------------------------------------------------


def default_output_uri(input_uri: str) -> str:
    """``s3a://b/tweets.parquet`` -> ``s3a://b/tweets.scored.parquet``, like local score."""
    head, slash, name = input_uri.rstrip("/").rpartition("/")
    stem, dot, suffix = name.rpartition(".")
    scored = f"{stem}.scored.{suffix}" if dot and stem else f"{name}.scored"
    return f"{head}{slash}{scored}"


def _output_format(
    output_uri: str, override: FileFormat | None, input_format: FileFormat
) -> FileFormat:
    """``--output-format``, else OUTPUT's suffix, else (a directory such as ``scored/``)
    INPUT's format."""
    if override is None:
        try:
            return detect_format(Path(output_uri.rstrip("/")))
        except InputError:
            return input_format
    return detect_format(Path(output_uri), override)


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
) -> "tuple[DataFrame, _Files]":
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
    checking = _Files(fmt, chunk_rows, pa.schema([]), names)
    with _user_errors():
        found = dict(files.rdd.map(partial(_inspect, checking)).collect())
    schema = _merge([found[p] for p in paths], fmt, [names[p] for p in paths])
    if len(paths) > 1:
        files = files.orderBy("path")  # part files in the input files' order
    return files, _Files(fmt, chunk_rows, schema, names)


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
    out_fmt = _output_format(output_uri, options.output_format, in_fmt)
    spark = spark_session(master, spark_logs)
    with _case_sensitive(spark):
        if not _GLOB.search(input_uri) and not _exists(spark, input_uri):
            raise InputError(f"input file {input_uri} does not exist")
        check_output_apart(spark, input_uri, output_uri)
        if not force and _exists(spark, output_uri):
            raise InputError(f"output {output_uri} exists; pass --force to overwrite it")
        spark.conf.set(ARROW_BATCH_ROWS, str(options.chunk_rows))
        sc = spark.sparkContext
        counts = (sc.accumulator(0), sc.accumulator(0))
        with _user_errors():
            if in_fmt == "parquet":
                df = _read_parquet(spark, input_uri)
                _check_names(df.columns)
                arrow_in = _arrow_schema(spark, df)
                files = None
            else:
                df, files = _read_files(spark, input_uri, in_fmt, options.chunk_rows)
                arrow_in = files.schema
        job, info = _checked(spark, _job(arrow_in.names, options), options.top_k)
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
        from pyspark.sql.pandas.types import from_arrow_schema
        from pyspark.sql.types import StringType, StructField, StructType

        with _user_errors():
            if out_fmt == "parquet":
                spark_schema = from_arrow_schema(_spark_table(schema.empty_table()).schema)
                scored = df.mapInArrow(partial(_score_batches, job, counts), spark_schema)
                scored.write.mode("overwrite" if force else "errorifexists").parquet(output_uri)
            else:
                job = replace(job, serialize=out_fmt)
                text = StructType([StructField("value", StringType())])
                scored = df.mapInArrow(partial(_score_batches, job, counts), text)
                writer = scored.write.mode("overwrite" if force else "errorifexists")
                writer.text(output_uri)
                _rename_parts(spark, output_uri, ".csv" if out_fmt == "csv" else ".jsonl")
        return SparkSummary(
            counts[0].value,
            counts[1].value,
            time.perf_counter() - started,
            output_uri,
            info.name,
            f"{info.device}, Spark {sc.master}",
            info.precision,
        )


_GLOB = re.compile(r"[*?\[{]")
_FILE_KEY, _ROW_KEY = "__emoji_batch_file_path__", "__emoji_batch_row_index__"


class SparkSummary(ScoreSummary):
    """The summary of a Spark job: its rate over the whole run (Spark's start-up too),
    to two significant figures when small, never a rounded ``0 rows/s``."""

    def line(self) -> str:
        rate = self.rows_per_second
        shown = f"{rate:,.0f}" if rate >= 100 else f"{rate:.2g}"
        said = f" ({shown} rows/s)" if self.rows and self.seconds > 0 else ""
        return (
            f"scored {self.rows} rows ({self.error_rows} not scorable) in "
            f"{self.seconds:.1f} s{said} with {self.model} "
            f"({self.precision}) on {self.device} -> {self.output}"
        )

    def fields(self) -> dict[str, object]:
        rate = self.rows_per_second
        return {**super().fields(), "rows_per_second": float(f"{rate:.3g}") if self.rows else None}
