"""``score`` and ``evaluate`` on ``s3://`` and ``file://`` URIs, against a real
S3-compatible server (moto's server mode, started by the ``s3_server`` fixture)."""

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import pytest

from emoji_batch import scoring
from tests.helpers import run_cli

ROOT = Path(__file__).parent.parent
SAMPLE = ROOT / "sample_data"


def sample(fmt: str, directory: Path) -> Path:
    """The sample tweets as ``fmt`` (JSON lines written from the Parquet file)."""
    if fmt != "jsonl":
        return SAMPLE / f"tweets.{fmt}"
    path = directory / "tweets.jsonl"
    pl.read_parquet(SAMPLE / "tweets.parquet").write_ndjson(path)
    return path


def keys(bucket: Any) -> list[str]:
    return sorted(o.key for o in bucket.objects.all())


def same_output(fmt: str, got: bytes, want: Path) -> None:
    if fmt == "parquet":
        assert pq.read_table(io.BytesIO(got)).equals(pq.read_table(want))
    else:
        assert got == want.read_bytes()


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_s3_in_s3_out_equals_local_run(fmt: str, bucket: Any, tmp_path: Path) -> None:
    """Several chunks read from the store and written back: the object is exactly what a
    local run writes, and nothing else is left in the bucket."""
    src = sample(fmt, tmp_path)
    bucket.upload_file(str(src), f"in/tweets.{fmt}")
    local = tmp_path / f"local.{fmt}"
    assert run_cli(["score", src, "-o", local, "--chunk-rows", 64, "--quiet"]) == 0
    uri = f"s3://{bucket.name}/out/tweets.scored.{fmt}"
    args = ["score", f"s3://{bucket.name}/in/tweets.{fmt}", "-o", uri, "--chunk-rows", 64]
    assert run_cli([*args, "--quiet"]) == 0
    assert keys(bucket) == [f"in/tweets.{fmt}", f"out/tweets.scored.{fmt}"]
    same_output(fmt, bucket.Object(f"out/tweets.scored.{fmt}").get()["Body"].read(), local)
    assert run_cli([*args, "--quiet"]) == 2  # exists: --force to overwrite
    assert run_cli([*args, "--quiet", "--force"]) == 0
    assert not list((tmp_path / "cache" / "emoji-batch" / "outputs").glob("*"))


def test_default_output_beside_remote_input_and_local_mixes(bucket: Any, tmp_path: Path) -> None:
    bucket.upload_file(str(SAMPLE / "tweets.csv"), "tweets.csv")
    local = tmp_path / "local.csv"
    assert run_cli(["score", SAMPLE / "tweets.csv", "-o", local, "--quiet"]) == 0
    assert run_cli(["score", f"s3://{bucket.name}/tweets.csv", "--quiet"]) == 0
    assert bucket.Object("tweets.scored.csv").get()["Body"].read() == local.read_bytes()
    down = tmp_path / "down.csv"  # remote INPUT, local OUTPUT given as a file:// URI
    assert run_cli(["score", f"s3://{bucket.name}/tweets.csv", "-o", f"file://{down}"]) == 0
    assert down.read_bytes() == local.read_bytes()
    assert (
        run_cli(["score", f"file://{SAMPLE / 'tweets.csv'}", "-o", f"s3://{bucket.name}/up.csv"])
        == 0
    )
    assert bucket.Object("up.csv").get()["Body"].read() == local.read_bytes()


def test_missing_object_bucket_and_prefix_are_bad_input(
    bucket: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket.upload_file(str(SAMPLE / "tweets.csv"), "dir/tweets.csv")
    base = f"s3://{bucket.name}"
    assert run_cli(["score", f"{base}/nope.csv", "-o", f"{base}/x.csv"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert run_cli(["score", f"{base}/dir/tweets.csv", "-o", "s3://no-such-bucket/x.csv"]) == 2
    assert "bucket no-such-bucket" in capsys.readouterr().err
    assert (
        run_cli(["score", f"{base}/dir/tweets.csv", "-o", f"{base}/dir", "--output-format", "csv"])
        == 2
    )
    assert "is a directory" in capsys.readouterr().err
    assert keys(bucket) == ["dir/tweets.csv"]


def test_failure_midway_leaves_no_output_object(
    bucket: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An error after some chunks were written: no OUTPUT object, no temporary key."""
    bucket.upload_file(str(SAMPLE / "tweets.parquet"), "tweets.parquet")
    finish, calls = scoring.finish_chunk, []

    def fail_third(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("model crashed")
        return finish(*args, **kwargs)

    monkeypatch.setattr(scoring, "finish_chunk", fail_third)
    out = f"s3://{bucket.name}/out.parquet"
    uri = f"s3://{bucket.name}/tweets.parquet"
    assert run_cli(["score", uri, "-o", out, "--chunk-rows", 50, "--quiet"]) == 1
    assert "model crashed" in capsys.readouterr().err
    assert len(calls) == 3
    assert keys(bucket) == ["tweets.parquet"]


def test_failed_upload_leaves_no_output_object(
    bucket: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The upload itself fails midway (closing its stream completes the part sent to the
    temporary key): no OUTPUT object, and the temporary key is deleted."""
    from emoji_batch import remote

    bucket.upload_file(str(SAMPLE / "tweets.csv"), "tweets.csv")

    def cut_short(source: Any, sink: Any, length: int) -> None:
        sink.write(source.read(100))
        raise OSError("connection reset")

    monkeypatch.setattr(remote.shutil, "copyfileobj", cut_short)
    uri = f"s3://{bucket.name}/tweets.csv"
    assert run_cli(["score", uri, "-o", f"s3://{bucket.name}/out.csv", "--quiet"]) == 2
    assert "connection reset" in capsys.readouterr().err
    assert keys(bucket) == ["tweets.csv"]


@pytest.fixture
def big_jsonl(tmp_path: Path) -> Path:
    sample = pl.read_parquet(SAMPLE / "tweets.parquet")
    path = tmp_path / "big.jsonl"
    pl.concat([sample] * 60).with_row_index("row").write_ndjson(path)  # 18,000 rows
    return path


def test_killed_run_leaves_no_object_and_resumes_from_local_journal(
    bucket: Any, big_jsonl: Path, tmp_path: Path
) -> None:
    """SIGKILL midway (remote INPUT and OUTPUT, --resume): no OUTPUT object; the journal
    is in the local staging directory, and the rerun writes what a local run writes."""
    bucket.upload_file(str(big_jsonl), "big.jsonl")
    out = f"s3://{bucket.name}/big.scored.jsonl"
    args = ["score", f"s3://{bucket.name}/big.jsonl", "-o", out, "--resume", "--chunk-rows", 300]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "emoji_batch", *map(str, args), "--quiet"], env=env
    )
    staging = tmp_path / "cache" / "emoji-batch" / "outputs"
    deadline = time.monotonic() + 120
    while len(list(staging.glob("*/.big.scored.jsonl.resume/*.arrow"))) < 3:
        assert proc.poll() is None, "finished before it could be killed: make the input bigger"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert keys(bucket) == ["big.jsonl"]
    done = len(list(staging.glob("*/.big.scored.jsonl.resume/*.arrow")))
    assert 3 <= done < 60

    local = tmp_path / "local.jsonl"
    assert run_cli(["score", big_jsonl, "-o", local, "--chunk-rows", 300, "--quiet"]) == 0
    assert run_cli([*args, "--quiet"]) == 0
    assert keys(bucket) == ["big.jsonl", "big.scored.jsonl"]
    assert bucket.Object("big.scored.jsonl").get()["Body"].read() == local.read_bytes()
    assert not list(staging.glob("*/.big.scored.jsonl.resume"))


def test_evaluate_reads_a_uri(
    bucket: Any, tiny_data: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    bucket.upload_file(str(tiny_data["val"]), "Val.csv")
    cols = ["--text-column", "TEXT", "--label-column", "Label"]
    assert run_cli(["evaluate", "--data", tiny_data["val"], *cols]) == 0
    local = capsys.readouterr().out
    assert run_cli(["evaluate", "--data", f"s3://{bucket.name}/Val.csv", *cols]) == 0
    assert capsys.readouterr().out == local
    assert "accuracy" in local.lower()
