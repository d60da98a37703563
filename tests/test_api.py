"""The public Python API: load / predict / score_frame on polars, pandas and Arrow give
what `score` writes, and the README's Python API snippets run as written."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import emoji_batch
from emoji_batch import api
from emoji_batch.scoring import score_file

ROOT = Path(__file__).parent.parent
TEXTS = ["i love you mom", "", None, "   ", "merry christmas santa tree", "lol so funny"]
ERRORS = [None, "empty text", "missing text", "empty text", None, None]


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    """Sample tweets plus the rows score cannot score, with a non-text column kept."""
    sample = pl.read_parquet(ROOT / "sample_data" / "tweets.parquet").head(40)
    extra = pl.DataFrame({"text": TEXTS}).with_columns(
        id=pl.Series(range(1000, 1000 + len(TEXTS)), dtype=sample["id"].dtype)
    )
    return pl.concat([sample.select("id", "text"), extra.select("id", "text")])


@pytest.fixture(scope="module")
def model(tiny_cnn: Path) -> api.Model:
    return emoji_batch.load(tiny_cnn, device="cpu")


def test_public_names() -> None:
    expected = {"load", "score_frame", "score_file", "insert_emoji", "Model"}
    assert expected <= set(emoji_batch.__all__)
    for name in emoji_batch.__all__:
        assert getattr(emoji_batch, name) is not None
    with pytest.raises(AttributeError):
        emoji_batch.no_such_name  # noqa: B018


def test_score_frame_equals_score_on_polars_pandas_and_arrow(
    rows: pl.DataFrame, model: api.Model, tiny_cnn: Path, tmp_path: Path
) -> None:
    rows.write_parquet(tmp_path / "in.parquet")
    score_file(
        tmp_path / "in.parquet",
        tmp_path / "out.parquet",
        model=str(tiny_cnn),
        device="cpu",
        insert=True,
        progress=False,
    )
    expected = pl.read_parquet(tmp_path / "out.parquet")
    assert expected["score_error"].tail(len(TEXTS)).to_list() == ERRORS
    from_polars = emoji_batch.score_frame(rows, model=model, insert=True)
    assert isinstance(from_polars, pl.DataFrame)
    assert from_polars.equals(expected)
    # Other chunks batch the rows differently: probabilities may move in the last bit.
    chunked = emoji_batch.score_frame(rows, model=model, insert=True, chunk_rows=7)
    probs = [c for c in expected.columns if c.startswith("prob_")]
    assert chunked.drop(probs).equals(expected.drop(probs))
    np.testing.assert_allclose(chunked.select(probs), expected.select(probs), atol=1e-6)
    from_arrow = emoji_batch.score_frame(rows.to_arrow(), model=model, insert=True)
    assert isinstance(from_arrow, pa.Table)
    assert pl.from_arrow(from_arrow).equals(expected)
    from_pandas = emoji_batch.score_frame(rows.to_pandas(), model=model, insert=True)
    assert isinstance(from_pandas, pd.DataFrame)
    assert list(from_pandas.columns) == expected.columns
    assert pl.from_pandas(from_pandas).equals(expected)


def test_a_loaded_model_is_reused(
    rows: pl.DataFrame, tiny_cnn: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real = api.load_predictor

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(api, "load_predictor", counting)
    loaded = emoji_batch.load(tiny_cnn, device="cpu")
    for _ in range(3):
        emoji_batch.score_frame(rows, model=loaded)
    assert len(calls) == 1
    emoji_batch.score_frame(rows, model=str(tiny_cnn), device="cpu")  # by name: loads
    assert len(calls) == 2


def test_predict_and_predict_proba(model: api.Model) -> None:
    answers = model.predict(TEXTS, top_k=2)
    assert [a.error for a in answers] == ERRORS
    good = answers[0]
    assert len(good.top) == 2 and good.top[0][1] >= good.top[1][1]
    assert good.text_with_emoji is not None and good.top[0][0] in good.text_with_emoji
    probs = model.predict_proba(TEXTS)
    assert probs.shape == (len(TEXTS), len(model.labels))
    assert np.isnan(probs[1:4]).all()
    np.testing.assert_allclose(probs[[0, 4, 5]].sum(axis=1), 1.0, rtol=1e-5)
    best = [model.labels[i].emoji for i in probs[[0, 4, 5]].argmax(axis=1)]
    assert best == [answers[i].top[0][0] for i in (0, 4, 5)]
    assert model.name == "tiny_cnn" and model.precision == "fp32"


def test_score_frame_refuses_what_score_refuses(rows: pl.DataFrame, model: api.Model) -> None:
    from emoji_batch.errors import InputError

    with pytest.raises(InputError, match="text"):
        emoji_batch.score_frame(rows.rename({"text": "body"}), model=model)
    with pytest.raises(InputError, match="output column"):
        emoji_batch.score_frame(rows.with_columns(emoji_1=pl.lit("x")), model=model)
    with pytest.raises(InputError, match="polars or pandas"):
        emoji_batch.score_frame([["a"]], model=model)


def _readme_snippets() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Python API") :]
    section = section[: section.index("\n## ", 5)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


@pytest.mark.parametrize("index", range(3))
def test_readme_python_api_snippets_run_as_written(
    index: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    snippets = _readme_snippets()
    assert len(snippets) == 3
    for name in ("sample_data",):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)  # the snippets use paths relative to the checkout
    exec(compile(snippets[index], f"README snippet {index + 1}", "exec"), {})
    out = capsys.readouterr().out
    assert out.strip()
    if index == 2:
        assert (tmp_path / "out" / "tweets.scored.parquet").is_file()


@pytest.fixture(scope="module")
def default_model() -> api.Model:
    """The shipped NumPy default: no TensorFlow needed."""
    return emoji_batch.load()


def test_pandas_keeps_its_index_index_name_and_column_labels(default_model: api.Model) -> None:
    frame = pd.DataFrame(
        {
            "text": ["i love you mom", "so funny lol", "merry christmas", "happy birthday"],
            0: [1, 2, 3, 4],
        },
        index=pd.Index([10, 11, 12, 13], name="tweet_id"),
    )
    sub = frame[frame.text != "so funny lol"]
    scored = emoji_batch.score_frame(sub, model=default_model, top_k=2)
    assert list(scored.index) == [10, 12, 13] and scored.index.name == "tweet_id"
    assert list(scored.columns[:2]) == ["text", 0] and scored[0].tolist() == [1, 3, 4]
    # Aligning on the index gives each tweet its own emoji.
    alone = [default_model.predict([t], top_k=1)[0].top[0][0] for t in sub.text]
    assert sub.assign(emoji=scored["emoji_1"])["emoji"].tolist() == alone
    empty = emoji_batch.score_frame(sub.iloc[:0], model=default_model)
    assert empty.empty and "score_error" in empty.columns and empty.index.name == "tweet_id"


def test_pandas_object_column_mixing_types_gets_per_row_reasons(default_model: api.Model) -> None:
    frame = pd.DataFrame({"text": ["i love you", np.nan, 5, b"bytes", None, pd.NA]})
    scored = emoji_batch.score_frame(frame, model=default_model)
    assert scored["score_error"].tolist() == [
        None,
        "missing text",
        "text is int, not a string",
        "text is bytes, not a string",
        "missing text",
        "missing text",
    ]
    assert scored["emoji_1"].notna().tolist() == [True] + [False] * 5


def test_predict_takes_nan_numbers_and_bytes_and_refuses_a_bare_string(
    default_model: api.Model,
) -> None:
    texts = ["i love you", np.nan, 7, b"x", np.float32("nan")]
    answers = default_model.predict(texts, top_k=1)
    assert [a.error for a in answers] == [
        None,
        "missing text",
        "text is int, not a string",
        "text is bytes, not a string",
        "missing text",
    ]
    probs = default_model.predict_proba(texts)
    assert not np.isnan(probs[0]).any() and np.isnan(probs[1:]).all()
    for call in (default_model.predict, default_model.predict_proba):
        with pytest.raises(TypeError, match="single str"):
            call("i love you")


def test_options_that_conflict_with_a_loaded_model_are_refused(default_model: api.Model) -> None:
    from emoji_batch.errors import InputError

    frame = pl.DataFrame({"text": ["i love you"]})
    with pytest.raises(InputError, match="device='gpu', precision='int8', batch_size=7"):
        emoji_batch.score_frame(
            frame, model=default_model, precision="int8", device="gpu", batch_size=7
        )
    same = emoji_batch.score_frame(
        frame, model=default_model, precision=default_model.precision, device="cpu"
    )
    assert same["emoji_1"].to_list()[0] is not None


def test_paths_may_be_strings(tmp_path: Path) -> None:
    from emoji_batch.bundle import shipped_models_dir

    models = str(shipped_models_dir())
    loaded = emoji_batch.load("ngram_svm", models_dir=models)
    assert loaded.models_dir == Path(models)
    pl.DataFrame({"text": ["i love you", "lol"]}).write_csv(tmp_path / "a.csv")
    summary = emoji_batch.score_file(
        str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), progress=False
    )
    assert summary.rows == 2 and (tmp_path / "b.csv").is_file()
    frame = emoji_batch.score_frame(pl.DataFrame({"text": ["hi"]}), models_dir=models)
    assert frame.height == 1


def test_emoji_k_is_the_label_of_the_kth_largest_probability(
    default_model: api.Model, tmp_path: Path
) -> None:
    """Checked against an independent computation (predict_proba, then argsort), for
    every k, through score_file and score_frame alike, on real tweets."""
    tweets = pl.read_parquet(ROOT / "sample_data" / "tweets.parquet").head(200)
    k = 5
    probs = default_model.predict_proba(tweets["text"].to_list())
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    emoji = np.array([label.emoji for label in default_model.labels])
    tweets.write_parquet(tmp_path / "in.parquet")
    score_file(tmp_path / "in.parquet", tmp_path / "out.parquet", top_k=k, progress=False)
    from_file = pl.read_parquet(tmp_path / "out.parquet")
    from_frame = emoji_batch.score_frame(tweets, model=default_model, top_k=k)
    for scored in (from_file, from_frame):
        for i in range(k):
            got = scored[f"emoji_{i + 1}"].to_list()
            ranked = np.sort(probs, axis=1)[:, ::-1][:, i]
            np.testing.assert_allclose(scored[f"prob_{i + 1}"].to_numpy(), ranked, rtol=1e-5)
            # Ties in probability may order either way; elsewhere the label must match.
            clear = np.abs(ranked - np.sort(probs, axis=1)[:, ::-1][:, min(i + 1, 19)]) > 1e-6
            assert [g for g, c in zip(got, clear, strict=True) if c] == emoji[order[:, i]][
                clear
            ].tolist()


def test_empty_frames_of_every_kind(default_model: api.Model) -> None:
    polars_empty = pl.DataFrame({"id": [], "text": []}, schema={"id": pl.Int64, "text": pl.String})
    for frame in (polars_empty, polars_empty.to_arrow(), polars_empty.to_pandas()):
        scored = emoji_batch.score_frame(frame, model=default_model, top_k=2)
        assert len(scored) == 0
        assert list(
            scored.columns if not isinstance(scored, pa.Table) else scored.column_names
        ) == ["id", "text", "emoji_1", "emoji_2", "prob_1", "prob_2", "score_error"]


def test_find_column_prefers_the_exact_name(default_model: api.Model) -> None:
    frame = pl.DataFrame({"TEXT": ["lol so funny"], "text": ["i love you mom"]})
    scored = emoji_batch.score_frame(frame, model=default_model, top_k=1)
    alone = default_model.predict(["i love you mom"], top_k=1)[0].top[0][0]
    assert scored["emoji_1"].to_list() == [alone]
