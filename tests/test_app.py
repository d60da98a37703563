"""The demo page, run headless with Streamlit's AppTest, and ``emoji-batch app``'s checks.

What the page shows is compared with what the library gives for the same model, so the
page cannot drift from ``emoji-batch predict`` and ``score``.
"""

import html
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from streamlit.testing.v1 import AppTest

import emoji_batch.demo_page as page
from emoji_batch.bundle import DEFAULT_MODEL
from emoji_batch.cli.app import MAX_UPLOAD_MB
from emoji_batch.errors import InputError
from emoji_batch.loading import load_predictor
from emoji_batch.position import load_position_model
from emoji_batch.tweet import TweetPrediction, predict_tweets
from tests.helpers import run_cli

TWEET = "merry christmas everyone"


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    """An empty --models-dir, so that only the shipped bundles are found."""
    directory = tmp_path / "models"
    directory.mkdir()
    return directory


@pytest.fixture
def app_test(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """The page as ``emoji-batch app --models-dir DIR`` starts it."""
    monkeypatch.setattr(sys, "argv", [str(page.__file__), "--models-dir", str(models_dir)])
    return AppTest.from_file(str(page.__file__), default_timeout=60)


def expected(text: str, models_dir: Path) -> TweetPrediction:
    """What ``predict_tweets`` says about ``text`` with the shipped default model."""
    predictor = load_predictor(None, models_dir, "auto", None)
    [prediction] = predict_tweets([text], predictor, load_position_model(models_dir), k=5)
    return prediction


def shown_tweet(at: AppTest) -> str:
    """The text of the large tweet-with-emoji element."""
    [element] = at.get("html")
    return html.unescape(re.sub(r"<[^>]*>", "", element.value))


def chart_rows(at: AppTest) -> list[tuple[str, float]]:
    """The (emoji, probability) table the bar chart draws."""
    [chart] = at.get("vega_lite_chart")
    [dataset] = chart.proto.datasets
    table = pa.ipc.open_stream(dataset.data.data).read_all()
    return list(zip(table["emoji"].to_pylist(), table["probability"].to_pylist(), strict=True))


def test_tweet_shows_placed_emoji_and_top5_chart(app_test: AppTest, models_dir: Path) -> None:
    at = app_test.run()
    assert not at.get("html"), "nothing is predicted before a tweet is typed"
    at.text_input(key="tweet").input(TWEET).run()
    assert not at.exception
    want = expected(TWEET, models_dir)
    assert want.text_with_emoji == f"{TWEET} 🎄"  # the model knows christmas
    assert shown_tweet(at) == want.text_with_emoji
    rows = chart_rows(at)
    assert [emoji for emoji, _ in rows] == [emoji for emoji, _ in want.top]
    assert [p for _, p in rows] == pytest.approx([p for _, p in want.top], abs=1e-6)
    assert not at.warning


def test_text_in_the_url_fills_the_tweet_box(app_test: AppTest, models_dir: Path) -> None:
    app_test.query_params["text"] = "lol that joke"
    at = app_test.run()
    assert at.text_input(key="tweet").value == "lol that joke"
    assert shown_tweet(at) == expected("lol that joke", models_dir).text_with_emoji


def test_whitespace_tweet_warns_empty_text(app_test: AppTest) -> None:
    at = app_test.run()
    at.text_input(key="tweet").input("   ").run()
    assert not at.exception
    assert [w.value for w in at.warning] == ["Not scored: empty text"]
    assert not at.get("html") and not at.get("vega_lite_chart")


def test_picker_lists_scoring_models_and_defaults_to_shipped(app_test: AppTest) -> None:
    at = app_test.run()
    picker = at.selectbox(key="model")
    assert DEFAULT_MODEL in picker.options
    assert "emoji_position" not in picker.options
    assert picker.value.label == DEFAULT_MODEL


def write_manifest(directory: Path, text: str) -> None:
    directory.mkdir()
    (directory / "manifest.json").write_text(text, encoding="utf-8")


def test_picker_choices_skip_position_and_unreadable_and_follow_model(models_dir: Path) -> None:
    # Only manifests: the picker reads them; nothing here is loaded.
    write_manifest(models_dir / DEFAULT_MODEL, json.dumps({"architecture": DEFAULT_MODEL}))
    write_manifest(models_dir / "my_position", json.dumps({"kind": "emoji_position"}))
    write_manifest(models_dir / "broken", "{not json")
    local = f"{DEFAULT_MODEL} ({models_dir})"

    choices, index = page.picker_choices(page.Settings(None, models_dir))
    labels = [c.label for c in choices]
    assert local in labels and DEFAULT_MODEL in labels and "glove_cnn" in labels
    assert not any(
        label.startswith(("my_position", "broken", "emoji_position")) for label in labels
    )
    assert labels[index] == DEFAULT_MODEL, "without --model: the shipped default"

    choices, index = page.picker_choices(page.Settings(DEFAULT_MODEL, models_dir))
    assert choices[index].label == local, "--model NAME: the bundle the name finds"

    choices, index = page.picker_choices(page.Settings("glove_cnn", models_dir))
    assert choices[index].label == "glove_cnn"


def test_upload_is_scored_and_offered_for_download(app_test: AppTest, models_dir: Path) -> None:
    at = app_test.run()
    at.file_uploader(key="upload").set_value(
        ("tweets.csv", f"id,text\n1,{TWEET}\n2,\n".encode(), "text/csv")
    ).run()
    assert not at.exception and not at.error
    [summary] = at.success
    assert summary.value.startswith("scored 2 rows (1 not scorable)")
    assert summary.value.endswith("-> tweets.scored.csv")
    assert at.get("download_button")[0].label == "Download tweets.scored.csv"


def test_upload_with_a_missing_column_shows_the_error(app_test: AppTest) -> None:
    at = app_test.run()
    at.file_uploader(key="upload").set_value(("t.csv", b"body\nhello\n", "text/csv")).run()
    assert not at.exception and not at.success
    [error] = at.error
    assert "text" in error.value and "body" in error.value


def test_score_upload_gives_the_scored_file(models_dir: Path) -> None:
    data = f"id,text\n1,{TWEET}\n2,   \n".encode()
    scored, summary = page.score_upload(
        "My Tweets.CSV",
        data,
        model=DEFAULT_MODEL,
        models_dir=models_dir,
        text_column="text",
        max_bytes=len(data),
    )
    nulls = pacsv.ConvertOptions(strings_can_be_null=True)
    table = pacsv.read_csv(io.BytesIO(scored), convert_options=nulls)
    want = expected(TWEET, models_dir)
    assert table["id"].to_pylist() == [1, 2]
    assert table["text_with_emoji"].to_pylist() == [want.text_with_emoji, None]
    assert table["emoji_1"].to_pylist() == [want.top[0][0], None]
    assert table["score_error"].to_pylist() == [None, "empty text"]
    assert (summary.rows, summary.error_rows, summary.output) == (2, 1, "My Tweets.scored.csv")


def test_score_upload_refuses_a_file_over_the_bound(models_dir: Path) -> None:
    with pytest.raises(InputError, match="up to"):
        page.score_upload(
            "t.csv",
            b"text\nhello\n",
            model=DEFAULT_MODEL,
            models_dir=models_dir,
            text_column="text",
            max_bytes=4,
        )


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_score_upload_refuses_too_many_rows_whatever_the_bytes(
    models_dir: Path, tmp_path: Path, suffix: str
) -> None:
    """A dictionary-encoded Parquet file holds many rows in few bytes: rows are capped too."""
    frame = pl.DataFrame({"text": ["same tweet"] * 5000})
    path = tmp_path / f"many{suffix}"
    {".parquet": frame.write_parquet, ".csv": frame.write_csv, ".jsonl": frame.write_ndjson}[
        suffix
    ](path)
    data = path.read_bytes()
    kwargs = {"model": DEFAULT_MODEL, "models_dir": models_dir, "text_column": "text"}
    with pytest.raises(
        InputError, match=r"has 5,00[01] rows; the page scores files of up to 4,000"
    ):
        page.score_upload(path.name, data, max_bytes=len(data), max_rows=4000, **kwargs)
    _, summary = page.score_upload(path.name, data, max_bytes=len(data), max_rows=5001, **kwargs)
    assert summary.rows == 5000


class FakePopen:
    """Records the command instead of starting Streamlit."""

    commands: list[list[str]]

    def __init__(self, command: list[str]) -> None:
        FakePopen.commands.append(command)

    def wait(self, timeout: float | None = None) -> int:
        return 0


@pytest.fixture
def popen(monkeypatch: pytest.MonkeyPatch) -> type[FakePopen]:
    FakePopen.commands = []
    monkeypatch.setattr(subprocess, "Popen", FakePopen)
    return FakePopen


def test_cli_refuses_an_unknown_model_before_starting(
    popen: type[FakePopen], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["app", "--model", "no_such_model"]) == 2
    assert "no model named 'no_such_model'" in capsys.readouterr().err
    assert popen.commands == []


def test_cli_without_streamlit_says_what_to_install(
    popen: type[FakePopen], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    assert run_cli(["app"]) == 2
    assert 'pip install "emoji-batch[app]"' in capsys.readouterr().err
    assert popen.commands == []


def test_cli_runs_streamlit_on_the_page(popen: type[FakePopen], models_dir: Path) -> None:
    args = ["app", "--model", DEFAULT_MODEL, "--models-dir", models_dir, "--port", "8600"]
    assert run_cli(args) == 0
    [command] = popen.commands
    assert command[:5] == [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(Path(page.__file__).resolve()),
    ]
    options = command[5 : command.index("--")]
    settings = dict(zip(options[::2], options[1::2], strict=True))
    assert settings["--server.port"] == "8600"
    assert settings["--server.address"] == "127.0.0.1"
    assert settings["--server.maxUploadSize"] == str(MAX_UPLOAD_MB)
    page_args = command[command.index("--") + 1 :]
    assert page.parse_settings(page_args) == page.Settings(DEFAULT_MODEL, models_dir)


def test_cli_help_states_the_upload_bound(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["app", "--help"]) == 0
    assert f"up to {MAX_UPLOAD_MB} MB" in " ".join(capsys.readouterr().out.split())


def test_score_upload_errors_name_the_upload_not_the_temporary_file(models_dir: Path) -> None:
    data = b"id,text\n1,hello world\n2,too,many,fields\n"
    with pytest.raises(InputError) as raised:
        page.score_upload(
            "my tweets.csv",
            data,
            model=DEFAULT_MODEL,
            models_dir=models_dir,
            text_column="text",
            max_bytes=len(data),
        )
    message = str(raised.value)
    assert message.startswith("my tweets.csv:3: ragged CSV row"), message
    assert "emoji-batch-app-" not in message and "upload.csv" not in message


def test_cli_refuses_the_position_model_before_starting(
    popen: type[FakePopen], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["app", "--model", "emoji_position"]) == 2
    assert "emoji_position places emoji in a tweet" in capsys.readouterr().err
    assert popen.commands == []
