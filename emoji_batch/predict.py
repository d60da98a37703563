"""Turn texts into label probabilities in length-sorted, dynamically padded batches.

Texts are cleaned, encoded, sorted by length and cut into batches padded only to a
multiple of ``PAD_MULTIPLE`` of their longest member, so short tweets cost little. The
fp32 model runs inside one ``tf.function`` with a shape-agnostic signature: one trace.
The int8 copy (see :mod:`emoji_batch.quantize`) runs in TensorFlow Lite on the CPU.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from emoji_batch.bundle import Bundle, bundle_file
from emoji_batch.cleaning import clean_texts
from emoji_batch.device import stderr_silenced
from emoji_batch.errors import InputError

PAD_MULTIPLE = 8
PrecisionChoice = Literal["auto", "fp32", "int8"]
Precision = Literal["fp32", "int8"]
PRECISION_HELP = (
    "auto: the bundle's checked int8 copy on the CPU if it has one (see `quantize`), "
    "else fp32; fp32; or int8."
)


def resolve_precision(choice: PrecisionChoice, bundle: Bundle, device: str) -> Precision:
    """``auto`` takes the bundle's checked int8 copy on the CPU, else fp32."""
    has_int8 = "int8" in (bundle.manifest.files or {})
    on_cpu = "CPU" in device.upper()
    if choice == "int8":
        if not on_cpu:
            raise InputError("--precision int8 runs on the CPU only (--device cpu)")
        if not has_int8:
            raise InputError(
                f"model {bundle.name} has no int8 copy; add one with "
                f"`emoji-batch quantize {bundle.directory} --data LABELLED_FILE`"
            )
        return "int8"
    if choice == "auto":
        return "int8" if has_int8 and on_cpu else "fp32"
    return "fp32"


def pad_batch(seqs: Sequence[np.ndarray], multiple: int = PAD_MULTIPLE) -> np.ndarray:
    """Right-pad id sequences with 0 to the longest, rounded up to ``multiple``."""
    longest = max(len(s) for s in seqs)
    width = -(-longest // multiple) * multiple
    out = np.zeros((len(seqs), width), dtype=np.int32)
    for i, seq in enumerate(seqs):
        out[i, : len(seq)] = seq
    return out


def adjust_to_prior(probs: np.ndarray, prior: Sequence[float], power: float) -> np.ndarray:
    """``probs * prior**power``, renormalised: shifts decisions toward (power > 0) or away
    from (power < 0) frequent labels, e.g. to undo part of a balanced class weighting."""
    adjusted = probs * np.power(np.asarray(prior, dtype=np.float32), np.float32(power))
    return adjusted / adjusted.sum(axis=1, keepdims=True)


def top2_margin(probs: np.ndarray) -> np.ndarray:
    """Best minus second-best probability per row (the best alone if there is one label)."""
    if probs.shape[1] < 2:
        return probs[:, 0]
    two = -np.partition(-probs, 1, axis=1)[:, :2]
    return two[:, 0] - two[:, 1]


def top_k(probs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the ``k`` largest probabilities per row, descending."""
    k = min(k, probs.shape[1])
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(probs, order, axis=1)


@dataclass
class Predictor:
    """Probabilities for raw texts from a loaded bundle on one device."""

    bundle: Bundle
    device: str = "/CPU:0"
    batch_size: int = 256
    precision: Precision = "fp32"
    # The int8 flatbuffer to run instead of the bundle's own ``model.int8.tflite``.
    int8_model: bytes | None = None
    # int8 rows whose two best emoji are closer than this are recomputed in fp32; read
    # from the bundle's int8 check unless ``int8_model`` is given.
    fallback_margin: float = 0.0

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch size must be at least 1")
        self.fallback_rows = 0
        self._fp32: Callable[[np.ndarray], np.ndarray] | None = None
        self._run: Callable[[np.ndarray], np.ndarray]
        if self.precision == "int8":
            from emoji_batch.quantize import Int8Runner

            flat = self.int8_model
            if flat is None:
                flat = bundle_file(self.bundle.directory, self.bundle.manifest, "int8").read_bytes()
                int8 = (self.bundle.manifest.precisions or {}).get("int8", {})
                self.fallback_margin = float(int8.get("fallback_margin", 0.0))
            self._run = Int8Runner(flat)
        else:
            self._run = self._fp32_runner()

    def _fp32_runner(self) -> Callable[[np.ndarray], np.ndarray]:
        """The Keras model in one ``tf.function``, built on first use."""
        if self._fp32 is None:
            self._fp32 = self._tf_runner()
        return self._fp32

    def _tf_runner(self) -> Callable[[np.ndarray], np.ndarray]:
        import tensorflow as tf

        model = self.bundle.model
        spec = tf.TensorSpec([None, None], tf.int32)
        self._forward = tf.function(lambda ids: model(ids, training=False), input_signature=[spec])
        # Trace once now, and keep the C++ notices of the first run out of the caller's log.
        with stderr_silenced(), tf.device(self.device):
            self._forward(tf.ones([1, PAD_MULTIPLE], tf.int32))

        def run(batch: np.ndarray) -> np.ndarray:
            with tf.device(self.device):
                return self._forward(tf.constant(batch)).numpy()

        return run

    @property
    def traces(self) -> int:
        """How many graphs the fp32 path has traced: one, whatever the batch shapes."""
        return self._forward.experimental_get_tracing_count()

    @property
    def n_labels(self) -> int:
        return len(self.bundle.labels)

    def encode(self, cleaned: Sequence[str]) -> list[np.ndarray]:
        return self.bundle.encoder.encode(cleaned, self.bundle.manifest.max_length)

    def predict_cleaned(self, cleaned: Sequence[str]) -> np.ndarray:
        """Probabilities for already-cleaned texts, in input order."""
        return self.predict_encoded(self.encode(cleaned))

    def predict_encoded(self, seqs: Sequence[np.ndarray]) -> np.ndarray:
        """Probabilities for encoded texts (see :meth:`encode`), in input order."""
        probs = np.zeros((len(seqs), self.n_labels), dtype=np.float32)
        if not seqs:
            return probs
        self._run_batches(self._run, seqs, probs)
        probs = self._calibrated(probs)
        if self.precision == "int8" and self.fallback_margin > 0:
            # Near-ties between the two best emoji are where int8 rounding can swap them:
            # those rows are recomputed in fp32, so they are exactly what fp32 gives.
            close = np.flatnonzero(top2_margin(probs) < self.fallback_margin)
            if len(close):
                exact = np.zeros((len(close), self.n_labels), dtype=np.float32)
                self._run_batches(self._fp32_runner(), [seqs[i] for i in close], exact)
                probs[close] = self._calibrated(exact)
            self.fallback_rows += len(close)
        return probs

    def _run_batches(
        self, run: Callable[[np.ndarray], np.ndarray], seqs: Sequence[np.ndarray], out: np.ndarray
    ) -> None:
        order = np.argsort([len(s) for s in seqs], kind="stable")
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            out[idx] = run(pad_batch([seqs[i] for i in idx]))

    def _calibrated(self, probs: np.ndarray) -> np.ndarray:
        calibration = self.bundle.manifest.calibration
        if calibration is None:
            return probs
        return adjust_to_prior(probs, calibration["label_prior"], calibration["prior_power"])

    def predict_proba(self, texts: Sequence[str | None]) -> np.ndarray:
        """Probabilities for raw texts (cleaned here with the bundle's cleaning)."""
        return self.predict_cleaned(clean_texts(list(texts)))
