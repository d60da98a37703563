"""Score whole files: chunks -> clean -> predict -> top-k columns -> OUTPUT.

This is the library behind ``emoji-batch score``: the chunk pipeline every engine shares
(:func:`output_schema`, :func:`prepare_chunk`, :func:`finish_chunk`, :func:`score_table`)
and the local engine, :func:`score_file`, which writes through
:class:`~emoji_batch.output.OutputTarget`.
"""

import contextlib
import itertools
import json
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from emoji_batch import logs
from emoji_batch.errors import InputError
from emoji_batch.fileio import (
    INVALID_UTF8,
    ChunkReader,
    detect_format,
    find_column,
    is_json_type,
    is_text_type,
)
from emoji_batch.loading import AnyPredictor, load_predictor
from emoji_batch.options import ScoreOptions
from emoji_batch.output import OutputTarget
from emoji_batch.position import PositionModel, insert_emoji, load_position_model
from emoji_batch.predictor import top_k
from emoji_batch.remote import Location, RemoteFile, locate
from emoji_batch.resume import Journal, input_fingerprint


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
        """The one line a run ends with (every engine's: see :meth:`rate`)."""
        resumed = f", {self.resumed_chunks} chunks resumed" if self.resumed_chunks else ""
        return (
            f"scored {self.rows} rows ({self.error_rows} not scorable{resumed}) in "
            f"{self.seconds:.1f} s{self.rate()} with {self.model} "
            f"({self.precision}) on {self.device} -> {self.output}"
        )

    def rate(self) -> str:
        """The rate as the line shows it: `` (12,345 rows/s)``."""
        return f" ({self.rows_per_second:,.0f} rows/s)"

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
    emoji = np.array([label.emoji for label in predictor.labels], dtype=object)
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


@dataclass
class _Tally:
    """Rows and unscorable rows written so far."""

    rows: int = 0
    errors: int = 0

    def add(self, table: pa.Table) -> None:
        self.rows += table.num_rows
        self.errors += table.num_rows - table.column(ERROR_COLUMN).null_count


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
    target: OutputTarget,
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
    target.check_writable(schema)
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
    target = OutputTarget.resolve(
        input_path, output_path, in_fmt, options.output_format, force=force, resume=resume
    )
    reader = ChunkReader(input_path, in_fmt, options.chunk_rows)
    try:
        models = _load_models(reader, target, options, predictor)
        predictor = models.predictor
        logs.emit(
            "start",
            f"model {predictor.name} ({predictor.precision}) on {predictor.device}",
            model=predictor.name,
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

            with target.locked():
                if resume:
                    journal = Journal(
                        target.path, _run_fingerprint(input_path, models, options, target)
                    )
                    resumed = journal.start()
                    chunks = closing.enter_context(contextlib.closing(iter(reader)))
                    _skip_finished(chunks, resumed, bar)
                    target.write_through(journal, resumed, models.schema, run(chunks), tally.add)
                else:
                    target.write(models.schema, run(reader), tally.add)
    finally:
        reader.close()
        target.close()
    return ScoreSummary(
        tally.rows,
        tally.errors,
        time.perf_counter() - started,
        target.name,
        predictor.name,
        predictor.device,
        predictor.precision,
        resumed,
        predictor.fallback_rows,
    )


def _skip_finished(chunks: Iterator[pa.Table], finished: int, bar: tqdm) -> None:
    """Read past the chunks a killed run already scored into the journal."""
    if finished:
        logs.emit("resume", f"resuming after {finished} finished chunks", chunks=finished)
        bar.update(sum(c.num_rows for c in itertools.islice(chunks, finished)))


def _run_fingerprint(
    input_path: Location, models: _Models, options: ScoreOptions, target: OutputTarget
) -> dict[str, object]:
    """What a resumed run must share with the run it continues: input, options and every
    bundle the output depends on (the model; with --insert, the position model too)."""
    predictor = models.predictor
    fingerprint: dict[str, object] = {
        "input": {
            "path": str(input_path if isinstance(input_path, RemoteFile) else input_path.resolve()),
            **input_fingerprint(input_path),
        },
        "model": predictor.fingerprint(),
        "options": {
            "text_column": models.text_column,
            "top_k": models.k,
            "insert": options.insert,
            "chunk_rows": options.chunk_rows,
            "batch_size": predictor.batch_size,
            "precision": predictor.precision,
            "output_format": target.format,
        },
    }
    if models.placer is not None:
        fingerprint["position model"] = models.placer.fingerprint()
    return fingerprint
