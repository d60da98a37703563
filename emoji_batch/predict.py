"""Turn texts into label probabilities in length-sorted, dynamically padded batches.

Texts are cleaned, encoded, sorted by length and cut into batches padded only to a
multiple of ``PAD_MULTIPLE`` of their longest member, so short tweets cost little. The
model runs inside one ``tf.function`` with a shape-agnostic signature: one trace.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from emoji_batch.bundle import Bundle
from emoji_batch.cleaning import clean_texts
from emoji_batch.device import stderr_silenced

PAD_MULTIPLE = 8


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

    def __post_init__(self) -> None:
        import tensorflow as tf

        if self.batch_size < 1:
            raise ValueError("batch size must be at least 1")
        model = self.bundle.model
        spec = tf.TensorSpec([None, None], tf.int32)
        self._forward = tf.function(lambda ids: model(ids, training=False), input_signature=[spec])
        # Trace once now, and keep the C++ notices of the first run out of the caller's log.
        with stderr_silenced(), tf.device(self.device):
            self._forward(tf.ones([1, PAD_MULTIPLE], tf.int32))

    @property
    def n_labels(self) -> int:
        return len(self.bundle.labels)

    def encode(self, cleaned: Sequence[str]) -> list[np.ndarray]:
        return self.bundle.encoder.encode(cleaned, self.bundle.manifest.max_length)

    def predict_cleaned(self, cleaned: Sequence[str]) -> np.ndarray:
        """Probabilities for already-cleaned texts, in input order."""
        import tensorflow as tf

        probs = np.zeros((len(cleaned), self.n_labels), dtype=np.float32)
        if not cleaned:
            return probs
        seqs = self.encode(cleaned)
        order = np.argsort([len(s) for s in seqs], kind="stable")
        with tf.device(self.device):
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                batch = pad_batch([seqs[i] for i in idx])
                probs[idx] = self._forward(tf.constant(batch)).numpy()
        calibration = self.bundle.manifest.calibration
        if calibration is not None:
            probs = adjust_to_prior(probs, calibration["label_prior"], calibration["prior_power"])
        return probs

    def predict_proba(self, texts: Sequence[str | None]) -> np.ndarray:
        """Probabilities for raw texts (cleaned here with the bundle's cleaning)."""
        return self.predict_cleaned(clean_texts(list(texts)))
