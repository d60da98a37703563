"""One tweet at a time: its top-k emoji and the tweet with the best one put in place.

The library behind ``emoji-batch predict`` and the demo page. Tweets go through the same
path as a chunk of ``score`` (:func:`emoji_batch.scoring.prepare_chunk`: the same
cleaning and the same reasons a text cannot be scored), and the position model places
the emoji without rewriting anything else.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from emoji_batch.fileio import INVALID_UTF8
from emoji_batch.loading import AnyPredictor
from emoji_batch.position import insert_emoji
from emoji_batch.predictor import top_k
from emoji_batch.scoring import Placer, PreparedChunk, prepare_chunk, python_texts

TEXT = "text"


@dataclass(frozen=True)
class TweetPrediction:
    """One tweet's answer; ``error`` says why it has none (as ``score_error`` would)."""

    text: str | None
    top: list[tuple[str, float]]
    position: int | None = None
    text_with_emoji: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "text_with_emoji": self.text_with_emoji,
            "position": self.position,
            "top_k": [{"emoji": e, "probability": round(p, 6)} for e, p in self.top],
            "error": self.error,
        }


def check_texts(texts: object) -> None:
    """A bare string is a sequence of characters: refuse it rather than score each one."""
    if isinstance(texts, str | bytes):
        raise TypeError(
            f"texts must be a sequence of texts, not a single {type(texts).__name__}; "
            "pass [text] to score one"
        )


def prepare_texts(
    texts: Sequence[object],
    predictor: AnyPredictor,
    invalid_utf8: Sequence[bool] | None = None,
) -> PreparedChunk:
    """In-memory texts as one chunk of ``score``: the same cleaning, encoding and reasons
    a text cannot be scored (``invalid_utf8`` flags texts read from bytes that were not
    UTF-8). Values that are not strings (None, NaN, numbers, bytes) are rows that cannot
    be scored, with the reason ``score`` gives."""
    check_texts(texts)
    row_texts = python_texts(texts)
    # Built through polars: pyarrow's own constructors import pandas where it is installed
    # (the spark extra has it), a second of start-up for one tweet.
    columns = {TEXT: pl.Series(row_texts[0], dtype=pl.String)}
    if invalid_utf8 is not None and any(invalid_utf8):  # (reading it back imports pandas)
        columns[INVALID_UTF8] = pl.Series(list(invalid_utf8), dtype=pl.Boolean)
    return prepare_chunk(pl.DataFrame(columns).to_arrow(), TEXT, predictor, row_texts)


def predict_tweets(
    texts: Sequence[object],
    predictor: AnyPredictor,
    placer: Placer | None,
    k: int = 5,
    invalid_utf8: Sequence[bool] | None = None,
) -> list[TweetPrediction]:
    """Top-``k`` emoji of each text and, with a ``placer``, the text with its top emoji
    inserted where the placer says it goes (``position``: whitespace tokens before it).
    Texts flagged in ``invalid_utf8`` (read from bytes that were not UTF-8) are not
    scored, for the reason ``score`` gives."""
    chunk = prepare_texts(texts, predictor, invalid_utf8)
    ids, values = top_k(predictor.predict_encoded(chunk.encoded), k)
    emoji = [label.emoji for label in predictor.labels]
    good = [t for t, ok in zip(chunk.texts, chunk.ok, strict=True) if ok]
    positions = placer.predict(good) if placer is not None else [None] * len(good)
    scored = iter(zip(good, ids.tolist(), values.tolist(), positions, strict=True))
    out = []
    for text, error in zip(chunk.texts, chunk.errors, strict=True):
        if error is not None:
            out.append(TweetPrediction(text, [], error=error))
            continue
        text, row_ids, row_values, at = next(scored)
        top = [(emoji[i], float(v)) for i, v in zip(row_ids, row_values, strict=True)]
        placed = None if at is None else insert_emoji(text, top[0][0], at)
        out.append(TweetPrediction(text, top, at, placed))
    return out
