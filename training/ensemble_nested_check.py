"""Cross-fit the shipped ensemble on Dev.csv with its n-gram member's per-label biases
refitted inside each fold, so no Dev row is scored by offsets fitted on it.

`emoji-batch ensemble` cross-fits the mix, but its `ngram_svm` member carries per-label
biases fitted on all of Dev (its trainer keeps them because they raise *its* cross-fitted
macro-F1). This script measures how much that flatters the ensemble's cross-fitted figure:
it takes the member's biases back out, then in each fold fits them on the fit half only,
fits the mix there, and scores the held-out half.

Usage: .venv/bin/python training/ensemble_nested_check.py [ENSEMBLE_DIR]
"""

import json
import sys
from pathlib import Path

import numpy as np

from emoji_batch.calibration import cross_fitted, fit_biases, with_biases
from emoji_batch.cleaning import clean_texts
from emoji_batch.dataset import keep_labels, label_indices, read_labelled
from emoji_batch.ensemble import load_ensemble
from emoji_batch.ensemble_fit import fit_mix
from emoji_batch.evaluation import macro_f1
from emoji_batch.predict import Predictor

DEV = Path("../shared/data/semeval2018-extra/Dev.csv")


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
    member_biases = [(b.manifest.calibration or {}).get("label_biases") for b in ensemble.members]
    biased = [i for i, offsets in enumerate(member_biases) if offsets is not None]
    for i in biased:
        probs[i] = with_biases(probs[i], -np.asarray(member_biases[i], np.float32))
    seed = 13  # what training/train_ensemble.sh cross-fits with (the ensemble default)
    use_biases = ensemble.mix.biases is not None

    def fit_apply(fit_rows: np.ndarray, held_out: np.ndarray) -> np.ndarray:
        fold = list(probs)
        for i in biased:
            offsets = np.asarray(fit_biases(probs[i][fit_rows], y[fit_rows]), np.float32)
            fold[i] = with_biases(probs[i], offsets)
        mix, _ = fit_mix([p[fit_rows] for p in fold], y[fit_rows], ensemble.prior, use_biases)
        return mix.apply([p[held_out] for p in fold], ensemble.prior)

    nested = 100 * macro_f1(y, cross_fitted(y, seed, fit_apply))
    print(
        json.dumps(
            {
                "ensemble": str(directory),
                "members_with_dev_biases": [members[i]["name"] for i in biased],
                "cross_fitted_macro_f1_in_manifest": ensemble.manifest["metrics"]["macro_f1"],
                "nested_cross_fitted_macro_f1": round(nested, 2),
            }
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "emoji_batch/models/ensemble_bert_svm"))
