"""Choose the n-gram SVM's features and solver settings on Dev.csv (issue 27).

Fits scikit-learn's tf-idf + ``LinearSVC`` (liblinear, one-vs-rest) on Train + Extra for
each setting asked for and prints Dev and Val macro-F1 as JSON lines, one per setting;
the chosen setting is then trained as a bundle by ``emoji-batch train ngram_svm``.

    .venv/bin/python training/ngram_svm_grid.py --grid features|c|... [--raw] [--out FILE]

``--raw`` fits on the uncleaned text, as the data README's table did, to show what the
project's cleaning costs or gains.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.svm import LinearSVC

from emoji_batch.cleaning import clean_texts

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
TRAIN = [DATA / "tweeteval-emoji" / "Train.csv", DATA / "semeval2018-extra" / "Extra.csv"]
DEV = DATA / "semeval2018-extra" / "Dev.csv"
VAL = DATA / "tweeteval-emoji" / "Val.csv"

# (name, char analyzer, char range, word range, min_df)
FEATURES = {
    "winner": ("char", (1, 6), (1, 4), 2),
    "char_wb16": ("char_wb", (1, 6), (1, 4), 2),
    "wb25_w12": ("char_wb", (2, 5), (1, 2), 2),
    "wb26_w13": ("char_wb", (2, 6), (1, 3), 2),
    "wb26_w14": ("char_wb", (2, 6), (1, 4), 2),
    "char26_w13": ("char", (2, 6), (1, 3), 2),
    "char25_w12": ("char", (2, 5), (1, 2), 2),
    "char16_w13": ("char", (1, 6), (1, 3), 2),
    "char15_w14": ("char", (1, 5), (1, 4), 2),
    "winner_md3": ("char", (1, 6), (1, 4), 3),
    "winner_md5": ("char", (1, 6), (1, 4), 5),
}


def read(path: Path, raw: bool) -> tuple[list[str], np.ndarray]:
    frame = pl.read_csv(path, infer_schema=False)
    texts = frame["TEXT"].fill_null("").to_list()
    if not raw:
        texts = clean_texts(texts)
    return texts, frame["Label"].cast(pl.Int64).to_numpy()


def vectorize(
    name: str, train: list[str], others: list[list[str]], joint_norm: bool, binary: bool
) -> tuple[csr_matrix, list[csr_matrix]]:
    analyzer, chars, words, min_df = FEATURES[name]
    vectorizers = [
        TfidfVectorizer(
            analyzer=kind,
            ngram_range=ngrams,
            min_df=min_df,
            sublinear_tf=not binary,
            binary=binary,
            lowercase=True,
            norm=None if joint_norm else "l2",
            dtype=np.float32,
        )
        for kind, ngrams in ((analyzer, chars), ("word", words))
    ]
    x = hstack([v.fit_transform(train) for v in vectorizers]).tocsr()
    xs = [hstack([v.transform(t) for v in vectorizers]).tocsr() for t in others]
    if joint_norm:
        from sklearn.preprocessing import normalize

        x, xs = normalize(x), [normalize(m) for m in xs]
    return x, xs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", nargs="+", default=["winner"], choices=sorted(FEATURES))
    parser.add_argument("--c", nargs="+", type=float, default=[0.1])
    parser.add_argument("--class-weight", nargs="+", default=["balanced"])
    parser.add_argument("--joint-norm", action="store_true")
    parser.add_argument("--raw", action="store_true")
    parser.add_argument("--binary", action="store_true", help="binary tf instead of sublinear")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    parts = [read(p, args.raw) for p in TRAIN]
    train = [t for texts, _ in parts for t in texts]
    y = np.concatenate([labels for _, labels in parts])
    (dev, y_dev), (val, y_val) = read(DEV, args.raw), read(VAL, args.raw)
    for name in args.features:
        started = time.perf_counter()
        x, (x_dev, x_val) = vectorize(name, train, [dev, val], args.joint_norm, args.binary)
        vec_s = time.perf_counter() - started
        for c in args.c:
            for cw in args.class_weight:
                started = time.perf_counter()
                svm = LinearSVC(C=c, class_weight=None if cw == "none" else cw).fit(x, y)
                row = {
                    "features": name,
                    "C": c,
                    "class_weight": cw,
                    "raw": args.raw,
                    "joint_norm": args.joint_norm,
                    "binary": args.binary,
                    "n_features": x.shape[1],
                    "dev_macro_f1": round(
                        100 * f1_score(y_dev, svm.predict(x_dev), average="macro"), 2
                    ),
                    "dev_accuracy": round(100 * accuracy_score(y_dev, svm.predict(x_dev)), 2),
                    "val_macro_f1": round(
                        100 * f1_score(y_val, svm.predict(x_val), average="macro"), 2
                    ),
                    "vectorize_s": round(vec_s, 1),
                    "fit_s": round(time.perf_counter() - started, 1),
                }
                line = json.dumps(row)
                print(line, flush=True)
                if args.out:
                    with args.out.open("a") as f:
                        f.write(line + "\n")
    print(" ".join(sys.argv), file=sys.stderr)


if __name__ == "__main__":
    main()
