"""``emoji-batch score DIR -o OUTDIR``: every file, then only what is new or changed."""

import json
import os
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from emoji_batch.errors import EXIT_FILES_FAILED
from emoji_batch.folders import STATE
from tests.helpers import run_cli

SAMPLE = Path(__file__).parent.parent / "sample_data"


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    """Three inputs in two levels, a file that is not a table and a hidden one."""
    root = tmp_path / "landing"
    (root / "day=1").mkdir(parents=True)
    shutil.copy(SAMPLE / "tweets.csv", root / "a.csv")
    shutil.copy(SAMPLE / "tweets.parquet", root / "day=1" / "b.parquet")
    pl.read_parquet(SAMPLE / "tweets.parquet").head(40).write_ndjson(root / "day=1" / "c.jsonl")
    (root / "README.txt").write_text("not a table")
    shutil.copy(SAMPLE / "tweets.csv", root / ".partial.csv")
    return root


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, dict[str, Any]]:
    """Exit code and the JSON summary event of ``score ARGS --log-format json``."""
    capsys.readouterr()
    code = run_cli(["score", *args, "--log-format", "json"])
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    summary = [e for e in events if e["event"] == "summary"]
    return code, (summary[0] if summary else {})


def outputs(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_twice_then_new_changed_touched_and_removed_files(
    landing: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "scored"
    code, first = run(capsys, landing, "-o", out)
    assert code == 0
    assert first["scored"] == ["a.csv", "day=1/b.parquet", "day=1/c.jsonl"]
    assert first["unchanged"] == [] and first["failed"] == {}
    assert first["rows"] == 640
    assert outputs(out) == [
        STATE,
        "a.scored.csv",
        "day=1/b.scored.parquet",
        "day=1/c.scored.jsonl",
    ]
    single = tmp_path / "single.csv"  # each output is what scoring that file alone writes
    assert run_cli(["score", landing / "a.csv", "-o", single, "--quiet"]) == 0
    assert (out / "a.scored.csv").read_bytes() == single.read_bytes()

    code, second = run(capsys, landing, "-o", out)
    assert code == 0 and second["scored"] == [] and len(second["unchanged"]) == 3

    shutil.copy(SAMPLE / "tweets.csv", landing / "day=1" / "new.csv")
    _, third = run(capsys, landing, "-o", out)
    assert third["scored"] == ["day=1/new.csv"] and len(third["unchanged"]) == 3

    changed = landing / "day=1" / "c.jsonl"
    pl.read_ndjson(changed).head(7).write_ndjson(changed)
    touched = landing / "a.csv"  # new time, same bytes: the hash says unchanged
    os.utime(touched, ns=(1, 1))
    (out / "day=1" / "b.scored.parquet").unlink()  # output gone: scored again
    _, fourth = run(capsys, landing, "-o", out)
    assert fourth["scored"] == ["day=1/b.parquet", "day=1/c.jsonl"]
    assert pl.read_ndjson(out / "day=1" / "c.scored.jsonl").height == 7
    assert sorted(fourth["unchanged"]) == ["a.csv", "day=1/new.csv"]
    state = json.loads((out / STATE).read_text())
    assert state["files"]["a.csv"]["mtime_ns"] == 1

    _, forced = run(capsys, landing, "-o", out, "--force")
    assert len(forced["scored"]) == 4 and forced["unchanged"] == []
    _, other_k = run(capsys, landing, "-o", out, "--top-k", 2)  # another setting: all again
    assert len(other_k["scored"]) == 4
    assert "emoji_3" not in pl.read_parquet(out / "day=1" / "b.scored.parquet").columns


def test_broken_file_fails_alone(
    landing: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (landing / "day=1" / "broken.parquet").write_bytes(b"PAR1 not really")
    (landing / "ragged.csv").write_text("id,text\n1,hello\n2,a,b\n")
    out = tmp_path / "scored"
    code, summary = run(capsys, landing, "-o", out)
    assert code == EXIT_FILES_FAILED
    assert sorted(summary["failed"]) == ["day=1/broken.parquet", "ragged.csv"]
    assert "ragged CSV row" in summary["failed"]["ragged.csv"]
    assert summary["scored"] == ["a.csv", "day=1/b.parquet", "day=1/c.jsonl"]
    assert outputs(out) == [
        STATE,
        "a.scored.csv",
        "day=1/b.scored.parquet",
        "day=1/c.scored.jsonl",
    ]
    # Fixed: only it is scored; text logs name the failed files in the error line.
    (landing / "ragged.csv").write_text("id,text\n1,hello\n2,a b\n")
    capsys.readouterr()
    assert run_cli(["score", landing, "-o", out]) == EXIT_FILES_FAILED
    err = capsys.readouterr().err
    assert "1 file scored" in err and "3 unchanged" in err and "1 failed" in err
    assert "error: 1 of 5 files failed: day=1/broken.parquet" in err


def test_existing_output_not_from_a_run_needs_force(
    landing: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "scored"
    out.mkdir()
    (out / "a.scored.csv").write_text("mine")
    code, summary = run(capsys, landing, "-o", out)
    assert code == EXIT_FILES_FAILED and "already exists" in summary["failed"]["a.csv"]
    assert (out / "a.scored.csv").read_text() == "mine"
    code, summary = run(capsys, landing, "-o", out, "--force")
    assert code == 0 and len(summary["scored"]) == 3


def test_glob_and_outdir_inside_input(landing: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = landing / "scored"  # inside INPUT: its own files are never inputs
    code, summary = run(capsys, f"{landing}/**/*.parquet", "-o", out)
    assert code == 0 and summary["scored"] == ["day=1/b.parquet"]
    code, summary = run(capsys, landing, "-o", out)
    assert code == 0
    assert summary["scored"] == ["a.csv", "day=1/c.jsonl"]
    assert summary["unchanged"] == ["day=1/b.parquet"]
    assert run_cli(["score", out, "-o", landing]) == 2  # OUTDIR holding INPUT


def test_folder_needs_outdir_and_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["score", SAMPLE.parent / "docs"]) == 2
    assert "name OUTDIR with -o" in capsys.readouterr().err
    assert run_cli(["score", SAMPLE.parent / "docs", "-o", tmp_path / "o"]) == 2
    assert "no .csv, .parquet or .jsonl files" in capsys.readouterr().err


def test_s3_prefix_to_s3_prefix(bucket: Any, capsys: pytest.CaptureFixture[str]) -> None:
    bucket.upload_file(str(SAMPLE / "tweets.csv"), "landing/a.csv")
    bucket.upload_file(str(SAMPLE / "tweets.parquet"), "landing/day=1/b.parquet")
    base = f"s3://{bucket.name}"
    code, first = run(capsys, f"{base}/landing/", "-o", f"{base}/scored/")
    assert code == 0 and first["scored"] == ["a.csv", "day=1/b.parquet"]
    assert sorted(o.key for o in bucket.objects.all()) == [
        "landing/a.csv",
        "landing/day=1/b.parquet",
        f"scored/{STATE}",
        "scored/a.scored.csv",
        "scored/day=1/b.scored.parquet",
    ]
    code, second = run(capsys, f"{base}/landing", "-o", f"{base}/scored")
    assert code == 0 and second["scored"] == [] and len(second["unchanged"]) == 2
    bucket.upload_file(str(SAMPLE / "tweets.csv"), "landing/c.csv")
    code, third = run(capsys, f"{base}/landing", "-o", f"{base}/scored")
    assert code == 0 and third["scored"] == ["c.csv"]


def test_another_model_rescores_every_file(
    landing: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The model's fingerprint (its files' sha256) is in the state: a bundle changed in
    place under the same name scores every file again."""
    shipped = Path(__file__).parent.parent / "emoji_batch" / "models" / "ngram_svm"
    bundle = tmp_path / "my_model"
    shutil.copytree(shipped, bundle)
    out = tmp_path / "scored"
    code, first = run(capsys, landing, "-o", out, "--model", bundle)
    assert code == 0 and len(first["scored"]) == 3
    _, second = run(capsys, landing, "-o", out, "--model", bundle)
    assert second["scored"] == []
    with open(bundle / "manifest.json", "a") as fh:
        fh.write("\n")
    _, third = run(capsys, landing, "-o", out, "--model", bundle)
    assert len(third["scored"]) == 3 and third["unchanged"] == []
