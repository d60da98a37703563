"""Options and paths that had no test of their own: ``--output-format``, the
``EMOJI_BATCH_MODELS`` search directory, ``--resume`` on Parquet and ``--class-weight
balanced``."""

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from emoji_batch import train
from emoji_batch.bundle import MODELS_ENV
from emoji_batch.resume import Journal
from tests.conftest import make_rows, run_cli, train_args, write_labelled

SAMPLE = Path(__file__).parent.parent / "sample_data"


def error_line(err: str) -> str:
    (line,) = [line for line in err.splitlines() if line.startswith("error")]
    return line


# --- --output-format ------------------------------------------------------------------


def test_output_format_overrides_the_suffix(tiny_cnn: Path, tmp_path: Path) -> None:
    """OUTPUT named ``.dat`` is written as Parquet because --output-format says so, with
    the same rows and values as a ``.parquet`` OUTPUT."""
    base = ["score", SAMPLE / "tweets.csv", "--model", tiny_cnn, "--quiet"]
    assert run_cli([*base, "-o", tmp_path / "scored.dat", "--output-format", "parquet"]) == 0
    assert run_cli([*base, "-o", tmp_path / "scored.parquet"]) == 0
    named = pq.read_table(tmp_path / "scored.dat")  # fails on anything but Parquet
    assert named.num_rows == 300
    assert named.equals(pq.read_table(tmp_path / "scored.parquet"))


def test_output_format_jsonl_to_stdout(
    tiny_cnn: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    base = ["score", SAMPLE / "tweets.parquet", "-o", "-", "--model", tiny_cnn, "--quiet"]
    assert run_cli([*base, "--output-format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capfd.readouterr().out.splitlines()]
    source = pl.read_parquet(SAMPLE / "tweets.parquet")
    assert len(rows) == source.height
    assert [r["id"] for r in rows] == source["id"].to_list()
    assert all(("emoji_1" in r and "score_error" in r) for r in rows)


def test_output_format_parquet_to_stdout_is_refused(
    tiny_cnn: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["score", SAMPLE / "tweets.csv", "-o", "-", "--model", tiny_cnn]
    assert run_cli([*args, "--output-format", "parquet"]) == 2
    assert "stdout output must be csv or jsonl" in error_line(capsys.readouterr().err)


# --- EMOJI_BATCH_MODELS -----------------------------------------------------------------


def test_models_env_is_searched_for_names(
    tiny_cnn: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Without --models-dir, a name is looked up in $EMOJI_BATCH_MODELS (not ./models)."""
    store = tmp_path / "store"
    shutil.copytree(tiny_cnn, store / "my_model")
    monkeypatch.chdir(tmp_path)  # no ./models here
    monkeypatch.delenv(MODELS_ENV, raising=False)
    out = tmp_path / "o.csv"
    args = ["score", SAMPLE / "tweets.csv", "-o", out, "--model", "my_model", "--quiet"]
    assert run_cli(args) == 2
    assert "no model named 'my_model'" in error_line(capsys.readouterr().err)

    monkeypatch.setenv(MODELS_ENV, str(store))
    assert run_cli(args) == 0
    assert run_cli([*args[:3], tmp_path / "direct.csv", *args[4:-3], "--model", tiny_cnn]) == 0
    assert out.read_bytes() == (tmp_path / "direct.csv").read_bytes()
    capsys.readouterr()
    assert run_cli(["models", "list"]) == 0
    listing = capsys.readouterr().out
    assert "my_model" in listing and str(store) in listing


# --- --resume on Parquet ----------------------------------------------------------------


def test_interrupted_parquet_run_resumes_to_identical_output(
    tiny_cnn: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    inp = tmp_path / "tweets.parquet"
    pl.concat([pl.read_parquet(SAMPLE / "tweets.parquet")] * 4).write_parquet(inp)
    out = tmp_path / "resumed.parquet"
    args = ["score", inp, "-o", out, "--model", tiny_cnn, "--chunk-rows", 100]
    save = Journal.save
    saved: list[int] = []

    def save_then_die(self: Journal, index: int, table: object) -> None:
        save(self, index, table)
        saved.append(index)
        if len(saved) == 3:
            raise KeyboardInterrupt  # interrupted after the third chunk of twelve

    monkeypatch.setattr(Journal, "save", save_then_die)
    assert run_cli([*args, "--resume"]) == 130
    monkeypatch.setattr(Journal, "save", save)
    journal = tmp_path / ".resumed.parquet.resume"
    assert not out.exists() and len(list(journal.glob("*.arrow"))) == 3

    capsys.readouterr()
    assert run_cli([*args, "--resume", "--log-format", "json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    assert any(e["event"] == "resume" and e["chunks"] == 3 for e in events)
    assert not journal.exists()
    assert run_cli([*args[:3], tmp_path / "clean.parquet", *args[4:], "--quiet"]) == 0
    resumed, clean = pq.read_table(out), pq.read_table(tmp_path / "clean.parquet")
    assert resumed.num_rows == 1200
    assert resumed.equals(clean)


# --- --class-weight balanced ------------------------------------------------------------


def test_class_weight_balanced_weights_rare_labels_up(
    tiny_data: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each label's loss weight is n / (labels * its count): rare labels count more. The
    weights reach every training example, and the manifest records the option."""
    rows = [r for r in make_rows(600, 41) if r[1] == 0 or (r[1] == 1 and r[0] < "c")]
    rows += [r for r in make_rows(120, 42) if r[1] == 2]
    data = write_labelled(tmp_path / "skewed.csv", rows)
    counts = np.bincount([label for _, label in rows], minlength=3)
    assert counts[0] > 2 * counts[1] and counts[0] > 2 * counts[2]

    seen: list[tuple[np.ndarray, np.ndarray]] = []
    dataset = train._dataset

    def spy(seqs: list, labels: np.ndarray, weights: np.ndarray, *a: Any, **k: Any) -> Any:
        seen.append((np.asarray(labels), np.asarray(weights)))
        return dataset(seqs, labels, weights, *a, **k)

    monkeypatch.setattr(train, "_dataset", spy)
    out = tmp_path / "balanced"
    args = train_args("ngram_linear", {**tiny_data, "train": data}, out, "--max-epochs", 1)
    assert run_cli([*args, "--class-weight", "balanced", "--seed", 13]) == 0
    expected = counts.sum() / (3 * counts)
    (train_labels, train_weights), (val_labels, val_weights) = seen[:2]
    assert len(train_labels) == counts.sum()
    np.testing.assert_allclose(train_weights, expected[train_labels], rtol=1e-6)
    np.testing.assert_allclose(val_weights, expected[val_labels], rtol=1e-6)  # same objective
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["training"]["config"]["class_weight"] == "balanced"
