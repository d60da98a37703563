"""``--engine spark`` and ``emoji_batch.spark`` in Spark's local mode: the same output as
local ``score``, row for row, whatever the partitioning or where the bundle comes from."""

import random
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from emoji_batch.bundle import DEFAULT_MODEL, shipped_models_dir
from emoji_batch.errors import InputError
from emoji_batch.position import PositionModel
from emoji_batch.scoring import score_file
from emoji_batch.spark import INSTALL_HINT, score_dataframe, score_path, spark_session
from tests.helpers import make_rows, run_cli

ROOT = Path(__file__).parent.parent

# Rows every engine must refuse the same way: null, empty, blank; the rest are scored.
ODD = [None, "", "   \t ", "https://t.co/abc", "@user", "😂😂", "merry christmas 🎄" * 40]


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    session = spark_session("local[2]")
    yield session
    session.stop()


def tweets(path: Path, n: int = 400, seed: int = 7, text: str = "TEXT") -> Path:
    """``n`` seeded tweets with the odd rows scattered among them, ``id`` 0..n-1."""
    rng = random.Random(seed)
    texts: list[str | None] = [t for t, _ in make_rows(n - len(ODD), seed)]
    for odd in ODD:
        texts.insert(rng.randrange(len(texts) + 1), odd)
    pq.write_table(pa.table({"id": list(range(n)), text: texts, "lang": ["en"] * n}), path)
    return path


def local_score(inp: Path, out: Path, **options: object) -> pa.Table:
    score_file(inp, out, force=True, progress=False, **options)  # type: ignore[arg-type]
    return pq.read_table(out)


def assert_same(spark_out: pa.Table, local_out: pa.Table, in_order: bool = True) -> None:
    """Same columns and types, the same rows in the same order (or, for a frame Spark
    reshuffled, the same rows by id): equal emoji, inputs and score_error, probabilities
    equal to float32 precision (a batch's padding can move the last bits)."""
    assert spark_out.schema == local_out.schema
    got, want = spark_out, local_out
    if not in_order:
        got, want = spark_out.sort_by("id"), local_out.sort_by("id")
    for name in want.column_names:
        if name.startswith("prob_"):
            a = got[name].to_numpy(zero_copy_only=False)
            b = want[name].to_numpy(zero_copy_only=False)
            assert np.array_equal(np.isnan(a), np.isnan(b)), name
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=name)
        else:
            assert got[name].to_pylist() == want[name].to_pylist(), name


def test_partitioned_frame_equals_local_score(spark, tmp_path: Path) -> None:
    inp = tweets(tmp_path / "in.parquet")
    df = spark.read.parquet(str(inp)).repartition(3)
    assert df.rdd.getNumPartitions() == 3
    scored = score_dataframe(df, text_column="text")  # matched case-insensitively: TEXT
    want = local_score(inp, tmp_path / "local.parquet")
    assert_same(scored.toArrow(), want, in_order=False)  # repartition reshuffled the rows
    errors = want["score_error"].to_pylist()
    assert errors.count("missing text") == 1 and errors.count("empty text") == 2
    assert sum(e is None for e in errors) == len(errors) - 3


def test_text_column_that_is_not_text(spark, tmp_path: Path) -> None:
    inp = tmp_path / "ints.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3], "text": [5, None, 7]}), inp)
    scored = score_dataframe(spark.read.parquet(str(inp)), top_k=2).toArrow()
    want = local_score(inp, tmp_path / "local.parquet", top_k=2)
    assert_same(scored, want)
    assert want["score_error"].to_pylist() == [
        "text is int64, not a string",
        "missing text",
        "text is int64, not a string",
    ]


def test_insert_equals_local_insert(spark, tmp_path: Path) -> None:
    """``insert`` with a position model found in ``models_dir``, as locally."""
    models = tmp_path / "models"
    PositionModel({"nw,nnw=christmas,the": 2.0, "pend=e": 1.0}).save(models / "emoji_position")
    inp = tweets(tmp_path / "in.parquet", n=60, seed=3)
    frame = spark.read.parquet(str(inp)).repartition(2)
    scored = score_dataframe(frame, insert=True, models_dir=models)
    want = local_score(inp, tmp_path / "local.parquet", insert=True, models_dir=models)
    assert want.column_names[-1] == "text_with_emoji"
    assert_same(scored.toArrow(), want, in_order=False)  # repartitioned


def test_bundle_shipped_as_archive(spark, tmp_path: Path) -> None:
    """A bundle zipped and added to the job is found by name on the workers, though the
    driver has no bundle of that name."""
    bundle = shipped_models_dir() / DEFAULT_MODEL
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in ("manifest.json", "weights.safetensors", "ngrams.txt"):
            zf.write(bundle / name, name)
    spark.sparkContext.addArchive(f"{archive}#shipped_bundle")
    inp = tweets(tmp_path / "in.parquet", n=50, seed=5)
    scored = score_dataframe(spark.read.parquet(str(inp)), model="shipped_bundle")
    assert_same(scored.toArrow(), local_score(inp, tmp_path / "local.parquet"))


def spark_cli(*args: object) -> int:
    return run_cli(["score", *args, "--engine", "spark", "--spark-master", "local[2]"])


def test_cli_writes_a_parquet_directory_equal_to_local(spark, tmp_path: Path, capsys) -> None:
    inp = tweets(tmp_path / "in.parquet", n=120, seed=11)
    out = tmp_path / "scored"
    assert spark_cli(inp, "-o", f"{out}/") == 0
    assert (out / "_SUCCESS").is_file()
    summary = capsys.readouterr().err.strip().splitlines()[-1]
    assert summary.startswith("scored 120 rows (3 not scorable) in ")
    assert_same(pq.read_table(out), local_score(inp, tmp_path / "local.parquet"))


def test_cli_csv_to_csv(spark, tmp_path: Path) -> None:
    """CSV is read and written as local ``score`` does (see test_spark_parity.py)."""
    inp = tmp_path / "in.csv"
    inp.write_text('id,text\n1,"i love you, mom"\n2,"lol ""quoted""\nnewline"\n3,   \n')
    out = tmp_path / "scored.csv"
    assert spark_cli(inp, "-o", out) == 0
    parts = sorted(out.glob("part-*.csv"))
    assert (out / "_SUCCESS").is_file() and len(parts) == 1
    assert run_cli(["score", inp, "-o", tmp_path / "local.csv"]) == 0
    assert parts[0].read_bytes() == (tmp_path / "local.csv").read_bytes()
    lines = parts[0].read_text().splitlines()
    assert (
        lines[0].replace('"', "")
        == "id,text,emoji_1,emoji_2,emoji_3,prob_1,prob_2,prob_3,score_error"
    )
    assert '"lol ""quoted""' in lines[2]
    assert lines[-1].endswith('"empty text"')


def test_cli_refuses_existing_output_without_force(spark, tmp_path: Path, capsys) -> None:
    inp = tweets(tmp_path / "in.parquet", n=20)
    out = tmp_path / "scored"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert spark_cli(inp, "-o", out) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert (out / "keep.txt").exists()
    assert spark_cli(inp, "-o", out, "--force") == 0
    assert (out / "_SUCCESS").is_file() and not (out / "keep.txt").exists()


@pytest.mark.parametrize("layout", ["same", "holds", "inside", "glob"])
def test_output_overlapping_the_input_is_refused_and_nothing_is_removed(
    spark, tmp_path: Path, capsys, layout: str
) -> None:
    """Spark's overwrite removes OUTPUT before the input is read: OUTPUT that is, holds or
    lies inside INPUT is refused (exit 2) even with --force, and every file survives."""
    victim = tmp_path / "victim"
    victim.mkdir()
    inp = victim / "in.csv"
    inp.write_text("id,text\n1,i love you\n2,so funny lol\n")
    (victim / "other.txt").write_text("keep me")
    source, out = {
        "same": (inp, inp),
        "holds": (inp, victim),
        "inside": (victim, victim / "scored"),
        "glob": (f"{victim}/*.csv", victim),
    }[layout]
    assert spark_cli(source, "-o", out, "--force", "--input-format", "csv") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: output ") and "input" in err and "Traceback" not in err
    assert inp.read_text().startswith("id,text\n1,i love you")
    assert (victim / "other.txt").read_text() == "keep me"
    with pytest.raises(InputError, match="input"):
        score_path(str(source), str(out), force=True, input_format="csv")
    assert sorted(p.name for p in victim.iterdir()) == ["in.csv", "other.txt"]


def test_awkward_column_names_pass_through(spark, tmp_path: Path, capsys) -> None:
    """Columns named like Spark's file metadata and names that differ only in case are
    scored as locally, from a Parquet file and from a CSV glob; a dotted name, which
    PySpark cannot hand to Python, is refused in one line naming it (exit 2)."""
    table = pa.table(
        {
            "id": [1, 2, 3],
            "file_path": ["a", "b", "c"],
            "row_index": [7, 8, 9],
            "Text": ["LOUD", None, "lol"],
            "text": ["i love you", "merry christmas", None],
        }
    )
    inp = tmp_path / "in.parquet"
    pq.write_table(table, inp)
    out = tmp_path / "out"
    assert spark_cli(inp, "-o", out) == 0
    assert_same(pq.read_table(out), local_score(inp, tmp_path / "local.parquet"))
    dotted = tmp_path / "dotted.parquet"
    pq.write_table(pa.table({"user.name": ["x"], "text": ["i love you"]}), dotted)
    assert spark_cli(dotted, "-o", tmp_path / "dotted_out") == 2
    err = capsys.readouterr().err
    assert "['user.name']" in err and "--engine local" in err and "Traceback" not in err
    with pytest.raises(InputError, match=r"user\.name"):
        score_dataframe(spark.read.parquet(str(dotted)))
    folder = tmp_path / "csvs"
    folder.mkdir()
    for name, rows in (("b.csv", "3,lol\n"), ("a.csv", "1,i love you\n2,so funny\n")):
        (folder / name).write_text("id,text\n" + rows)
    assert spark_cli(f"{folder}/*.csv", "-o", tmp_path / "globbed", "--output-format", "csv") == 0
    parts = sorted((tmp_path / "globbed").glob("part-*.csv"))
    ids = [i for part in parts for i in pacsv.read_csv(part).column("id").to_pylist()]
    assert ids == [1, 2, 3]  # the files in name order, each file's rows in order


def test_spark_emoji_k_is_the_label_of_the_kth_largest_probability(spark) -> None:
    """Against an independent computation (predict_proba, then a sort), on real tweets."""
    import emoji_batch

    texts = pl.read_csv(ROOT / "sample_data" / "tweets.csv", infer_schema=False)["text"]
    texts = [t for t in texts.to_list() if t and t.strip()][:100]
    df = spark.createDataFrame([(i, t) for i, t in enumerate(texts)], "id long, text string")
    scored = score_dataframe(df.coalesce(1), top_k=3).toArrow()
    model = emoji_batch.load()
    probs = model.predict_proba(texts)
    ranked = np.sort(probs, axis=1)[:, ::-1]
    emoji = np.array([label.emoji for label in model.labels])
    for k in range(3):
        np.testing.assert_allclose(scored[f"prob_{k + 1}"].to_numpy(), ranked[:, k], rtol=1e-5)
        clear = ranked[:, k] - ranked[:, k + 1] > 1e-6  # ties may order either way
        got = np.array(scored[f"emoji_{k + 1}"].to_pylist())
        want = emoji[np.argsort(-probs, axis=1, kind="stable")[:, k]]
        assert (got[clear] == want[clear]).all()


def test_nanosecond_timestamps_are_refused_in_one_line(spark, tmp_path: Path, capsys) -> None:
    inp = tmp_path / "ns.parquet"
    stamps = pa.array([1_700_000_000_000_000_001], pa.timestamp("ns"))
    pq.write_table(pa.table({"text": ["i love you"], "at": stamps}), inp, version="2.6")
    assert spark_cli(inp, "-o", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--resume"], "--resume is for --engine local"),
        (["--model", "no_such_bundle"], "no model named 'no_such_bundle'"),
        (["--precision", "int8"], "has no checked int8 precision"),
        (["--text-column", "body"], "text column 'body' not found"),
    ],
)
def test_cli_refusals_exit_2(spark, tmp_path: Path, capsys, args: list, message: str) -> None:
    """Refusals read as local ``score``'s, even those raised on a worker."""
    inp = tweets(tmp_path / "in.parquet", n=20)
    assert spark_cli(inp, "-o", tmp_path / "out", *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_stdio_and_missing_input_are_refused(tmp_path: Path, capsys) -> None:
    assert spark_cli("-", "-o", tmp_path / "out") == 2
    assert "not stdin/stdout" in capsys.readouterr().err
    assert spark_cli(tmp_path / "absent.parquet", "-o", tmp_path / "out") == 2
    assert "absent.parquet" in capsys.readouterr().err


def test_missing_pyspark_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)
    assert spark_cli(tmp_path / "in.parquet", "-o", tmp_path / "out") == 2
    assert INSTALL_HINT in capsys.readouterr().err


def test_only_the_spark_module_imports_pyspark() -> None:
    code = (
        "import sys, emoji_batch.cli, emoji_batch.scoring, emoji_batch.spark; "
        "assert 'pyspark' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_engine_and_api_gives_the_same_columns_and_values(
    spark: SparkSession, tmp_path: Path
) -> None:
    """One ScoreOptions through score to a file, score_frame on polars, pandas and Arrow,
    and the Spark engine: the same columns, types and values."""
    import polars as pl

    import emoji_batch

    inp = tweets(tmp_path / "in.parquet", n=120, seed=11)
    options = emoji_batch.ScoreOptions(top_k=2, insert=True, device="cpu")
    want = local_score(inp, tmp_path / "local.parquet", **vars(options))
    table = pq.read_table(inp)
    model = emoji_batch.load(device="cpu")
    assert emoji_batch.score_frame(table, options, model=model).equals(want)
    expected = pl.from_arrow(want)
    assert emoji_batch.score_frame(pl.from_arrow(table), options).equals(expected)
    from_pandas = emoji_batch.score_frame(table.to_pandas(), options, model=model)
    assert pl.from_pandas(from_pandas).equals(expected)
    assert_same(score_dataframe(spark.read.parquet(str(inp)), options).toArrow(), want)
