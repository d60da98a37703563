"""The worker side of a Spark job: where a worker finds the bundle, the model loaded once
per worker process, and the ``mapInArrow`` function that scores Arrow batches (or whole
CSV and JSON-lines files) as local ``score`` scores a chunk.
"""

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pyarrow as pa

from emoji_batch.bundle import resolve_model, shipped_models_dir
from emoji_batch.device import DeviceChoice
from emoji_batch.errors import InputError, ModelError
from emoji_batch.fileio import (
    ChunkReader,
    FileFormat,
    TableWriter,
    is_json_type,
)
from emoji_batch.loading import AnyPredictor, load_predictor
from emoji_batch.manifests import MANIFEST
from emoji_batch.position import PositionModel, load_position_model
from emoji_batch.predictor import PrecisionChoice
from emoji_batch.scoring import (
    ERROR_COLUMN,
    score_table,
)

if TYPE_CHECKING:
    from pyspark import Accumulator
    from pyspark.sql import Row

# --- where workers find the bundle --------------------------------------------------


@dataclass(frozen=True)
class Location:
    """A bundle as workers find it: ``path`` (absolute, shared storage), ``shipped``
    (a bundle inside the installed package, wherever the worker's package lies) or
    ``job`` (a relative name, looked up in the files shipped with the job).

    ``alias`` is ``--model`` as given when it is a relative name: a bundle shipped with
    the job under that name wins on the workers, whatever the driver found (the driver's
    ``./my_bundle`` is not on the other hosts)."""

    kind: Literal["path", "shipped", "job"]
    value: str
    alias: str | None = None


def locate(model: str | None, models_dir: Path | None) -> Location:
    """Resolve ``model`` on the driver like local ``score``; a relative name the driver
    cannot find is left for the workers to find among the job's files."""
    alias = model if model is not None and not Path(model).is_absolute() else None
    try:
        directory = resolve_model(model, models_dir).resolve()
    except ModelError:
        if alias is None:
            raise
        return Location("job", alias, alias)
    if directory.parent == shipped_models_dir().resolve():
        return Location("shipped", directory.name, alias)
    return Location("path", str(directory), alias)


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


def _bundle_dir(location: Location, models_dir: str | None) -> str:
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
class Files:
    """CSV or JSON-lines input, read on the workers by the local reader, one whole file
    per row of Spark's ``binaryFile`` source: ``schema`` is the one every file's chunks
    are given (the files' schemas merged), ``names`` how messages name each file."""

    fmt: FileFormat
    chunk_rows: int
    schema: pa.Schema
    names: dict[str, str]


@dataclass(frozen=True)
class Job:
    """Everything a worker needs, pickled into each task."""

    location: Location
    models_dir: str | None
    device: DeviceChoice
    batch_size: int | None
    precision: PrecisionChoice
    text_column: str
    k: int = 0
    insert: bool = False
    fingerprint: str | None = None  # the bundle's content, as checked when the job began
    files: Files | None = None  # read these files, not the Arrow batches Spark hands over
    serialize: FileFormat | None = None  # CSV/JSON-lines bytes of each chunk, as a text row
    schema: pa.Schema | None = None  # the scored chunks' schema, for ``serialize``


# One per Python worker process: Spark reuses workers across tasks, so a model is loaded
# once per process, not once per task or batch. Keyed by where the bundle lies and the
# options, holding the content hash it was loaded with: a job for other content (the
# bundle, or an ensemble member, changed since) loads it again.
_PREDICTORS: dict[tuple[object, ...], tuple[str, AnyPredictor]] = {}
_PLACERS: dict[str | None, PositionModel] = {}


def _load(job: Job) -> tuple[str, AnyPredictor]:
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


def _predictor(job: Job) -> AnyPredictor:
    fingerprint, predictor = _load(job)
    if job.fingerprint is not None and fingerprint != job.fingerprint:
        where = _bundle_dir(job.location, job.models_dir)
        raise ModelError(
            f"model {predictor.name} on this worker ({where}) is not the one "
            "checked when the job started: its files differ, or changed"
        )
    return predictor


def _placer(job: Job) -> PositionModel:
    if job.models_dir not in _PLACERS:
        models_dir = Path(job.models_dir) if job.models_dir else None
        _PLACERS[job.models_dir] = load_position_model(models_dir)
    return _PLACERS[job.models_dir]


@dataclass(frozen=True)
class ModelInfo:
    name: str
    n_labels: int
    device: str
    precision: str
    fingerprint: str
    directory: str


def describe(job: Job, _: object) -> ModelInfo:
    """Load the model on a worker (checking it there, and caching it for the tasks that
    follow) and say what the driver needs: the output schema and the content hash every
    other worker's copy must have."""
    fingerprint, predictor = _load(job)
    if job.insert:
        _placer(job)
    return ModelInfo(
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


def inspect_file(files: Files, row: "Row") -> tuple[str, pa.Schema]:
    """Read one whole file as local ``score`` would (every row, so a ragged CSV row or a
    broken JSON line is refused before anything is written) and return its schema."""
    name = files.names.get(row.path, row.path)
    with _local_copy(row.content) as tmp, _named(tmp, name):
        reader = ChunkReader(tmp, files.fmt, files.chunk_rows)
        for _ in reader:
            pass
        return row.path, reader.schema


def _file_tables(files: Files, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.Table]:
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


def spark_table(table: pa.Table) -> pa.Table:
    """``table`` in types Spark holds: JSON text as its strings, all-null as string."""
    columns = []
    for column in table.columns:
        if is_json_type(column.type):
            column = pa.chunked_array([c.storage for c in column.chunks], pa.string())
        elif pa.types.is_null(column.type):
            column = column.cast(pa.string())
        columns.append(column)
    return pa.Table.from_arrays(columns, names=table.column_names)


def score_batches(
    job: Job,
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
            yield from spark_table(scored).to_batches()
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
