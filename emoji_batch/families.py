"""Every model family, defined once: its text encoder, batch size, training preparation
and the runtimes its fp32 model may run in without TensorFlow.

A family is what the architectures of :mod:`emoji_batch.architectures` share: how text
becomes ids (a word vocabulary, n-grams, WordPiece) and what that costs. Loading a
bundle, picking a batch size, training and picking a runtime all ask the family's entry
here, never branch on its name. Adding a family is one module (its encoder class and
its ``prepare`` function) and one :func:`register_family` call; see docs/contributing.md.

Only the standard library is imported here: each entry names its module through small
functions that import it when called, so ``models list`` and the position model stay
light.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self

from emoji_batch.errors import ModelError

if TYPE_CHECKING:
    import numpy as np

    from emoji_batch.runtimes import Runtime
    from emoji_batch.train_config import TrainConfig


class Encoder(Protocol):
    """Cleaned text -> id sequences, stored in a bundle as files the manifest lists."""

    def encode(self, texts: Sequence[str], max_length: int) -> "list[np.ndarray]":
        """Ids per text, at most ``max_length`` of them and never empty."""
        ...

    def save(self, directory: Path) -> dict[str, str]:
        """Write the encoder's files into ``directory``; return the manifest's entries."""
        ...

    @classmethod
    def load(cls, path: Path, config: dict[str, Any]) -> Self:
        """The encoder stored at ``path``, for a model of manifest ``config``."""
        ...


# Builds a runtime from a bundle's weights (by name) and its manifest config.
NumpyRuntime = Callable[[Callable[[str], "np.ndarray"], dict[str, Any]], "Runtime"]
# Called with the built, untrained Keras model: starts it from pretrained weights.
InitWeights = Callable[[Any], None]
# Fits the encoder on cleaned training text, fills the settings the architecture is built
# from (``params``, changed in place) and says how to start the model's weights.
Prepare = Callable[["TrainConfig", list[str], dict[str, Any]], tuple[Encoder, InitWeights]]


def _keras_only(config: dict[str, Any]) -> bool:
    return False


@dataclass(frozen=True)
class Family:
    """One family's entry. The ``encoder`` and ``prepare`` functions import its module
    when called, so that the registry itself costs nothing to import."""

    name: str
    # What ``--batch-size`` help calls it.
    title: str
    # The encoder class (implements :class:`Encoder`).
    encoder: Callable[[], type[Encoder]]
    # The manifest ``files`` key of the encoder's file.
    encoder_file: str
    # Texts per model call unless ``--batch-size`` says otherwise: as large as still
    # speeds a CPU up, measured with benchmarks/bert_batches.py and bench.py (see
    # docs/benchmarks.md for the figures).
    batch_size: int
    # How ``train`` prepares data for the family's Keras models.
    prepare: Callable[[], Prepare]
    # Whether the fp32 model of this ``config`` runs in NumPy on the CPU (no TensorFlow),
    # and the runtime that does it.
    numpy_fp32: Callable[[dict[str, Any]], bool] = _keras_only
    # (called with the bundle's weight-by-name and its manifest config)
    numpy_runtime: Callable[[Callable[[str], "np.ndarray"], dict[str, Any]], "Runtime"] | None = (
        None
    )
    # Architectures whose fp32 fallback for reduced-precision near-ties runs in ONNX
    # Runtime on the CPU (see :mod:`emoji_batch.bert_onnx`); others use their fp32 runtime.
    onnx_fallback: tuple[str, ...] = ()

    def load_encoder(self, path: Path, config: dict[str, Any]) -> Encoder:
        return self.encoder().load(path, config)


FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    """Add ``family`` to the registry (a name is registered once)."""
    if family.name in FAMILIES:
        raise ValueError(f"model family {family.name!r} is registered already")
    FAMILIES[family.name] = family
    return family


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        known = ", ".join(sorted(FAMILIES))
        raise ModelError(f"unknown model family {name!r}; known: {known}") from None


def _word_vocab() -> type[Encoder]:
    from emoji_batch.vocab import WordVocab

    return WordVocab


def _prepare_glove() -> Prepare:
    from emoji_batch.vocab import prepare_training

    return prepare_training


def _ngram_encoder() -> type[Encoder]:
    from emoji_batch.ngram import NgramEncoder

    return NgramEncoder


def _prepare_ngram() -> Prepare:
    from emoji_batch.ngram import prepare_training

    return prepare_training


def _ngram_linear(config: dict[str, Any]) -> bool:
    """A linear n-gram model (no hidden layer) is a gather and a dot product."""
    return not config.get("hidden")


def _ngram_runtime(weight: Callable[[str], "np.ndarray"], config: dict[str, Any]) -> "Runtime":
    from emoji_batch.ngram import numpy_runtime

    return numpy_runtime(weight, config)


def _wordpiece() -> type[Encoder]:
    from emoji_batch.bert import WordPieceEncoder

    return WordPieceEncoder


def _prepare_bert() -> Prepare:
    from emoji_batch.bert import prepare_training

    return prepare_training


# The small GloVe CNN keeps gaining from large batches; BERT peaks at a few dozen;
# n-gram models spend their time finding n-grams, where a large batch is merely no worse.
register_family(Family("glove", "GloVe models", _word_vocab, "vocab", 1024, _prepare_glove))
register_family(
    Family(
        "ngram",
        "n-gram",
        _ngram_encoder,
        "ngrams",
        2048,
        _prepare_ngram,
        numpy_fp32=_ngram_linear,
        numpy_runtime=_ngram_runtime,
    )
)
register_family(
    Family(
        "bert",
        "BERT",
        _wordpiece,
        "tokenizer",
        32,
        _prepare_bert,
        onnx_fallback=("fine_tuned_bert",),
    )
)


def batch_help() -> str:
    """``--batch-size`` help with every family's default."""
    each = ", ".join(f"{f.batch_size} for {f.title}" for f in FAMILIES.values())
    return f"Texts per model call [default: {each}]."
