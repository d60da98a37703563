"""The shipped fine-tuned MiniLM bundle and ensemble: found by name, whole, the int8 copy agrees
with fp32 on real tweets. The slow tests reproduce their recorded Dev metrics."""

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from emoji_batch.bundle import load_bundle, shipped_models_dir
from emoji_batch.evaluate import evaluate_file
from emoji_batch.predictor import Predictor
from emoji_batch.quantize import recheck_precisions

NAME = "fine_tuned_bert"
ROOT = Path(__file__).parent.parent
DATA = ROOT.parent / "shared" / "data" / "tweeteval-emoji"
DEV = ROOT.parent / "shared" / "data" / "semeval2018-extra" / "Dev.csv"
MAX_MB = 60


@pytest.fixture(scope="module")
def bundle_dir() -> Path:
    # By path: a local ./models/fine_tuned_bert would shadow the name.
    return shipped_models_dir() / NAME


def test_shipped_bert_is_whole_and_small(bundle_dir: Path) -> None:
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    assert manifest["architecture"] == NAME
    assert manifest["metrics"]["dataset"] == "Dev.csv"
    assert manifest["metrics"]["macro_f1"] >= 30
    assert manifest["metrics"]["evaluated"]["Val.csv"]["precision"] == "fp32"
    assert manifest["cleaning_version"] == "2"
    assert manifest["training"]["command"].startswith("emoji-batch train fine_tuned_bert")
    assert set(manifest["files"]) == {"weights", "tokenizer", "int8"}
    assert manifest["precisions"]["int8"]["dataset"] == "Dev.csv"
    size = sum(f.stat().st_size for f in bundle_dir.rglob("*") if f.is_file())
    assert size <= MAX_MB * 1e6


def test_shipped_bert_measures_near_its_recorded_dev_macro_f1(
    bundle_dir: Path, tmp_path: Path
) -> None:
    """Measured, not read: every 10th Dev row (1,000), scored in fp32, gives a macro-F1
    within sampling error of the recorded one on all 10,000 (a model with shuffled labels
    or broken weights scores ~5)."""
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    dev = pl.read_csv(DEV, infer_schema=False).gather_every(10)
    sample = tmp_path / "dev_every_10th.csv"
    dev.write_csv(sample)
    report = evaluate_file(
        sample,
        model=str(bundle_dir),
        precision="fp32",
        device="cpu",
        text_column="TEXT",
        label_column="Label",
    )
    assert report.rows == 1000
    measured = 100 * report.macro_f1
    assert abs(measured - manifest["metrics"]["macro_f1"]) <= 3, measured
    assert measured >= 27


def test_shipped_bert_int8_agrees_with_fp32_on_real_tweets(bundle_dir: Path) -> None:
    sample = pl.read_csv(ROOT / "sample_data" / "tweets.csv", infer_schema=False)["text"]
    # The sample's tweets, and Dev's first 400, where about 2% of rows are near-ties.
    texts = [t for t in sample.to_list() if t and t.strip()][:120]
    texts += pl.read_csv(DEV, infer_schema=False)["TEXT"].head(400).to_list()
    bundle = load_bundle(bundle_dir)
    fp32 = Predictor(bundle, device="/CPU:0").predict_proba(texts)
    int8 = Predictor(bundle, device="/CPU:0", precision="int8")
    quick = int8.predict_proba(texts)
    # With the recorded fallback margin, the top-1 emoji is fp32's on most Dev rows.
    assert np.mean(fp32.argmax(axis=1) == quick.argmax(axis=1)) >= 0.97
    assert int8.fallback_rows < len(texts) / 4
    assert np.abs(fp32 - quick).max() < 0.05
    # The near-tie rows are recomputed in fp32 (ONNX Runtime): equal to fp32's rows.
    no_fallback = Predictor(bundle, device="/CPU:0", precision="int8", fallback_margin=1e-9)
    raw = no_fallback.predict_proba(texts)
    redone = np.flatnonzero(np.abs(raw - quick).max(axis=1) > 0)
    assert len(redone) == int8.fallback_rows > 0
    np.testing.assert_allclose(quick[redone], fp32[redone], atol=1e-5)


@pytest.mark.slow
def test_shipped_bert_reproduces_its_recorded_dev_metrics(bundle_dir: Path) -> None:
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    report = evaluate_file(DEV, model=str(bundle_dir), precision="fp32", device="cpu")
    assert round(100 * report.macro_f1, 2) == manifest["metrics"]["macro_f1"]
    (int8,) = recheck_precisions(bundle_dir, DEV, text_column="TEXT")
    assert int8.precision == "int8" and int8.accepted, int8.line()


def test_shipped_ensemble_loads_its_shipped_members() -> None:
    from emoji_batch.ensemble import load_ensemble

    ensemble = load_ensemble(shipped_models_dir() / "ensemble_bert_svm")
    names = [member.name for member in ensemble.members]
    assert names == [NAME, "ngram_svm"]
    assert all(m.directory.parent == shipped_models_dir() for m in ensemble.members)
    assert ensemble.manifest["metrics"]["dataset"].startswith("Dev.csv")
    assert ensemble.manifest["metrics"]["macro_f1"] >= 33.43  # never below its best member


@pytest.mark.slow
def test_shipped_ensemble_reproduces_its_in_sample_dev_metrics() -> None:
    """The mix was fitted on the members' `auto` precisions (int8 BERT), whose decimals
    differ by CPU: within the 0.3 rule, not to the digit."""
    directory = shipped_models_dir() / "ensemble_bert_svm"
    manifest = json.loads((directory / "manifest.json").read_text())
    report = evaluate_file(DEV, model=str(directory), precision="auto", device="cpu")
    measured = 100 * report.macro_f1
    assert abs(measured - manifest["evaluation"]["in_sample_macro_f1"]) <= 0.3, measured
