"""``emoji-batch app`` for real: the server started on a free port, its page fetched over
HTTP, then stopped with SIGTERM; and uploads of Parquet and JSONL files on the page."""

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from streamlit.testing.v1 import AppTest

import emoji_batch.demo_page as page
from emoji_batch.errors import EXIT_TERMINATED
from emoji_batch.loading import load_predictor
from emoji_batch.position import load_position_model
from emoji_batch.tweet import predict_tweets

ROOT = Path(__file__).parent.parent
TWEET = "merry christmas everyone"


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    """An empty --models-dir, so that only the shipped bundles are found."""
    directory = tmp_path / "models"
    directory.mkdir()
    return directory


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode("utf-8", "replace")


def test_app_serves_the_page_over_http_and_stops_on_sigterm(models_dir: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "emoji_batch", "app", "--model", "ngram_svm"]
    command += ["--models-dir", str(models_dir), "--port", str(port)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.communicate()[0]
            try:
                health = fetch(f"{base}/_stcore/health")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                assert time.monotonic() < deadline, "the page did not come up in 120 s"
                time.sleep(0.5)
        assert health == (200, "ok")
        status, html = fetch(f"{base}/")
        assert status == 200
        assert '<div id="root">' in html and "<title>" in html  # Streamlit's page shell
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            output = proc.communicate(timeout=60)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            output = proc.communicate()[0]
    assert proc.returncode == EXIT_TERMINATED, output
    # The Streamlit child went with it: nothing answers on the port any more.
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        fetch(f"{base}/_stcore/health")


# --- uploads of Parquet and JSONL ---------------------------------------------------------


def expected_top(text: str, models_dir: Path) -> tuple[str, str]:
    """(text_with_emoji, emoji_1) that the library gives ``text`` with the default model."""
    predictor = load_predictor(None, models_dir, "auto", None)
    [want] = predict_tweets([text], predictor, load_position_model(models_dir), k=5)
    return want.text_with_emoji, want.top[0][0]


def parquet_bytes() -> bytes:
    table = pa.table({"id": pa.array([1, 2], pa.int64()), "text": [TWEET, None]})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


JSONL = f'{{"id": 1, "text": "{TWEET}"}}\n{{"id": 2, "text": null}}\n'.encode()


def read_scored(name: str, data: bytes) -> list[dict]:
    if name.endswith(".parquet"):
        return pq.read_table(io.BytesIO(data)).to_pylist()
    return [json.loads(line) for line in data.decode().splitlines()]


@pytest.mark.parametrize("name", ["tweets.parquet", "tweets.jsonl"])
def test_score_upload_of_parquet_and_jsonl(name: str, models_dir: Path) -> None:
    data = parquet_bytes() if name.endswith(".parquet") else JSONL
    scored, summary = page.score_upload(
        name,
        data,
        model="ngram_svm",
        models_dir=models_dir,
        text_column="text",
        max_bytes=len(data),
    )
    rows = read_scored(name, scored)
    text_with_emoji, emoji = expected_top(TWEET, models_dir)
    assert [r["id"] for r in rows] == [1, 2]
    assert [r["text_with_emoji"] for r in rows] == [text_with_emoji, None]
    assert [r["emoji_1"] for r in rows] == [emoji, None]
    assert [r["score_error"] for r in rows] == [None, "missing text"]
    stem = name.rsplit(".", 1)
    assert (summary.rows, summary.error_rows) == (2, 1)
    assert summary.output == f"{stem[0]}.scored.{stem[1]}"


@pytest.mark.parametrize(
    ("name", "mime"),
    [("tweets.parquet", "application/octet-stream"), ("tweets.jsonl", "application/jsonl")],
)
def test_page_scores_parquet_and_jsonl_uploads(
    name: str, mime: str, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", [str(page.__file__), "--models-dir", str(models_dir)])
    at = AppTest.from_file(str(page.__file__), default_timeout=60).run()
    data = parquet_bytes() if name.endswith(".parquet") else JSONL
    at.file_uploader(key="upload").set_value((name, data, mime)).run()
    assert not at.exception and not at.error
    [summary] = at.success
    scored = name.replace(".", ".scored.")
    assert summary.value.startswith("scored 2 rows (1 not scorable)")
    assert summary.value.endswith(f"-> {scored}")
    [download] = at.get("download_button")
    assert download.label == f"Download {scored}"
