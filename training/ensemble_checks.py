"""Two checks of the shipped ensemble on Dev.csv, both 2-fold cross-fitted with the
folds and seed of `emoji-batch ensemble` (issue 27):

- **nested**: its `ngram_svm` member carries per-label biases fitted on all of Dev (its
  trainer keeps them because they raise *its* cross-fitted macro-F1), which could flatter
  the ensemble's cross-fitted figure. The member's biases are taken back out, then in each
  fold refitted on the fit half only, the mix fitted there, and the held-out half scored.
- **stacking**: a multinomial logistic regression on the members' log-probabilities,
  with and without balanced class weights, then per-label biases for macro-F1 fitted on
  the fit half; it would replace the grid-searched mix only if it won.

Usage: .venv/bin/python training/ensemble_checks.py [ENSEMBLE_DIR]
"""

import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from emoji_batch.calibration import cross_fitted, fit_biases, with_biases
from emoji_batch.cleaning import clean_texts
from emoji_batch.dataset import keep_labels, label_indices, read_labelled
from emoji_batch.ensemble import Ensemble, load_ensemble
from emoji_batch.ensemble_fit import fit_mix
from emoji_batch.evaluation import macro_f1
from emoji_batch.predictor import Predictor

DEV = Path("../shared/data/semeval2018-extra/Dev.csv")
SEED = 13  # what training/train_ensemble.sh cross-fits with (the ensemble default)
FitApply = Callable[[np.ndarray, np.ndarray], np.ndarray]


def member_probs(ensemble: Ensemble) -> tuple[np.ndarray, list[np.ndarray]]:
    """Dev's label indices and each member's probabilities, in its listed precision."""
    labels = ensemble.members[0].labels
    dev = keep_labels(read_labelled(DEV, "TEXT", "Label"), [label.id for label in labels])
    cleaned = clean_texts(dev.texts, ensemble.members[0].manifest.cleaning_version)
    probs = [
        Predictor(bundle, device="/CPU:0", precision=member["precision"]).predict_cleaned(cleaned)
        for bundle, member in zip(ensemble.members, ensemble.manifest["members"], strict=True)
    ]
    return label_indices(dev, labels), probs


def nested(ensemble: Ensemble, y: np.ndarray, probs: list[np.ndarray]) -> FitApply:
    member_biases = [(b.manifest.calibration or {}).get("label_biases") for b in ensemble.members]
    biased = [i for i, offsets in enumerate(member_biases) if offsets is not None]
    plain = list(probs)
    for i in biased:
        plain[i] = with_biases(probs[i], -np.asarray(member_biases[i], np.float32))
    use_biases = ensemble.mix.biases is not None

    def fit_apply(fit_rows: np.ndarray, held_out: np.ndarray) -> np.ndarray:
        fold = list(plain)
        for i in biased:
            offsets = np.asarray(fit_biases(plain[i][fit_rows], y[fit_rows]), np.float32)
            fold[i] = with_biases(plain[i], offsets)
        mix, _ = fit_mix([p[fit_rows] for p in fold], y[fit_rows], ensemble.prior, use_biases)
        return mix.apply([p[held_out] for p in fold], ensemble.prior)

    return fit_apply


def stacked(x: np.ndarray, y: np.ndarray, weight: str | None, biases: bool) -> FitApply:
    def fit_apply(fit_rows: np.ndarray, held_out: np.ndarray) -> np.ndarray:
        model = LogisticRegression(C=1.0, class_weight=weight, max_iter=1000)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit(x[fit_rows], y[fit_rows])
        if caught:
            print(f"stacked ({weight}): lbfgs stopped at max_iter", file=sys.stderr)
        held = model.predict_proba(x[held_out])
        if not biases:
            return held
        offsets = np.asarray(fit_biases(model.predict_proba(x[fit_rows]), y[fit_rows]), np.float32)
        return with_biases(held, offsets)

    return fit_apply


def main(directory: Path) -> None:
    ensemble = load_ensemble(directory)
    y, probs = member_probs(ensemble)
    results = {
        "ensemble": str(directory),
        "cross_fitted_macro_f1_in_manifest": ensemble.manifest["metrics"]["macro_f1"],
    }
    checks = {"nested_cross_fitted": nested(ensemble, y, probs)}
    x = np.hstack([np.log(np.maximum(p, 1e-12)) for p in probs])
    for weight in (None, "balanced"):
        for biases in (False, True):
            key = f"stacked_lr_{weight or 'unweighted'}{'_biases' if biases else ''}"
            checks[key] = stacked(x, y, weight, biases)
    for key, fit_apply in checks.items():
        results[key] = round(100 * macro_f1(y, cross_fitted(y, SEED, fit_apply)), 2)
        print(key, results[key], file=sys.stderr, flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "emoji_batch/models/ensemble_bert_svm"))
