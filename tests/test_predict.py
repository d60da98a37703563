"""``emoji-batch predict`` and ``score --insert``: one tweet at a time, the emoji placed."""

import io
import json
import shutil
import sys
from pathlib import Path

import polars as pl
import pytest

from emoji_batch.cli.predict import BAR_WIDTH, bar
from emoji_batch.errors import EXIT_NOT_ALL_SCORED
from emoji_batch.loading import load_predictor
from emoji_batch.position import insert_emoji, load_position_model
from emoji_batch.scoring import INVALID_UTF8_REASON
from emoji_batch.tweet import predict_tweets
from tests.helpers import modules_loaded_by, run_cli

SAMPLE = Path(__file__).parent.parent / "sample_data" / "tweets.csv"


@pytest.fixture(scope="module")
def default_predictor():
    return load_predictor(None, None, "cpu", None)


def test_bar_is_the_probability_in_eighths_of_a_cell() -> None:
    assert bar(1.0) == "█" * BAR_WIDTH
    assert bar(0.5) == "█" * (BAR_WIDTH // 2)
    assert bar(0.0) == ""
    assert bar(1 / (BAR_WIDTH * 8)) == "▏"
    assert bar(1.7) == bar(1.0)  # never wider than the column


def test_predict_prints_the_tweet_with_its_emoji_and_five_bars(
    capsys: pytest.CaptureFixture[str], default_predictor
) -> None:
    text = "merry christmas everyone"
    assert run_cli(["predict", text, "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    [expected] = predict_tweets([text], default_predictor, load_position_model(), 5)
    assert expected.top[0][0] == "🎄"
    assert lines[0] == expected.text_with_emoji
    assert lines[0] == insert_emoji(text, "🎄", expected.position)
    assert len(lines) == 6
    for line, (emoji, probability) in zip(lines[1:], expected.top, strict=True):
        assert line.strip().startswith(emoji)
        assert f"{probability:.1%}" in line
        assert line.endswith(bar(probability)) or probability < 1 / (BAR_WIDTH * 16)
    probabilities = [p for _, p in expected.top]
    assert probabilities == sorted(probabilities, reverse=True)


def test_predict_json_reads_stdin_and_says_which_lines_failed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("i love you\n\n   \n"))
    code = run_cli(["predict", "--json", "--top-k", "3", "--device", "cpu"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == EXIT_NOT_ALL_SCORED
    assert [r["text"] for r in rows] == ["i love you", "", "   "]
    good, empty, blank = rows
    assert good["error"] is None and len(good["top_k"]) == 3
    assert 0 <= good["position"] <= 3
    assert good["text_with_emoji"] == insert_emoji(
        "i love you", good["top_k"][0]["emoji"], good["position"]
    )
    assert sum(t["probability"] for t in good["top_k"]) <= 1.0 + 1e-6
    for bad in (empty, blank):  # the reasons score_error gives
        assert bad["error"] == "empty text"
        assert bad["top_k"] == [] and bad["position"] is None


def test_predict_exit_code_is_zero_when_every_tweet_is_scored(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("good morning\ngame day\n"))
    assert run_cli(["predict", "-", "--json", "--device", "cpu"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


@pytest.mark.parametrize(
    ("model", "precision"), [("ngram_svm", "auto"), ("fine_tuned_bert", "int8")]
)
def test_predict_never_imports_what_the_answer_does_not_need(model: str, precision: str) -> None:
    """Start-up: one tweet with the default or the int8 BERT needs neither TensorFlow
    (LiteRT or NumPy run the model), nor scikit-learn, nor pandas. (A near-tie's fp32
    fallback runs in ONNX Runtime: tests/test_quantize.py scores through it.)"""
    args = ["predict", "merry christmas everyone", "--model", model, "--precision", precision]
    heavy = ("tensorflow", "tf_keras", "sklearn", "pandas", "transformers")
    loaded, stderr = modules_loaded_by(args, heavy)
    assert loaded == [], stderr


def test_score_insert_adds_text_with_emoji(tmp_path: Path, default_predictor) -> None:
    out = tmp_path / "scored.csv"
    assert run_cli(["score", SAMPLE, "-o", out, "--insert", "--device", "cpu", "-q"]) == 0
    scored = pl.read_csv(out)
    assert scored.columns[-1] == "text_with_emoji"
    bad = scored.filter(pl.col("score_error").is_not_null())
    assert len(bad) and bad["text_with_emoji"].null_count() == len(bad)
    good = scored.filter(pl.col("score_error").is_null())
    placer = load_position_model()
    texts = good["text"].to_list()
    expected = [
        insert_emoji(t, e, at)
        for t, e, at in zip(texts, good["emoji_1"], placer.predict(texts), strict=True)
    ]
    assert good["text_with_emoji"].to_list() == expected
    # Nothing but the emoji and one space was added to any text.
    for text, placed, emoji in zip(texts, expected, good["emoji_1"], strict=True):
        assert len(placed) == len(text) + len(emoji) + 1


def test_predict_says_which_lines_are_not_utf8_and_scores_the_rest(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bytes that are not UTF-8 (here Latin-1's é) fail that line only, with score's
    reason; the text shows U+FFFD where they were."""
    raw = io.BytesIO(b"caf\xe9 au lait\nhello world\n")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(raw, "utf-8", "surrogateescape"))
    code = run_cli(["predict", "--json", "--device", "cpu"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == EXIT_NOT_ALL_SCORED
    bad, good = rows
    assert bad == {
        "text": "caf\ufffd au lait",
        "text_with_emoji": None,
        "position": None,
        "top_k": [],
        "error": INVALID_UTF8_REASON,
    }
    assert good["text"] == "hello world" and good["error"] is None and good["top_k"]


def test_predict_arguments_that_are_not_utf8_are_not_scored(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An argument with bytes that are not UTF-8 reaches Python as lone surrogates."""
    text = b"caf\xe9".decode("utf-8", "surrogateescape")
    assert run_cli(["predict", text, "hello world", "--device", "cpu"]) == EXIT_NOT_ALL_SCORED
    out = capsys.readouterr().out
    assert f"caf\ufffd\n  not scored: {INVALID_UTF8_REASON}\n" in out
    assert "hello world " in out


def test_local_position_model_is_not_called_a_model_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--models-dir with its own emoji_position: used, but no --model was typed to warn
    about."""
    shipped = Path(__file__).parent.parent / "emoji_batch" / "models" / "emoji_position"
    shutil.copytree(shipped, tmp_path / "emoji_position")
    args = ["predict", "hello world", "--models-dir", tmp_path, "--device", "cpu"]
    assert run_cli(args) == 0
    err = capsys.readouterr().err
    assert "warning" not in err and "--model" not in err
