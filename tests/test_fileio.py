import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from emoji_batch.errors import InputError
from emoji_batch.fileio import ChunkReader, atomic_output, detect_format, find_column


def test_chunks_have_exact_sizes_and_order(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"n": list(range(1000))}), path, row_group_size=300)
    chunks = list(ChunkReader(path, "parquet", 128))
    assert [c.num_rows for c in chunks] == [128] * 7 + [104]
    assert [n for c in chunks for n in c.column("n").to_pylist()] == list(range(1000))


def test_csv_values_stay_strings_and_newlines_in_quotes(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('id,text\n007,"two\nlines, ""quoted"""\n1.50,plain\n', encoding="utf-8")
    (chunk,) = list(ChunkReader(path, "csv", 10))
    assert chunk.column("id").to_pylist() == ["007", "1.50"]
    assert chunk.column("text").to_pylist() == ['two\nlines, "quoted"', "plain"]


def test_find_column_case_insensitive() -> None:
    assert find_column(["id", "TEXT"], "text") == "TEXT"
    with pytest.raises(InputError, match="columns present: id, TEXT"):
        find_column(["id", "TEXT"], "body")


def test_detect_format() -> None:
    assert detect_format(Path("a.PARQUET")) == "parquet"
    assert detect_format(Path("a.txt"), "csv") == "csv"
    with pytest.raises(InputError):
        detect_format(Path("a.json"))


def test_atomic_output_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    with pytest.raises(RuntimeError), atomic_output(target, force=False) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["x", "text", "x"], r"duplicate column names \['x'\]"),
        (["text", "id", "text"], r"duplicate column names \['text'\]"),
        (["text", "__emoji_batch_invalid_utf8__"], "is reserved"),
    ],
)
@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_duplicate_and_reserved_column_names_are_refused_with_exit_2(
    tmp_path: Path, names: list[str], message: str, fmt: str, capsys
) -> None:
    from tests.helpers import run_cli

    path = tmp_path / f"in.{fmt}"
    if fmt == "parquet":
        columns = [pa.array(["a", "b"]) for _ in names]
        pq.write_table(pa.Table.from_arrays(columns, names=names), path)
    else:
        path.write_text(",".join(names) + "\na,b" + ",c" * (len(names) - 2) + "\n")
    out = tmp_path / "out.jsonl"
    assert run_cli(["score", path, "-o", out]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert re.search(message, err), err
    assert not out.exists()
