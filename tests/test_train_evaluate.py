"""Train on tiny generated data, then evaluate and list through the CLI."""

import json
from pathlib import Path

import pytest

from emoji_batch.bundle import MANIFEST, shipped_models_dir
from tests.helpers import make_rows, run_cli, train_args


def test_train_writes_bundle_and_reports(tiny_cnn: Path) -> None:
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
        assert (tiny_cnn / name).is_file(), name
    history = json.loads((tiny_cnn / "history.json").read_text())
    assert {h["phase"] for h in history} == {"frozen_embeddings", "all_trainable"}
    assert all("val_loss" in h for h in history)


def test_tiny_model_learns_the_cues(tiny_cnn: Path) -> None:
    metrics = json.loads((tiny_cnn / "manifest.json").read_text())["metrics"]
    assert metrics["accuracy"] > 50, metrics  # three balanced classes: chance is 33%


def test_evaluate_reproduces_recorded_metrics(
    tiny_cnn: Path,
    tiny_data: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    report = tmp_path / "report"
    code = run_cli(
        ["evaluate", "--model", tiny_cnn, "--data", tiny_data["val"], "--report-dir", report]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "macro-F1" in out and "🎄" in out
    stored = json.loads((tiny_cnn / "manifest.json").read_text())["metrics"]
    measured = json.loads((report / "metrics.json").read_text())
    assert round(100 * measured["macro_f1"], 2) == stored["macro_f1"]
    assert (report / "confusion.png").stat().st_size > 1000


def test_train_refuses_existing_output(tiny_cnn: Path, tiny_data: dict[str, Path]) -> None:
    code = run_cli(
        [
            "train",
            "glove_bilstm",
            "--data",
            tiny_data["train"],
            "--embeddings",
            tiny_data["glove"],
            "--output",
            tiny_cnn,
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
    assert (
        "known: bert_bilstm, bert_classifier, fine_tuned_bert, glove_bilstm"
        in capsys.readouterr().err
    )


def test_models_list_finds_bundles(tiny_cnn: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["models", "list", "--models-dir", tiny_cnn.parent]) == 0
    out = capsys.readouterr().out
    assert "tiny_cnn" in out and "glove_cnn" in out and "macro-F1" in out


def test_top_n_downsampled_protocol(
    tiny_data: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "top2"
    code = run_cli(
        train_args(
            "glove_cnn",
            tiny_data,
            out,
            "--labels",
            "top2",
            "--balance",
            "downsample",
            "--max-epochs",
            1,
            val=False,
        )
    )
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    counts = {0: 0, 1: 0, 2: 0}
    for _, label in make_rows(240, 1):
        counts[label] += 1
    top2 = sorted(sorted(counts, key=lambda i: (-counts[i], i))[:2])
    assert [label["id"] for label in manifest["labels"]] == top2
    split = manifest["training"]["split"]
    assert split["train"] + split["validation"] == 2 * min(counts[i] for i in top2)
    capsys.readouterr()
    assert run_cli(["evaluate", "--model", out, "--data", tiny_data["val"]]) == 0
    captured = capsys.readouterr()
    assert "labels this model does not predict" in captured.err
    assert f"{len([r for r in make_rows(60, 2) if r[1] in top2])} rows" in captured.out


def test_unknown_labels_spec(
    tiny_data: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_cli(
        [
            "train",
            "glove_cnn",
            "--data",
            tiny_data["train"],
            "--embeddings",
            tiny_data["glove"],
            "--output",
            tmp_path / "x",
            "--labels",
            "best9",
        ]
    )
    assert code == 2
    assert "topN" in capsys.readouterr().err


def test_models_list_marks_malformed_bundles_and_lists_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One bad manifest does not hide the others: it is listed, marked unusable with why."""
    shipped = shipped_models_dir()
    ensemble = json.loads((shipped / "ensemble_bert_svm" / MANIFEST).read_text())
    position = json.loads((shipped / "emoji_position" / MANIFEST).read_text())
    members = ensemble["members"]
    manifests = {
        "no_weights": {
            **ensemble,
            "members": [{k: m[k] for k in ("name", "path")} for m in members],
        },
        "gone_members": {
            **ensemble,
            "members": [{**m, "path": f"../gone/{m['name']}"} for m in members],
        },
        "list_metrics": {**position, "metrics": []},
    }
    for name, manifest in manifests.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / MANIFEST).write_text(json.dumps(manifest))
    # An ensemble beside its members, as the shipped one is: usable.
    for name in ("ensemble_bert_svm", "fine_tuned_bert", "ngram_svm"):
        (tmp_path / name).symlink_to(shipped / name)
    assert run_cli(["models", "list", "--models-dir", tmp_path]) == 0
    out = capsys.readouterr().out
    headers = [line for line in out.splitlines() if line and not line.startswith(" ")]
    bad = {line.split()[0]: line for line in headers if line.split()[0] in manifests}
    assert "unusable: " in bad["no_weights"] and "weight" in bad["no_weights"]
    assert "member ../gone/fine_tuned_bert is missing" in bad["gone_members"]
    assert "unusable: " in bad["list_metrics"] and "metrics" in bad["list_metrics"]
    usable = [line for line in headers if line.split()[0] not in manifests]
    assert len(usable) == 3 + 5 and not any("unusable" in line for line in usable)
    assert "ensemble (" in out and "macro-F1" in out
