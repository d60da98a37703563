"""Does a stacked logistic regression beat the shipped ensemble's mix? (issue 27)

Fits a multinomial logistic regression on the members' log-probabilities on one stratified
half of Dev.csv and scores the other half, both ways (the same 2-fold protocol and seed as
`emoji-batch ensemble`), with and without balanced class weights and then per-label biases
for macro-F1 fitted on the fit half. Prints the cross-fitted macro-F1 beside the shipped
mix's. The stacker would be kept only if it won.

Usage: .venv/bin/python training/ensemble_stacking_probe.py [ENSEMBLE_DIR]
"""

import json
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from emoji_batch.calibration import cross_fitted, fit_biases, with_biases
from emoji_batch.cleaning import clean_texts
from emoji_batch.dataset import keep_labels, label_indices, read_labelled
from emoji_batch.ensemble import load_ensemble
from emoji_batch.evaluation import macro_f1
from emoji_batch.predict import Predictor

DEV = Path("../shared/data/semeval2018-extra/Dev.csv")
SEED = 13  # the ensemble's default fold seed


def main(directory: Path) -> None:
    ensemble = load_ensemble(directory)
    members = ensemble.manifest["members"]
    labels = ensemble.members[0].labels
    dev = keep_labels(read_labelled(DEV, "TEXT", "Label"), [label.id for label in labels])
    y = label_indices(dev, labels)
    cleaned = clean_texts(dev.texts, ensemble.members[0].manifest.cleaning_version)
    probs = [
        Predictor(bundle, device="/CPU:0", precision=member["precision"]).predict_cleaned(cleaned)
        for bundle, member in zip(ensemble.members, members, strict=True)
    ]
    x = np.hstack([np.log(np.maximum(p, 1e-12)) for p in probs])
    results = {"shipped_mix_cross_fitted": ensemble.manifest["metrics"]["macro_f1"]}
    for weight in (None, "balanced"):
        for biases in (False, True):

            def fit_apply(fit: np.ndarray, held: np.ndarray, w=weight, b=biases) -> np.ndarray:
                model = LogisticRegression(C=1.0, class_weight=w, max_iter=1000)
                model.fit(x[fit], y[fit])
                if not b:
                    return model.predict_proba(x[held])
                offsets = np.asarray(fit_biases(model.predict_proba(x[fit]), y[fit]), np.float32)
                return with_biases(model.predict_proba(x[held]), offsets)

            key = f"stacked_lr_{weight or 'unweighted'}{'_biases' if biases else ''}"
            results[key] = round(100 * macro_f1(y, cross_fitted(y, SEED, fit_apply)), 2)
            print(key, results[key], flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "emoji_batch/models/ensemble_bert_svm"))
