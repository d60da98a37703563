"""No input row, column or value is lost or changed on the way through ``score``.

JSON lines with blank lines, keys that come and go and types that vary; one-column CSV
with null rows; dictionary and string_view text; and output types a format cannot hold.
"""

import csv
import datetime
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emoji_batch import scoring
from emoji_batch.bundle import load_bundle
from emoji_batch.fileio import ChunkReader
from emoji_batch.predictor import Predictor
from emoji_batch.scoring import ERROR_COLUMN, score_file
from tests.helpers import run_cli


def score(*args: object) -> int:
    return run_cli(["score", *args])


def read_jsonl(path: Path) -> list[dict]:
    """Strict JSON: NaN/Infinity literals are refused. Lines end at \\n only: a JSON
    string may hold U+0085 or U+2028, which ``str.splitlines`` would also split at."""

    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")

    lines = path.read_text(encoding="utf-8").split("\n")
    return [json.loads(line, parse_constant=refuse) for line in lines if line]


def same(a: object, b: object) -> bool:
    """Equal as JSON text, so 4 and 4.0 differ."""
    return json.dumps(a) == json.dumps(b)


@pytest.fixture(scope="module")
def fast_predictor(tiny_cnn: Path) -> Iterator[Predictor]:
    """The tiny model loaded once: ``score_file`` would load it again for every example."""
    predictor = Predictor(load_bundle(tiny_cnn), batch_size=7)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scoring, "load_predictor", lambda *args, **kwargs: predictor)
        yield predictor


# --- 1. JSON lines: blank lines are skipped, never the end of the file -------------------

ROWS = [
    '{"id": 1, "text": "merry christmas"}',
    '{"id": 2, "text": "i love you"}',
    '{"id": 3, "text": "lol funny"}',
]


@pytest.mark.parametrize(
    ("lines", "chunk"),
    [
        ([ROWS[0], "", ROWS[1], ROWS[2]], 1),
        ([ROWS[0], ROWS[1], "", "", ROWS[2]], 2),
        (["", ROWS[0], ROWS[1], ROWS[2]], 1),
        ([ROWS[0], "  \t", ROWS[1] + "\r", "\r", ROWS[2], ""], 1),
    ],
)
def test_jsonl_blank_lines_keep_every_record(
    fast_predictor: Predictor, tmp_path: Path, lines: list[str], chunk: int
) -> None:
    inp = tmp_path / "b.jsonl"
    inp.write_text("\n".join(lines) + "\n")
    out = tmp_path / "o.jsonl"
    assert score(inp, "-o", out, "--chunk-rows", chunk) == 0
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == [1, 2, 3]
    assert all(r[ERROR_COLUMN] is None and r["emoji_1"] for r in rows)


def test_jsonl_of_blank_lines_is_empty(
    fast_predictor: Predictor, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inp = tmp_path / "blank.jsonl"
    inp.write_text("\n  \n\n")
    assert score(inp, "-o", tmp_path / "o.jsonl") == 2
    assert "is empty" in capsys.readouterr().err


# --- 2. JSON lines: one schema for the whole file, values unchanged ----------------------

VARIED = [
    r'{"id": 1, "text": "merry christmas", "score": 4, "note": null}',
    r'{"id": 2, "text": 5, "score": 4.5, "extra": true}',
    r'{"id": 3, "text": "hi \ud83d there", "note": "later string", "score": 7}',
    r'{"id": 4, "text": "lol funny", "nested": {"a": [1, 2.5]}, "big": 123456789012345678901}',
    r'{"id": 5, "text": "i love \ud83d\ude02", "score": -0.0, "note": "x"}',
]
VARIED_KEYS = ["id", "text", "score", "note", "extra", "nested", "big"]


@pytest.mark.parametrize("chunk", [1, 2, 3, 50])
def test_jsonl_columns_and_values_pass_through(
    fast_predictor: Predictor, tmp_path: Path, chunk: int
) -> None:
    inp = tmp_path / "v.jsonl"
    inp.write_text("\n".join(VARIED) + "\n")
    out = tmp_path / "o.jsonl"
    assert score(inp, "-o", out, "--chunk-rows", chunk) == 0
    rows = read_jsonl(out)
    assert list(rows[0])[: len(VARIED_KEYS)] == VARIED_KEYS
    expected = [json.loads(line) for line in VARIED]
    expected[2]["text"] = "hi \ufffd there"  # the lone surrogate, repaired
    for want, row in zip(expected, rows, strict=True):
        for key in VARIED_KEYS:
            assert same(row[key], want.get(key)), (key, row[key], want.get(key))
    assert [r[ERROR_COLUMN] for r in rows] == [
        None,
        "text is int64, not a string",
        "invalid UTF-8 in row",
        None,
        None,
    ]
    assert [r["emoji_1"] is None for r in rows] == [False, True, True, False, False]


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_varied_jsonl_to_other_formats(
    fast_predictor: Predictor, tmp_path: Path, suffix: str
) -> None:
    inp = tmp_path / "v.jsonl"
    inp.write_text("\n".join(VARIED) + "\n")
    out = tmp_path / f"o.{suffix}"
    assert score(inp, "-o", out, "--chunk-rows", 2) == 0
    if suffix == "csv":
        result = pl.read_csv(out, infer_schema=False)
        assert result["score"].to_list() == ["4", "4.5", "7", None, "-0.0"]
        assert result["nested"].to_list()[3] == '{"a":[1,2.5]}'
        assert result["text"].to_list()[:3] == ["merry christmas", "5", "hi \ufffd there"]
    else:
        result = pl.read_parquet(out)
        assert result["id"].to_list() == [1, 2, 3, 4, 5]
        assert result["note"].to_list() == [None, None, "later string", None, "x"]
    assert result.height == 5


def test_jsonl_from_stdin_is_spooled_and_read_twice(
    fast_predictor: Predictor, tmp_path: Path
) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_text("\n\n".join(VARIED))
    out = tmp_path / "o.jsonl"
    saved = os.dup(0)
    try:
        with open(inp, "rb") as fh:
            os.dup2(fh.fileno(), 0)
        summary = score_file(Path("-"), out, input_format="jsonl", chunk_rows=1, progress=False)
    finally:
        os.dup2(saved, 0)
        os.close(saved)
    rows = read_jsonl(out)
    assert summary.rows == 5 and [r["id"] for r in rows] == [1, 2, 3, 4, 5]
    assert same(rows[1]["score"], 4.5) and same(rows[0]["score"], 4)


def test_jsonl_invalid_utf8_is_repaired(fast_predictor: Predictor, tmp_path: Path) -> None:
    inp = tmp_path / "u.jsonl"
    inp.write_bytes(b'{"id": 1, "text": "caf\xe9 au lait"}\n{"id": 2, "text": "lol funny"}\n')
    out = tmp_path / "o.jsonl"
    assert score(inp, "-o", out) == 0
    rows = read_jsonl(out)
    assert rows[0]["text"] == "caf\ufffd au lait"
    assert [r[ERROR_COLUMN] for r in rows] == ["invalid UTF-8 in row", None]


# --- 3. one-column CSV: a null row is a blank line, and it is a row ----------------------


def test_single_column_csv_keeps_null_rows(fast_predictor: Predictor, tmp_path: Path) -> None:
    inp = tmp_path / "s.csv"
    pl.DataFrame({"text": ["merry christmas", "", "lol funny", None, "i love you"]}).write_csv(inp)
    out = tmp_path / "o.csv"
    assert score(inp, "-o", out, "--chunk-rows", 2) == 0
    result = pl.read_csv(out, infer_schema=False)
    assert result["text"].to_list() == ["merry christmas", "", "lol funny", None, "i love you"]
    assert result[ERROR_COLUMN].to_list() == [None, "empty text", None, "missing text", None]
    with open(out, newline="") as fh:
        assert len(list(csv.reader(fh))) == 6
    assert sum(c.num_rows for c in ChunkReader(out, "csv", 2)) == 5


# --- 4. dictionary and string_view text is text ------------------------------------------

TEXTS = ["merry christmas", "lol funny", None, "i love you"]


def polars_categorical(path: Path) -> None:
    pl.DataFrame({"text": TEXTS, "tag": ["a", "b", "a", None]}).with_columns(
        pl.all().cast(pl.Categorical)
    ).write_parquet(path)


def arrow_types(path: Path) -> None:
    pq.write_table(
        pa.table(
            {
                "text": pa.array(TEXTS, pa.string_view()),
                "tag": pa.array(["a", "b", "a", None]).dictionary_encode(),
                "view": pa.array(["x", None, "y", "z"], pa.string_view()),
                "large": pa.array(TEXTS, pa.large_string()).dictionary_encode(),
            }
        ),
        path,
    )


@pytest.mark.parametrize("make", [polars_categorical, arrow_types])
@pytest.mark.parametrize("suffix", ["csv", "parquet", "jsonl"])
def test_dictionary_and_view_text_is_scored(
    fast_predictor: Predictor, tmp_path: Path, make: object, suffix: str
) -> None:
    inp = tmp_path / "cat.parquet"
    make(inp)  # type: ignore[operator]
    out = tmp_path / f"o.{suffix}"
    summary = score_file(inp, out, chunk_rows=3, progress=False)
    assert summary.rows == 4 and summary.error_rows == 1
    if suffix == "csv":
        result = pl.read_csv(out, infer_schema=False)
    elif suffix == "jsonl":
        result = pl.DataFrame(read_jsonl(out))
    else:
        result = pl.read_parquet(out)
    assert result[ERROR_COLUMN].to_list() == [None, None, "missing text", None]
    assert result["emoji_1"].is_null().to_list() == [False, False, True, False]
    assert result["text"].cast(pl.String).to_list() == TEXTS
    assert result["tag"].cast(pl.String).to_list() == ["a", "b", "a", None]
    if "view" in result.columns:
        assert result["view"].to_list() == ["x", None, "y", "z"]
        assert result["large"].cast(pl.String).to_list() == TEXTS


# --- 5. output types the format cannot hold: converted, or refused before scoring --------

TYPED = pa.table(
    {
        "text": ["merry christmas", "lol funny"],
        "ts": pa.array([datetime.datetime(2020, 1, 2, 3, 4, 5, 6), None], pa.timestamp("us")),
        "ns": pa.array([1_600_000_000_123_456_789, None], pa.timestamp("ns")),
        "tz": pa.array(
            [datetime.datetime(2020, 1, 2, 3, 4, 5), None], pa.timestamp("s", tz="Europe/Paris")
        ),
        "day": pa.array([datetime.date(2020, 1, 2), None]),
        "list": pa.array([[1, 2], None]),
        "struct": pa.array([{"a": 1.5, "when": datetime.date(2021, 5, 6)}, None]),
        "float": [math.nan, -math.inf],
        "floats": pa.array([[1.0, math.nan], []]),
    }
)


def test_types_json_cannot_hold_are_converted(fast_predictor: Predictor, tmp_path: Path) -> None:
    inp = tmp_path / "typed.parquet"
    pq.write_table(TYPED, inp)
    out = tmp_path / "o.jsonl"
    assert score_file(inp, out, progress=False).rows == 2
    rows = read_jsonl(out)
    assert rows[0]["ts"] == "2020-01-02T03:04:05.000006"
    assert rows[0]["ns"] == "2020-09-13T12:26:40.123456789"
    assert rows[0]["tz"] == "2020-01-02T04:04:05.000+01:00"  # Parquet stores seconds as ms
    assert rows[0]["day"] == "2020-01-02"
    assert rows[0]["list"] == [1, 2] and rows[1]["list"] is None
    assert rows[0]["struct"] == {"a": 1.5, "when": "2021-05-06"}
    assert [r["float"] for r in rows] == [None, None]
    assert [r["floats"] for r in rows] == [[1.0, None], []]
    assert pl.read_ndjson(out).height == 2


def test_nested_types_go_to_csv_as_json(fast_predictor: Predictor, tmp_path: Path) -> None:
    inp = tmp_path / "typed.parquet"
    pq.write_table(TYPED, inp)
    out = tmp_path / "o.csv"
    assert score_file(inp, out, progress=False).rows == 2
    result = pl.read_csv(out, infer_schema=False)
    assert result["list"].to_list() == ["[1,2]", None]
    assert result["struct"].to_list() == ['{"a":1.5,"when":"2021-05-06"}', None]
    assert result["floats"].to_list() == ["[1.0,null]", "[]"]
    assert result["day"].to_list() == ["2020-01-02", None]


@pytest.mark.parametrize("column", [pa.array([b"\x00\xff", None]), pa.array([[b"x"], None])])
def test_binary_to_jsonl_is_refused_before_scoring(
    fast_predictor: Predictor, tmp_path: Path, capsys: pytest.CaptureFixture[str], column: pa.Array
) -> None:
    inp = tmp_path / "bin.parquet"
    pq.write_table(pa.table({"text": ["merry christmas", "lol"], "raw": column}), inp)
    out = tmp_path / "o.jsonl"
    assert score(inp, "-o", out, "--resume") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "raw" in err[0] and "JSON" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin.parquet"]


# --- property: any mix of rows, keys, types and blank lines, any chunk size --------------

TEXTS_ST = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.sampled_from(["", "   ", "merry christmas", "lol 😂", "@user #tree"]),
)
NUMBERS = st.one_of(
    st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False, allow_infinity=False)
)
RECORDS = st.fixed_dictionaries(
    {"id": st.integers(-(2**63), 2**63 - 1)},
    optional={"text": TEXTS_ST, "n": NUMBERS, "tag": st.none() | st.text(max_size=5)},
)
LINES = st.lists(
    st.one_of(RECORDS, RECORDS, st.sampled_from(["", "  ", "\t"])), min_size=1, max_size=25
).filter(lambda lines: any(isinstance(line, dict) and "text" in line for line in lines))
PROPERTY = settings(
    max_examples=25,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def check_scored(texts: list[str | None], errors: list[str | None], emoji: list) -> None:
    for text, error, e in zip(texts, errors, emoji, strict=True):
        assert (error is None) == (e is not None)
        if text is None:
            assert error == "missing text"


@PROPERTY
@given(lines=LINES, chunk=st.integers(1, 12), ascii_only=st.booleans())
def test_jsonl_round_trip_keeps_rows_and_values(
    fast_predictor: Predictor,
    tmp_path_factory: pytest.TempPathFactory,
    lines: list[dict | str],
    chunk: int,
    ascii_only: bool,
) -> None:
    d = tmp_path_factory.mktemp("jsonl")
    records = [line for line in lines if isinstance(line, dict)]
    text = "\n".join(
        json.dumps(line, ensure_ascii=ascii_only) if isinstance(line, dict) else line
        for line in lines
    )
    (d / "in.jsonl").write_text(text + "\n", encoding="utf-8")
    summary = score_file(d / "in.jsonl", d / "out.jsonl", chunk_rows=chunk, progress=False)
    rows = read_jsonl(d / "out.jsonl")
    assert summary.rows == len(records) == len(rows)
    for record, row in zip(records, rows, strict=True):
        for key in ("id", "text", "n", "tag"):
            assert same(row.get(key), record.get(key)), (key, row, record)
    check_scored(
        [r.get("text") for r in records],
        [r[ERROR_COLUMN] for r in rows],
        [r["emoji_1"] for r in rows],
    )


@PROPERTY
@given(
    texts=st.lists(TEXTS_ST, min_size=1, max_size=25),
    chunk=st.integers(1, 12),
    one_column=st.booleans(),
)
def test_csv_round_trip_keeps_rows_and_values(
    fast_predictor: Predictor,
    tmp_path_factory: pytest.TempPathFactory,
    texts: list[str | None],
    chunk: int,
    one_column: bool,
) -> None:
    d = tmp_path_factory.mktemp("csv")
    frame = pl.DataFrame({"text": texts}, schema={"text": pl.String})
    if not one_column:
        frame = frame.with_row_index("id").with_columns(pl.col("id").cast(pl.String))
    frame.write_csv(d / "in.csv")
    given_frame = pl.read_csv(d / "in.csv", infer_schema=False)
    assert given_frame.height == len(texts)
    summary = score_file(d / "in.csv", d / "out.csv", chunk_rows=chunk, progress=False)
    result = pl.read_csv(d / "out.csv", infer_schema=False)
    assert summary.rows == len(texts) == result.height
    expected = given_frame if one_column else given_frame.fill_null("")  # a,, reads as ""
    assert result.select(given_frame.columns).equals(expected)
    check_scored(
        expected["text"].to_list(), result[ERROR_COLUMN].to_list(), result["emoji_1"].to_list()
    )
