"""Train on tiny generated data, then evaluate and list through the CLI."""

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli


def test_train_writes_bundle_and_reports(tiny_bundle: Path) -> None:
    for name in (
        "manifest.json",
        "weights.safetensors",
        "vocab.txt",
        "history.json",
        "curves.png",
        "evaluation/metrics.json",
        "evaluation/report.txt",
        "evaluation/confusion.png",
    ):
        assert (tiny_bundle / name).is_file(), name
    history = json.loads((tiny_bundle / "history.json").read_text())
    assert {h["phase"] for h in history} == {"frozen_embeddings", "all_trainable"}
    assert all("val_loss" in h for h in history)


def test_tiny_model_learns_the_cues(tiny_bundle: Path) -> None:
    metrics = json.loads((tiny_bundle / "manifest.json").read_text())["metrics"]
    assert metrics["accuracy"] > 50, metrics  # three balanced classes: chance is 33%


def test_evaluate_reproduces_recorded_metrics(
    tiny_bundle: Path,
    tiny_data: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    report = tmp_path / "report"
    code = run_cli(
        ["evaluate", "--model", tiny_bundle, "--data", tiny_data["val"], "--report-dir", report]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "macro-F1" in out and "🎄" in out
    stored = json.loads((tiny_bundle / "manifest.json").read_text())["metrics"]
    measured = json.loads((report / "metrics.json").read_text())
    assert round(100 * measured["macro_f1"], 2) == stored["macro_f1"]
    assert (report / "confusion.png").stat().st_size > 1000


def test_train_refuses_existing_output(tiny_bundle: Path, tiny_data: dict[str, Path]) -> None:
    code = run_cli(
        [
            "train",
            "glove_bilstm",
            "--data",
            tiny_data["train"],
            "--embeddings",
            tiny_data["glove"],
            "--output",
            tiny_bundle,
        ]
    )
    assert code == 2


def test_train_unknown_architecture(
    tiny_data: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_cli(
        ["train", "glove_nope", "--data", tiny_data["train"], "--output", tmp_path / "b"]
    )
    assert code == 2
    assert "known: glove_bilstm" in capsys.readouterr().err


def test_models_list_finds_bundles(tiny_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["models", "list", "--models-dir", tiny_bundle.parent]) == 0
    out = capsys.readouterr().out
    assert "tiny_bilstm" in out and "glove_bilstm" in out and "macro-F1" in out
