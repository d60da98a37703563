"""The output room: one rule for OUTPUT's name and format, shared by every engine."""

import hashlib
import json
import os
from pathlib import Path

import pytest

from emoji_batch.errors import InputError
from emoji_batch.fileio import file_fingerprint, write_json
from emoji_batch.folders import output_name
from emoji_batch.output import OutputTarget, default_output, output_format, scored_name
from emoji_batch.spark.paths import default_output_uri


@pytest.mark.parametrize(
    ("name", "fmt", "scored"),
    [
        ("tweets.csv", None, "tweets.scored.csv"),
        ("Tweets.CSV", None, "Tweets.scored.CSV"),
        ("a.b.parquet", None, "a.b.scored.parquet"),
        ("tweets", None, "tweets.scored"),
        ("tweets.csv", "jsonl", "tweets.scored.jsonl"),
    ],
)
def test_scored_name(name: str, fmt: str | None, scored: str) -> None:
    assert scored_name(name, fmt) == scored


def test_every_engine_names_the_default_output_alike(tmp_path: Path) -> None:
    assert default_output(tmp_path / "in.jsonl") == tmp_path / "in.scored.jsonl"
    assert default_output(Path("-")) == Path("-")
    assert default_output_uri("s3a://b/day=1/in.jsonl") == "s3a://b/day=1/in.scored.jsonl"
    assert default_output_uri("s3a://b/landing/") == "s3a://b/landing.scored"
    assert output_name("day=1/in.jsonl", None) == "day=1/in.scored.jsonl"
    assert output_name("in.jsonl", "csv") == "in.scored.csv"


def test_output_format_rules() -> None:
    out = Path("out.jsonl")
    assert output_format(out, None, "csv") == "jsonl"
    assert output_format(out, "parquet", "csv") == "parquet"
    assert output_format(Path("-"), None, "jsonl", inherit=True) == "jsonl"
    assert output_format(Path("scored"), None, "parquet", directory=True) == "parquet"
    with pytest.raises(InputError, match="cannot tell the format"):
        output_format(Path("scored"), None, "parquet")


def test_target_resolves_and_refuses_before_reading(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    target = OutputTarget.resolve(source, None, "csv", "jsonl")
    assert (target.path, target.format, target.to_stdout) == (
        tmp_path / "in.scored.csv",
        "jsonl",
        False,
    )
    assert OutputTarget.resolve(Path("-"), None, "jsonl").to_stdout
    with pytest.raises(InputError, match="stdout output must be csv or jsonl"):
        OutputTarget.resolve(source, Path("-"), "parquet")
    with pytest.raises(InputError, match="--resume needs a file"):
        OutputTarget.resolve(source, Path("-"), "csv", resume=True)
    (tmp_path / "in.scored.csv").write_text("x\n")
    with pytest.raises(InputError, match="already exists"):
        OutputTarget.resolve(source, None, "csv")


def test_write_json_keeps_the_mode_and_writes_utf8(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text("{}")
    os.chmod(path, 0o640)
    write_json(path, {"emoji": "❤"}, indent=1)
    assert path.read_text(encoding="utf-8") == '{\n "emoji": "❤"\n}\n'
    assert path.stat().st_mode & 0o777 == 0o640
    assert not [p for p in tmp_path.iterdir() if p != path]


def test_file_fingerprint(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_bytes(b"text\nhi\n")
    seen = file_fingerprint(path, 1, marked_tweets=0)
    assert list(seen) == ["path", "rows", "marked_tweets", "sha256"]
    assert seen["sha256"] == hashlib.sha256(b"text\nhi\n").hexdigest()
    assert json.dumps(file_fingerprint(path, 1)) != json.dumps(seen)
