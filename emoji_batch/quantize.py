"""Reduced-precision copies of a bundle's model for fast CPU scoring, kept only if they
agree with fp32: int8 (TensorFlow Lite) and bfloat16 (Keras mixed precision).

TensorFlow Lite's dynamic-range quantization stores weight matrices as int8 and runs the
matrix products in int8 (XNNPACK); activations stay float between layers. The rules:

- The model is converted at fixed shapes, one signature per width (see
  :func:`int8_widths`) at ``INT8_ROWS`` rows, sharing one copy of the weights: with the
  batch and width unknown, the converter computes every reshape's shape at run time and
  XNNPACK leaves those parts of the graph to slower kernels.
- Embedding tables stay float32: the converter would store them as int8 with one scale
  per table, which moves top-1 predictions on its own. A vocabulary-sized table is left
  out of the file and read from the bundle's weights, so it is not stored twice.
- Rows whose two best emoji are nearly tied are recomputed in fp32 (``fine_tuned_bert``'s
  in ONNX Runtime, :mod:`emoji_batch.bert_onnx`, so the int8 path never imports
  TensorFlow). LiteRT is the int8 runtime rather than ONNX Runtime's dynamic int8,
  because LiteRT quantizes each row of a layer's input on its own where ONNX Runtime
  uses one scale per call, which agrees less often with fp32's top-1 emoji.
- bfloat16 runs the Keras model with bfloat16 arithmetic (AVX-512 BF16 through oneDNN)
  and float32 weights and output.
- Each is checked on labelled data against the fp32 model before the bundle records it.

The measurements behind these choices are in docs/benchmarks.md (``make bench``,
``benchmarks/int8_shapes.py``).
"""

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emoji_batch.bundle import Bundle, load_bundle, model_weights, write_manifest
from emoji_batch.cleaning import clean_texts
from emoji_batch.dataset import check_labels, keep_labels, read_labelled
from emoji_batch.device import REPORTED_CPU_FLAGS, cpu_flags, stderr_silenced, tensorflow
from emoji_batch.errors import ModelError, QuantizationRejected
from emoji_batch.evaluation import evaluate_probs
from emoji_batch.extras import KERAS, require
from emoji_batch.fileio import atomic_output
from emoji_batch.predictor import REDUCED, Precision, Predictor, top2_margin
from emoji_batch.runtimes import IDS, WIDTH_SIGNATURE
from emoji_batch.tflite_edit import float_embedding_tables

log = logging.getLogger(__name__)

INT8_FILE = "model.int8.tflite"
# With its fp32 fallback, the int8 copy must pick the fp32 top-1 emoji this often
# (the fallback margin is fitted for TARGET_AGREEMENT on the check data, leaving room
# for new data), keep macro-F1 this close, and fall back on at most this share of rows.
MIN_AGREEMENT = 0.99
TARGET_AGREEMENT = 0.995
MAX_F1_CHANGE = 0.3
MAX_FALLBACK_SHARE = 0.25
# Tables with at least this many entries (BERT's word embeddings: 30,522 x 384) are not
# copied into the int8 file; they are read from the bundle's weights at run time.
EXTERNAL_TABLE_SIZE = 1_000_000
# int8 models run at fixed shapes: INT8_ROWS rows, and a signature for each of these
# widths under the bundle's max length and for the max length itself. Each signature
# adds to the file, so the widths cover what most tweets need and no more;
# benchmarks/int8_shapes.py measures the choice (docs/benchmarks.md).
INT8_ROWS = 16
INT8_WIDTHS = (12, 16, 20, 24, 28, 32)


def int8_widths(max_length: int) -> list[int]:
    """The token widths a bundle's int8 model gets a fixed-shape signature for (a batch
    is padded up to the next one)."""
    return sorted({width for width in INT8_WIDTHS if width < max_length} | {max_length})


def convert_int8(model: Any, widths: list[int] | None, rows: int = INT8_ROWS) -> bytes:
    """The Keras ``model`` as a dynamic-range int8 TensorFlow Lite flatbuffer, with one
    signature per width in ``widths`` at ``rows`` rows (see
    :class:`~emoji_batch.runtimes.Int8Runtime`); the signatures share the weights.
    ``widths`` None writes one signature of any shape instead, as earlier versions did
    (``benchmarks/int8_shapes.py`` compares them)."""
    tf = tensorflow()
    shapes = [[None, None]] if widths is None else [[rows, width] for width in widths]
    functions = []
    for shape in shapes:

        def forward(ids: Any) -> Any:
            return model(ids, training=False)

        if shape[1] is not None:
            forward.__name__ = f"{WIDTH_SIGNATURE}{shape[1]}"  # the signature's key
        spec = tf.TensorSpec(shape, tf.int32, name=IDS)
        functions.append(tf.function(forward, input_signature=[spec]).get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions(functions, model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    try:
        with stderr_silenced():
            flat = converter.convert()
    except Exception as exc:  # the converter raises its own, undocumented error types
        raise ModelError(
            f"{model.name} cannot be converted to TensorFlow Lite built-in ops (recurrent "
            f"layers cannot); it scores in fp32 ({type(exc).__name__})"
        ) from exc
    tables = {name: w for name, w in model_weights(model).items() if w.ndim == 2}
    tables |= {
        f"{layer.name}:full_table": layer.full_table().numpy()
        for layer in model.layers
        if hasattr(layer, "full_table")
    }
    return float_embedding_tables(flat, tables, EXTERNAL_TABLE_SIZE)


@dataclass
class QuantizeReport:
    """How a reduced precision, with its fp32 fallback on near-ties, compares with fp32."""

    precision: str
    dataset: str
    rows: int
    fallback_margin: float
    fallback_share: float
    top1_agreement: float
    agreement_without_fallback: float
    fp32_macro_f1: float
    macro_f1: float
    fp32_tweets_per_second: float
    tweets_per_second: float
    # The CPU the speeds and decimals are from (``score --precision auto`` weighs them on
    # another CPU by its own flags: see predict.resolve_precision).
    cpu_flags: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return (
            self.top1_agreement >= MIN_AGREEMENT
            and abs(self.macro_f1 - self.fp32_macro_f1) <= MAX_F1_CHANGE
            and self.fallback_share <= MAX_FALLBACK_SHARE
        )

    def line(self) -> str:
        return (
            f"{self.precision} vs fp32 on {self.dataset} ({self.rows} rows): top-1 agreement "
            f"{100 * self.top1_agreement:.2f}% ({100 * self.agreement_without_fallback:.2f}% "
            f"before {100 * self.fallback_share:.1f}% of rows, with margins under "
            f"{self.fallback_margin:.4f}, fell back to fp32), macro-F1 "
            f"{self.macro_f1:.2f} vs {self.fp32_macro_f1:.2f}, "
            f"{self.tweets_per_second:,.0f} vs {self.fp32_tweets_per_second:,.0f} "
            "tweets/s (model only)"
        )


def fallback_margin(fp32: np.ndarray, reduced: np.ndarray, target: float) -> float:
    """The smallest top-2 margin below which reduced-precision rows must be redone in
    fp32 for the top-1 emoji to agree with fp32 on at least ``target`` of the rows."""
    wrong = fp32.argmax(axis=1) != reduced.argmax(axis=1)
    disagree = np.sort(top2_margin(reduced)[wrong])[::-1]
    allowed = int(np.floor((1 - target) * len(fp32)))
    if len(disagree) <= allowed:
        return 0.0
    return float(np.nextafter(disagree[allowed], np.float32(1)))


@dataclass
class Fp32Reference:
    """The check data, encoded once, with the fp32 model's probabilities and speed on it."""

    dataset: str
    labels: np.ndarray
    encoded: list[np.ndarray]
    probs: np.ndarray
    tweets_per_second: float


def fp32_reference(
    bundle: Bundle,
    data: Path,
    text_column: str = "text",
    label_column: str = "label",
    batch_size: int | None = None,
) -> Fp32Reference:
    """Score labelled ``data`` with the fp32 model: what each precision is checked against."""
    labelled = read_labelled(data, text_column, label_column)
    inside = keep_labels(labelled, [label.id for label in bundle.labels])
    if not len(inside):
        check_labels(labelled, bundle.labels)  # raises: nothing to compare on
    cleaned = clean_texts(inside.texts, bundle.manifest.cleaning_version)
    encoded = bundle.encoder.encode(cleaned, bundle.manifest.max_length)
    fp32 = Predictor(bundle, batch_size=batch_size)
    fp32.predict_encoded(encoded)  # the first calls set up kernels for every width
    started = time.perf_counter()
    probs = fp32.predict_encoded(encoded)
    speed = len(encoded) / (time.perf_counter() - started)
    return Fp32Reference(data.name, inside.labels, encoded, probs, speed)


def compare_precision(
    bundle: Bundle,
    precision: Precision,
    reference: Fp32Reference,
    batch_size: int | None = None,
    int8_model: bytes | None = None,
    margin: float | None = None,
) -> QuantizeReport:
    """Score the check data in ``precision`` and compare with fp32, with the fallback
    ``margin`` given (a recorded one) or else fitted for ``TARGET_AGREEMENT``."""
    seqs, exact = reference.encoded, reference.probs
    reduced = Predictor(bundle, batch_size=batch_size, precision=precision, int8_model=int8_model)
    reduced.fallback_margin = 0.0
    reduced.predict_encoded(seqs)  # the first calls set up kernels for every width
    rough = reduced.predict_encoded(seqs)
    if margin is None:
        margin = fallback_margin(exact, rough, TARGET_AGREEMENT)
    reduced.fallback_margin = margin
    started = time.perf_counter()
    mixed = reduced.predict_encoded(seqs)
    seconds = time.perf_counter() - started

    def f1(probs: np.ndarray) -> float:
        report = evaluate_probs(reference.labels, probs, bundle.labels, reference.dataset)
        return round(100 * report.macro_f1, 2)

    def agreement(probs: np.ndarray) -> float:
        return round(float(np.mean(exact.argmax(axis=1) == probs.argmax(axis=1))), 4)

    return QuantizeReport(
        precision=precision,
        dataset=reference.dataset,
        rows=len(seqs),
        fallback_margin=margin,
        fallback_share=round(float(np.mean(top2_margin(rough) < margin)), 4),
        top1_agreement=agreement(mixed),
        agreement_without_fallback=agreement(rough),
        fp32_macro_f1=f1(exact),
        macro_f1=f1(mixed),
        fp32_tweets_per_second=round(reference.tweets_per_second, 1),
        tweets_per_second=round(len(seqs) / seconds, 1),
        cpu_flags=sorted(cpu_flags() & REPORTED_CPU_FLAGS),
    )


def quantize_bundle(
    directory: Path,
    data: Path,
    *,
    precisions: tuple[Precision, ...] = REDUCED,
    text_column: str = "text",
    label_column: str = "label",
    batch_size: int | None = None,
) -> list[QuantizeReport]:
    """Check each reduced precision on ``data`` (labelled, e.g. the validation file; not
    the test split) and record those that pass in the bundle's manifest.

    int8 also writes ``model.int8.tflite``; bf16 needs no file (the model is rebuilt in
    bfloat16 at load). ``score --precision auto`` takes the fastest recorded one on the
    CPU. A precision that fails its check writes nothing; if none passes, this raises.
    """
    require("quantize", *KERAS)
    bundle = load_bundle(directory)
    manifest = bundle.manifest
    reference = fp32_reference(bundle, data, text_column, label_column, batch_size)
    reports, refusals = [], []
    for precision in precisions:
        flat = None
        try:
            if precision == "int8":
                flat = convert_int8(bundle.model, int8_widths(manifest.max_length))
            report = compare_precision(bundle, precision, reference, batch_size, flat)
        except ModelError as exc:
            refusals.append(f"{precision}: {exc}")
            continue
        if not report.accepted:
            refusals.append(
                f"{report.line()}; needs agreement >= {100 * MIN_AGREEMENT:.0f}%, macro-F1 "
                f"within {MAX_F1_CHANGE} and at most {100 * MAX_FALLBACK_SHARE:.0f}% "
                "fallback: not recorded"
            )
            continue
        if flat is not None:
            with atomic_output(directory / INT8_FILE, force=True) as tmp:
                tmp.write_bytes(flat)
            manifest.files = {**(manifest.files or {}), "int8": INT8_FILE}
        manifest.precisions = {**(manifest.precisions or {}), precision: asdict(report)}
        write_manifest(directory, manifest)
        reports.append(report)
    for refusal in refusals:
        log.warning("%s", refusal)
    if not reports:
        raise QuantizationRejected("; ".join(refusals))
    return reports


def recheck_precisions(
    directory: Path,
    data: Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    batch_size: int | None = None,
) -> list[QuantizeReport]:
    """Re-run each recorded precision's acceptance check on this machine, with the
    recorded fallback margin (what ``score`` uses), writing nothing.

    bf16 and int8 arithmetic differ by CPU (AVX-512 BF16/AMX or emulation, VNNI or AVX2),
    so the decimals a bundle recorded on one CPU are not reproducible on another; the
    rule (agreement, macro-F1 change, fallback share) is, and that is what this checks.
    """
    require("quantize --recheck", *KERAS)
    bundle = load_bundle(directory)
    reference = fp32_reference(bundle, data, text_column, label_column, batch_size)
    return [
        compare_precision(
            bundle, precision, reference, batch_size, margin=float(check["fallback_margin"])
        )
        for precision, check in (bundle.manifest.precisions or {}).items()
    ]
