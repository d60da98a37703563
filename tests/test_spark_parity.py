"""``score --engine spark`` writes what local ``score`` writes, or refuses as it does
(issue 18): the same small files through both engines, identical output bytes (CSV,
JSON lines) or frames (Parquet), else the same exit code and ``error:`` line."""

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from emoji_batch.bundle import DEFAULT_MODEL, shipped_models_dir
from emoji_batch.scoring import score_file
from emoji_batch.spark import score_dataframe, spark_session
from tests.helpers import run_cli

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    session = spark_session("local[2]")
    yield session
    session.stop()


def error_line(err: str) -> str | None:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    return lines[-1] if lines else None


def both(capsys, inp: Path, tmp: Path, suffix: str, *args: object) -> tuple[Path, Path]:
    """Score ``inp`` locally and on Spark; the same exit code and error line, else raise
    AssertionError. Returns (local output file, Spark output directory)."""
    local, remote = tmp / f"local{suffix}", tmp / f"spark{suffix}"
    code = run_cli(["score", inp, "-o", local, *args])
    local_err = capsys.readouterr().err
    spark_code = run_cli(
        ["score", inp, "-o", remote, *args, "--engine", "spark", "--spark-master", "local[2]"]
    )
    spark_err = capsys.readouterr().err
    assert (spark_code, error_line(spark_err)) == (code, error_line(local_err)), spark_err
    assert "\tat org.apache" not in spark_err and "Traceback" not in spark_err
    return local, remote


def parts(directory: Path) -> list[Path]:
    assert (directory / "_SUCCESS").is_file()
    return sorted(p for p in directory.iterdir() if p.name.startswith("part-"))


def same_bytes(local: Path, remote: Path) -> bytes:
    """One part file (a single input file is one task) with local's bytes."""
    (part,) = parts(remote)
    assert part.read_bytes() == local.read_bytes()
    return local.read_bytes()


CSV_CASES = {
    # Leading and trailing blanks, in the text and in other columns, quoted or not.
    "spaces": b'id,text,note\n 1 ,  i love you mom  , x \n2,"  merry christmas  ",\t tab\t\n',
    # Quoted and unquoted empties, blanks: empty text, written back as read.
    "empties": b'id,text,note\n1,"",""\n2,,\n3,"lol",\n4,  ,"  "\n',
    "bom_crlf": b'\xef\xbb\xbfid,text\r\n1,i love you\r\n2,"two\r\nlines \xf0\x9f\x98\x82"\r\n',
    "invalid_utf8": b"id,text\n1,caf\xe9 time\n2,ok then\n",
}


@pytest.mark.parametrize("case", list(CSV_CASES))
def test_csv_bytes_as_local(spark, tmp_path: Path, capsys, case: str) -> None:
    inp = tmp_path / "in.csv"
    inp.write_bytes(CSV_CASES[case])
    written = same_bytes(*both(capsys, inp, tmp_path, ".csv"))
    if case == "empties":
        lines = written.decode().splitlines()
        assert lines[1].startswith('"1","","",') and lines[1].endswith('"empty text"')
    if case == "spaces":
        assert written.decode().splitlines()[1].startswith('" 1 ","  i love you mom  "," x "')


def test_ragged_csv_row_refused_as_local(spark, tmp_path: Path, capsys) -> None:
    inp = tmp_path / "in.csv"
    inp.write_text("id,text\n1,ok\n2,too,many,fields\n")
    local, remote = both(capsys, inp, tmp_path, ".csv")
    assert not local.exists() and not remote.exists()


def test_ragged_csv_message(spark, tmp_path: Path, capsys) -> None:
    inp = tmp_path / "in.csv"
    inp.write_text("id,text\n1,ok\n2,too,many,fields\n")
    assert run_cli(["score", inp, "--engine", "spark", "--spark-master", "local[2]"]) == 2
    assert error_line(capsys.readouterr().err) == (
        f"error: {inp}:3: ragged CSV row: expected 2 fields, got 4: '2,too,many,fields'"
    )


JSONL_CASES = {
    "broken_line": '{"id": 1, "text": "i love you"}\n{not json\n',
    # Keys out of alphabetical order, one missing on some lines, a number as text among
    # strings (JSON text: "text is int64, not a string"), a key of several JSON types.
    "mixed": (
        '{"text": "merry christmas", "id": 1, "zeta": true}\n'
        '{"text": 5, "id": 2}\n'
        '{"id": 3, "text": "lol", "alpha": "x", "zeta": null}\n'
        '{"id": 4, "text": null, "alpha": 4.5, "nested": {"a": [1, 2]}}\n'
    ),
    "numbers_only": '{"z": 1, "text": 5}\n{"z": 2, "text": 7}\n',
}


@pytest.mark.parametrize("case", list(JSONL_CASES))
def test_jsonl_as_local(spark, tmp_path: Path, capsys, case: str) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_text(JSONL_CASES[case])
    local, remote = both(capsys, inp, tmp_path, ".jsonl")
    if case == "broken_line":
        assert not local.exists() and not remote.exists()
        return
    written = same_bytes(local, remote)
    rows = [json.loads(line) for line in written.decode().splitlines()]
    if case == "mixed":
        assert list(rows[0])[:4] == ["text", "id", "zeta", "alpha"]
    errors = [r["score_error"] for r in rows]
    assert "text is int64, not a string" in errors


def test_jsonl_to_csv_and_parquet(spark, tmp_path: Path, capsys) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_text(JSONL_CASES["mixed"])
    same_bytes(*both(capsys, inp, tmp_path, ".csv"))
    local, remote = both(capsys, inp, tmp_path / "", ".parquet")
    got = pa.concat_tables(pq.read_table(p) for p in parts(remote))
    want = pq.read_table(local)
    # Spark has no JSON type: JSON text comes back as its strings (README).
    want = want.cast(
        pa.schema(
            [
                f.with_type(pa.string()) if isinstance(f.type, pa.JsonType) else f
                for f in want.schema
            ]
        )
    )
    assert got.equals(want)


def parquet_frames(local: Path, remote: Path) -> None:
    got = pa.concat_tables(pq.read_table(p) for p in parts(remote))
    want = pq.read_table(local)
    assert got.schema.names == want.schema.names
    assert got.equals(want), (got.to_pydict(), want.to_pydict())


def test_parquet_with_nulls_as_local(spark, tmp_path: Path, capsys) -> None:
    inp = tmp_path / "in.parquet"
    texts = ["i love you", None, "", "  \t", "merry christmas 🎄", "lol " * 30, None]
    n = len(texts)
    table = pa.table(
        {
            "zeta": [f"z{i}" if i % 2 else None for i in range(n)],
            "text": texts,
            "id": list(range(n)),
            "score": [1.5, None, 2.0, None, 0.0, -1.0, None],
        }
    )
    pq.write_table(table, inp)
    parquet_frames(*both(capsys, inp, tmp_path, ".parquet"))
    same_bytes(*both(capsys, inp, tmp_path, ".csv"))
    same_bytes(*both(capsys, inp, tmp_path, ".jsonl"))


def test_parquet_directory_in_file_order(spark, tmp_path: Path, capsys) -> None:
    """A directory is read file by file in name order, each file's rows in order: the
    local output of the files concatenated in that order."""
    folder = tmp_path / "in"
    folder.mkdir()
    texts = ["i love you", "merry christmas", "lol", None, "fire 🔥", "happy birthday"]
    # Largest last by name: Spark packs the largest file first, so only the sort by file
    # name and row gives name order.
    sizes = {"c.parquet": 9, "a.parquet": 2, "b.parquet": 5}
    at = 0
    for name, size in sizes.items():
        rows = {
            "id": list(range(at, at + size)),
            "text": [texts[i % 6] for i in range(at, at + size)],
        }
        pq.write_table(pa.table(rows), folder / name)
        at += size
    whole = pa.concat_tables(pq.read_table(folder / n) for n in sorted(sizes))
    pq.write_table(whole, tmp_path / "whole.parquet")
    assert score_file(tmp_path / "whole.parquet", tmp_path / "local.parquet", progress=False)
    remote = tmp_path / "spark_out"
    args = ["score", folder, "-o", remote, "--input-format", "parquet", "--engine", "spark"]
    assert run_cli([*args, "--spark-master", "local[2]"]) == 0
    parquet_frames(tmp_path / "local.parquet", remote)


def test_corrupt_parquet_is_one_line(spark, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    pq.write_table(pa.table({"text": ["i love you"]}), folder / "a.parquet")
    (folder / "b.parquet").write_bytes(b"not a parquet file at all")
    args = ["score", folder, "-o", tmp_path / "out", "--input-format", "parquet"]
    assert run_cli([*args, "--engine", "spark", "--spark-master", "local[2]"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") <= 2 and "at org.apache" not in err
    line = error_line(err) or ""
    assert "b.parquet" in line and "is not a Parquet file" in line


def cli(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emoji_batch", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=REPO,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--spark-master", "lokal[2]"], {}, "--spark-master 'lokal[2]' is not a Spark master URL"),
        ([], {"JAVA_HOME": "/no/such/java"}, "JAVA_HOME=/no/such/java has no bin/java"),
    ],
)
def test_start_failures_name_the_cause(tmp_path: Path, args, env, message) -> None:
    inp = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": ["i love you"]}), inp)
    done = cli("score", inp, "--engine", "spark", *args, env=env)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {message}")


def test_changed_bundle_is_reloaded_in_the_same_session(spark, tmp_path: Path) -> None:
    """Score, change the bundle's calibration, score again: the new model answers."""
    bundle = tmp_path / "bundle"
    shutil.copytree(shipped_models_dir() / DEFAULT_MODEL, bundle)
    inp = tmp_path / "in.parquet"
    pq.write_table(
        pa.table({"id": [0, 1, 2], "text": ["i love you", "lol", "merry christmas"]}), inp
    )

    def spark_probs() -> list[float]:
        frame = spark.read.parquet(str(inp)).repartition(2)
        scored = score_dataframe(frame, model=str(bundle)).toArrow().sort_by("id")
        return scored["prob_1"].to_pylist()

    def local_probs() -> list[float]:
        score_file(inp, tmp_path / "local.parquet", model=str(bundle), force=True, progress=False)
        return pq.read_table(tmp_path / "local.parquet")["prob_1"].to_pylist()

    before = spark_probs()
    assert before == pytest.approx(local_probs())
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["calibration"]["prior_power"] = 2.0
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    after = spark_probs()
    assert after != pytest.approx(before)
    assert after == pytest.approx(local_probs())


def test_archives_recipe_ships_the_bundle(tmp_path: Path) -> None:
    """README's spark-submit recipe, run as written but on local[2] with local paths, from
    a directory holding my_bundle/: the executors use the shipped archive, not the
    driver's ./my_bundle."""
    shutil.copytree(shipped_models_dir() / DEFAULT_MODEL, tmp_path / "my_bundle")
    pq.write_table(pa.table({"id": [0, 1], "text": ["i love you", "lol"]}), tmp_path / "in.parquet")
    main = REPO / "emoji_batch" / "__main__.py"
    submit = Path(sys.executable).with_name("spark-submit")
    script = f"""
set -e
cd my_bundle && zip -qr ../my_bundle.zip . && cd ..
{submit} --master "local[2]" \\
  --archives my_bundle.zip#my_bundle \\
  --conf spark.pyspark.python={sys.executable} \\
  --conf spark.ui.showConsoleProgress=false \\
  {main} \\
  score in.parquet -o scored/ --input-format parquet \\
  --engine spark --model my_bundle --precision auto --log-format json
"""
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # spark-submit hands the application's stderr to its stdout.
    log = (done.stdout + done.stderr).splitlines()
    events = [json.loads(line) for line in log if line.startswith('{"time"')]
    (start,) = [e for e in events if e.get("event") == "start"]
    assert Path(start["bundle"]).resolve() != (tmp_path / "my_bundle").resolve()
    assert (tmp_path / "scored" / "_SUCCESS").is_file()
    (summary,) = [e for e in events if e.get("event") == "summary"]
    assert summary["rows"] == 2 and "(0 rows/s)" not in summary["message"]
