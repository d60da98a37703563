"""Fit a linear n-gram model with a convex solver and write it as an ``ngram`` bundle.

The ``ngram_svm`` architecture is the SemEval-2018 winner's recipe (Çöltekin & Rama): a
one-vs-rest linear SVM (liblinear) on idf-weighted word and character n-grams. One
solve takes minutes where Keras epochs took half an hour, and it has no epochs to choose.
The bundle is the same as a linear ``ngram_linear`` one (an n-gram list, idf, a weight
table and a bias), so it scores in NumPy through the same runtime; what differs is:

- the features are exactly what the runtime computes (the bundle's encoder, idf, words
  and characters L2-normalised apart), so training and scoring cannot drift;
- features whose weights are small for every label are pruned (``max_features``), which
  keeps the bundle small at a cost measured on the validation set;
- SVM margins are not probabilities: a temperature and the prior power are fitted on the
  validation set (the prior power for macro-F1, the temperature for log-loss), and the
  manifest records the calibration error (ECE) that results;
- per-label offsets for macro-F1 are fitted on the validation set too, and kept (added to
  the bias, so scoring is unchanged) only if they raise its cross-fitted macro-F1.

scikit-learn is imported here, at training time only; scoring never imports it.
"""

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emoji_batch.architectures import get_architecture
from emoji_batch.bundle import (
    WEIGHTS,
    Manifest,
    check_new_bundle_dir,
    load_bundle,
    save_weights,
    write_manifest,
)
from emoji_batch.calibration import FOLDS, cross_fitted, fit_biases, with_biases
from emoji_batch.cleaning import CLEANING_VERSION, clean_texts
from emoji_batch.dataset import (
    Labelled,
    check_labels,
    keep_labels,
    label_indices,
    read_labelled,
    read_labelled_files,
)
from emoji_batch.errors import InputError
from emoji_batch.evaluation import evaluate_probs, macro_f1, write_report
from emoji_batch.extras import require
from emoji_batch.labels import Label
from emoji_batch.ngram import BIAS, IDF, TABLE, NgramEncoder
from emoji_batch.predictor import PRIOR_POWERS, Predictor, adjust_to_prior
from emoji_batch.train_config import TrainConfig, TrainResult, labels_for

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

log = logging.getLogger(__name__)

# Options of ``train`` that mean something to this trainer; the rest are Keras'.
OPTIONS = {
    "architecture",
    "data",
    "output",
    "val",
    "mapping",
    "text_column",
    "label_column",
    "class_weight",
    "seed",
    "set_",
    "max_length",
    "weights_dtype",
    "force",
}
LOSSES = ("squared_hinge", "hinge", "log_loss")


def features(
    encoder: NgramEncoder, idf: np.ndarray, cleaned: list[str], max_length: int
) -> "csr_matrix":
    """The tf-idf rows :class:`emoji_batch.runtimes.NgramRuntime` computes: each known
    n-gram once, weighted by its idf, word and character n-grams L2-normalised apart."""
    from scipy.sparse import csr_matrix

    seqs = encoder.encode(cleaned, max_length)
    lengths = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
    ids = np.concatenate(seqs) if seqs else np.zeros(0, dtype=np.int32)
    rows = np.repeat(np.arange(len(seqs)), lengths)
    values = idf[ids].astype(np.float64)
    is_word = ids <= encoder.n_words
    for block in (is_word, ~is_word):
        squares = np.bincount(rows[block], values[block] ** 2, minlength=len(seqs))
        values[block] /= np.maximum(np.sqrt(squares), 1e-12)[rows[block]]
    keep = ids > 0
    matrix = csr_matrix(
        (values[keep], (rows[keep], ids[keep])), shape=(len(seqs), len(encoder)), dtype=np.float32
    )
    matrix.sum_duplicates()
    return matrix


def _solver(params: dict[str, Any], class_weight: str, seed: int) -> Any:
    weight = None if class_weight == "none" else "balanced"
    if params["loss"] == "log_loss":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(
            C=params["C"], class_weight=weight, solver="saga", max_iter=200, random_state=seed
        )
    from sklearn.svm import LinearSVC

    return LinearSVC(C=params["C"], loss=params["loss"], class_weight=weight, random_state=seed)


def _prune(weights: np.ndarray, keep: int) -> np.ndarray:
    """Ids (sorted, padding included) of the ``keep`` features whose largest absolute
    weight over the labels is largest: the rest change few decisions."""
    strength = np.abs(weights).max(axis=1)
    strength[0] = np.inf  # padding stays id 0
    if keep + 1 >= len(strength):
        return np.arange(len(strength))
    return np.sort(np.argpartition(-strength, keep + 1)[: keep + 1])


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def _log_loss(margins: np.ndarray, y: np.ndarray, temperature: float) -> float:
    probs = softmax(margins / temperature)
    return float(-np.mean(np.log(np.maximum(probs[np.arange(len(y)), y], 1e-12))))


def fit_calibration(
    margins: np.ndarray, y: np.ndarray, prior: np.ndarray
) -> tuple[float, float, float]:
    """The prior power that maximises macro-F1, then the temperature that minimises the
    log-loss of ``softmax(margins / T + power * log prior)``; and that macro-F1 (in %).

    The power moves decisions toward or away from frequent labels (the scorer applies it
    after the softmax, as for every bundle); the temperature only makes the confidence
    honest, it never changes which emoji wins."""
    from scipy.optimize import minimize_scalar

    log_prior = np.log(prior)

    def temperature(power: float) -> float:
        def loss(log_t: float) -> float:
            return _log_loss(margins + np.exp(log_t) * power * log_prior, y, np.exp(log_t))

        return float(np.exp(minimize_scalar(loss, bounds=(-6, 3), method="bounded").x))

    base = temperature(0.0)

    def score(power: float) -> float:
        return macro_f1(y, margins / base + power * log_prior)

    power = max(sorted(PRIOR_POWERS, key=abs), key=score) + 0.0  # never -0.0
    chosen = temperature(power)
    return chosen, power, 100 * macro_f1(y, margins / chosen + power * log_prior)


def fit_label_biases(
    probs: np.ndarray, y: np.ndarray, seed: int
) -> tuple[np.ndarray | None, dict[str, float]]:
    """Per-label log-offsets for macro-F1 on ``probs`` (None when they do not raise the
    cross-fitted macro-F1, or ``y`` is too small to cross-fit), and the cross-fitted
    macro-F1 (in %) without and with them."""

    def fit_apply(fit_rows: np.ndarray, held_out: np.ndarray) -> np.ndarray:
        offsets = np.asarray(fit_biases(probs[fit_rows], y[fit_rows]), dtype=np.float32)
        return with_biases(probs[held_out], offsets)

    without = round(100 * macro_f1(y, probs), 2)
    if len(y) == 0 or np.bincount(y).max() < FOLDS:
        return None, {"without": without}  # too few rows to cross-fit
    scores = {
        "without": without,
        "with": round(100 * macro_f1(y, cross_fitted(y, seed, fit_apply)), 2),
    }
    if scores["with"] <= scores["without"]:
        return None, scores
    return np.asarray(fit_biases(probs, y), dtype=np.float32), scores


def _read_sets(config: TrainConfig, val: Path) -> tuple[Labelled, list[int], list[Label], Labelled]:
    """The training data with each file's row count, its labels, and the rows of ``val``
    with labels the model predicts."""
    data, file_rows = read_labelled_files(config.data, config.text_column, config.label_column)
    labels = labels_for(config, data)
    check_labels(data, labels)
    val_all = read_labelled(val, config.text_column, config.label_column)
    check_labels(val_all, labels)
    return data, file_rows, labels, keep_labels(val_all, [label.id for label in labels])


def _fit_solver(
    config: TrainConfig, params: dict[str, Any], name: str, cleaned: list[str], y: np.ndarray
) -> tuple[NgramEncoder, np.ndarray, Any]:
    """The n-gram encoder and idf found on the training texts, and the solver fitted on
    their features."""
    encoder, idf = NgramEncoder.fit_settings(cleaned, params, name)
    log.info("%d n-grams in >= %d texts", len(encoder) - 1, params["min_df"])
    x = features(encoder, idf, cleaned, int(params["max_length"]))
    solver = _solver(params, config.class_weight, config.seed)
    log.info("fitting %s on %d x %d", type(solver).__name__, *x.shape)
    solver.fit(x, y)
    return encoder, idf, solver


def _calibrate(
    margins: np.ndarray, y_val: np.ndarray, prior: np.ndarray, config: TrainConfig, val: Path
) -> tuple[float, float, np.ndarray | None, dict[str, float]]:
    """Temperature and prior power fitted on the validation margins, then per-label
    biases kept only if they raise the cross-fitted macro-F1 there (with both figures)."""
    temperature, power, _ = fit_calibration(margins, y_val, prior)
    log.info("temperature %.3f, prior power %.1f chosen on %s", temperature, power, val.name)
    val_probs = adjust_to_prior(softmax(margins / temperature), prior, power)
    offsets, crossed = fit_label_biases(val_probs, y_val, config.seed)
    log.info(
        "cross-fitted macro-F1 on %s: %.2f without per-label biases, %.2f with (%s)",
        val.name,
        crossed["without"],
        crossed["with"],
        "kept" if offsets is not None else "dropped",
    )
    return temperature, power, offsets, crossed


def _write_bundle(
    config: TrainConfig, manifest: Manifest, weights: dict[str, np.ndarray], encoder: NgramEncoder
) -> None:
    """The bundle's weights, encoder files and manifest (its metrics still to come)."""
    config.output.mkdir(parents=True, exist_ok=True)
    save_weights(config.output / WEIGHTS, weights, config.weights_dtype)
    manifest.files = {"weights": WEIGHTS, **encoder.save(config.output)}
    write_manifest(config.output, manifest)


def _calibration_record(
    prior: np.ndarray, power: float, offsets: np.ndarray | None, crossed: dict[str, float]
) -> dict[str, Any]:
    """The manifest's ``calibration``: what ``Predictor`` applies, and how it was chosen."""
    return {
        "label_prior": [round(float(p), 6) for p in prior],
        "prior_power": power,
        "label_biases": None if offsets is None else [round(float(b), 2) for b in offsets],
        "cross_fitted_macro_f1": crossed,
        "chosen_on": (
            "validation macro-F1 (power; label biases, kept if they raise the 2-fold "
            "cross-fitted macro-F1), validation log-loss (temperature)"
        ),
    }


def train_linear(config: TrainConfig) -> TrainResult:
    """Fit ``config.architecture`` (a convex n-gram model) on ``config.data``, calibrate
    and measure it on ``config.val`` and write its bundle to ``config.output``."""
    require(f"train {config.architecture}", "sklearn", "scipy", "matplotlib")
    started = time.perf_counter()
    arch = get_architecture(config.architecture)
    if config.val is None:
        raise InputError(f"{arch.name} needs --val: its calibration is fitted there")
    params = config.settings(arch.name, arch.defaults)
    if params["loss"] not in LOSSES:
        raise InputError(f"{arch.name}: loss must be one of {LOSSES}, not {params['loss']!r}")
    check_new_bundle_dir(config.output, config.force)

    data, file_rows, labels, val_set = _read_sets(config, config.val)
    y, y_val = label_indices(data, labels), label_indices(val_set, labels)
    prior = (np.bincount(y, minlength=len(labels)) + 1.0) / (len(y) + len(labels))

    cleaned = clean_texts(data.texts)
    encoder, idf, solver = _fit_solver(config, params, arch.name, cleaned, y)
    fitted_seconds = time.perf_counter() - started
    max_length = int(params["max_length"])
    table = np.zeros((len(encoder), len(labels)), dtype=np.float32)
    table[:] = solver.coef_.T
    kept = _prune(table, int(params["max_features"]))
    encoder = encoder.subset(kept)
    table, idf = table[kept], idf[kept]
    bias = solver.intercept_.astype(np.float32)
    log.info("kept %d of %d n-grams", len(kept) - 1, len(solver.coef_[0]))

    margins = features(encoder, idf, clean_texts(val_set.texts), max_length) @ table + bias
    temperature, power, offsets, crossed = _calibrate(
        np.asarray(margins), y_val, prior, config, config.val
    )
    params |= {
        "n_features": len(encoder),
        "n_word_features": encoder.n_words,
        "max_length": max_length,
        "temperature": round(temperature, 6),
    }
    scale = np.float32(1 / temperature)
    folded = bias * scale + (0 if offsets is None else offsets)
    weights = {TABLE: table * scale, BIAS: folded.astype(np.float32), IDF: idf}
    manifest = Manifest(
        architecture=arch.name,
        config=params,
        labels=labels,
        max_length=max_length,
        metrics={},
        cleaning_version=CLEANING_VERSION,
        training={
            **config.training_record(file_rows, len(data), len(val_set)),
            "solver": type(solver).__name__,
            "fit_seconds": round(fitted_seconds, 1),
        },
        calibration=_calibration_record(prior, power, offsets, crossed),
    )
    _write_bundle(config, manifest, weights, encoder)
    # Measured through the bundle as written (float16 weights rounded), as `evaluate` does.
    probs = Predictor(load_bundle(config.output)).predict_proba(val_set.texts)
    report = evaluate_probs(val_set.labels, probs, labels, config.val.name)
    manifest.metrics = report.summary()
    manifest.training["seconds"] = round(time.perf_counter() - started, 1)
    write_manifest(config.output, manifest)
    write_report(report, config.output / "evaluation")
    return TrainResult(config.output, report, time.perf_counter() - started)
