"""Training options: warm-up/decay schedule, label smoothing, macro-F1 early stopping,
float16 bundles, ``--class-weight balanced`` and resuming a killed run from its per-epoch
checkpoints."""

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from emoji_batch import train
from emoji_batch.bundle import load_bundle
from emoji_batch.checkpoints import TrainingCheckpoints
from emoji_batch.dataset import read_labelled, read_labelled_files
from emoji_batch.fileio import file_digest
from emoji_batch.predictor import Predictor
from emoji_batch.train import WarmupLinearDecay, _loss
from tests.helpers import make_rows, run_cli, train_args, write_labelled

TEXTS = ["i love you mom", "merry christmas santa tree", "lol so funny", "zzz unknown"]


def test_warmup_then_linear_decay() -> None:
    schedule = WarmupLinearDecay(1e-3, warmup=10, total=110, decay=True)
    rates = [float(schedule(step)) for step in (0, 4, 9, 10, 60, 109, 110, 500)]
    assert rates[0] == pytest.approx(1e-4)
    assert rates[1] == pytest.approx(5e-4)
    assert rates[2] == pytest.approx(1e-3)  # peak at the end of warm-up
    assert rates[3] == pytest.approx(1e-3)
    assert rates[4] == pytest.approx(5e-4)  # halfway through the decay
    assert rates[5] == pytest.approx(1e-5)
    assert rates[6] == rates[7] == 0.0
    constant = WarmupLinearDecay(1e-3, warmup=10, total=110, decay=False)
    assert float(constant(500)) == pytest.approx(1e-3)


def test_label_smoothing_moves_targets_toward_uniform() -> None:
    probs = np.array([[0.7, 0.2, 0.1]], dtype=np.float32)
    assert _loss(0.0) == "sparse_categorical_crossentropy"
    plain = -np.log(0.7)
    smoothed = float(_loss(0.3)(np.array([0]), probs)[0])
    # targets (0.8, 0.1, 0.1): cross-entropy of those against the prediction
    expected = -(0.8 * np.log(0.7) + 0.1 * np.log(0.2) + 0.1 * np.log(0.1))
    assert smoothed == pytest.approx(expected, rel=1e-5)
    assert smoothed > plain


def test_float16_bundle_reproduces_its_recorded_metrics(
    tiny_data: dict[str, Path], tiny_bert: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bert16"
    args = train_args(
        "fine_tuned_bert",
        tiny_data,
        out,
        "--max-epochs",
        2,
        "--batch-size",
        32,
        "--learning-rate",
        1e-3,
        "--warmup",
        0.2,
        "--decay",
        "--label-smoothing",
        0.1,
        "--monitor",
        "val_macro_f1",
        "--weights-dtype",
        "float16",
        encoder=tiny_bert,
    )
    assert run_cli(args) == 0
    history = json.loads((out / "history.json").read_text())
    assert all("val_macro_f1" in epoch for epoch in history)
    from safetensors.numpy import load_file

    stored = load_file(str(out / "weights.safetensors"))
    assert {v.dtype for v in stored.values()} == {np.dtype("float16")}
    assert not (tmp_path / ".bert16.train").exists()  # checkpoints go once the bundle is whole
    manifest = json.loads((out / "manifest.json").read_text())
    report = tmp_path / "report"
    evaluate = ["evaluate", "--model", out, "--data", tiny_data["val"], "--report-dir", report]
    assert run_cli(evaluate) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    assert round(100 * metrics["macro_f1"], 2) == manifest["metrics"]["macro_f1"]


def test_killed_run_resumes_from_its_last_epoch(
    tiny_data: dict[str, Path], tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after its first epoch and resumed, a run ends where the same run, never
    interrupted, ends: same history and the same model. Dropout is off (in the encoder's
    config and the head), so nothing random is left but the seeded batch order, which a
    resumed run replays."""
    encoder = Path(shutil.copytree(tiny_bert, tmp_path / "encoder"))
    config = json.loads((encoder / "config.json").read_text())
    config |= {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    (encoder / "config.json").write_text(json.dumps(config))

    def args(out: Path) -> list:
        return train_args(
            "fine_tuned_bert",
            tiny_data,
            out,
            "--max-epochs",
            2,
            "--batch-size",
            32,
            "--patience",
            5,
            "--monitor",
            "val_macro_f1",
            "--set",
            "dropout=0",
            "--seed",
            7,
            encoder=encoder,
        )

    whole = tmp_path / "whole"
    assert run_cli(args(whole)) == 0

    out = tmp_path / "bert"
    save = TrainingCheckpoints.save
    calls = []

    def save_then_die(self: TrainingCheckpoints, *a: object, **k: object) -> None:
        save(self, *a, **k)
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt  # killed after the first epoch's checkpoint

    monkeypatch.setattr(TrainingCheckpoints, "save", save_then_die)
    assert run_cli(args(out)) == 130
    monkeypatch.setattr(TrainingCheckpoints, "save", save)
    scratch = tmp_path / ".bert.train"
    state = json.loads((scratch / "state.json").read_text())["state"]
    assert state["epoch"] == 1 and len(state["history"]) == 1
    assert not out.exists()

    # Another run's options may not continue these checkpoints.
    assert run_cli([*args(out), "--resume", "--label-smoothing", 0.2]) == 2
    assert run_cli([*args(out), "--resume"]) == 0
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 2
    assert history[:1] == state["history"]  # the first epoch was not trained again
    assert not scratch.exists()

    expected = json.loads((whole / "history.json").read_text())
    for resumed_epoch, whole_epoch in zip(history, expected, strict=True):
        assert resumed_epoch.keys() == whole_epoch.keys()
        for key, value in whole_epoch.items():
            assert resumed_epoch[key] == (
                pytest.approx(value, rel=1e-5) if isinstance(value, float) else value
            ), key
    probs = Predictor(load_bundle(out)).predict_proba(TEXTS)
    np.testing.assert_allclose(probs, Predictor(load_bundle(whole)).predict_proba(TEXTS), atol=1e-6)
    assert np.isfinite(probs).all()


def test_several_data_files_are_read_as_their_concatenation(tmp_path: Path) -> None:
    rows = make_rows(50, 31)
    first = write_labelled(tmp_path / "first.csv", rows[:20])
    second = write_labelled(tmp_path / "second.csv", rows[20:])
    whole = read_labelled(write_labelled(tmp_path / "whole.csv", rows))
    data, sizes = read_labelled_files([first, second])
    assert sizes == [20, 30]
    assert data.texts == whole.texts and data.labels.tolist() == whole.labels.tolist()


def test_train_on_two_files_fingerprints_both_and_resume_refuses_a_changed_one(
    tiny_data: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    first = write_labelled(tmp_path / "first.csv", make_rows(150, 32))
    second = write_labelled(tmp_path / "second.csv", make_rows(90, 33))
    out = tmp_path / "ngram"
    args = ["train", "ngram_linear", "--data", first, "--data", second]
    args += ["--val", tiny_data["val"], "--mapping", tiny_data["mapping"], "--output", out]
    args += ["--max-epochs", 3, "--patience", 5, "--batch-size", 32]
    save = TrainingCheckpoints.save

    def save_then_die(self: TrainingCheckpoints, *a: object, **k: object) -> None:
        save(self, *a, **k)
        raise KeyboardInterrupt  # killed after the first epoch's checkpoint

    monkeypatch.setattr(TrainingCheckpoints, "save", save_then_die)
    assert run_cli(args) == 130
    monkeypatch.setattr(TrainingCheckpoints, "save", save)
    original = second.read_bytes()
    second.write_bytes(original + b"999,love you mom,0\n")
    capsys.readouterr()
    assert run_cli([*args, "--resume"]) == 2
    assert "data changed" in capsys.readouterr().err
    second.write_bytes(original)
    assert run_cli([*args, "--resume"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["training"]["data"] == [
        {"path": "first.csv", "rows": 150, "sha256": file_digest(first)},
        {"path": "second.csv", "rows": 90, "sha256": file_digest(second)},
    ]
    assert manifest["training"]["split"]["train"] == 240


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
