"""Word vocabulary and GloVe vectors for the GloVe-family models.

Token ids: 0 is padding, 1 is the unknown word, then words without a GloVe vector
(their rows are always trainable), then words with one (rows that can be frozen).
"""

import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emoji_batch.errors import InputError

if TYPE_CHECKING:
    from emoji_batch.train_config import TrainConfig

log = logging.getLogger(__name__)

VOCAB_FILE = "vocab.txt"
PAD = "<pad>"
UNK = "<unk>"
_TOKEN = re.compile(r"\w+|[^\w\s]")


def tokenize(text: str) -> list[str]:
    """Split cleaned text into words and single punctuation/emoji characters."""
    return _TOKEN.findall(text)


class WordVocab:
    """Maps tokens to ids; ``n_trainable`` leading ids have no pretrained vector."""

    def __init__(self, words: list[str], n_trainable: int) -> None:
        if words[:2] != [PAD, UNK]:
            raise ValueError("vocabulary must start with the padding and unknown tokens")
        self.words = words
        self.n_trainable = n_trainable
        self._ids = {w: i for i, w in enumerate(words)}

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, texts: Iterable[str], max_length: int) -> list[np.ndarray]:
        """Token ids per text, truncated to ``max_length``; never empty (an empty text is [UNK])."""
        ids = self._ids
        out = []
        for text in texts:
            seq = [ids.get(tok, 1) for tok in tokenize(text)[:max_length]] or [1]
            out.append(np.asarray(seq, dtype=np.int32))
        return out

    def save(self, directory: Path) -> dict[str, str]:
        """Write ``vocab.txt`` (line number = id); return the manifest's file entries."""
        (directory / VOCAB_FILE).write_text("\n".join(self.words) + "\n", encoding="utf-8")
        return {"vocab": VOCAB_FILE}

    @classmethod
    def load(cls, path: Path, config: dict[str, Any]) -> "WordVocab":
        """The vocabulary in ``vocab.txt``; ``config`` says how many rows are trainable."""
        words = path.read_text(encoding="utf-8").split("\n")[:-1]
        return cls(words, int(config["n_trainable"]))


def read_glove(path: Path, keep: set[str]) -> dict[str, np.ndarray]:
    """Vectors for the words in ``keep`` from a GloVe text file of any dimension."""
    vectors: dict[str, np.ndarray] = {}
    dim = None
    try:
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                word, _, rest = line.rstrip("\n").partition(" ")
                if word not in keep:
                    continue
                vec = np.asarray(rest.split(" "), dtype=np.float32)
                if dim is None:
                    dim = vec.shape[0]
                elif vec.shape[0] != dim:
                    raise InputError(f"{path}:{lineno}: {vec.shape[0]} values, expected {dim}")
                vectors[word] = vec
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read GloVe embeddings from {path}: {exc}") from exc
    if not vectors:
        raise InputError(f"{path} has no vectors for any word of the training data")
    return vectors


def build_vocab(
    texts: Iterable[str], glove: dict[str, np.ndarray], min_count: int, max_size: int
) -> WordVocab:
    """Words seen ``min_count`` times, plus every seen word GloVe knows, most frequent first."""
    counts = Counter(tok for text in texts for tok in tokenize(text))
    kept = [w for w, c in counts.most_common() if c >= min_count or w in glove]
    kept = kept[: max_size - 2]
    without = [w for w in kept if w not in glove]
    with_vec = [w for w in kept if w in glove]
    return WordVocab([PAD, UNK, *without, *with_vec], n_trainable=2 + len(without))


def embedding_matrix(vocab: WordVocab, glove: dict[str, np.ndarray], seed: int) -> np.ndarray:
    """GloVe rows where known, small random rows (GloVe's own scale) elsewhere, zero padding."""
    dim = len(next(iter(glove.values())))
    known = np.stack(list(glove.values()))
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, known.std(), size=(len(vocab), dim)).astype(np.float32)
    matrix[0] = 0.0
    for i, word in enumerate(vocab.words[vocab.n_trainable :], start=vocab.n_trainable):
        matrix[i] = glove[word]
    return matrix


def prepare_training(
    config: "TrainConfig", train_clean: list[str], params: dict[str, Any]
) -> tuple[WordVocab, Callable[[Any], None]]:
    """Vocabulary from the training text, and the GloVe rows to start the embedding from."""
    if config.embeddings is None:
        raise InputError(f"{config.architecture} needs --embeddings PATH (a GloVe text file)")
    seen = {tok for text in train_clean for tok in tokenize(text)}
    glove = read_glove(config.embeddings, seen)
    vocab = build_vocab(train_clean, glove, config.min_count, config.max_vocab)
    params |= {
        "vocab_size": len(vocab),
        "n_trainable": vocab.n_trainable,
        "embedding_dim": len(next(iter(glove.values()))),
    }
    log.info("vocabulary %d words, %d without GloVe vectors", len(vocab), vocab.n_trainable - 2)
    matrix = embedding_matrix(vocab, glove, config.seed)
    return vocab, lambda model: model.get_layer("embedding").assign(matrix)
