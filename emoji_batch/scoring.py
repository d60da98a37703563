"""Score whole files: chunks -> clean -> predict -> top-k columns -> atomic writer.

This is the library behind ``emoji-batch score`` and ``emoji-batch evaluate``.
"""

import contextlib
import fcntl
import itertools
import json
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TypeVar

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from emoji_batch import logs
from emoji_batch.dataset import check_labels, keep_labels, read_labelled
from emoji_batch.device import DeviceChoice
from emoji_batch.errors import InputError, LockedError
from emoji_batch.evaluation import EvalReport, evaluate_probs, write_report
from emoji_batch.extras import require
from emoji_batch.fileio import (
    INVALID_UTF8,
    ChunkReader,
    FileFormat,
    TableWriter,
    atomic_output,
    check_output,
    check_writable,
    detect_format,
    find_column,
    is_json_type,
    is_stdio,
    is_text_type,
)
from emoji_batch.loading import AnyPredictor, load_predictor
from emoji_batch.manifests import record_evaluation
from emoji_batch.options import ScoreOptions
from emoji_batch.position import PositionModel, insert_emoji, load_position_model
from emoji_batch.predict import PrecisionChoice, top_k
from emoji_batch.remote import Location, RemoteFile, fetched, locate, staging_path
from emoji_batch.resume import Journal, input_fingerprint

log = logging.getLogger(__name__)


class Placer(Protocol):
    """Says where in each text its emoji belongs (see :mod:`emoji_batch.position`)."""

    def predict(self, texts: Sequence[str]) -> list[int]: ...


T = TypeVar("T")
U = TypeVar("U")

ERROR_COLUMN = "score_error"
# score_error (and predict's error) of a text whose bytes were not UTF-8.
INVALID_UTF8_REASON = "invalid UTF-8 in row"
INSERT_COLUMN = "text_with_emoji"


@dataclass
class ScoreSummary:
    rows: int
    error_rows: int
    seconds: float
    output: str
    model: str
    device: str
    precision: str = "fp32"
    resumed_chunks: int = 0
    # Reduced-precision rows redone in fp32 (near-ties between the two best emoji); None
    # where the scoring process cannot count them (Spark's workers do the scoring).
    fallback_rows: int | None = None

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")

    def line(self) -> str:
        resumed = f", {self.resumed_chunks} chunks resumed" if self.resumed_chunks else ""
        return (
            f"scored {self.rows} rows ({self.error_rows} not scorable{resumed}) in "
            f"{self.seconds:.1f} s ({self.rows_per_second:,.0f} rows/s) with {self.model} "
            f"({self.precision}) on {self.device} -> {self.output}"
        )

    def fields(self) -> dict[str, object]:
        return {
            "rows": self.rows,
            "error_rows": self.error_rows,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second, 1),
            "output": self.output,
            "model": self.model,
            "device": self.device,
            "precision": self.precision,
            "resumed_chunks": self.resumed_chunks,
            **({} if self.fallback_rows is None else {"fallback_rows": self.fallback_rows}),
        }


def default_output(input_path: Location) -> Location:
    """``tweets.csv`` -> ``tweets.scored.csv`` beside the input (a URI beside its
    object); stdin -> stdout."""
    if is_stdio(input_path):
        return input_path
    return input_path.with_name(f"{input_path.stem}.scored{input_path.suffix}")


def output_schema(input_schema: pa.Schema, k: int, insert: bool = False) -> pa.Schema:
    """Every input column, then ``emoji_1..k``, ``prob_1..k``, ``score_error`` and with
    ``insert`` ``text_with_emoji``."""
    added = [pa.field(f"emoji_{i}", pa.string()) for i in range(1, k + 1)]
    added += [pa.field(f"prob_{i}", pa.float32()) for i in range(1, k + 1)]
    added.append(pa.field(ERROR_COLUMN, pa.string()))
    if insert:
        added.append(pa.field(INSERT_COLUMN, pa.string()))
    clash = {f.name for f in added} & set(input_schema.names)
    if clash:
        raise InputError(f"input already has output column(s) {sorted(clash)}; rename them first")
    return pa.schema([*input_schema, *added])


def _not_text(value: object, kind: pa.DataType) -> str:
    return "missing text" if value is None else f"text is {kind}, not a string"


def _row_texts(
    column: pa.ChunkedArray, invalid_utf8: np.ndarray | None
) -> tuple[list[str | None], list[str | None]]:
    """Each row's text and why it cannot be scored, or None. Cleaning decides emptiness
    later. Every Arrow string type is text (polars Categorical too); in a JSON column (a
    JSON-lines key of several types) the rows that hold a JSON string are."""
    if is_text_type(column.type):
        texts = column.to_pylist()
        errors = ["missing text" if v is None else None for v in texts]
    elif is_json_type(column.type):
        values = [None if v is None else json.loads(v) for v in column.to_pylist()]
        texts = [v if isinstance(v, str) else None for v in values]
        errors = [None if isinstance(v, str) else _not_text(v, pa.infer_type([v])) for v in values]
    else:
        texts = [None] * len(column)
        errors = [_not_text(v, column.type) for v in column.to_pylist()]
    if invalid_utf8 is not None:
        for i in np.flatnonzero(invalid_utf8):
            errors[i] = INVALID_UTF8_REASON
    return texts, errors


def python_texts(values: Iterable[object]) -> tuple[list[str | None], list[str | None]]:
    """Each Python value's text and why it cannot be scored, as :func:`_row_texts` says it
    for Arrow columns: None and NaN (pandas' missing value) are ``missing text``; any other
    non-string (int, bytes, ...) is ``text is <type>, not a string``."""
    texts: list[str | None] = []
    errors: list[str | None] = []
    for value in values:
        if isinstance(value, str):
            texts.append(value)
            errors.append(None)
            continue
        texts.append(None)
        missing = (
            value is None
            or (isinstance(value, float | np.floating) and bool(np.isnan(value)))
            or type(value).__name__ in ("NAType", "NaTType")
        )
        errors.append(
            "missing text" if missing else f"text is {type(value).__name__}, not a string"
        )
    return texts, errors


@dataclass
class PreparedChunk:
    """A chunk read, checked, cleaned and encoded: everything before the model."""

    table: pa.Table
    texts: list[str | None]  # each row's text as read (None where it is not text)
    errors: list[str | None]
    ok: np.ndarray
    encoded: list[Any]  # what predictor.encode returned: id arrays, or per member for ensembles


def prepare_chunk(
    table: pa.Table,
    text_column: str,
    predictor: AnyPredictor,
    row_texts: tuple[list[str | None], list[str | None]] | None = None,
) -> PreparedChunk:
    """Find unscorable rows, clean the text and encode the rows that can be scored;
    ``row_texts`` (from :func:`python_texts`) replaces what the text column says."""
    invalid = None
    if INVALID_UTF8 in table.column_names:
        invalid = table.column(INVALID_UTF8).to_numpy()
        table = table.drop_columns([INVALID_UTF8])
    texts, errors = row_texts or _row_texts(table.column(text_column), invalid)
    if row_texts is not None and invalid is not None:
        for i in np.flatnonzero(invalid):
            errors[i] = INVALID_UTF8_REASON
    raw = [None if e else v for v, e in zip(texts, errors, strict=True)]
    cleaned = predictor.clean(raw)
    errors = [e or ("empty text" if not c else None) for e, c in zip(errors, cleaned, strict=True)]
    ok = np.array([e is None for e in errors], dtype=bool)
    encoded = predictor.encode([c for c, good in zip(cleaned, ok, strict=True) if good])
    return PreparedChunk(table, texts, errors, ok, encoded)


def finish_chunk(
    chunk: PreparedChunk, predictor: AnyPredictor, k: int, placer: Placer | None = None
) -> pa.Table:
    """Run the model and append the top-k emoji/probability columns and ``score_error``;
    with a ``placer``, also each row's text with its top emoji inserted where it goes."""
    table, ok = chunk.table, chunk.ok
    ids, values = top_k(predictor.predict_encoded(chunk.encoded), k)
    emoji = np.array([label.emoji for label in predictor.bundle.labels], dtype=object)
    for i in range(k):
        col_emoji = np.full(len(ok), None, dtype=object)
        col_emoji[ok] = emoji[ids[:, i]]
        table = table.append_column(f"emoji_{i + 1}", pa.array(col_emoji, type=pa.string()))
    for i in range(k):
        col_prob = np.zeros(len(ok), dtype=np.float32)
        col_prob[ok] = values[:, i]
        table = table.append_column(
            f"prob_{i + 1}", pa.array(col_prob, mask=~ok, type=pa.float32())
        )
    table = table.append_column(ERROR_COLUMN, pa.array(chunk.errors, type=pa.string()))
    if placer is None:
        return table
    with_emoji = np.full(len(ok), None, dtype=object)
    texts = [t for t, good in zip(chunk.texts, ok, strict=True) if good]
    with_emoji[ok] = [
        insert_emoji(text, e, at)
        for text, e, at in zip(texts, emoji[ids[:, 0]], placer.predict(texts), strict=True)
    ]
    return table.append_column(INSERT_COLUMN, pa.array(with_emoji, type=pa.string()))


def score_table(
    table: pa.Table,
    text_column: str,
    predictor: AnyPredictor,
    k: int,
    placer: Placer | None = None,
) -> pa.Table:
    """Append top-k emoji/probability columns and ``score_error`` to one chunk (and with
    a ``placer``, ``text_with_emoji``)."""
    return finish_chunk(prepare_chunk(table, text_column, predictor), predictor, k, placer)


_DONE = object()


def prefetched(items: Iterable[T], fn: Callable[[T], U]) -> Iterator[U]:
    """``map(fn, items)`` run one item ahead in a worker thread.

    Reading, cleaning and tokenizing the next chunk then overlaps the model's work on
    this one (TensorFlow and TensorFlow Lite release the GIL while they compute).
    Errors in the worker are raised here; leaving early stops the worker and waits for it.
    """
    results: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(value: tuple[bool, object]) -> bool:
        while not stop.is_set():
            try:
                results.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put((True, fn(item))):
                    return
            put((True, _DONE))
        except BaseException as exc:  # handed to the consumer, which raises it
            put((False, exc))

    worker = threading.Thread(target=work, name="emoji-batch-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            ok, value = results.get()
            if not ok:
                raise value  # type: ignore[misc]
            if value is _DONE:
                return
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        worker.join()


@contextlib.contextmanager
def output_lock(output: Path) -> Iterator[None]:
    """One writer per OUTPUT: a second run on the same OUTPUT fails with exit code 3.

    ``flock`` is released by the kernel when a process dies, even by SIGKILL, so a
    killed run never leaves a lock that holds. The lock file is removed on every other
    exit, by the run that holds the lock and before it lets go. A run that opened the
    file just before then gets the lock on a file no path leads to; it notices and
    locks the path's new file instead, so two runs never both think they hold it.
    """
    lock_path = output.parent / f".{output.name}.lock"
    while True:
        try:
            fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o666)
        except OSError as exc:
            raise InputError(
                f"output directory {output.parent} is not writable ({exc.strerror})"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockedError(
                f"another emoji-batch run is writing {output} (lock {lock_path})"
            ) from None
        if _is_open_file(lock_path, fd):
            break
        os.close(fd)  # its holder removed it after we opened it: lock the new one
    try:
        yield
    finally:
        with contextlib.suppress(OSError):  # a left lock file is harmless: it locks nothing
            lock_path.unlink()  # only while holding the lock (see above)
        os.close(fd)


def _is_open_file(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (opened.st_dev, opened.st_ino)


@dataclass
class _Tally:
    """Rows and unscorable rows written so far."""

    rows: int = 0
    errors: int = 0

    def add(self, table: pa.Table) -> None:
        self.rows += table.num_rows
        self.errors += table.num_rows - table.column(ERROR_COLUMN).null_count


def _write_all(
    sink: Path | BinaryIO,
    fmt: FileFormat,
    schema: pa.Schema,
    tables: Iterable[pa.Table],
    tally: _Tally,
) -> None:
    writer = TableWriter(sink, fmt, schema)
    try:
        for table in tables:
            writer.write(table)
            tally.add(table)
    finally:
        writer.close()


@dataclass(frozen=True)
class _Target:
    """Where and how a run writes: checked before anything is read or loaded."""

    path: Path  # the local file written: for a remote OUTPUT, its staging copy
    format: FileFormat
    to_stdout: bool
    force: bool
    remote: RemoteFile | None = None  # uploaded from ``path`` once it is whole

    @property
    def name(self) -> str:
        return str(self.remote or self.path)


def _check_target(
    input_path: Location,
    output_path: Location | None,
    in_fmt: FileFormat,
    options: ScoreOptions,
    force: bool,
    resume: bool,
) -> _Target:
    """OUTPUT (INPUT.scored.SUFFIX by default; ``-`` is stdout) and its format; refuses
    what cannot work before any input is read."""
    # The default OUTPUT (INPUT's suffix) and stdout are written in INPUT's format.
    inherit = output_path is None or is_stdio(output_path)
    path = output_path or default_output(input_path)
    to_stdout = is_stdio(path)
    fmt = detect_format(path, options.output_format or (in_fmt if inherit else None))
    if resume and (to_stdout or is_stdio(input_path)):
        raise InputError("--resume needs a file INPUT and a file OUTPUT, not stdin/stdout")
    if to_stdout and fmt == "parquet":
        raise InputError("stdout output must be csv or jsonl (--output-format)")
    if isinstance(path, RemoteFile):
        path.check_output(force)
        # Written locally first (a staging copy left by a killed run is overwritten).
        return _Target(staging_path(path), fmt, False, True, path)
    if not to_stdout:
        check_output(path, force)
    return _Target(path, fmt, to_stdout, force)


@dataclass
class _Models:
    """What scores the chunks: the model, its top-k, the position model and the output
    schema, loaded once the input's columns are known."""

    predictor: AnyPredictor
    text_column: str
    k: int
    placer: PositionModel | None
    schema: pa.Schema


def _load_models(
    reader: ChunkReader,
    target: _Target,
    options: ScoreOptions,
    predictor: AnyPredictor | None = None,
) -> _Models:
    text_col = find_column(reader.schema.names, options.text_column, "text")
    if predictor is None:
        predictor = load_predictor(
            options.model, options.models_dir, options.device, options.batch_size, options.precision
        )
    k = min(options.top_k, predictor.n_labels)
    schema = output_schema(reader.schema, k, options.insert)
    check_writable(schema, target.format)
    placer = load_position_model(options.models_dir) if options.insert else None
    return _Models(predictor, text_col, k, placer, schema)


def _scored_chunks(chunks: Iterable[pa.Table], models: _Models, bar: tqdm) -> Iterator[pa.Table]:
    """Each chunk with its emoji columns; the next chunk is read, cleaned and encoded in a
    worker thread while the model runs on this one."""
    predictor = models.predictor

    def prepare(chunk: pa.Table) -> PreparedChunk:
        return prepare_chunk(chunk, models.text_column, predictor)

    for prepared in prefetched(chunks, prepare):
        table = finish_chunk(prepared, predictor, models.k, models.placer)
        bar.update(table.num_rows)
        yield table


def _write_through_journal(
    input_path: Location,
    target: _Target,
    reader: ChunkReader,
    models: _Models,
    options: ScoreOptions,
    run: Callable[[Iterable[pa.Table]], Iterator[pa.Table]],
    bar: tqdm,
    tally: _Tally,
    closing: contextlib.ExitStack,
) -> int:
    """Score the chunks a killed run did not finish into the journal, then write OUTPUT
    from the journal's parts; returns how many chunks were resumed."""
    settings = {
        "text_column": models.text_column,
        "top_k": models.k,
        "insert": options.insert,
        "chunk_rows": options.chunk_rows,
        "batch_size": models.predictor.batch_size,
        "precision": models.predictor.precision,
        "output_format": target.format,
    }
    fingerprint = _run_fingerprint(input_path, models.predictor, models.placer, settings)
    journal = Journal(target.path, fingerprint)
    resumed = journal.start()
    chunks = iter(reader)
    closing.enter_context(contextlib.closing(chunks))
    if resumed:
        logs.emit("resume", f"resuming after {resumed} finished chunks", chunks=resumed)
        bar.update(sum(c.num_rows for c in itertools.islice(chunks, resumed)))
    for index, table in enumerate(run(chunks), start=resumed):
        journal.save(index, table)
    _write_file(target, models.schema, journal.parts(), tally)
    journal.remove()
    return resumed


def _write_file(
    target: _Target, schema: pa.Schema, tables: Iterable[pa.Table], tally: _Tally
) -> None:
    """OUTPUT written whole or not at all (a temporary file renamed at the end; a
    remote OUTPUT is then uploaded, see :meth:`RemoteFile.upload`)."""
    with atomic_output(target.path, target.force) as tmp:
        _write_all(tmp, target.format, schema, tables, tally)
    if target.remote is not None:
        try:
            target.remote.upload(target.path)
        finally:
            target.path.unlink(missing_ok=True)


def score_file(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str] | None = None,
    options: ScoreOptions | None = None,
    *,
    force: bool = False,
    resume: bool = False,
    progress: bool | None = None,
    predictor: AnyPredictor | None = None,
    **settings: Any,
) -> ScoreSummary:
    """Score ``input_path`` chunk by chunk into ``output_path``.

    ``options`` (or keyword ``settings``: any :class:`ScoreOptions` field, e.g.
    ``model=``, ``top_k=``, ``insert=``) say what to score with. A file OUTPUT is written
    atomically under a lock; ``-`` means stdin/stdout; either may be a URI (``s3://``,
    ``gs://``, ``file://``: see :mod:`emoji_batch.remote`), given as a string.
    ``resume`` keeps finished chunks beside OUTPUT (for a remote OUTPUT, beside its
    local staging copy) so a killed run can continue. ``progress=None`` shows a bar only
    on a terminal; False never shows one. ``predictor`` is an already loaded model to
    use instead of loading ``options.model`` (a folder run loads it once for all files).

    The steps: check the options and OUTPUT, open INPUT, load the models, then score the
    chunks into OUTPUT directly or through the resume journal.
    """
    started = time.perf_counter()
    options = ScoreOptions.of(options, settings)
    input_path = locate(input_path)
    output_path = None if output_path is None else locate(output_path)
    in_fmt = detect_format(input_path, options.input_format)
    target = _check_target(input_path, output_path, in_fmt, options, force, resume)
    reader = ChunkReader(input_path, in_fmt, options.chunk_rows)
    try:
        models = _load_models(reader, target, options, predictor)
        predictor = models.predictor
        logs.emit(
            "start",
            f"model {predictor.bundle.name} ({predictor.precision}) on {predictor.device}",
            model=predictor.bundle.name,
            device=predictor.device,
            precision=predictor.precision,
            input=str(input_path),
            output=target.name,
        )
        tally, resumed = _Tally(), 0
        # Every generator is closed on the way out, whatever the error, so the prefetch
        # worker is stopped and joined here, not when (or if) the garbage goes.
        with contextlib.ExitStack() as closing:
            bar = tqdm(
                total=reader.total_rows,
                unit="rows",
                disable=None if progress is None else not progress,
            )
            closing.callback(bar.close)

            def run(chunks: Iterable[pa.Table]) -> Iterator[pa.Table]:
                scored = _scored_chunks(chunks, models, bar)
                return closing.enter_context(contextlib.closing(scored))

            if target.to_stdout:
                with os.fdopen(os.dup(sys.stdout.fileno()), "wb") as out:
                    _write_all(out, target.format, models.schema, run(reader), tally)
            else:
                with output_lock(target.path):
                    if resume:
                        resumed = _write_through_journal(
                            input_path, target, reader, models, options, run, bar, tally, closing
                        )
                    else:
                        _write_file(target, models.schema, run(reader), tally)
    finally:
        reader.close()
        if target.remote is not None:  # its staging directory, unless a journal is kept
            with contextlib.suppress(OSError):
                target.path.parent.rmdir()
    return ScoreSummary(
        tally.rows,
        tally.errors,
        time.perf_counter() - started,
        target.name,
        predictor.bundle.name,
        predictor.device,
        predictor.precision,
        resumed,
        predictor.fallback_rows,
    )


def _run_fingerprint(
    input_path: Location,
    predictor: AnyPredictor,
    placer: PositionModel | None,
    options: dict[str, object],
) -> dict[str, object]:
    """What a resumed run must share with the run it continues: input, options and every
    bundle the output depends on (the model; with --insert, the position model too)."""
    fingerprint: dict[str, object] = {
        "input": {
            "path": str(input_path if isinstance(input_path, RemoteFile) else input_path.resolve()),
            **input_fingerprint(input_path),
        },
        "model": predictor.fingerprint(),
        "options": options,
    }
    if placer is not None:
        fingerprint["position model"] = placer.fingerprint()
    return fingerprint


def evaluate_file(
    data: str | os.PathLike[str],
    *,
    model: str | None = None,
    models_dir: str | os.PathLike[str] | None = None,
    report_dir: str | os.PathLike[str] | None = None,
    text_column: str = "text",
    label_column: str = "label",
    device: DeviceChoice = "auto",
    batch_size: int | None = None,
    precision: PrecisionChoice = "auto",
    record: bool = False,
) -> EvalReport:
    """Accuracy, macro-F1 and per-class scores of a model on a labelled file, with the
    precision ``score`` would use (``auto``) unless told otherwise; ``record`` also
    stores the summary (and the precision) in the model's manifest. ``data`` may be a
    URI (given as a string): it is downloaded to a temporary file, since evaluation
    holds the whole file anyway."""
    source = locate(data)
    models_dir = None if models_dir is None else Path(models_dir)
    report_dir = None if report_dir is None else Path(report_dir)
    if report_dir is not None:  # before the scoring, not after it
        require("evaluate --report-dir (its confusion.png)", "matplotlib")
    if isinstance(source, RemoteFile):
        with fetched(source) as local:
            labelled = read_labelled(local, text_column, label_column)
        labelled.source = source.uri
    else:
        labelled = read_labelled(source, text_column, label_column)
    if not len(labelled):
        raise InputError(f"{source} has no labelled rows to evaluate on")
    predictor = load_predictor(model, models_dir, device, batch_size, precision)
    log.info("evaluating %s (%s) on %s", predictor.bundle.name, predictor.precision, source)
    ids = [label.id for label in predictor.bundle.labels]
    inside = keep_labels(labelled, ids)
    if len(inside) < len(labelled):
        if not len(inside):
            check_labels(labelled, predictor.bundle.labels)  # raises: nothing to evaluate
        log.warning(
            "%d of %d rows have labels this model does not predict; evaluating the other %d",
            len(labelled) - len(inside),
            len(labelled),
            len(inside),
        )
        labelled = inside
    probs = predictor.predict_proba(labelled.texts)
    report = evaluate_probs(labelled.labels, probs, predictor.bundle.labels, source.name)
    if report_dir is not None:
        write_report(report, report_dir)
    if record:
        summary = {**report.summary(), "precision": predictor.precision}
        record_evaluation(predictor.bundle.directory, source.name, summary)
    return report
