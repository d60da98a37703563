"""The one text cleaning used by training, evaluation and scoring.

Every bundle records the cleaning version it was trained with, and the scorer cleans its
input with that version (one of ``CLEANING_VERSIONS``), so a model never sees text
prepared differently from what it was trained on. New bundles use ``CLEANING_VERSION``.
Change a rule -> add a version.

- Version 1 removed every variation selector.
- Version 2 keeps U+FE0F as the word ``EMOJI_MARK``: in tweets whose emoji was removed
  (the training data, and the tweets the task is measured on) a bare U+FE0F stands where
  an emoji with a text-style default (❤, ☀) stood, about a fifth of all tweets, and it
  is the strongest single sign of the emoji. BERT's tokenizer would drop the
  variation selector itself (a combining mark), so it becomes a symbol every model reads.
"""

import html
import re

CLEANING_VERSION = "2"
CLEANING_VERSIONS = ("1", "2")
# One character, a single WordPiece of the BERT vocabularies, that tweets hardly ever use.
EMOJI_MARK = "¶"

# Mentions are already anonymised to "@user" in TweetEval; map every handle to it so
# live tweets look like the training data.
_MENTION = re.compile(r"@\w+")
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
# Keep the tag word (#christmas -> christmas predicts a tree); drop only the sign.
_HASHTAG = re.compile(r"#(\w+)")
# U+FE0E/U+FE0F variation selectors are leftovers of the removed label emoji here;
# zero-width characters carry nothing either.
_INVISIBLE = {
    "1": re.compile("[\ufe0e\ufe0f\u200b\u200c\u200d\u2060\ufeff]"),
    "2": re.compile("[\ufe0e\u200b\u200c\u200d\u2060\ufeff]"),
}
_VS16 = "\ufe0f"
# Unicode category Cc: C0 and C1 control characters (NUL, escape codes...).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_WHITESPACE = re.compile(r"\s+")
# Rules can uncover each other (``&amp;#35;tag`` -> ``#tag``, one level of a nested
# entity per pass): passes repeat until one changes nothing. Each pass that changes
# the text unwraps an entity or a sign, so a text needs fewer passes than it has
# characters; the bound only guards against a rule set that would loop.
_MIN_PASSES = 8


def _clean_once(text: str, version: str) -> str:
    text = html.unescape(text)  # tweets often carry "&amp;"
    text = _INVISIBLE[version].sub("", text)
    if version != "1":
        text = text.replace(_VS16, f" {EMOJI_MARK} ")
    text = _CONTROL.sub(" ", text)
    text = _URL.sub(" url ", text)
    text = _MENTION.sub("@user", text)
    text = _HASHTAG.sub(r"\1", text)
    text = text.lower()
    return _WHITESPACE.sub(" ", text).strip()


def check_version(version: str) -> None:
    if version not in CLEANING_VERSIONS:
        raise ValueError(f"unknown cleaning version {version!r}; known: {CLEANING_VERSIONS}")


def clean_text(text: str, version: str = CLEANING_VERSION) -> str:
    """Normalise one tweet the way cleaning ``version`` does. Total on any ``str`` and
    idempotent."""
    check_version(version)
    if "&" not in text and "#" not in text:
        # Only an entity or a removed "#" can make one rule's output another rule's
        # input (``@a#b`` -> ``@userb``, ``ht#tp://`` -> ``http://``); without them one
        # pass is already the fixed point, so the proving pass is skipped.
        return _clean_once(text, version)
    for _ in range(max(_MIN_PASSES, len(text) + 1)):
        cleaned = _clean_once(text, version)
        if cleaned == text:
            break
        text = cleaned
    return text


def clean_texts(texts: list[str | None], version: str = CLEANING_VERSION) -> list[str]:
    """Clean a batch; missing text becomes the empty string."""
    check_version(version)
    return [clean_text(t, version) if isinstance(t, str) else "" for t in texts]
