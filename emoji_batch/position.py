"""Where in a tweet the emoji goes: a small linear model over the gaps between tokens.

About a fifth of the TweetEval tweets still carry the U+FE0F variation selector that
followed their removed emoji, right where the emoji stood ("I \\ufe0f the people I work
with"). Those markers supervise a ranking of *gaps*: gap ``p`` of a text with ``n``
whitespace tokens is "after ``p`` tokens" (0 = before the first, ``n`` = after the last).
Marker tokens never count as tokens, so a gap means the same with or without them.

Only numpy and the standard library are imported here: ``predict`` start-up stays fast.
Fitting (:mod:`emoji_batch.position_fit`) imports polars and scikit-learn when it runs.
A bundle is a directory with ``manifest.json`` and ``weights.json`` (feature strings and
their weights); nothing in it is executed or unpickled.
"""

import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from emoji_batch import __version__
from emoji_batch.errors import ModelError
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
        from emoji_batch.fileio import write_json

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
            write_json(directory / name, data, indent=1)

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
