"""``emoji-batch score`` through the real CLI entry point on CSV and Parquet."""

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.helpers import run_cli

SAMPLE = Path(__file__).parent.parent / "sample_data"


def score(args: list) -> int:
    return run_cli(["score", *args])


def check_scored(inp: pl.DataFrame, out: pl.DataFrame, k: int = 3) -> None:
    assert out.height == inp.height
    added = [f"emoji_{i}" for i in range(1, k + 1)] + [f"prob_{i}" for i in range(1, k + 1)]
    assert out.columns == [*inp.columns, *added, "score_error"]
    assert out.select(inp.columns).equals(inp)  # passthrough and row order
    ok = out.filter(pl.col("score_error").is_null())
    probs = ok.select([f"prob_{i}" for i in range(1, k + 1)]).to_numpy()
    assert ok.height > 0
    assert np.all(np.diff(probs, axis=1) <= 0), "probabilities must be sorted descending"
    assert np.all(probs.sum(axis=1) <= 1 + 1e-5)
    assert np.all(probs > 0)
    assert ok["emoji_1"].null_count() == 0


def test_score_csv(tiny_cnn: Path, tmp_path: Path) -> None:
    out = tmp_path / "tweets.scored.csv"
    assert score([SAMPLE / "tweets.csv", "-o", out, "--model", tiny_cnn]) == 0
    inp = pl.read_csv(SAMPLE / "tweets.csv", infer_schema=False)
    result = pl.read_csv(out, infer_schema=False)
    check_scored(inp, result.with_columns(pl.col("^prob_.*$").cast(pl.Float64)))
    assert set(result["emoji_1"].drop_nulls()) <= {"❤", "🎄", "😂"}


def test_score_parquet_keeps_types(tiny_cnn: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    assert score([SAMPLE / "tweets.parquet", "-o", out, "--model", tiny_cnn, "--top-k", 2]) == 0
    inp = pl.read_parquet(SAMPLE / "tweets.parquet")
    result = pl.read_parquet(out)
    check_scored(inp, result, k=2)
    assert result.schema["id"] == pl.Int64


def test_csv_in_parquet_out(tiny_cnn: Path, tmp_path: Path) -> None:
    out = tmp_path / "from_csv.parquet"
    assert score([SAMPLE / "tweets.csv", "-o", out, "--model", tiny_cnn]) == 0
    assert pq.read_metadata(out).num_rows == pl.read_csv(SAMPLE / "tweets.csv").height


def test_default_output_name(tiny_cnn: Path, tmp_path: Path) -> None:
    inp = tmp_path / "batch.parquet"
    pq.write_table(pa.table({"id": [1, 2], "TEXT": ["merry christmas", "lol"]}), inp)
    assert score([inp, "--model", tiny_cnn]) == 0
    assert (tmp_path / "batch.scored.parquet").exists()


def test_empty_and_missing_text_rows_are_kept_with_error(tiny_cnn: Path, tmp_path: Path) -> None:
    inp = tmp_path / "holes.parquet"
    pq.write_table(pa.table({"text": ["i love you", None, "   ", "lol"]}), inp)
    out = tmp_path / "holes.scored.parquet"
    assert score([inp, "--model", tiny_cnn]) == 0
    result = pl.read_parquet(out)
    assert result["score_error"].to_list() == [None, "missing text", "empty text", None]
    assert result["emoji_1"].is_null().to_list() == [False, True, True, False]
    assert result["prob_1"].is_null().to_list() == [False, True, True, False]


def test_chunk_size_does_not_change_output(tiny_cnn: Path, tmp_path: Path) -> None:
    outs = []
    for rows in (7, 1000):
        out = tmp_path / f"chunks_{rows}.parquet"
        args = [SAMPLE / "tweets.parquet", "-o", out, "--model", tiny_cnn]
        assert score([*args, "--chunk-rows", rows, "--batch-size", 5]) == 0
        outs.append(pl.read_parquet(out))
    a, b = outs
    assert a.drop(pl.col("^prob_.*$")).equals(b.drop(pl.col("^prob_.*$")))
    np.testing.assert_allclose(
        a.select(pl.col("^prob_.*$")).to_numpy(),
        b.select(pl.col("^prob_.*$")).to_numpy(),
        atol=1e-5,
    )


def test_missing_text_column_lists_columns(
    tiny_cnn: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "never.csv"
    code = score([SAMPLE / "tweets.csv", "-o", out, "--model", tiny_cnn, "--text-column", "body"])
    assert code == 2
    err = capsys.readouterr().err
    assert "'body' not found" in err and "id, text, lang, created_at" in err
    assert not out.exists()


def test_refuses_to_overwrite_without_force(
    tiny_cnn: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "exists.csv"
    out.write_text("precious\n")
    args = [SAMPLE / "tweets.csv", "-o", out, "--model", tiny_cnn]
    assert score(args) == 2
    assert "--force" in capsys.readouterr().err
    assert out.read_text() == "precious\n"
    assert score([*args, "--force"]) == 0
    assert pl.read_csv(out).height == 300
    assert not list(tmp_path.glob(".exists.csv.*")), "temporary file left behind"


def test_unknown_model_lists_available(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = score([SAMPLE / "tweets.csv", "-o", tmp_path / "x.csv", "--model", "no_such_model"])
    assert code == 2
    err = capsys.readouterr().err
    assert "no model named 'no_such_model'" in err and "available:" in err


def test_missing_input_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert score([tmp_path / "nope.csv"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_unknown_suffix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inp = tmp_path / "tweets.txt"
    inp.write_text("text\nhi\n")
    assert score([inp]) == 2
    assert "--input-format" in capsys.readouterr().err


def test_shipped_default_scores_sample(tmp_path: Path) -> None:
    """The bundle shipped in the package loads and scores without --model."""
    out = tmp_path / "default.parquet"
    assert score([SAMPLE / "tweets.parquet", "-o", out, "--quiet"]) == 0
    result = pl.read_parquet(out)
    assert result.height == 300
    assert result["emoji_1"].null_count() == result["score_error"].is_not_null().sum()


def test_gpu_asked_for_but_absent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU: the refusal cannot happen here")
    out = tmp_path / "gpu.csv"
    assert score([SAMPLE / "tweets.csv", "-o", out, "--device", "gpu"]) == 2
    assert "TensorFlow sees no GPU" in capsys.readouterr().err
    assert not out.exists()


def test_quiet_prints_nothing(
    tiny_cnn: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "q.csv"
    assert score([SAMPLE / "tweets.csv", "-o", out, "--model", tiny_cnn, "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
    assert out.exists()
