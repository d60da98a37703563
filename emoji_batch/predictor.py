"""Turn texts into label probabilities in length-sorted, dynamically padded batches.

Texts are cleaned, encoded, sorted by length and cut into batches padded only to their
longest member, so short tweets cost little (widths are not rounded up to fewer distinct
shapes: padding costs more than the extra shapes save). Each precision's model runs in a runtime of
:mod:`emoji_batch.runtimes`; the int8 copy that :mod:`emoji_batch.quantize` builds runs
in the LiteRT interpreter on the CPU, and a family may run its fp32 model without
TensorFlow (see :mod:`emoji_batch.families`).
"""

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from emoji_batch import bert_onnx
from emoji_batch.bundle import Bundle, bundle_digest, bundle_file, rebuild_model
from emoji_batch.cleaning import clean_texts
from emoji_batch.device import native_bf16
from emoji_batch.errors import InputError, ModelError
from emoji_batch.extras import KERAS, require
from emoji_batch.families import batch_help
from emoji_batch.labels import Label
from emoji_batch.runtimes import Int8Runtime, KerasRuntime, Runtime

# The family's default batch size is in emoji_batch.families; the CLI's help lists them.
BATCH_HELP = batch_help()
PrecisionChoice = Literal["auto", "fp32", "int8", "bf16"]
Precision = Literal["fp32", "int8", "bf16"]
REDUCED: tuple[Precision, ...] = ("int8", "bf16")
PRECISION_HELP = (
    "auto: the fastest precision the bundle's check accepted (see `quantize`) on the CPU "
    "(bf16 only where the CPU has AVX-512 BF16 or AMX), else fp32; or fp32, int8, bf16."
)


def resolve_precision(choice: PrecisionChoice, bundle: Bundle, device: str) -> Precision:
    """``auto`` takes the fastest reduced precision the bundle's check accepted, on the
    CPU; asking for one the bundle was not checked for is an error."""
    checked = bundle.manifest.precisions or {}
    on_cpu = "CPU" in device.upper()
    if choice in REDUCED:
        if not on_cpu:
            raise InputError(f"--precision {choice} runs on the CPU only (--device cpu)")
        if choice not in checked:
            raise InputError(
                f"model {bundle.name} has no checked {choice} precision; add it with "
                f"`emoji-batch quantize {bundle.directory} --data LABELLED_FILE`"
            )
        return choice  # type: ignore[return-value]
    if choice == "auto" and on_cpu:
        # The recorded speeds are those of the CPU that ran `quantize`; bf16 is only fast
        # where this CPU does it in hardware. And they are the model's alone: a model whose
        # fp32 runs in NumPy stays there, where bf16 would load TensorFlow and Keras for a
        # model whose cost is encoding text, not multiplying (slower as a whole process).
        faster = [
            (check["tweets_per_second"], name)
            for name, check in checked.items()
            if name in REDUCED
            and check["tweets_per_second"] > check["fp32_tweets_per_second"]
            and (name != "bf16" or (native_bf16() and not numpy_fp32(bundle)))
        ]
        if faster:
            return max(faster)[1]
    return "fp32"


def numpy_fp32(bundle: Bundle) -> bool:
    """Whether the bundle's fp32 model runs in NumPy on the CPU (a linear n-gram model)."""
    return bundle.family.numpy_fp32(bundle.manifest.config)


def pad_batch(seqs: Sequence[np.ndarray]) -> np.ndarray:
    """Right-pad id sequences with 0 to the longest."""
    out = np.zeros((len(seqs), max(len(s) for s in seqs)), dtype=np.int32)
    for i, seq in enumerate(seqs):
        out[i, : len(seq)] = seq
    return out


# Powers of the training label prior tried when fitting a calibration (see adjust_to_prior).
PRIOR_POWERS = tuple(round(p, 1) for p in np.arange(-1.0, 1.01, 0.1))


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
    # None: the family's default (emoji_batch.families).
    batch_size: int | None = None
    precision: Precision = "fp32"
    # The int8 flatbuffer to run instead of the bundle's own ``model.int8.tflite``.
    int8_model: bytes | None = None
    # Reduced-precision rows whose two best emoji are closer than this are recomputed in
    # fp32; read from the bundle's check for the precision unless ``int8_model`` is given.
    fallback_margin: float = 0.0

    def __post_init__(self) -> None:
        if self.batch_size is None:
            self.batch_size = self.bundle.family.batch_size
        if self.batch_size < 1:
            raise ValueError("batch size must be at least 1")
        self.fallback_rows = 0
        self._fp32: Runtime | None = None
        self._fallback: Runtime | None = None
        self._keras: list[KerasRuntime] = []
        # float32 weights converted once for the runtimes that read them at run time (the
        # int8 model and BERT's fallback share its word table, the largest of its weights).
        self._weights = functools.cache(self.bundle.weight)
        self._run: Runtime
        if self.precision == "int8":
            flat = self.int8_model
            if flat is None:
                flat = bundle_file(self.bundle.directory, self.bundle.manifest, "int8").read_bytes()
            self._run = self._checked(Int8Runtime(flat, self._weights, batch_size=self.batch_size))
        elif self.precision == "bf16":
            self._run = self._keras_runtime(rebuild_model(self.bundle, "mixed_bfloat16"))
        else:
            self._run = self._fp32_runtime()
        if self.precision != "fp32" and not self.fallback_margin and self.int8_model is None:
            check = (self.bundle.manifest.precisions or {}).get(self.precision, {})
            self.fallback_margin = float(check.get("fallback_margin", 0.0))
        if (
            self.precision == "int8"
            and self.fallback_margin > 0
            and not self._fallback_without_keras()
        ):
            # Said now, not at the first near-tie row in the middle of a run.
            require(f"{self.bundle.name} in int8 (its near-tie rows rerun in Keras)", *KERAS)

    def _fallback_without_keras(self) -> bool:
        """Whether the near-tie rows of a reduced precision run without Keras (BERT in
        ONNX Runtime, a linear n-gram model in NumPy)."""
        on_cpu = "CPU" in self.device.upper()
        return on_cpu and (
            self.bundle.manifest.architecture in self.bundle.family.onnx_fallback
            or numpy_fp32(self.bundle)
        )

    def _fp32_runtime(self) -> Runtime:
        """The model in fp32, built on first use: in NumPy where its family runs this
        model there on the CPU, else the Keras model."""
        if self._fp32 is None:
            family = self.bundle.family
            if family.numpy_runtime and numpy_fp32(self.bundle) and "CPU" in self.device.upper():
                self._fp32 = self._checked(
                    family.numpy_runtime(self.bundle.weight, self.bundle.manifest.config)
                )
            else:
                self._fp32 = self._keras_runtime(self.bundle.model)
        return self._fp32

    def _fallback_runtime(self) -> Runtime:
        """fp32 for a reduced precision's near-tie rows, built on first use: a BERT
        classifier runs in ONNX Runtime on the CPU, so int8 scoring never imports
        TensorFlow; other models use their fp32 runtime."""
        if self._fallback is None:
            on_cpu = "CPU" in self.device.upper()
            if on_cpu and self.bundle.manifest.architecture in self.bundle.family.onnx_fallback:
                table = self._weights(bert_onnx.WORD_TABLE)
                self._fallback = self._checked(bert_onnx.fp32_runtime(self.bundle, table))
            else:
                self._fallback = self._fp32_runtime()
        return self._fallback

    def _checked(self, run: Runtime) -> Runtime:
        """``run``, once a probe shows it gives one probability per label. The Keras path
        refuses weights that do not fit the architecture when it builds the model; the
        runtimes that never build it (NumPy, int8) are held to the same rule here."""
        try:
            width = run(np.ones((1, 8), dtype=np.int32)).shape[-1]
        except ValueError as exc:  # NumPy: weights that do not fit each other
            raise ModelError(f"{self.bundle.directory}: weights do not match ({exc})") from exc
        if width != self.n_labels:
            raise ModelError(
                f"{self.bundle.directory}: weights do not match its labels: the model gives "
                f"{width} probabilities, the manifest lists {self.n_labels} labels"
            )
        return run

    def _keras_runtime(self, model: Any) -> KerasRuntime:
        runtime = KerasRuntime(model, self.device)
        self._keras.append(runtime)
        return runtime

    @property
    def traces(self) -> int:
        """Graphs traced by the TensorFlow paths: one per model, whatever the batch shapes."""
        return sum(runtime.traces for runtime in self._keras)

    @property
    def name(self) -> str:
        return self.bundle.name

    @property
    def labels(self) -> list[Label]:
        return self.bundle.labels

    @property
    def n_labels(self) -> int:
        return len(self.bundle.labels)

    @property
    def directory(self) -> Path:
        return self.bundle.directory

    def fingerprint(self) -> str:
        """Hash of the files its predictions depend on (for ``--resume`` journals)."""
        return bundle_digest(self.bundle)

    def fitted_on(self) -> dict[str, str]:
        """sha256 of each data file the model was trained or calibrated on -> how, so
        that ``evaluate`` can say when its figures are in-sample."""
        manifest = self.bundle.manifest
        training = manifest.training or {}
        found = {d["sha256"]: "trained on" for d in training.get("data", []) if "sha256" in d}
        val = training.get("val") or {}
        if "sha256" in val and val["sha256"] not in found:
            how = "calibrated on (its validation set)"
            calibration = manifest.calibration or {}
            crossed = (calibration.get("cross_fitted_macro_f1") or {}).get("with")
            if calibration.get("label_biases") is not None and crossed is not None:
                how += f"; its cross-fitted macro-F1 there is {crossed}"
            found[val["sha256"]] = how
        return found

    @property
    def cleaning_version(self) -> str:
        return self.bundle.manifest.cleaning_version

    def clean(self, texts: Sequence[str | None]) -> list[str]:
        """``texts`` cleaned as the bundle's training text was (its cleaning version)."""
        return clean_texts(list(texts), self.cleaning_version)

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
        if self.precision != "fp32" and self.fallback_margin > 0:
            # Near-ties between the two best emoji are where rounding can swap them:
            # those rows are recomputed in fp32 (through ONNX Runtime for BERT: within
            # about 1e-6 of the Keras model's probabilities).
            close = np.flatnonzero(top2_margin(probs) < self.fallback_margin)
            if len(close):
                exact = np.zeros((len(close), self.n_labels), dtype=np.float32)
                self._run_batches(self._fallback_runtime(), [seqs[i] for i in close], exact)
                probs[close] = self._calibrated(exact)
            self.fallback_rows += len(close)
        return probs

    def _run_batches(self, run: Runtime, seqs: Sequence[np.ndarray], out: np.ndarray) -> None:
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
        return self.predict_cleaned(self.clean(texts))
