"""One definition of a scoring run's options: ScoreOptions, with the CLI's defaults."""

from pathlib import Path

import polars as pl
import pytest

from emoji_batch.cli import app
from emoji_batch.errors import InputError
from emoji_batch.options import ScoreOptions
from emoji_batch.scoring import score_file


def test_defaults_are_the_cli_defaults() -> None:
    import typer.main

    command = typer.main.get_command(app).commands["score"]  # type: ignore[attr-defined]
    cli = {param.name: param.default for param in command.params}
    defaults = vars(ScoreOptions())
    assert set(defaults) <= set(cli)
    assert defaults == {name: cli[name] for name in defaults}


def test_values_are_checked_and_keywords_laid_over() -> None:
    for bad in ({"top_k": 0}, {"chunk_rows": 0}, {"batch_size": 0}):
        with pytest.raises(InputError, match="must be at least 1"):
            ScoreOptions(**bad)
    base = ScoreOptions(top_k=5, insert=True)
    assert ScoreOptions.of(base, {"top_k": 1}) == ScoreOptions(top_k=1, insert=True)
    assert ScoreOptions.of(None, {}) == ScoreOptions()
    with pytest.raises(TypeError, match="top_k_labels"):
        ScoreOptions.of(base, {"top_k_labels": 2})


def test_score_file_takes_options_or_keywords(tiny_cnn: Path, tmp_path: Path) -> None:
    inp = tmp_path / "in.csv"
    inp.write_text("id,text\n1,i love you mom\n2,\n3,lol so funny\n", encoding="utf-8")
    options = ScoreOptions(model=str(tiny_cnn), top_k=2, device="cpu")
    score_file(inp, tmp_path / "a.csv", options, progress=False)
    score_file(inp, tmp_path / "b.csv", progress=False, **vars(options))
    a, b = pl.read_csv(tmp_path / "a.csv"), pl.read_csv(tmp_path / "b.csv")
    assert a.equals(b) and a.columns[-1] == "score_error" and "emoji_2" in a.columns
    with pytest.raises(TypeError, match="unknown scoring option"):
        score_file(inp, tmp_path / "c.csv", progress=False, top_k_labels=2)
