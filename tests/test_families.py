"""The model-family registry: a family registered from outside the package is saved,
loaded and scored through the same calls as the shipped ones, without TensorFlow."""

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from emoji_batch.architectures import ARCHITECTURES, Architecture
from emoji_batch.bundle import Manifest, save_weights, write_manifest
from emoji_batch.errors import ModelError
from emoji_batch.families import FAMILIES, Family, get_family, register_family
from emoji_batch.labels import Label
from emoji_batch.loading import load_predictor
from emoji_batch.predictor import BATCH_HELP
from emoji_batch.runtimes import NgramRuntime

N_IDS = 50
CHARS_FILE = "chars.txt"


class CharCodes:
    """A toy encoder: one id per character, from a stored alphabet (0 pads, 1 unknown)."""

    def __init__(self, alphabet: str) -> None:
        self.alphabet = alphabet

    def encode(self, texts: Sequence[str], max_length: int) -> list[np.ndarray]:
        ids = {c: i + 2 for i, c in enumerate(self.alphabet)}
        return [
            np.asarray([ids.get(c, 1) for c in text[:max_length]] or [1], dtype=np.int32)
            for text in texts
        ]

    def save(self, directory: Path) -> dict[str, str]:
        (directory / CHARS_FILE).write_text(self.alphabet, encoding="utf-8")
        return {"chars": CHARS_FILE}

    @classmethod
    def load(cls, path: Path, config: dict[str, Any]) -> "CharCodes":
        return cls(path.read_text(encoding="utf-8"))


def _runtime(weight: Callable[[str], np.ndarray], config: dict[str, Any]) -> NgramRuntime:
    return NgramRuntime(weight("table"), weight("idf"), weight("bias"), N_IDS)


def _not_trained() -> Any:
    raise AssertionError("scoring must not ask how to train")


TINY = Family(
    "tiny",
    "tiny models",
    lambda: CharCodes,
    "chars",
    7,
    _not_trained,
    numpy_fp32=lambda config: True,
    numpy_runtime=_runtime,
)


@pytest.fixture
def tiny_family(monkeypatch: pytest.MonkeyPatch) -> Family:
    monkeypatch.setitem(FAMILIES, "tiny", TINY)
    arch = Architecture("tiny_linear", "tiny", "characters -> softmax", "build_nothing")
    monkeypatch.setitem(ARCHITECTURES, arch.name, arch)
    return TINY


def test_a_registered_family_round_trips(tiny_family: Family, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    weights = {
        "table": rng.normal(size=(N_IDS, 3)).astype(np.float32),
        "idf": rng.uniform(0.5, 2, size=N_IDS).astype(np.float32),
        "bias": rng.normal(size=3).astype(np.float32),
    }
    encoder = CharCodes("abcdefgh ")
    save_weights(tmp_path / "weights.safetensors", weights)
    labels = [
        Label(i, e, n) for i, (e, n) in enumerate([("😂", "joy"), ("❤", "red"), ("🔥", "fire")])
    ]
    manifest = Manifest("tiny_linear", {}, labels, 16, {}, {})
    manifest.files = {"weights": "weights.safetensors", **encoder.save(tmp_path)}
    write_manifest(tmp_path, manifest)

    predictor = load_predictor(str(tmp_path), None, "cpu", None, "fp32")

    assert predictor.name == tmp_path.name
    assert [label.emoji for label in predictor.labels] == ["😂", "❤", "🔥"]
    assert predictor.batch_size == 7  # the family's default
    texts = ["a bad cafe", "hhh", "zzz", ""]
    encoded = predictor.encode(predictor.clean(texts))
    assert [list(seq) for seq in encoded[:2]] == [[2, 10, 3, 2, 5, 10, 4, 2, 7, 6], [9, 9, 9]]
    probs = predictor.predict_proba(texts)
    expected = NgramRuntime(weights["table"], weights["idf"], weights["bias"], N_IDS)
    for row, seq in zip(probs, encoded, strict=True):
        np.testing.assert_allclose(row, expected(seq[None, :])[0], rtol=1e-6)


def test_a_family_is_registered_once() -> None:
    with pytest.raises(ValueError, match="registered already"):
        register_family(get_family("ngram"))


def test_an_unknown_family_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="unknown model family 'nope'"):
        get_family("nope")


def test_batch_help_lists_every_shipped_family() -> None:
    assert BATCH_HELP == (
        "Texts per model call [default: 1024 for GloVe models, 2048 for n-gram, 32 for BERT]."
    )
