"""The shipped default model against the shared TweetEval validation split.

The data lives in ``../shared/data`` beside the checkout (as in CI); it is never copied
into the repository.
"""

import json
from pathlib import Path

import pytest

from emoji_batch.bundle import resolve_model
from emoji_batch.quantize import recheck_precisions
from emoji_batch.scoring import evaluate_file

DATA = Path(__file__).parent.parent.parent / "shared" / "data" / "tweeteval-emoji"


def test_default_model_reproduces_its_recorded_val_metrics() -> None:
    """fp32 to the recorded decimals; each reduced precision by re-running its recorded
    acceptance rule on this CPU (bf16/int8 decimals differ between CPUs)."""
    directory = resolve_model(None, None)
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["metrics"]["dataset"] == "Val.csv"
    report = evaluate_file(DATA / "Val.csv", model=None, precision="fp32", device="cpu")
    assert report.rows == 5000
    assert round(100 * report.macro_f1, 2) == manifest["metrics"]["macro_f1"]
    assert round(100 * report.accuracy, 2) == manifest["metrics"]["accuracy"]
    assert manifest["precisions"], "the default ships with a checked reduced precision"
    assert all(check["dataset"] == "Val.csv" for check in manifest["precisions"].values())
    checks = recheck_precisions(directory, DATA / "Val.csv", text_column="TEXT")
    assert sorted(c.precision for c in checks) == sorted(manifest["precisions"])
    for check in checks:
        assert check.rows == 5000
        assert check.fp32_macro_f1 == manifest["metrics"]["macro_f1"]
        assert check.accepted, check.line()


@pytest.mark.slow
def test_fine_tune_packaged_minilm_on_real_rows(tmp_path: Path) -> None:
    """Opt-in (``pytest -m slow``): fine-tune the packaged MiniLM on 300 real tweets."""
    import polars as pl

    from tests.conftest import run_cli

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
