"""Fitting the emoji position model (see :mod:`emoji_batch.position`): a logistic
regression over gap features, trained on the tweets whose U+FE0F markers show where
their emoji stood, and scored with the simple rules beside it on a held-out share.

Imports polars and scikit-learn when it runs (the training install).
"""

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emoji_batch.errors import InputError
from emoji_batch.extras import require
from emoji_batch.fileio import file_fingerprint
from emoji_batch.position import CLEANING_NOTE, RULES, PositionModel, gap_features, marked_gaps


@dataclass
class Marked:
    """Marked tweets: unmarked text and the gaps its markers stood in."""

    texts: list[str]
    gaps: list[set[int]]

    def __len__(self) -> int:
        return len(self.texts)


def read_marked(path: Path, text_column: str = "text") -> tuple[Marked, int]:
    """The marked tweets of a CSV/Parquet file, and how many rows the file has."""
    from emoji_batch.fileio import detect_format, find_column, read_table

    df = read_table(path, detect_format(path))
    column = find_column(df.columns, text_column, "text")
    texts, gaps = [], []
    for text in df[column].to_list():
        if isinstance(text, str):
            unmarked, marked = marked_gaps(text)
            if marked:
                texts.append(unmarked)
                gaps.append(marked)
    return Marked(texts, gaps), df.height


def in_holdout(text: str, fraction: float, seed: int) -> bool:
    """A fixed share of tweets by a hash of their unmarked text, so repeated tweets fall
    on the same side and a rerun gets the same split."""
    digest = hashlib.sha256(f"{seed}\0{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def accuracy(predicted: Sequence[int], gaps: Sequence[set[int]]) -> float:
    """Percentage of tweets whose predicted gap is one of their marked gaps."""
    hits = sum(p in g for p, g in zip(predicted, gaps, strict=True))
    return round(100 * hits / len(gaps), 2)


def _design(
    rows: list[list[list[str]]], gaps: list[set[int]], index: dict[str, int]
) -> tuple[Any, np.ndarray]:
    """Sparse gap-by-feature matrix (features outside ``index`` dropped) and 0/1 targets."""
    from scipy import sparse

    cols, ptr, y = [], [0], []
    for features, marked in zip(rows, gaps, strict=True):
        for p, feats in enumerate(features):
            cols.extend(index[f] for f in feats if f in index)
            ptr.append(len(cols))
            y.append(p in marked)
    matrix = sparse.csr_matrix(
        (np.ones(len(cols)), np.array(cols, dtype=np.int64), np.array(ptr)),
        shape=(len(ptr) - 1, len(index)),
    )
    return matrix, np.array(y, dtype=np.int8)


def _fit(data: Marked, c: float, min_count: int, seed: int) -> PositionModel:
    from sklearn.linear_model import LogisticRegression

    rows = [gap_features(text.split()) for text in data.texts]
    counts = Counter(f for features in rows for gap in features for f in gap)
    kept = sorted(f for f, k in counts.items() if k >= min_count)
    index = {f: i for i, f in enumerate(kept)}
    x, y = _design(rows, data.gaps, index)
    clf = LogisticRegression(C=c, max_iter=2000, random_state=seed)
    clf.fit(x, y)
    coef = clf.coef_[0]
    # Rounded here, not on saving, so the metrics are those of the weights a bundle holds.
    weights = {f: round(float(coef[i]), 6) for f, i in index.items()}
    return PositionModel(
        {f: v for f, v in weights.items() if v}, round(float(clf.intercept_[0]), 6)
    )


def _scores(model: PositionModel, data: Marked) -> dict[str, float]:
    """Accuracy of the model and of each rule (none for a file without marked tweets)."""
    out: dict[str, float] = {"n": len(data)}
    if not data.texts:
        return out
    out["model"] = accuracy(model.predict(data.texts), data.gaps)
    for name, rule in RULES.items():
        out[name] = accuracy([rule(t) for t in data.texts], data.gaps)
    return out


def _split_holdout(marked: Marked, fraction: float, seed: int) -> tuple[Marked, Marked]:
    """The marked tweets outside and inside the held-out share (see :func:`in_holdout`)."""
    held = [in_holdout(t, fraction, seed) for t in marked.texts]
    train = Marked(
        [t for t, h in zip(marked.texts, held, strict=True) if not h],
        [g for g, h in zip(marked.gaps, held, strict=True) if not h],
    )
    holdout = Marked(
        [t for t, h in zip(marked.texts, held, strict=True) if h],
        [g for g, h in zip(marked.gaps, held, strict=True) if h],
    )
    return train, holdout


def _data_record(
    train_paths: Sequence[Path],
    parts: list[tuple[Marked, int]],
    val_path: Path | None,
    val_rows: int,
    metrics: dict[str, Any],
) -> dict[str, Any]:
    """The manifest's ``training_data`` and ``validation_data``: each file identified."""
    return {
        "training_data": [
            file_fingerprint(path, rows, marked_tweets=len(part))
            for path, (part, rows) in zip(train_paths, parts, strict=True)
        ],
        "validation_data": (
            file_fingerprint(val_path, val_rows, marked_tweets=metrics["val"]["n"])
            if val_path is not None
            else None
        ),
    }


def fit_position_model(
    train_paths: Sequence[Path],
    val_path: Path | None = None,
    *,
    text_column: str = "text",
    c: float = 1.0,
    min_count: int = 3,
    holdout_fraction: float = 0.2,
    seed: int = 13,
) -> tuple[PositionModel, dict[str, Any]]:
    """Fit on the marked tweets of ``train_paths`` (concatenated) outside a fixed held-out
    share, and score the model and the rules on that share and on ``val_path``'s marked
    tweets.

    The returned model is the one trained without the held-out share, so its held-out
    accuracy is an honest estimate.
    """
    require("train emoji_position", "sklearn", "scipy")
    if not 0 < holdout_fraction < 1:
        raise InputError(f"holdout fraction must lie in (0, 1), got {holdout_fraction}")
    if not train_paths:
        raise InputError("no training data given")
    parts = [read_marked(path, text_column) for path in train_paths]
    marked = Marked(
        [t for part, _ in parts for t in part.texts], [g for part, _ in parts for g in part.gaps]
    )
    names = " + ".join(path.name for path in train_paths)
    train, holdout = _split_holdout(marked, holdout_fraction, seed)
    if not train.texts or not holdout.texts:
        raise InputError(f"{names}: too few marked tweets to fit and hold out")
    model = _fit(train, c, min_count, seed)
    metrics: dict[str, Any] = {
        "accuracy_meaning": "% of marked tweets whose predicted gap is one of their marked gaps",
        "train": _scores(model, train),
        "heldout": _scores(model, holdout),
    }
    val_rows = 0
    if val_path is not None:
        val, val_rows = read_marked(val_path, text_column)
        metrics["val"] = _scores(model, val)
    best_rule = max(RULES, key=lambda name: metrics["heldout"][name])
    metrics["best_rule"] = best_rule
    metrics["heldout_gain_over_best_rule"] = round(
        metrics["heldout"]["model"] - metrics["heldout"][best_rule], 2
    )
    model.manifest = {
        "features": sorted({f.partition("=")[0] for f in model.weights}),
        "settings": {
            "c": c,
            "min_count": min_count,
            "holdout_fraction": holdout_fraction,
            "seed": seed,
            "classifier": "sklearn LogisticRegression (lbfgs), one row per gap",
            "decision": "argmax of the gap scores per tweet",
        },
        "trained_on": (
            f"the {len(train)} marked tweets of {names} outside the held-out "
            f"{holdout_fraction:.0%} (split by sha256 of seed and unmarked text); "
            "not refit on the held-out share, so its accuracy is honest"
        ),
        "cleaning": CLEANING_NOTE,
        "metrics": metrics,
        **_data_record(train_paths, parts, val_path, val_rows, metrics),
        "n_features": len(model.weights),
    }
    return model, metrics


def format_metrics(metrics: dict[str, Any]) -> str:
    """A small table of model and rule accuracy on the held-out share and on Val."""
    parts = [p for p in ("heldout", "val") if metrics.get(p, {}).get("n")]
    header = "".join(f"{part + ' (' + str(metrics[part]['n']) + ')':>18}" for part in parts)
    lines = [f"{'% marked gap hit':<22}{header}"]
    for name in ("model", *RULES):
        lines.append(f"{name:<22}" + "".join(f"{metrics[part][name]:>18.2f}" for part in parts))
    return "\n".join(lines)
