"""Reduced-precision copies of a bundle's model for fast CPU scoring, kept only if they
agree with fp32: int8 (TensorFlow Lite) and bfloat16 (Keras mixed precision).

TensorFlow Lite's dynamic-range quantization stores weight matrices as int8 and runs
the matrix products in int8 (XNNPACK, VNNI on these CPUs); activations stay float
between layers. It would also store the embedding tables as int8 with one scale per
table, which alone moves 2-3% of BERT's top-1 predictions, so those tables are put
back to float32 after conversion. Rows whose two best emoji are nearly tied are
recomputed in fp32. bfloat16 runs the Keras model with bfloat16 arithmetic (AVX-512
BF16 through oneDNN) and float32 weights and output. Each is checked on labelled data
against the fp32 model before the bundle records it.
"""

import logging
import os
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emoji_batch.bundle import Bundle, load_bundle, write_manifest
from emoji_batch.cleaning import clean_texts
from emoji_batch.dataset import check_labels, keep_labels, read_labelled
from emoji_batch.device import stderr_silenced, tensorflow
from emoji_batch.errors import EmojiBatchError, ModelError
from emoji_batch.evaluation import evaluate_probs
from emoji_batch.fileio import atomic_output
from emoji_batch.predict import REDUCED, Precision, Predictor, top2_margin

log = logging.getLogger(__name__)

INT8_FILE = "model.int8.tflite"
# With its fp32 fallback, the int8 copy must pick the fp32 top-1 emoji this often
# (the fallback margin is fitted for TARGET_AGREEMENT on the check data, leaving room
# for new data), keep macro-F1 this close, and fall back on at most this share of rows.
MIN_AGREEMENT = 0.99
TARGET_AGREEMENT = 0.995
MAX_F1_CHANGE = 0.3
MAX_FALLBACK_SHARE = 0.25


class QuantizationRejected(EmojiBatchError):
    """The int8 copy is not close enough to the fp32 model; nothing was written."""


def _threads() -> int:
    return len(os.sched_getaffinity(0))


class Int8Runner:
    """Runs a TensorFlow Lite model on int32 id batches, resizing its input per shape."""

    def __init__(self, model_content: bytes, threads: int | None = None) -> None:
        tf = tensorflow()
        with warnings.catch_warnings(), stderr_silenced():
            # tf.lite.Interpreter warns that it moves to the ai-edge-litert package; the
            # XNNPACK delegate announces itself on stderr.
            warnings.simplefilter("ignore")
            self._interpreter = tf.lite.Interpreter(
                model_content=model_content, num_threads=threads or _threads()
            )
            self._input = self._interpreter.get_input_details()[0]["index"]
            self._output = self._interpreter.get_output_details()[0]["index"]
            self._shape: tuple[int, ...] | None = None
            self(np.ones((1, 8), dtype=np.int32))

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if batch.shape != self._shape:  # a handful of widths per chunk: batches are length-sorted
            self._interpreter.resize_tensor_input(self._input, batch.shape)
            self._interpreter.allocate_tensors()
            self._shape = batch.shape
        self._interpreter.set_tensor(self._input, batch)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output).copy()


def convert_int8(model: Any) -> bytes:
    """The Keras ``model`` as a dynamic-range int8 TensorFlow Lite flatbuffer."""
    tf = tensorflow()
    forward = tf.function(
        lambda ids: model(ids, training=False),
        input_signature=[tf.TensorSpec([None, None], tf.int32)],
    )
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [forward.get_concrete_function()], model
    )
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    try:
        with stderr_silenced():
            flat = converter.convert()
    except Exception as exc:  # the converter raises its own, undocumented error types
        raise ModelError(
            f"{model.name} cannot be converted to TensorFlow Lite built-in ops (recurrent "
            f"layers cannot); it scores in fp32 ({type(exc).__name__})"
        ) from exc
    tables = [w.numpy() for w in model.weights if w.shape.rank == 2]
    tables += [layer.full_table().numpy() for layer in model.layers if hasattr(layer, "full_table")]
    return _float_embedding_tables(flat, tables)


def _float_embedding_tables(flat: bytes, candidates: list[np.ndarray]) -> bytes:
    """Replace each int8 table read by GATHER -> DEQUANTIZE with its float32 original.

    The original is the ``candidates`` array of the same shape whose per-tensor
    quantization gives the stored int8 values; the DEQUANTIZE op is then dropped.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flat))
    graph = model.subgraphs[0]

    def code(op: Any) -> int:
        opcode = model.operatorCodes[op.opcodeIndex]
        return max(opcode.builtinCode, opcode.deprecatedBuiltinCode)

    producer = {out: op for op in graph.operators for out in op.outputs}
    renamed: dict[int, int] = {}
    dropped = []
    for op in graph.operators:
        gather = producer.get(op.inputs[0])
        if code(op) != schema.BuiltinOperator.DEQUANTIZE or gather is None:
            continue
        params = graph.tensors[gather.inputs[0]]
        if code(gather) != schema.BuiltinOperator.GATHER or params.type != schema.TensorType.INT8:
            continue
        stored = np.frombuffer(bytes(model.buffers[params.buffer].data), dtype=np.int8)
        stored = stored.reshape(params.shape)
        scale = float(params.quantization.scale[0])
        original = next(
            (
                c
                for c in candidates
                if c.shape == stored.shape
                and np.abs(np.round(c / scale) - stored).max(initial=0) <= 1
            ),
            None,
        )
        if original is None:
            raise ModelError("int8 export: cannot find the float table of an embedding lookup")
        data = np.ascontiguousarray(original, dtype="<f4").view(np.uint8).ravel()
        model.buffers[params.buffer].data = data
        for tensor in (params, graph.tensors[gather.outputs[0]]):
            tensor.type = schema.TensorType.FLOAT32
            tensor.quantization = None
        renamed[op.outputs[0]] = gather.outputs[0]
        dropped.append(op)
    graph.operators = [op for op in graph.operators if all(op is not d for d in dropped)]
    for op in graph.operators:
        op.inputs = np.array([renamed.get(int(i), int(i)) for i in op.inputs], dtype=np.int32)
    graph.outputs = np.array([renamed.get(int(i), int(i)) for i in graph.outputs], dtype=np.int32)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


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
    encoded = bundle.encoder.encode(clean_texts(inside.texts), bundle.manifest.max_length)
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
) -> QuantizeReport:
    """Score the check data in ``precision``, fit the fallback margin, compare with fp32."""
    seqs, exact = reference.encoded, reference.probs
    reduced = Predictor(bundle, batch_size=batch_size, precision=precision, int8_model=int8_model)
    reduced.fallback_margin = 0.0
    reduced.predict_encoded(seqs)  # the first calls set up kernels for every width
    rough = reduced.predict_encoded(seqs)
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
    bundle = load_bundle(directory)
    manifest = bundle.manifest
    reference = fp32_reference(bundle, data, text_column, label_column, batch_size)
    reports, refusals = [], []
    for precision in precisions:
        flat = None
        try:
            if precision == "int8":
                flat = convert_int8(bundle.model)
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
                tmp.chmod(0o644)
            manifest.files = {**(manifest.files or {}), "int8": INT8_FILE}
        manifest.precisions = {**(manifest.precisions or {}), precision: asdict(report)}
        write_manifest(directory, manifest)
        reports.append(report)
    for refusal in refusals:
        log.warning("%s", refusal)
    if not reports:
        raise QuantizationRejected("; ".join(refusals))
    return reports
