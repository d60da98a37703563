"""Score whole files: chunks -> clean -> predict -> top-k columns -> atomic writer.

This is the library behind ``emoji-batch score`` and ``emoji-batch evaluate``.
"""

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from emoji_batch.bundle import Bundle, load_bundle, resolve_model
from emoji_batch.cleaning import clean_texts
from emoji_batch.dataset import check_labels, read_labelled
from emoji_batch.device import DeviceChoice, resolve_device
from emoji_batch.errors import InputError
from emoji_batch.evaluation import EvalReport, evaluate_probs, write_report
from emoji_batch.fileio import ChunkReader, TableWriter, atomic_output, detect_format, find_column
from emoji_batch.predict import Predictor, top_k

log = logging.getLogger(__name__)

ERROR_COLUMN = "score_error"
DEFAULT_CHUNK_ROWS = 50_000


@dataclass
class ScoreSummary:
    rows: int
    error_rows: int
    seconds: float
    output: Path
    model: str
    device: str

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")

    def line(self) -> str:
        return (
            f"scored {self.rows} rows ({self.error_rows} without text) in {self.seconds:.1f} s "
            f"({self.rows_per_second:,.0f} rows/s) with {self.model} on {self.device} "
            f"-> {self.output}"
        )


def default_output(input_path: Path) -> Path:
    """``tweets.csv`` -> ``tweets.scored.csv`` beside the input."""
    return input_path.with_name(f"{input_path.stem}.scored{input_path.suffix}")


def output_schema(input_schema: pa.Schema, k: int) -> pa.Schema:
    added = [pa.field(f"emoji_{i}", pa.string()) for i in range(1, k + 1)]
    added += [pa.field(f"prob_{i}", pa.float32()) for i in range(1, k + 1)]
    added.append(pa.field(ERROR_COLUMN, pa.string()))
    clash = {f.name for f in added} & set(input_schema.names)
    if clash:
        raise InputError(f"input already has output column(s) {sorted(clash)}; rename them first")
    return pa.schema([*input_schema, *added])


def score_table(table: pa.Table, text_column: str, predictor: Predictor, k: int) -> pa.Table:
    """Append top-k emoji/probability columns and ``score_error`` to one chunk."""
    raw = table.column(text_column).to_pylist()
    cleaned = clean_texts(raw)
    errors = [
        "missing text" if not isinstance(r, str) else ("empty text" if not c else None)
        for r, c in zip(raw, cleaned, strict=True)
    ]
    ok = np.array([e is None for e in errors], dtype=bool)
    probs = predictor.predict_cleaned([c for c, good in zip(cleaned, ok, strict=True) if good])
    ids, values = top_k(probs, k)
    emoji = np.array([label.emoji for label in predictor.bundle.labels], dtype=object)
    k = ids.shape[1]
    for i in range(k):
        col_emoji = np.full(len(raw), None, dtype=object)
        col_emoji[ok] = emoji[ids[:, i]]
        table = table.append_column(f"emoji_{i + 1}", pa.array(col_emoji, type=pa.string()))
    for i in range(k):
        col_prob = np.zeros(len(raw), dtype=np.float32)
        col_prob[ok] = values[:, i]
        table = table.append_column(
            f"prob_{i + 1}", pa.array(col_prob, mask=~ok, type=pa.float32())
        )
    return table.append_column(ERROR_COLUMN, pa.array(errors, type=pa.string()))


def load_predictor(
    model: str | None, models_dir: Path | None, device: DeviceChoice, batch_size: int
) -> Predictor:
    where = resolve_device(device)  # imports TensorFlow quietly, before the model needs it
    bundle: Bundle = load_bundle(resolve_model(model, models_dir))
    return Predictor(bundle, device=where, batch_size=batch_size)


def score_file(
    input_path: Path,
    output_path: Path | None = None,
    *,
    model: str | None = None,
    models_dir: Path | None = None,
    text_column: str = "text",
    input_format: str | None = None,
    output_format: str | None = None,
    top_k_labels: int = 3,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    batch_size: int = 256,
    device: DeviceChoice = "auto",
    force: bool = False,
    progress: bool | None = None,
) -> ScoreSummary:
    """Score ``input_path`` chunk by chunk into ``output_path`` (written atomically).

    ``progress=None`` shows a bar only on a terminal; False never shows one.
    """
    started = time.perf_counter()
    if top_k_labels < 1:
        raise InputError("--top-k must be at least 1")
    in_fmt = detect_format(input_path, input_format)
    output_path = output_path or default_output(input_path)
    out_fmt = detect_format(output_path, output_format)
    if output_path.exists() and not force:
        raise InputError(f"output {output_path} already exists; pass --force to overwrite it")
    reader = ChunkReader(input_path, in_fmt, chunk_rows)
    text_col = find_column(reader.schema.names, text_column, "text")
    predictor = load_predictor(model, models_dir, device, batch_size)
    k = min(top_k_labels, predictor.n_labels)
    schema = output_schema(reader.schema, k)
    log.info("model %s on %s", predictor.bundle.name, predictor.device)

    rows = errors = 0
    bar = tqdm(
        total=reader.total_rows, unit="rows", disable=None if progress is None else not progress
    )
    with atomic_output(output_path, force) as tmp:
        writer = TableWriter(tmp, out_fmt, schema)
        try:
            for chunk in reader:
                scored = score_table(chunk, text_col, predictor, k)
                writer.write(scored)
                rows += chunk.num_rows
                errors += chunk.num_rows - scored.column(ERROR_COLUMN).null_count
                bar.update(chunk.num_rows)
        finally:
            writer.close()
            bar.close()
    return ScoreSummary(
        rows,
        errors,
        time.perf_counter() - started,
        output_path,
        predictor.bundle.name,
        predictor.device,
    )


def evaluate_file(
    data: Path,
    *,
    model: str | None = None,
    models_dir: Path | None = None,
    report_dir: Path | None = None,
    text_column: str = "text",
    label_column: str = "label",
    device: DeviceChoice = "auto",
    batch_size: int = 256,
) -> EvalReport:
    """Accuracy, macro-F1 and per-class scores of a model on a labelled file."""
    labelled = read_labelled(data, text_column, label_column)
    predictor = load_predictor(model, models_dir, device, batch_size)
    check_labels(labelled, predictor.bundle.labels)
    probs = predictor.predict_proba(labelled.texts)
    report = evaluate_probs(labelled.labels, probs, predictor.bundle.labels, data.name)
    if report_dir is not None:
        write_report(report, report_dir)
    return report
