"""The shipped default model against the shared development and TweetEval splits.

The data lives in ``../shared/data`` beside the checkout (as in CI); it is never copied
into the repository.
"""

import json
from pathlib import Path

import pytest

from emoji_batch.bundle import resolve_model
from emoji_batch.evaluate import evaluate_file
from emoji_batch.quantize import recheck_precisions

SHARED = Path(__file__).parent.parent.parent / "shared" / "data"
DATA = SHARED / "tweeteval-emoji"
DEV = SHARED / "semeval2018-extra" / "Dev.csv"


def test_default_model_reproduces_its_recorded_dev_and_val_metrics() -> None:
    """Dev.csv (where its settings were chosen: the manifest's metrics) and Val.csv
    (recorded beside it by `evaluate --record`), fp32, to the recorded decimals; any
    reduced precision by re-running its recorded acceptance rule on this CPU."""
    directory = resolve_model(None, None)
    manifest = json.loads((directory / "manifest.json").read_text())
    recorded = {
        "Dev.csv": manifest["metrics"],
        "Val.csv": manifest["metrics"]["evaluated"]["Val.csv"],
    }
    assert recorded["Dev.csv"]["dataset"] == "Dev.csv"
    for path, rows in ((DEV, 10_000), (DATA / "Val.csv", 5_000)):
        report = evaluate_file(path, model=None, precision="fp32", device="cpu")
        summary = {**report.summary(), "precision": "fp32"}
        assert report.rows == rows
        for key in ("macro_f1", "accuracy", "top3_accuracy", "ece"):
            assert summary[key] == recorded[path.name][key], (path.name, key)
    assert manifest["metrics"]["ece"] <= 0.05, "calibrated on Dev: issue 27's bound"
    checks = recheck_precisions(directory, DEV, text_column="TEXT")
    assert sorted(c.precision for c in checks) == sorted(manifest["precisions"])
    for check in checks:
        assert check.accepted, check.line()


@pytest.mark.slow
def test_fine_tune_packaged_minilm_on_real_rows(tmp_path: Path) -> None:
    """Opt-in (``pytest -m slow``): fine-tune the packaged MiniLM on 300 real tweets."""
    import polars as pl

    from tests.helpers import run_cli

    rows = pl.read_csv(DATA / "Train.csv", infer_schema=False).head(300)
    rows.write_csv(tmp_path / "train300.csv")
    pl.read_csv(DATA / "Val.csv", infer_schema=False).head(100).write_csv(tmp_path / "val100.csv")
    out = tmp_path / "minilm"
    code = run_cli(
        [
            "train",
            "fine_tuned_bert",
            "--data",
            tmp_path / "train300.csv",
            "--val",
            tmp_path / "val100.csv",
            "--mapping",
            DATA / "Mapping.csv",
            "--output",
            out,
            "--max-epochs",
            1,
            "--batch-size",
            32,
        ]
    )
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["encoder"]["hidden_size"] == 384
    assert manifest["config"]["encoder"]["num_hidden_layers"] == 6
    assert (out / "tokenizer.json").is_file()
    report = evaluate_file(tmp_path / "val100.csv", model=str(out))
    assert round(100 * report.macro_f1, 2) == manifest["metrics"]["macro_f1"]
