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
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pyarrow as pa

from emoji_batch import errors, logs
from emoji_batch.bundle import MANIFEST, resolve_model, shipped_models_dir
from emoji_batch.device import DeviceChoice, stderr_silenced
from emoji_batch.errors import EmojiBatchError, InputError, ModelError
from emoji_batch.fileio import FileFormat, detect_format, find_column, is_stdio
from emoji_batch.loading import AnyPredictor, load_predictor
from emoji_batch.position import PositionModel, load_position_model
from emoji_batch.predict import PrecisionChoice
from emoji_batch.scoring import (
    DEFAULT_CHUNK_ROWS,
    ERROR_COLUMN,
    ScoreSummary,
    output_schema,
    score_table,
)

if TYPE_CHECKING:
    from pyspark import Accumulator
    from pyspark.sql import DataFrame, SparkSession

INSTALL_HINT = 'the Spark engine needs pyspark: pip install "emoji-batch[spark]"'
ARROW_BATCH_ROWS = "spark.sql.execution.arrow.maxRecordsPerBatch"
# RFC 4180 quoting, as local CSV reads and writes it (Spark's default escape is "\").
_CSV = {"header": "true", "escape": '"'}


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
    ``job`` (a relative name, looked up in the files shipped with the job)."""

    kind: Literal["path", "shipped", "job"]
    value: str


def _locate(model: str | None, models_dir: Path | None) -> _Location:
    """Resolve ``model`` on the driver like local ``score``; a relative name the driver
    cannot find is left for the workers to find among the job's files."""
    try:
        directory = resolve_model(model, models_dir).resolve()
    except ModelError:
        if model is None or Path(model).is_absolute():
            raise
        return _Location("job", model)
    if directory.parent == shipped_models_dir().resolve():
        return _Location("shipped", directory.name)
    return _Location("path", str(directory))


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
    if location.kind == "path":
        return location.value
    if location.kind == "shipped":
        return str(shipped_models_dir() / location.value)
    found = _job_bundle(location.value)
    if found is not None:
        return str(found)
    # Not shipped with the job: the worker's own models directory, as a last resort.
    return str(resolve_model(location.value, Path(models_dir) if models_dir else None))


# --- the worker side ------------------------------------------------------------------


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


# One per Python worker process: Spark reuses workers across tasks, so a model is loaded
# once per process, not once per task or batch.
_PREDICTORS: dict[tuple[object, ...], AnyPredictor] = {}
_PLACERS: dict[str | None, PositionModel] = {}


def _predictor(job: _Job) -> AnyPredictor:
    key = (job.location, job.models_dir, job.device, job.batch_size, job.precision)
    if key not in _PREDICTORS:
        models_dir = Path(job.models_dir) if job.models_dir else None
        directory = _bundle_dir(job.location, job.models_dir)
        _PREDICTORS[key] = load_predictor(
            directory, models_dir, job.device, job.batch_size, job.precision
        )
    return _PREDICTORS[key]


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


def _describe(job: _Job, _: object) -> _ModelInfo:
    """Load the model on a worker (checking it there, and caching it for the tasks that
    follow) and say what the driver needs to declare the output schema."""
    predictor = _predictor(job)
    if job.insert:
        _placer(job)
    return _ModelInfo(
        predictor.bundle.name, predictor.n_labels, predictor.device, predictor.precision
    )


def _score_batches(
    job: _Job,
    counts: "tuple[Accumulator[int], Accumulator[int]] | None",
    batches: Iterator[pa.RecordBatch],
) -> Iterator[pa.RecordBatch]:
    """The ``mapInArrow`` function: each Arrow batch scored as local ``score`` scores a
    chunk."""
    placer = _placer(job) if job.insert else None
    for batch in batches:
        if batch.num_rows == 0:
            continue
        table = score_table(
            pa.Table.from_batches([batch]), job.text_column, _predictor(job), job.k, placer=placer
        )
        if counts is not None:
            counts[0].add(table.num_rows)
            counts[1].add(table.num_rows - table.column(ERROR_COLUMN).null_count)
        yield from table.to_batches()


# --- the driver side ------------------------------------------------------------------

_WORKER_ERROR = re.compile(r"emoji_batch\.errors\.(\w+): (.*)")


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """A worker's emoji-batch error (a missing bundle, an unchecked precision) arrives
    wrapped in a Spark exception with the worker's traceback; raise it as itself, so the
    CLI prints its one line and exit code."""
    try:
        yield
    except EmojiBatchError:
        raise
    except Exception as exc:
        found = _WORKER_ERROR.findall(str(exc))
        kind = getattr(errors, found[-1][0], None) if found else None
        if isinstance(kind, type) and issubclass(kind, EmojiBatchError):
            raise kind(found[-1][1]) from exc
        raise


@dataclass
class _Scoring:
    """The scored frame (lazy) and the model a worker loaded for it."""

    frame: "DataFrame"
    info: _ModelInfo


def _scoring(
    df: "DataFrame",
    *,
    text_column: str,
    model: str | None,
    top_k: int,
    batch_size: int | None,
    precision: PrecisionChoice,
    models_dir: Path | None,
    insert: bool,
    device: DeviceChoice,
    counts: "tuple[Accumulator[int], Accumulator[int]] | None" = None,
) -> _Scoring:
    """:func:`score_dataframe`; ``counts`` (rows, rows not scorable) are added to as
    batches are scored, for the summary of a job that evaluates the frame once."""
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema
    from pyspark.sql.types import StructType

    if top_k < 1:
        raise InputError("--top-k must be at least 1")
    if batch_size is not None and batch_size < 1:
        raise InputError("--batch-size must be at least 1")
    job = _Job(
        location=_locate(model, models_dir),
        models_dir=str(models_dir.resolve()) if models_dir else None,
        device=device,
        batch_size=batch_size,
        precision=precision,
        text_column=find_column(df.columns, text_column, "text"),
        insert=insert,
    )
    spark = df.sparkSession
    with _user_errors():
        info = spark.sparkContext.parallelize([0], 1).map(partial(_describe, job)).collect()[0]
    job = replace(job, k=min(top_k, info.n_labels))
    arrow_in = to_arrow_schema(
        df.schema, timezone=spark.conf.get("spark.sql.session.timeZone") or "UTC"
    )
    arrow_out = output_schema(arrow_in, job.k, insert=insert)
    # Input columns keep their Spark types as they are; only the appended ones convert.
    added = from_arrow_schema(pa.schema(list(arrow_out)[len(arrow_in) :]))
    schema = StructType([*df.schema.fields, *added.fields])
    return _Scoring(df.mapInArrow(partial(_score_batches, job, counts), schema), info)


def score_dataframe(
    df: "DataFrame",
    text_column: str = "text",
    model: str | None = None,
    top_k: int = 3,
    batch_size: int | None = None,
    precision: PrecisionChoice = "auto",
    models_dir: Path | None = None,
    insert: bool = False,
    device: DeviceChoice = "auto",
) -> "DataFrame":
    """``df`` with local ``score``'s columns appended: emoji_1..K, prob_1..K, score_error
    (and text_with_emoji with ``insert``), every input column unchanged. ``text_column``
    is matched exactly, then case-insensitively.

    Lazy like any transformation, except for one small task run now: it loads the model
    on a worker, so a bad bundle or option fails here and the schema can be declared.
    ``model`` is a path or a name resolved on the driver like locally; a relative name
    the driver cannot find is looked up among the job's files (``--archives
    bundle.zip#NAME``, ``SparkContext.addArchive``) on the workers.
    """
    return _scoring(
        df,
        text_column=text_column,
        model=model,
        top_k=top_k,
        batch_size=batch_size,
        precision=precision,
        models_dir=models_dir,
        insert=insert,
        device=device,
    ).frame


# --- path to path ---------------------------------------------------------------------


def spark_session(master: str | None = None, spark_logs: bool = False) -> "SparkSession":
    """The active SparkSession, or a new one on ``master`` (None: spark-submit's, else
    ``local[*]``) logging errors only.

    Started outside spark-submit on a local master, workers run this interpreter
    (PYSPARK_PYTHON, unless set), the one emoji-batch is installed in. Unless
    ``spark_logs``, the JVM's start-up chatter is dropped: it writes to stderr before
    any log level can be set.
    """
    _pyspark()
    from pyspark.sql import SparkSession

    launched_here = "PYSPARK_GATEWAY_PORT" not in os.environ  # not under spark-submit
    if launched_here and (master is None or master.startswith("local")):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("emoji-batch").config(
        "spark.ui.showConsoleProgress", "false"
    )
    if master:
        builder = builder.master(master)
    with contextlib.nullcontext() if spark_logs else stderr_silenced():
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("INFO" if spark_logs else "ERROR")
    return spark


def default_output_uri(input_uri: str) -> str:
    """``s3a://b/tweets.parquet`` -> ``s3a://b/tweets.scored.parquet``, like local score."""
    head, slash, name = input_uri.rstrip("/").rpartition("/")
    stem, dot, suffix = name.rpartition(".")
    scored = f"{stem}.scored.{suffix}" if dot and stem else f"{name}.scored"
    return f"{head}{slash}{scored}"


def _output_format(output_uri: str, override: FileFormat | None, input_format: FileFormat) -> str:
    """``--output-format``, else OUTPUT's suffix, else (a directory such as ``scored/``)
    INPUT's format."""
    if override is None:
        try:
            return detect_format(Path(output_uri.rstrip("/")))
        except InputError:
            return input_format
    return detect_format(Path(output_uri), override)


def _read(spark: "SparkSession", uri: str, fmt: str) -> "DataFrame":
    reader = spark.read
    if fmt == "csv":
        # Strings as read, like local CSV; quoted newlines allowed (one task per file).
        return reader.options(**_CSV, multiLine="true").csv(uri)
    return reader.json(uri) if fmt == "jsonl" else reader.parquet(uri)


def _write(frame: "DataFrame", uri: str, fmt: str, force: bool) -> None:
    writer = frame.write.mode("overwrite" if force else "errorifexists")
    if fmt == "csv":
        writer.options(**_CSV).csv(uri)
    elif fmt == "jsonl":
        writer.option("ignoreNullFields", "false").json(uri)
    else:
        writer.parquet(uri)


def _exists(spark: "SparkSession", uri: str) -> bool:
    """Whether ``uri`` exists, on whatever filesystem Spark's Hadoop configuration reaches."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)  # type: ignore[union-attr]
    return bool(path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).exists(path))  # type: ignore[union-attr]


@contextlib.contextmanager
def _analysis_errors() -> Iterator[None]:
    """Spark's refusals of paths and types (missing input, a column CSV cannot hold)
    are input errors: exit code 2, their first line as the message."""
    from pyspark.errors import AnalysisException

    try:
        yield
    except AnalysisException as exc:
        raise InputError(str(exc).strip().splitlines()[0]) from exc


def score_path(
    input_uri: str,
    output_uri: str | None = None,
    *,
    master: str | None = None,
    model: str | None = None,
    models_dir: Path | None = None,
    text_column: str = "text",
    input_format: FileFormat | None = None,
    output_format: FileFormat | None = None,
    top_k_labels: int = 3,
    insert: bool = False,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    batch_size: int | None = None,
    device: DeviceChoice = "auto",
    precision: PrecisionChoice = "auto",
    force: bool = False,
    spark_logs: bool = False,
) -> ScoreSummary:
    """Score a file or directory Spark can read into one Spark can write (any path or URI:
    local, hdfs://, s3a://), committed by Spark (a ``_SUCCESS`` marker).

    ``chunk_rows`` is the size of the Arrow batches handed to the workers. An existing
    OUTPUT is refused unless ``force`` (then it is overwritten, Spark's way: removed
    when the job starts, not swapped atomically as local ``score`` does). The summary's
    row counts are Spark accumulators: a stage Spark recomputes would count twice.
    """
    started = time.perf_counter()
    if is_stdio(Path(input_uri)) or (output_uri is not None and is_stdio(Path(output_uri))):
        raise InputError("--engine spark reads and writes paths or URIs, not stdin/stdout (-)")
    if chunk_rows < 1:
        raise InputError("--chunk-rows must be at least 1")
    in_fmt = detect_format(Path(input_uri.rstrip("/")), input_format)
    output_uri = output_uri or default_output_uri(input_uri)
    out_fmt = _output_format(output_uri, output_format, in_fmt)
    spark = spark_session(master, spark_logs)
    if not force and _exists(spark, output_uri):
        raise InputError(f"output {output_uri} exists; pass --force to overwrite it")
    spark.conf.set(ARROW_BATCH_ROWS, str(chunk_rows))
    sc = spark.sparkContext
    counts = (sc.accumulator(0), sc.accumulator(0))
    with _analysis_errors():
        df = _read(spark, input_uri, in_fmt)
    scoring = _scoring(
        df,
        text_column=text_column,
        model=model,
        top_k=top_k_labels,
        batch_size=batch_size,
        precision=precision,
        models_dir=models_dir,
        insert=insert,
        device=device,
        counts=counts,
    )
    info = scoring.info
    logs.emit(
        "start",
        f"model {info.name} ({info.precision}) on {info.device}, Spark {sc.master}",
        model=info.name,
        device=info.device,
        precision=info.precision,
        master=sc.master,
        input=input_uri,
        output=output_uri,
    )
    with _analysis_errors(), _user_errors():
        _write(scoring.frame, output_uri, out_fmt, force)
    return ScoreSummary(
        counts[0].value,
        counts[1].value,
        time.perf_counter() - started,
        output_uri,
        info.name,
        f"{info.device}, Spark {sc.master}",
        info.precision,
    )
