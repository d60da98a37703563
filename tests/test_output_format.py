"""The format OUTPUT is written in: ``--output-format`` over OUTPUT's suffix, stdout in a
text format only, and INPUT's format by default."""

import json
import shutil
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from tests.helpers import run_cli

SAMPLE = Path(__file__).parent.parent / "sample_data"


def score(args: list) -> int:
    return run_cli(["score", *args])


def error_line(err: str) -> str:
    (line,) = [line for line in err.splitlines() if line.startswith("error")]
    return line


# --- --output-format ------------------------------------------------------------------


def test_output_format_overrides_the_suffix(tiny_cnn: Path, tmp_path: Path) -> None:
    """OUTPUT named ``.dat`` is written as Parquet because --output-format says so, with
    the same rows and values as a ``.parquet`` OUTPUT."""
    base = ["score", SAMPLE / "tweets.csv", "--model", tiny_cnn, "--quiet"]
    assert run_cli([*base, "-o", tmp_path / "scored.dat", "--output-format", "parquet"]) == 0
    assert run_cli([*base, "-o", tmp_path / "scored.parquet"]) == 0
    named = pq.read_table(tmp_path / "scored.dat")  # fails on anything but Parquet
    assert named.num_rows == 300
    assert named.equals(pq.read_table(tmp_path / "scored.parquet"))


def test_output_format_jsonl_to_stdout(
    tiny_cnn: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    base = ["score", SAMPLE / "tweets.parquet", "-o", "-", "--model", tiny_cnn, "--quiet"]
    assert run_cli([*base, "--output-format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capfd.readouterr().out.splitlines()]
    source = pl.read_parquet(SAMPLE / "tweets.parquet")
    assert len(rows) == source.height
    assert [r["id"] for r in rows] == source["id"].to_list()
    assert all(("emoji_1" in r and "score_error" in r) for r in rows)


def test_output_format_parquet_to_stdout_is_refused(
    tiny_cnn: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["score", SAMPLE / "tweets.csv", "-o", "-", "--model", tiny_cnn]
    assert run_cli([*args, "--output-format", "parquet"]) == 2
    assert "stdout output must be csv or jsonl" in error_line(capsys.readouterr().err)


# --- OUTPUT takes INPUT's format by default ----------------------------------------------


def test_output_format_follows_input_format(cnn_bundle: Path, tmp_path: Path) -> None:
    inp = tmp_path / "tweets.txt"
    shutil.copy(SAMPLE / "tweets.csv", inp)
    assert score([inp, "--input-format", "csv", "--model", cnn_bundle, "--quiet"]) == 0
    result = pl.read_csv(tmp_path / "tweets.scored.txt", infer_schema=False)
    assert result.height == 300 and "emoji_1" in result.columns
