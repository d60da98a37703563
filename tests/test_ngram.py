"""The n-gram family: sklearn's n-grams found fast, trained, saved, reloaded and scored."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

import emoji_batch.train
from emoji_batch.bundle import Bundle, load_bundle, model_weights, read_manifest
from emoji_batch.cleaning import clean_texts
from emoji_batch.errors import ModelError
from emoji_batch.ngram import NgramEncoder, _vectorizer
from emoji_batch.predictor import Predictor, pad_batch
from emoji_batch.runtimes import NgramRuntime
from tests.helpers import run_cli, train_args

# Short and one-letter words, emoji outside the BMP, repeats, odd whitespace, nothing.
TEXTS = [
    "i love you mom",
    "a b c",
    "😂😂😂 lol lol lol",
    "merry christmas 🎄🎄 santa",
    "@user url ab  cd\tef\n",
    "x",
    "",
    "   ",
    "ünïcödé wörds çà",
    # Word n-grams a hash linear in its words' hashes would confuse ("00 11", "01 01").
    "00 11 01 01 10 10 11 00",
]


def sklearn_ids(encoder: NgramEncoder, text: str) -> list[int]:
    """The ids of ``text``'s known n-grams as sklearn's own analyzers find them."""
    ids = {feature: i for i, feature in enumerate(encoder.features, 1)}
    found = set()
    for kind, ngrams in (("w", encoder.word_ngrams), ("c", encoder.char_ngrams)):
        analyze = _vectorizer(kind, ngrams, encoder.char_analyzer).build_analyzer()
        found |= {ids[(kind, f)] for f in analyze(text) if (kind, f) in ids}
    return sorted(found)


@pytest.mark.parametrize(
    ("analyzer", "char_ngrams"),
    [
        ("char_wb", (2, 5)),
        ("char_wb", (3, 4)),
        ("char_wb", (2, 2)),
        ("char", (1, 6)),
        ("char", (2, 4)),
    ],
)
def test_encode_finds_exactly_sklearns_ngrams(analyzer: str, char_ngrams: tuple[int, int]) -> None:
    encoder, idf = NgramEncoder.fit(TEXTS, (1, 4), char_ngrams, min_df=1, char_analyzer=analyzer)
    assert len(idf) == len(encoder) and idf[0] == 0 and (idf[1:] >= 1).all()
    unseen = ["lol love santa zzz", "b a", "😂 x"]
    for text, ids in zip(TEXTS + unseen, encoder.encode(TEXTS + unseen, 10_000), strict=True):
        assert ids.dtype == np.int32
        assert [i for i in ids.tolist() if i] == sklearn_ids(encoder, text), text


def test_encode_is_batch_independent_and_cut_at_max_length() -> None:
    encoder, _ = NgramEncoder.fit(TEXTS, (1, 2), (2, 5), min_df=1)
    whole = encoder.encode(TEXTS, 10_000)
    one_by_one = [encoder.encode([t], 10_000)[0] for t in TEXTS]
    for a, b in zip(whole, one_by_one, strict=True):
        np.testing.assert_array_equal(a, b)
    # A text without known n-grams is one padding id; the first n-grams are words.
    assert encoder.encode(["", "zzz"], 10)[0].tolist() == [0]
    cut = encoder.encode(["i love you mom"], 2)[0]
    assert [encoder.features[i - 1] for i in cut] == [("w", "love"), ("w", "you")]


def test_saved_encoder_reloads_identically(tmp_path: Path) -> None:
    encoder, _ = NgramEncoder.fit(TEXTS, (1, 2), (2, 5), min_df=1)
    files = encoder.save(tmp_path)
    config = {"word_ngrams": [1, 2], "char_ngrams": [2, 5], "n_word_features": encoder.n_words}
    again = NgramEncoder.load(tmp_path / files["ngrams"], config)
    assert again.features == encoder.features
    for a, b in zip(encoder.encode(TEXTS, 64), again.encode(TEXTS, 64), strict=True):
        np.testing.assert_array_equal(a, b)
    (tmp_path / "bad.txt").write_text("<pad>\nlove\n")
    with pytest.raises(ModelError, match=r"bad\.txt:2"):
        NgramEncoder.load(tmp_path / "bad.txt", config)


@pytest.fixture(scope="module")
def trained(
    tiny_data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Bundle]:
    """A tiny ngram_linear bundle (with a hidden layer) and the in-memory model that
    training saved into it."""
    saved: dict[str, Any] = {}
    save_bundle = emoji_batch.train.save_bundle

    def capture(directory: Path, manifest: Any, model: Any, encoder: Any, dtype: str) -> None:
        saved.update(manifest=manifest, model=model, encoder=encoder)
        save_bundle(directory, manifest, model, encoder, dtype)

    out = tmp_path_factory.mktemp("bundles") / "tiny_ngram"
    args = ["--max-epochs", 5, "--batch-size", 32, "--seed", 3, "--set", "hidden=4"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(emoji_batch.train, "save_bundle", capture)
        assert run_cli(train_args("ngram_linear", tiny_data, out, *args)) == 0
    model = saved["model"]
    return out, Bundle(out, saved["manifest"], model_weights(model), saved["encoder"], model)


def test_reloaded_bundle_predicts_like_the_trained_model(
    trained: tuple[Path, Bundle], tiny_data: dict[str, Path]
) -> None:
    out, in_memory = trained
    texts = pl.read_csv(tiny_data["val"])["TEXT"].to_list() + TEXTS
    expected = Predictor(in_memory).predict_proba(texts)
    reloaded = load_bundle(out)
    np.testing.assert_array_equal(Predictor(reloaded).predict_proba(texts), expected)
    small_batches = Predictor(reloaded, batch_size=7).predict_proba(texts)
    np.testing.assert_allclose(small_batches, expected, atol=1e-6)
    assert read_manifest(out).metrics["accuracy"] > 50  # chance is 33%


def test_numpy_runtime_computes_what_the_keras_model_does(
    tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    """On the CPU a linear n-gram model (hidden 0, the shipped default's) runs in NumPy
    without building the Keras model: it must give the Keras model's probabilities."""
    out = tmp_path / "linear"
    args = ["--max-epochs", 3, "--batch-size", 32, "--seed", 5]
    assert run_cli(train_args("ngram_linear", tiny_data, out, *args)) == 0
    bundle = load_bundle(out)
    texts = pl.read_csv(tiny_data["val"])["TEXT"].to_list() + TEXTS
    ids = pad_batch(bundle.encoder.encode(clean_texts(texts), bundle.manifest.max_length))
    runtime = Predictor(bundle, device="/CPU:0")._fp32_runtime()
    assert isinstance(runtime, NgramRuntime)
    assert bundle.built is None  # the NumPy runtime never built the Keras model
    expected = bundle.model(ids, training=False).numpy()
    np.testing.assert_allclose(runtime(ids), expected, rtol=1e-5, atol=1e-7)
    assert expected.std() > 0.01  # a trained model, not a uniform answer


def test_bundle_holds_only_json_text_and_safetensors(trained: tuple[Path, Bundle]) -> None:
    out, _ = trained
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["files"] == {"weights": "weights.safetensors", "ngrams": "ngrams.txt"}
    assert manifest["config"]["n_features"] == len((out / "ngrams.txt").read_text().splitlines())
    reports = {"curves.png", "evaluation/confusion.png"}
    for path in out.rglob("*"):
        if path.is_file() and str(path.relative_to(out)) not in reports:
            assert path.suffix in {".json", ".txt", ".safetensors"}, path
            assert not path.read_bytes().startswith(b"\x80"), path  # a pickle's first byte


def test_score_and_evaluate_use_the_bundle(
    trained: tuple[Path, Bundle], tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    out, _ = trained
    scored = tmp_path / "val.scored.parquet"
    args = ["score", tiny_data["val"], "-o", scored, "--model", out, "--text-column", "TEXT"]
    assert run_cli(args) == 0
    result = pl.read_parquet(scored)
    assert result.height == 60 and result["score_error"].null_count() == 60
    assert set(result["emoji_1"]) <= {"❤", "🎄", "😂"}
    report = tmp_path / "report"
    args = ["evaluate", "--model", out, "--data", tiny_data["val"], "--report-dir", report]
    assert run_cli(args) == 0
    measured = json.loads((report / "metrics.json").read_text())
    assert round(100 * measured["macro_f1"], 2) == read_manifest(out).metrics["macro_f1"]


@pytest.mark.parametrize(
    "extra", [["--embeddings", "glove"], ["--set", "char_ngrams=[1,5]"], ["--set", "min_df=999"]]
)
def test_train_refuses_bad_options(
    extra: list[str], tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    extra = [tiny_data.get(x, x) for x in extra]
    assert run_cli(train_args("ngram_linear", tiny_data, tmp_path / "x", *extra)) == 2


def test_hash_index_finds_every_key_misses_the_rest_and_refuses_repeats() -> None:
    from emoji_batch.ngram import HashIndex

    rng = np.random.default_rng(0)
    keys = np.unique(rng.integers(0, 2**64 - 1, size=50_000, dtype=np.uint64))
    keys = np.concatenate([[np.uint64(0)], keys[keys > 1]])  # 0 is kept apart from "empty"
    ids = np.arange(1, len(keys) + 1, dtype=np.int32)
    index = HashIndex(keys, ids)
    np.testing.assert_array_equal(index.lookup(keys), ids)
    others = rng.integers(2, 2**64 - 1, size=50_000, dtype=np.uint64)
    others = others[~np.isin(others, keys)]
    assert not index.lookup(others).any()
    assert index.lookup(np.zeros(0, dtype=np.uint64)).shape == (0,)
    with pytest.raises(ValueError, match="share a 64-bit hash"):
        HashIndex(np.array([5, 9, 5], dtype=np.uint64), np.arange(1, 4, dtype=np.int32))


def test_subset_keeps_the_chosen_features_in_order() -> None:
    encoder, _ = NgramEncoder.fit(TEXTS, (1, 3), (1, 4), min_df=1, char_analyzer="char")
    ids = np.array([0, 1, 3, encoder.n_words, encoder.n_words + 2, len(encoder) - 1])
    pruned = encoder.subset(ids)
    assert pruned.features == [encoder.features[i - 1] for i in ids[1:]]
    assert pruned.n_words == 3 and pruned.char_analyzer == "char"
    for text, got in zip(TEXTS, pruned.encode(TEXTS, 10_000), strict=True):
        whole = encoder.encode([text], 10_000)[0]
        kept = [int(np.flatnonzero(ids == i)[0]) for i in whole if i in ids and i]
        assert [i for i in got.tolist() if i] == kept, text


@pytest.mark.parametrize("n", [0, 1, 4095, 4096, 4097, 20_000])
def test_powers_are_every_power_of_the_base(n: int) -> None:
    from emoji_batch.ngram import _PRIME, _PRIME_INVERSE, _powers

    for base in (_PRIME, _PRIME_INVERSE):
        expected = np.ones(n, dtype=np.uint64)
        if n > 1:
            expected[1:] = base
            expected = np.cumprod(expected, dtype=np.uint64)
        np.testing.assert_array_equal(_powers(base, n), expected)
