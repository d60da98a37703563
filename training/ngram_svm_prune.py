"""What pruning costs the n-gram SVM on Dev.csv: fit once, then keep the N strongest
features for several N and print Dev macro-F1 (calibrated as `train ngram_svm` does) and
the bundle size each N gives (issue 27: the default must stay <= 40 MB).

    .venv/bin/python training/ngram_svm_prune.py [--c 0.1] [--keep 200000 400000 ...]

Features and solver are `train ngram_svm`'s own (emoji_batch.train_linear), so the rows
are what the trained bundle would score.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from emoji_batch.architectures import get_architecture
from emoji_batch.cleaning import clean_texts
from emoji_batch.dataset import label_indices, read_labelled, read_labelled_files
from emoji_batch.evaluation import macro_f1
from emoji_batch.labels import read_mapping
from emoji_batch.ngram import NgramEncoder
from emoji_batch.train_linear import _prune, _solver, features, fit_calibration

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
TRAIN = [DATA / "tweeteval-emoji" / "Train.csv", DATA / "semeval2018-extra" / "Extra.csv"]
DEV = DATA / "semeval2018-extra" / "Dev.csv"
MAPPING = DATA / "tweeteval-emoji" / "Mapping.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--c", type=float, default=0.1)
    parser.add_argument("--keep", nargs="+", type=int, default=[150_000, 300_000, 500_000, 0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    params = {**get_architecture("ngram_svm").defaults, "C": args.c}
    started = time.perf_counter()
    data, _ = read_labelled_files(TRAIN, "TEXT", "Label")
    dev = read_labelled(DEV, "TEXT", "Label")
    labels = read_mapping(MAPPING)
    y, y_dev = label_indices(data, labels), label_indices(dev, labels)
    prior = (np.bincount(y, minlength=len(labels)) + 1.0) / (len(y) + len(labels))
    cleaned, dev_clean = clean_texts(data.texts), clean_texts(dev.texts)
    words, chars = params["word_ngrams"], params["char_ngrams"]
    encoder, idf = NgramEncoder.fit(cleaned, words, chars, 2, params["char_analyzer"])
    solver = _solver(params, "balanced", 13).fit(features(encoder, idf, cleaned, 2048), y)
    print(f"fitted in {time.perf_counter() - started:.0f} s", flush=True)
    table = np.zeros((len(encoder), len(labels)), dtype=np.float32)
    table[:] = solver.coef_.T
    for keep in args.keep:
        kept = _prune(table, keep or len(table))
        pruned = encoder.subset(kept)
        margins = np.asarray(features(pruned, idf[kept], dev_clean, 2048) @ table[kept])
        margins += solver.intercept_
        temperature, power, f1 = fit_calibration(margins, y_dev, prior)
        vocab_bytes = sum(len(f.encode()) + 3 for _, f in pruned.features)
        row = {
            "C": args.c,
            "kept": len(kept) - 1,
            "dev_macro_f1_raw": round(100 * macro_f1(y_dev, margins), 2),
            "dev_macro_f1": round(f1, 2),
            "temperature": round(temperature, 4),
            "prior_power": power,
            "bundle_mb_float16": round((len(kept) * (len(labels) + 1) * 2 + vocab_bytes) / 1e6, 1),
        }
        print(json.dumps(row), flush=True)
        if args.out:
            with args.out.open("a") as fh:
                fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
