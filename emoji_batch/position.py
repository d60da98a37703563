"""Where in a tweet the emoji goes: a small linear model over the gaps between tokens.

About a fifth of the TweetEval tweets still carry the U+FE0F variation selector that
followed their removed emoji, right where the emoji stood ("I \\ufe0f the people I work
with"). Those markers supervise a ranking of *gaps*: gap ``p`` of a text with ``n``
whitespace tokens is "after ``p`` tokens" (0 = before the first, ``n`` = after the last).
Marker tokens never count as tokens, so a gap means the same with or without them.

Only numpy and the standard library are imported here: ``predict`` start-up stays fast.
Fitting imports polars and scikit-learn when it runs. A bundle is a directory with
``manifest.json`` and ``weights.json`` (feature strings and their weights); nothing in it
is executed or unpickled.
"""

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from emoji_batch import __version__
from emoji_batch.errors import InputError, ModelError
from emoji_batch.extras import require
from emoji_batch.manifests import MANIFEST, POSITION, read_json_object, read_manifest_json

KIND = POSITION
FORMAT_VERSION = 1
# What gap_features computes; bump it with any change, as bundles store weights by name.
FEATURES_VERSION = 1
WEIGHTS = "weights.json"
SHIPPED_NAME = "emoji_position"

# What the removed emoji left behind: variation selectors and the zero-width joiner.
MARKER_CHARS = "\ufe0e\ufe0f\u200d"
_MARKERS = re.compile(f"[{MARKER_CHARS}]+")
_TOKEN = re.compile(r"\S+")
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_PUNCT = re.compile(r"[^\w\s]+")
_NUMBER = re.compile(r"[\d.,:/%$-]*\d[\d.,:/%$-]*")
# Buckets far from the ends all behave alike; capping keeps the vocabulary small.
_MAX_DISTANCE = 8
CLEANING_NOTE = (
    "Raw text split on whitespace; tokens made only of U+FE0E/U+FE0F/U+200D are marker "
    "tokens and are dropped, marker characters at a token's edges are stripped. "
    "Features read token kinds and lowercased neighbouring words; emoji_batch.cleaning "
    "is not applied (it would move @-mentions, URLs and hashtags that place the emoji)."
)


def _is_marker(token: str) -> bool:
    return not token.strip(MARKER_CHARS)


def _content_tokens(text: str) -> Iterator[re.Match[str]]:
    """The whitespace tokens of ``text`` that count for gaps: every non-marker token."""
    return (m for m in _TOKEN.finditer(text) if not _is_marker(m.group()))


def marked_gaps(text: str) -> tuple[str, set[int]]:
    """``text`` without its markers (tokens joined by one space) and the gaps they marked.

    A marker token marks the gap it stands in; markers glued to a token's start (the
    emoji stood right before it) mark the gap before that token, glued to its end the
    gap after it. Markers inside a token mark nothing and are dropped.
    """
    tokens: list[str] = []
    gaps: set[int] = set()
    for raw in text.split():
        if _is_marker(raw):
            gaps.add(len(tokens))
            continue
        if raw[0] in MARKER_CHARS:
            gaps.add(len(tokens))
        if raw[-1] in MARKER_CHARS:
            gaps.add(len(tokens) + 1)
        tokens.append(_MARKERS.sub("", raw))
    return " ".join(tokens), gaps


def insert_emoji(text: str, emoji: str, position: int) -> str:
    """``text`` with ``emoji`` put into gap ``position``, everything else kept as it was.

    Gap 0 inserts ``emoji + " "`` before the first token; gap ``p > 0`` inserts
    ``" " + emoji`` right after token ``p - 1``, so the last gap comes after the last
    token and before any trailing whitespace. Marker tokens are not counted. A text with
    no tokens becomes ``emoji + text``.
    """
    tokens = list(_content_tokens(text))
    if not 0 <= position <= len(tokens):
        raise ValueError(f"gap {position} is outside 0..{len(tokens)} for {text!r}")
    if not tokens:
        return emoji + text
    if position == 0:
        start = tokens[0].start()
        return f"{text[:start]}{emoji} {text[start:]}"
    end = tokens[position - 1].end()
    return f"{text[:end]} {emoji}{text[end:]}"


def _tokens(text: str) -> list[str]:
    """The unmarked tokens features are read from."""
    return marked_gaps(text)[0].split()


def _kind(token: str) -> str:
    if token == "@":
        return "at"
    if token.startswith("@"):
        return "mention"
    if _URL.match(token):
        return "url"
    if token.startswith("#"):
        return "hashtag" if len(token) > 1 else "hash"
    if token.endswith(("…", "...")) and token.rstrip(".…"):
        return "cut"
    if _PUNCT.fullmatch(token):
        return "punct"
    if _NUMBER.fullmatch(token):
        return "number"
    if token.isupper() and len(token) > 1:
        return "upper"
    return "cap" if token[:1].isupper() else "word"


def _trailing_start(tokens: list[str]) -> int:
    """Where the trailing run of tags starts: a final ``@ Place`` check-in and the
    @-mentions, URLs and hashtags just before it (``len(tokens)`` when there are none)."""
    start = len(tokens)
    if "@" in tokens:
        start = len(tokens) - 1 - tokens[::-1].index("@")
    while start > 0 and _kind(tokens[start - 1]) in ("mention", "url", "hashtag"):
        start -= 1
    return start


def rule_end(text: str) -> int:
    """Baseline: the emoji goes at the end of the text."""
    return len(_tokens(text))


def rule_before_trailing(text: str) -> int:
    """Baseline: before a trailing run of ``@ Place`` / URL / hashtag / mention tokens,
    else at the end."""
    return _trailing_start(_tokens(text))


def rule_before_checkin(text: str) -> int:
    """Baseline: right before a final ``@ Place`` check-in, else at the end."""
    tokens = _tokens(text)
    return len(tokens) - 1 - tokens[::-1].index("@") if "@" in tokens else len(tokens)


RULES = {
    "rule_end": rule_end,
    "rule_before_trailing": rule_before_trailing,
    "rule_before_checkin": rule_before_checkin,
}


def _word(token: str) -> str:
    """A token as a vocabulary entry: lowercased, mentions and URLs collapsed."""
    kind = _kind(token)
    if kind in ("mention", "url", "number"):
        return f"<{kind}>"
    return token.lower()


def _edge(token: str, side: int) -> str:
    """The punctuation a token ends (side -1) or starts (side 0) with, if any."""
    char = token[side]
    return char if not char.isalnum() else ""


def gap_features(tokens: list[str]) -> list[list[str]]:
    """Feature strings of every gap ``0..len(tokens)`` of one tokenized text."""
    n = len(tokens)
    trailing = _trailing_start(tokens)
    kinds = [_kind(t) for t in tokens]
    words = [_word(t) for t in tokens]
    # Sentences ended before each gap: the emoji often closes the first one.
    ended = [0]
    for token in tokens:
        ended.append(ended[-1] + (token[-1] in ".!?"))
    first_tag = next((i for i, k in enumerate(kinds) if k in ("hashtag", "at")), n)
    out = []
    for p in range(n + 1):
        prev_kind = kinds[p - 1] if p > 0 else "START"
        next_kind = kinds[p] if p < n else "END"
        prev_word = words[p - 1] if p > 0 else "<s>"
        next_word = words[p] if p < n else "</s>"
        to_trailing = trailing - p
        feats = [
            f"left={min(p, _MAX_DISTANCE)}",
            f"right={min(n - p, _MAX_DISTANCE)}",
            f"rel={round(4 * p / n) if n else 4}",
            f"to_trailing={max(-2, min(to_trailing, _MAX_DISTANCE))}",
            f"in_trailing={p > trailing}",
            f"pk={prev_kind}",
            f"nk={next_kind}",
            f"pk,nk={prev_kind},{next_kind}",
            f"pw={prev_word}",
            f"nw={next_word}",
            f"pw,nk={prev_word},{next_kind}",
            f"pk,nw={prev_kind},{next_word}",
            f"pw,nw={prev_word},{next_word}",
            f"nk,to_trailing={next_kind},{max(-2, min(to_trailing, 3))}",
        ]
        feats += [
            f"ended={min(ended[p], 2)}",
            f"ended,pend={min(ended[p], 2)},{_edge(tokens[p - 1], -1) if p else ''}",
            f"first_tag={p - first_tag if abs(p - first_tag) < 2 else 'far'}",
        ]
        if p + 1 < n:
            feats.append(f"nk,nnk={next_kind},{kinds[p + 1]}")
        if p > 0:
            feats.append(f"pend={_edge(tokens[p - 1], -1)}")
            if p > 1:
                feats.append(f"ppw,pw={words[p - 2]},{prev_word}")
        if p < n:
            feats.append(f"nstart={_edge(tokens[p], 0)}")
            if p + 1 < n:
                feats.append(f"nw,nnw={next_word},{words[p + 1]}")
        out.append(feats)
    return out


@dataclass
class PositionModel:
    """Scores each gap by summed feature weights; the best-scoring gap wins."""

    weights: dict[str, float]
    intercept: float = 0.0
    manifest: dict[str, Any] = field(default_factory=dict)

    def gap_scores(self, text: str) -> np.ndarray:
        """One score per gap ``0..n`` of ``text`` (markers ignored)."""
        w = self.weights
        feats = gap_features(_tokens(text))
        return np.array(
            [self.intercept + sum(w.get(f, 0.0) for f in gap) for gap in feats], dtype=np.float64
        )

    def predict(self, texts: Sequence[str]) -> list[int]:
        """The gap for each text; 0 for one without tokens."""
        return [int(np.argmax(self.gap_scores(text))) for text in texts]

    def fingerprint(self) -> str:
        """Hash of everything its placements depend on (for ``--resume`` journals): the
        weights, the intercept and the features they score."""
        content = {
            "features_version": FEATURES_VERSION,
            "intercept": self.intercept,
            "weights": sorted(self.weights.items()),
        }
        return hashlib.sha256(json.dumps(content).encode()).hexdigest()

    def save(self, directory: Path) -> None:
        """Write ``weights.json`` and then ``manifest.json`` (last: a bundle is whole or
        absent)."""
        from emoji_batch.fileio import atomic_output

        directory.mkdir(parents=True, exist_ok=True)
        weights = {"intercept": self.intercept, "weights": dict(sorted(self.weights.items()))}
        manifest = {
            "format_version": FORMAT_VERSION,
            "kind": KIND,
            "features_version": FEATURES_VERSION,
            "package_version": __version__,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            **self.manifest,
            "files": {"weights": WEIGHTS},
        }
        for name, data in ((WEIGHTS, weights), (MANIFEST, manifest)):
            with atomic_output(directory / name, force=True) as tmp:
                tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", "utf-8")

    @classmethod
    def load(cls, directory: Path) -> "PositionModel":
        directory = Path(directory)
        manifest = read_manifest_json(directory, KIND, FORMAT_VERSION)
        if manifest.get("features_version") != FEATURES_VERSION:
            raise ModelError(
                f"{directory}: gap features version {manifest.get('features_version')!r}, "
                f"this emoji-batch computes version {FEATURES_VERSION}"
            )
        data = read_json_object(directory / WEIGHTS)
        try:
            weights = {str(f): float(v) for f, v in data["weights"].items()}
            return cls(weights, float(data["intercept"]), manifest)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{directory}: malformed {WEIGHTS} ({exc!r})") from exc


def load_position_model(
    models_dir: Path | None = None, model: str | Path | None = None
) -> PositionModel:
    """The shipped bundle; or ``model``, a bundle directory or a name looked up like
    ``--model NAME``; with ``models_dir`` alone, its ``emoji_position`` if it has one."""
    if model is None and models_dir is None:
        # What bundle.shipped_models_dir() says, without importing the bundle module's
        # polars and pyarrow.
        return PositionModel.load(
            Path(str(resources.files("emoji_batch") / "models" / SHIPPED_NAME))
        )
    from emoji_batch.bundle import resolve_model

    return PositionModel.load(
        resolve_model(str(model or SHIPPED_NAME), models_dir, implied=model is None)
    )


# --- fitting ------------------------------------------------------------------------


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
    held = [in_holdout(t, holdout_fraction, seed) for t in marked.texts]
    train = Marked(
        [t for t, h in zip(marked.texts, held, strict=True) if not h],
        [g for g, h in zip(marked.gaps, held, strict=True) if not h],
    )
    holdout = Marked(
        [t for t, h in zip(marked.texts, held, strict=True) if h],
        [g for g, h in zip(marked.gaps, held, strict=True) if h],
    )
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
        "training_data": [
            _fingerprint(path, rows, len(part))
            for path, (part, rows) in zip(train_paths, parts, strict=True)
        ],
        "validation_data": (
            _fingerprint(val_path, val_rows, metrics["val"]["n"]) if val_path is not None else None
        ),
        "n_features": len(model.weights),
    }
    return model, metrics


def _fingerprint(path: Path, rows: int, marked: int) -> dict[str, Any]:
    """Identify a data file by name, row count, marked tweets and content hash."""
    from emoji_batch.fileio import file_digest

    return {"path": path.name, "rows": rows, "marked_tweets": marked, "sha256": file_digest(path)}


def format_metrics(metrics: dict[str, Any]) -> str:
    """A small table of model and rule accuracy on the held-out share and on Val."""
    parts = [p for p in ("heldout", "val") if metrics.get(p, {}).get("n")]
    header = "".join(f"{part + ' (' + str(metrics[part]['n']) + ')':>18}" for part in parts)
    lines = [f"{'% marked gap hit':<22}{header}"]
    for name in ("model", *RULES):
        lines.append(f"{name:<22}" + "".join(f"{metrics[part][name]:>18.2f}" for part in parts))
    return "\n".join(lines)
