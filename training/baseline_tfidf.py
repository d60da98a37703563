"""The linear reference every model is compared with: tf-idf + logistic regression.

Word 1-2-grams and ``char_wb`` 2-5-grams of the project's cleaned text (sublinear tf,
min_df 2), ``LogisticRegression(C=2, class_weight="balanced")``, fitted on Train.csv and
scored on Val.csv. It writes no bundle: it only gives the results table its floor.

    .venv/bin/python training/baseline_tfidf.py [--data TRAIN [--data MORE ...]] [--val VAL]
        [--json OUT]

Repeated ``--data`` files are concatenated, as ``emoji-batch train`` does.

``--json`` also writes the numbers for ``training/results_table.py --baseline OUT``.
"""

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

from emoji_batch.cleaning import clean_texts

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "tweeteval-emoji"


def read(path: Path) -> tuple[list[str], np.ndarray]:
    """Cleaned texts and label ids of a TweetEval CSV (columns TEXT, Label)."""
    frame = pl.read_csv(path, infer_schema=False)
    return clean_texts(frame["TEXT"].to_list()), frame["Label"].cast(pl.Int64).to_numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, action="append")
    parser.add_argument("--val", type=Path, default=DATA / "Val.csv")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    started = time.perf_counter()
    files = args.data or [DATA / "Train.csv"]
    parts = [read(path) for path in files]
    train_texts = [text for texts, _ in parts for text in texts]
    y_train = np.concatenate([labels for _, labels in parts])
    val_texts, y_val = read(args.val)
    vectorizers = [
        TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=2, sublinear_tf=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True),
    ]
    x_train = hstack([v.fit_transform(train_texts) for v in vectorizers]).tocsr()
    x_val = hstack([v.transform(val_texts) for v in vectorizers]).tocsr()
    model = LogisticRegression(C=2, class_weight="balanced", max_iter=2000)
    pred = model.fit(x_train, y_train).predict(x_val)
    command = shlex.join([".venv/bin/python", "training/baseline_tfidf.py", *sys.argv[1:]])
    result = {
        "command": command,
        "train": {"file": " + ".join(path.name for path in files), "rows": len(y_train)},
        "val": {"file": args.val.name, "rows": len(y_val)},
        "labels": len(np.unique(y_train)),
        "features": x_train.shape[1],
        "macro_f1": round(100 * f1_score(y_val, pred, average="macro"), 2),
        "accuracy": round(100 * accuracy_score(y_val, pred), 2),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
