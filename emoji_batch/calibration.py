"""Per-label offsets for macro-F1, fitted on a labelled set and measured cross-fitted.

Macro-F1 weighs every label alike; a model's argmax does not, so a small log-offset per
label (fitted by coordinate ascent on the validation set) moves decisions toward the
labels it under-predicts. Fitted on the rows they are then measured on, offsets always
seem to help; :func:`cross_fitted` is the honest number, and callers keep offsets only
when it improves.
"""

from collections.abc import Callable

import numpy as np

from emoji_batch.evaluation import macro_f1
from emoji_batch.extras import require

# Per-label log-offsets tried by fit_biases.
BIAS_GRID = tuple(round(b, 2) for b in np.arange(-1.0, 1.01, 0.1))
FOLDS = 2


def folds(y: np.ndarray, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``FOLDS`` stratified (fit rows, held-out rows) pairs of ``y``."""
    require("cross-fitting on a validation set", "sklearn")
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


def with_biases(probs: np.ndarray, biases: np.ndarray) -> np.ndarray:
    """``probs`` times ``exp(biases)``, renormalised: the offsets added to the logits."""
    shifted = probs * np.exp(biases)
    return shifted / shifted.sum(axis=1, keepdims=True)


def fit_biases(probs: np.ndarray, y: np.ndarray, rounds: int = 2) -> tuple[float, ...]:
    """Per-label log-offsets that raise macro-F1 on ``y``, by coordinate ascent over a
    grid (each label in turn, ``rounds`` times)."""
    biases = np.zeros(probs.shape[1], dtype=np.float32)
    logs = np.log(np.maximum(probs, 1e-12))
    best = macro_f1(y, logs)
    for _ in range(rounds):
        for label in range(len(biases)):
            for value in BIAS_GRID:
                trial = biases.copy()
                trial[label] = value
                f1 = macro_f1(y, logs + trial)
                if f1 > best + 1e-9:
                    best, biases = f1, trial
    return tuple(round(float(b), 2) for b in biases)


def cross_fitted(
    y: np.ndarray, seed: int, fit_apply: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> np.ndarray:
    """Probabilities for every row of ``y`` from ``fit_apply(fit_rows, held_out)``, which
    fits on ``fit_rows`` and returns the held-out rows' probabilities: each row is
    predicted by a fit that never saw it."""
    out: np.ndarray | None = None
    for fit_rows, held_out in folds(y, seed):
        probs = fit_apply(fit_rows, held_out)
        if out is None:
            out = np.zeros((len(y), probs.shape[1]), dtype=np.float32)
        out[held_out] = probs
    assert out is not None
    return out
