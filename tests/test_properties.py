"""Property tests: any mix of good and bad rows survives ``score`` row for row."""

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emoji_batch.bundle import load_bundle
from emoji_batch.predictor import Predictor
from emoji_batch.scoring import ERROR_COLUMN, score_file, score_table

texts = st.one_of(
    st.none(),
    st.text(max_size=80),
    st.sampled_from(["", "   ", "https://t.co/x", "@user @user", "😂😂", "merry christmas #tree"]),
)


@pytest.fixture(scope="module")
def predictor(tiny_cnn: Path) -> Predictor:
    return Predictor(load_bundle(tiny_cnn), batch_size=7)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(rows=st.lists(st.tuples(st.integers(-(2**63), 2**63 - 1), texts), max_size=40))
def test_score_table_keeps_every_row(
    predictor: Predictor, rows: list[tuple[int, str | None]]
) -> None:
    table = pa.table(
        {"id": [r[0] for r in rows], "text": [r[1] for r in rows]},
        schema=pa.schema([("id", pa.int64()), ("text", pa.string())]),
    )
    out = score_table(table, "text", predictor, 3)
    assert out.num_rows == table.num_rows
    assert out.select(["id", "text"]).equals(table)
    errors = out.column(ERROR_COLUMN).to_pylist()
    emoji = out.column("emoji_1").to_pylist()
    for (_, text), error, e in zip(rows, errors, emoji, strict=True):
        assert (error is None) == (e is not None)
        if text is None:
            assert error == "missing text"


@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(rows=st.lists(texts, min_size=1, max_size=30), chunk=st.integers(1, 12))
def test_score_file_round_trip(
    tiny_cnn: Path, tmp_path_factory: pytest.TempPathFactory, rows: list[str | None], chunk: int
) -> None:
    d = tmp_path_factory.mktemp("prop")
    table = pa.table({"n": list(range(len(rows))), "text": pa.array(rows, pa.string())})
    pq.write_table(table, d / "in.parquet")
    summary = score_file(
        d / "in.parquet",
        d / "out.parquet",
        model=str(tiny_cnn),
        chunk_rows=chunk,
        progress=False,
    )
    out = pq.read_table(d / "out.parquet")
    assert summary.rows == len(rows) == out.num_rows
    assert out.select(["n", "text"]).equals(table)
