"""A Spark DataFrame scored on the workers (:func:`score_dataframe`), and a Spark job's
errors turned into emoji-batch's one-line messages and exit codes.
"""

import contextlib
import importlib
import re
from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from emoji_batch.errors import EmojiBatchError, InputError, SparkJobError
from emoji_batch.fileio import (
    find_column,
)
from emoji_batch.options import ScoreOptions
from emoji_batch.scoring import (
    output_schema,
)
from emoji_batch.spark.worker import Job, ModelInfo, describe, locate, score_batches

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# --- the driver side ------------------------------------------------------------------

# A worker's emoji-batch error in the Python traceback Spark passes on: module, class, message.
_WORKER_ERROR = re.compile(r"(emoji_batch(?:\.\w+)*)\.(\w+): (.*)")
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


def _error_class(module: str, name: str) -> type[EmojiBatchError] | None:
    """The emoji-batch error class a worker raised, wherever in the package it is defined
    (its exit code comes with it); None for any other name."""
    try:
        kind = getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None
    return kind if isinstance(kind, type) and issubclass(kind, EmojiBatchError) else None


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
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
        kind = _error_class(*found[-1][:2]) if found else None
        if kind is not None:
            raise kind(found[-1][2]) from exc
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


def check_names(columns: list[str]) -> None:
    """Refuse column names PySpark cannot hand to a Python function: ``mapInArrow``
    selects every column by its name, and a dot there means a struct field."""
    dotted = [c for c in columns if "." in c or "`" in c]
    if dotted:
        raise InputError(
            f"column(s) {dotted}: the Spark engine cannot pass names with dots or backticks "
            "to Python; rename them, or score with --engine local, which keeps them"
        )


def job_for(columns: list[str], options: ScoreOptions) -> Job:
    models_dir = options.models_dir
    return Job(
        location=locate(options.model, models_dir),
        models_dir=str(Path(models_dir).resolve()) if models_dir else None,
        device=options.device,
        batch_size=options.batch_size,
        precision=options.precision,
        text_column=find_column(columns, options.text_column, "text"),
        insert=options.insert,
    )


def checked_job(spark: "SparkSession", job: Job, top_k: int) -> tuple[Job, ModelInfo]:
    """Load the model on a worker now (a bad bundle or option fails here) and pin the
    job to what it loaded: its content hash and label count."""
    with user_errors():
        info = spark.sparkContext.parallelize([0], 1).map(partial(describe, job)).collect()[0]
    return replace(job, k=min(top_k, info.n_labels), fingerprint=info.fingerprint), info


def arrow_schema(spark: "SparkSession", df: "DataFrame") -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(
        df.schema, timezone=spark.conf.get("spark.sql.session.timeZone") or "UTC"
    )


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
    from pyspark.sql.pandas.types import from_arrow_schema
    from pyspark.sql.types import StructType

    options = ScoreOptions.of(options, settings)
    spark = df.sparkSession
    check_names(df.columns)
    job, _ = checked_job(spark, job_for(df.columns, options), options.top_k)
    arrow_in = arrow_schema(spark, df)
    arrow_out = output_schema(arrow_in, job.k, insert=job.insert)
    # Input columns keep their Spark types as they are; only the appended ones convert.
    added = from_arrow_schema(pa.schema(list(arrow_out)[len(arrow_in) :]))
    schema = StructType([*df.schema.fields, *added.fields])
    return df.mapInArrow(partial(score_batches, job, None), schema)
