"""Word and character n-gram features for the ``ngram`` family (tf-idf-like models).

scikit-learn's analyzers define the features of a cleaned text: word n-grams (its default
token pattern) and either ``char_wb`` n-grams (each word padded with one space on either
side) or ``char`` n-grams (every window of the text, across words).
The vocabulary is fitted with them and stored one feature per line. Scoring needs the
hundreds of character n-grams of every tweet, too many for sklearn's pure-Python
analyzers and a dictionary lookup each, so the n-grams of a whole batch are found with
NumPy instead: every character window (every window of word hashes, each word hashed
once) hashed to 64 bits and looked up in a :class:`HashIndex`. The tests check that this
yields exactly sklearn's n-grams.
"""

import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from emoji_batch.errors import InputError, ModelError
from emoji_batch.extras import require

if TYPE_CHECKING:
    from sklearn.feature_extraction.text import CountVectorizer

    from emoji_batch.runtimes import NgramRuntime
    from emoji_batch.train_config import TrainConfig

log = logging.getLogger(__name__)
# The weight names of the family's Keras layer, which the NumPy runtime reads too.
TABLE, BIAS, IDF = "ngrams/0:table", "ngrams/1:bias", "ngrams/2:idf"

NGRAMS_FILE = "ngrams.txt"
PAD = "<pad>"
WORD, CHAR = "w", "c"
# Texts whose character windows are hashed at once: bounds the memory of a large chunk.
_SUB_BATCH = 4096
# Odd 64-bit multiplier of the polynomial hash (the FNV prime); uint64 arithmetic wraps.
_PRIME = np.uint64(0x100000001B3)
# A text without a known feature: one padding id, so no batch is ever zero tokens wide.
_NOTHING = np.zeros(1, dtype=np.int32)


# sklearn's default token_pattern: what its word analyzer calls a word.
_WORD = re.compile(r"(?u)\b\w\w+\b")
# What sklearn's char analyzer collapses to one space before taking windows.
_WHITE_SPACES = re.compile(r"\s\s+")
CHAR_ANALYZERS = ("char_wb", "char")


def _vectorizer(
    kind: str, ngrams: Sequence[int], char_analyzer: str = "char_wb"
) -> "CountVectorizer":
    """The sklearn vectorizer whose analyzer defines the ``kind`` n-grams (imported
    here: scoring does without sklearn's second of import; the encoder finds the same
    n-grams in NumPy)."""
    require("fitting an n-gram model", "sklearn", "scipy")
    from sklearn.feature_extraction.text import CountVectorizer

    analyzer = "word" if kind == WORD else char_analyzer
    return CountVectorizer(analyzer=analyzer, ngram_range=tuple(ngrams), lowercase=False)


def _hash_rows(rows: np.ndarray) -> np.ndarray:
    """64-bit polynomial hash of each row of code points (seeded by the row length, so
    n-grams of different lengths never share a hash by construction)."""
    h = np.full(rows.shape[0], rows.shape[1], dtype=np.uint64)
    for k in range(rows.shape[1]):
        h = h * _PRIME + rows[:, k]
    return h


class HashIndex:
    """64-bit n-gram hashes -> feature ids, looked up for a whole batch at once in NumPy:
    an open-addressing table (linear probing) at most a quarter full, so a lookup,
    found or not, mostly ends at its first slot. Hash 0 marks an empty slot (a hash of 0
    is stored as 1; the encoder refuses two n-grams of one hash)."""

    _MIX = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing spreads the slots

    def __init__(self, hashes: np.ndarray, ids: np.ndarray, what: str = "n-grams") -> None:
        hashes = np.maximum(hashes.astype(np.uint64), np.uint64(1))
        self._bits = max(4, int(np.ceil(np.log2(max(len(hashes), 1) * 4))))
        self._mask = np.uint64((1 << self._bits) - 1)
        self._keys = np.zeros(1 << self._bits, dtype=np.uint64)
        self._values = np.zeros(1 << self._bits, dtype=np.int32)
        pending = np.arange(len(hashes))
        home = self._home(hashes)
        step = np.uint64(0)
        while len(pending):
            slots = (home[pending] + step) & self._mask
            free = self._keys[slots] == 0
            slots, items = slots[free], pending[free]
            # One item per free slot this round; the others probe on.
            won, first = np.unique(slots, return_index=True)
            self._keys[won] = hashes[items[first]]
            self._values[won] = ids[items[first]]
            placed = np.zeros(len(hashes), dtype=bool)
            placed[items[first]] = True
            # A hash equal to the one that took its slot is the same key twice.
            if (self._keys[slots] == hashes[items])[~placed[items]].any():
                raise ValueError(f"two {what} share a 64-bit hash (or one is listed twice)")
            pending = pending[~placed[pending]]
            step += np.uint64(1)

    def _home(self, hashes: np.ndarray) -> np.ndarray:
        return (hashes * self._MIX) >> np.uint64(64 - self._bits)

    def lookup(self, hashes: np.ndarray) -> np.ndarray:
        """The id of each hash, 0 where it is not in the index."""
        hashes = np.maximum(hashes.astype(np.uint64), np.uint64(1))
        found = np.zeros(len(hashes), dtype=np.int32)
        pending = np.arange(len(hashes))
        slots = self._home(hashes)
        while len(pending):
            keys = self._keys[slots]
            hit = keys == hashes[pending]
            found[pending[hit]] = self._values[slots[hit]]
            going = ~hit & (keys != 0)
            pending, slots = pending[going], (slots[going] + np.uint64(1)) & self._mask
        return found


# Inverse of _PRIME modulo 2**64 (it is odd): lets one prefix sum hash every word.
_PRIME_INVERSE = np.uint64(pow(int(_PRIME), -1, 2**64))


_POWER_BLOCK = 4096


def _powers(base: np.uint64, n: int) -> np.ndarray:
    """``base**0 .. base**(n-1)`` modulo 2**64 (uint64 products wrap): the powers of one
    block times each block's first power, one product per element, because a cumulative
    product over all ``n`` (millions when a bundle loads) runs element by element."""
    small = np.full(_POWER_BLOCK, base, dtype=np.uint64)
    small[0] = 1
    small = np.cumprod(small, dtype=np.uint64)
    heads = np.full(max(-(-n // _POWER_BLOCK), 1), small[-1], dtype=np.uint64) * base
    heads[0] = 1
    heads = np.cumprod(heads, dtype=np.uint64)
    return (heads[:, None] * small[None, :]).ravel()[:n]


def _word_hashes(words: list[str]) -> np.ndarray:
    """A 64-bit hash of each word (see :func:`_span_hashes`)."""
    lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
    ends = np.cumsum(lengths)
    return _span_hashes(_code_points("".join(words)), ends - lengths, ends)


def _span_hashes(cp: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each span ``[start, end)`` of code points: a polynomial in
    ``_PRIME`` seeded by its length, then mixed, for every span at once.

    With ``S`` the prefix sums of ``c_i * inverse**i``, a span ``[s, e)`` is
    ``(S[e] - S[s]) * prime**(e-1)`` = the sum of ``c_i * prime**(e-1-i)``."""
    sums = np.concatenate([[np.uint64(0)], np.cumsum(cp * _powers(_PRIME_INVERSE, len(cp)))])
    up = _powers(_PRIME, len(cp) + 1)[np.maximum(ends - 1, 0)]
    body = (sums[ends] - sums[starts]) * up
    return _mix(body * _PRIME + (ends - starts).astype(np.uint64))


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: word hashes are combined into n-gram hashes by the same
    polynomial that made them, which would make ``00 11`` and ``01 01`` collide; mixed
    first, they share no structure."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _word_tables(grams: list[str], ngrams: Sequence[int]) -> HashIndex:
    """The hash of every word n-gram of ``grams`` (feature ids 1..), a window of its
    words' hashes, with its feature id, to look windows up."""
    low, high = ngrams
    # The n-grams joined by spaces are their words joined by spaces (words hold none).
    cp = _code_points(" ".join(grams))
    spaces = np.flatnonzero(cp == 32)
    word_starts = np.concatenate([[0], spaces + 1]) if grams else np.zeros(0, np.int64)
    word_ends = np.concatenate([spaces, [len(cp)]]) if grams else np.zeros(0, np.int64)
    index = _span_hashes(cp, word_starts, word_ends)
    gram_ends = np.cumsum(np.fromiter(map(len, grams), dtype=np.int64, count=len(grams)) + 1)
    sizes = np.diff(np.concatenate([[0], np.searchsorted(spaces, gram_ends - 1) + 1]))
    if len(sizes) and not ((sizes >= low) & (sizes <= high)).all():
        raise ValueError(f"word n-grams must be {low}-{high} words long")
    starts = np.cumsum(sizes) - sizes
    hashes, ids = [], []
    for n in range(low, high + 1):
        group = np.flatnonzero(sizes == n)
        if len(group):
            hashes.append(_hash_rows(index[starts[group][:, None] + np.arange(n)]))
            ids.append((group + 1).astype(np.int32))
    return HashIndex(
        np.concatenate(hashes or [np.zeros(0, np.uint64)]),
        np.concatenate(ids or [np.zeros(0, np.int32)]),
        "word n-grams",
    )


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)


class NgramEncoder:
    """Maps a cleaned text to the ids of its distinct known n-grams; id 0 is padding.

    ``features`` are (kind, n-gram) pairs, kind ``w`` (word) or ``c`` (``char_analyzer``:
    char_wb or char), the words first (the model normalises ids up to ``n_words`` on
    their own); a feature's id is its index + 1.
    """

    def __init__(
        self,
        features: list[tuple[str, str]],
        word_ngrams: Sequence[int],
        char_ngrams: Sequence[int],
        char_analyzer: str = "char_wb",
    ) -> None:
        is_char = np.fromiter((kind == CHAR for kind, _ in features), bool, len(features))
        n_words = len(features) - int(is_char.sum())
        if is_char[:n_words].any():
            raise ValueError("word n-grams must come before char n-grams")
        grams = [f for _, f in features]
        self._setup(grams, n_words, word_ngrams, char_ngrams, char_analyzer)

    @classmethod
    def from_grams(
        cls,
        grams: list[str],
        n_words: int,
        word_ngrams: Sequence[int],
        char_ngrams: Sequence[int],
        char_analyzer: str = "char_wb",
    ) -> "NgramEncoder":
        """The encoder of ``grams``, the first ``n_words`` word n-grams, the rest char
        n-grams (what a bundle's ``ngrams.txt`` holds, without building pairs)."""
        encoder = cls.__new__(cls)
        encoder._setup(grams, n_words, word_ngrams, char_ngrams, char_analyzer)
        return encoder

    def subset(self, ids: np.ndarray) -> "NgramEncoder":
        """The encoder of the features ``ids`` (sorted; padding, 0, is skipped), numbered
        1.. in that order: what pruning a model's weight table to those rows needs."""
        kept = [self._grams[i - 1] for i in ids.tolist() if i]
        n_words = int(np.count_nonzero((ids > 0) & (ids <= self.n_words)))
        return NgramEncoder.from_grams(
            kept, n_words, self.word_ngrams, self.char_ngrams, self.char_analyzer
        )

    @property
    def features(self) -> list[tuple[str, str]]:
        return [(WORD if i < self.n_words else CHAR, g) for i, g in enumerate(self._grams)]

    def _setup(
        self,
        grams: list[str],
        n_words: int,
        word_ngrams: Sequence[int],
        char_ngrams: Sequence[int],
        char_analyzer: str,
    ) -> None:
        low, high = char_ngrams
        if char_analyzer not in CHAR_ANALYZERS:
            raise ValueError(
                f"char analyzer must be one of {CHAR_ANALYZERS}, not {char_analyzer!r}"
            )
        if char_analyzer == "char_wb" and not 2 <= low <= 3:
            # Words are padded to >= 3 characters: below that, sklearn's char_wb adds
            # short words whole, which the window search here does not reproduce.
            raise ValueError(f"char_wb n-gram range must start at 2 or 3, not {char_ngrams}")
        if not 1 <= low <= high:
            raise ValueError(f"bad char n-gram range {char_ngrams}")
        self.char_analyzer = char_analyzer
        self.n_words, self._grams = n_words, grams
        self.word_ngrams, self.char_ngrams = tuple(word_ngrams), (low, high)
        self._word_lookup = _word_tables(grams[: self.n_words], self.word_ngrams)
        chars = grams[self.n_words :]
        lengths = pl.Series(chars, dtype=pl.String).str.len_chars().to_numpy()
        hashes, ids = [], []
        for n in range(low, high + 1):
            group = np.flatnonzero(lengths == n)
            if len(group):
                joined = "".join([chars[i] for i in group])
                hashes.append(_hash_rows(_code_points(joined).reshape(len(group), n)))
                ids.append((group + self.n_words + 1).astype(np.int32))
        char_ids = np.concatenate(ids or [np.zeros(0, np.int32)])
        if len(char_ids) != len(chars):
            raise ValueError(f"char n-grams must be {low}-{high} characters long")
        self._char_lookup = HashIndex(
            np.concatenate(hashes or [np.zeros(0, np.uint64)]), char_ids, "char n-grams"
        )

    def __len__(self) -> int:
        """Rows of the feature table: the features plus padding."""
        return len(self._grams) + 1

    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        word_ngrams: Sequence[int],
        char_ngrams: Sequence[int],
        min_df: int,
        char_analyzer: str = "char_wb",
    ) -> tuple["NgramEncoder", np.ndarray]:
        """The n-grams found in at least ``min_df`` texts, and the idf of every id
        (sklearn's smoothed ``ln((1 + n) / (1 + df)) + 1``; 0 for padding)."""
        features: list[tuple[str, str]] = []
        dfs = [np.zeros(1)]
        for kind, ngrams in ((WORD, word_ngrams), (CHAR, char_ngrams)):
            vectorizer = _vectorizer(kind, ngrams, char_analyzer)
            vectorizer.set_params(min_df=min_df, binary=True)
            counts = vectorizer.fit_transform(texts)
            features += [(kind, str(f)) for f in vectorizer.get_feature_names_out()]
            dfs.append(np.asarray(counts.sum(axis=0)).ravel())
        df = np.concatenate(dfs)
        idf = np.log((1 + len(texts)) / (1 + df)) + 1
        idf[0] = 0.0
        return cls(features, word_ngrams, char_ngrams, char_analyzer), idf.astype(np.float32)

    @classmethod
    def fit_settings(
        cls, texts: Sequence[str], settings: dict[str, Any], architecture: str
    ) -> tuple["NgramEncoder", np.ndarray]:
        """:meth:`fit` with an architecture's n-gram settings; a bad range, or a
        ``min_df`` that leaves no n-gram, is an input error naming the architecture."""
        try:
            return cls.fit(
                texts,
                settings["word_ngrams"],
                settings["char_ngrams"],
                int(settings["min_df"]),
                settings["char_analyzer"],
            )
        except ValueError as exc:
            raise InputError(f"{architecture}: {exc}") from exc

    def encode(self, texts: Sequence[str], max_length: int) -> list[np.ndarray]:
        """Sorted distinct feature ids per text, from its first ``max_length`` n-grams
        (word n-grams, then character n-grams, each in text order)."""
        texts = list(texts)
        out: list[np.ndarray] = []
        # Sub-batches small enough that (text, id) pairs sort as 31-bit keys.
        step = max(1, min(_SUB_BATCH, (2**31 - 1) // len(self)))
        for start in range(0, len(texts), step):
            out += self._encode(texts[start : start + step], max_length)
        return out

    def _encode(self, texts: list[str], max_length: int) -> list[np.ndarray]:
        word_text, word_ids = self._words(texts)
        char_text, char_ids = self._chars(texts)
        # Rank of each n-gram within its text, word n-grams first, to cut long texts.
        n_words = np.bincount(word_text, minlength=len(texts))
        n_chars = np.bincount(char_text, minlength=len(texts))
        word_rank = np.arange(len(word_text)) - (np.cumsum(n_words) - n_words)[word_text]
        char_rank = np.arange(len(char_text)) - (np.cumsum(n_chars) - n_chars)[char_text]
        text = np.concatenate([word_text, char_text]).astype(np.int32)
        ids = np.concatenate([word_ids, char_ids]).astype(np.int32)
        keep = (ids > 0) & (
            np.concatenate([word_rank, char_rank + n_words[char_text]]) < max_length
        )
        # One sort orders every text's ids and puts repeats side by side (encode keeps
        # text * width + id below 2**31: int32 keys sort about twice as fast as int64).
        width = np.int32(len(self))
        key = np.sort(text[keep] * width + ids[keep])
        first = np.ones(len(key), dtype=bool)
        np.not_equal(key[1:], key[:-1], out=first[1:])
        key = key[first]
        bounds = np.searchsorted(key // width, np.arange(1, len(texts)))
        parts = np.split(key % width, bounds)
        return [p if len(p) else _NOTHING for p in parts]

    def _words(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Text index and id (0: unknown) of every word n-gram, in the order of sklearn's
        word analyzer: each text's n-grams, n from low to high, each in text order.

        Every word of the batch is hashed at once; an n-gram is then a window of word
        hashes, hashed and looked up like the character n-grams."""
        words = [_WORD.findall(t) for t in texts]
        counts = np.fromiter(map(len, words), dtype=np.int64, count=len(texts))
        index = _word_hashes([w for ws in words for w in ws])
        text_of = np.repeat(np.arange(len(texts)), counts)
        low, high = self.word_ngrams
        found_text, found_ids = [], []
        for n in range(low, high + 1):
            m = len(index) - n + 1
            if m <= 0:
                break
            same = text_of[:m] == text_of[n - 1 :]
            hashes = _hash_rows(np.lib.stride_tricks.sliding_window_view(index, n)[same])
            found_text.append(text_of[:m][same])
            found_ids.append(self._word_lookup.lookup(hashes))
        if not found_text:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)
        text = np.concatenate(found_text)
        order = np.argsort(text, kind="stable")  # per text: n from low to high
        return text[order], np.concatenate(found_ids)[order]

    def _chars(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Text index and id (0: unknown) of every char n-gram, position by position.

        char_wb: words are joined by two spaces (" ab  cd "), so a window is one of a
        padded word's n-grams exactly when no space lies inside it (or, for two
        characters, it is not two spaces) and it does not cross into the next text.
        char: every window that does not cross into the next text.
        """
        wb = self.char_analyzer == "char_wb"
        if wb:
            padded = [" " + "  ".join(t.split()) + " " for t in texts]
        else:
            padded = [_WHITE_SPACES.sub(" ", t) for t in texts]
        cp = _code_points("".join(padded))
        text_of = np.repeat(np.arange(len(texts)), [len(p) for p in padded])
        space = cp == 32
        spaces = np.concatenate([[0], np.cumsum(space, dtype=np.int64)])
        low, high = self.char_ngrams
        hashes = np.zeros((len(cp), high - low + 1), dtype=np.uint64)
        if not len(cp):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)
        valid = np.zeros(hashes.shape, dtype=bool)
        for j, n in enumerate(range(low, high + 1)):
            m = len(cp) - n + 1
            if m <= 0:
                break
            hashes[:m, j] = _hash_rows(np.lib.stride_tricks.sliding_window_view(cp, n))
            ok = text_of[:m] == text_of[n - 1 :]
            if wb:
                ok &= spaces[n - 1 : n - 1 + m] == spaces[1 : 1 + m]
                if n == 2:
                    ok &= ~(space[:m] & space[1:])
            valid[:m, j] = ok
        found = self._char_lookup.lookup(hashes[valid])
        return np.broadcast_to(text_of[:, None], valid.shape)[valid], found

    def save(self, directory: Path) -> dict[str, str]:
        """Write ``ngrams.txt`` (line number = id: padding, then ``kind<TAB>n-gram``)."""
        kinds = [WORD] * self.n_words + [CHAR] * (len(self._grams) - self.n_words)
        lines = [PAD, *(f"{kind}\t{f}" for kind, f in zip(kinds, self._grams, strict=True))]
        (directory / NGRAMS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
        return {"ngrams": NGRAMS_FILE}

    @classmethod
    def load(cls, path: Path, config: dict[str, Any]) -> "NgramEncoder":
        """The encoder a bundle's ``ngrams.txt`` and manifest config describe."""
        lines = path.read_text(encoding="utf-8").split("\n")[:-1]
        if not lines or lines[0] != PAD:
            raise ModelError(f"{path}: the first line must be {PAD}")
        body = pl.Series(lines[1:], dtype=pl.String)
        good = (body.str.starts_with(WORD + "\t") | body.str.starts_with(CHAR + "\t")) & (
            body.str.len_chars() > 2
        )
        if not good.all():
            lineno = int(np.flatnonzero(~good.to_numpy())[0]) + 2
            raise ModelError(f"{path}:{lineno}: expected 'w' or 'c', a tab and an n-gram")
        is_char = body.str.starts_with(CHAR).to_numpy()
        n_words = len(is_char) - int(is_char.sum())
        try:
            if is_char[:n_words].any():
                raise ValueError("word n-grams must come before char n-grams")
            encoder = cls.from_grams(
                body.str.slice(2).to_list(),
                n_words,
                config["word_ngrams"],
                config["char_ngrams"],
                config.get("char_analyzer", "char_wb"),
            )
            if encoder.n_words != config["n_word_features"]:
                raise ValueError(f"{encoder.n_words} word n-grams, the model has a different count")
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{path}: {exc!r}") from exc
        return encoder


def prepare_training(
    config: "TrainConfig", train_clean: list[str], params: dict[str, Any]
) -> tuple[NgramEncoder, Callable[[Any], None]]:
    """The n-gram vocabulary of the training text, and its idf for the model's weights."""
    if config.embeddings is not None or config.encoder is not None:
        raise InputError(f"{config.architecture} takes neither --embeddings nor --encoder")
    encoder, idf = NgramEncoder.fit_settings(train_clean, params, config.architecture)
    params |= {"n_features": len(encoder), "n_word_features": encoder.n_words}
    lengths = np.array([len(s) for s in encoder.encode(train_clean, params["max_length"])])
    log.info(
        "%d n-grams in >= %d texts; distinct per tweet: median %d, 99th percentile %d, max %d",
        len(encoder) - 1,
        params["min_df"],
        np.median(lengths),
        np.percentile(lengths, 99),
        lengths.max(),
    )
    return encoder, lambda model: model.get_layer("ngrams").idf.assign(idf)


def numpy_runtime(weight: Callable[[str], np.ndarray], config: dict[str, Any]) -> "NgramRuntime":
    """A linear n-gram model's fp32 in NumPy, from the Keras layer's weights by name."""
    from emoji_batch.runtimes import NgramRuntime

    return NgramRuntime(weight(TABLE), weight(IDF), weight(BIAS), int(config["n_word_features"]))
