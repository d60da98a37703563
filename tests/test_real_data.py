"""The shipped default model against the shared TweetEval validation split.

The data lives in ``../shared/data`` beside the checkout (as in CI); it is never copied
into the repository.
"""

import json
from pathlib import Path

from emoji_batch.bundle import DEFAULT_MODEL, resolve_model
from emoji_batch.scoring import evaluate_file

DATA = Path(__file__).parent.parent.parent / "shared" / "data" / "tweeteval-emoji"


def test_default_model_reproduces_its_recorded_val_metrics() -> None:
    manifest = json.loads((resolve_model(None, None) / "manifest.json").read_text())
    assert manifest["metrics"]["dataset"] == "Val.csv"
    report = evaluate_file(DATA / "Val.csv", model=DEFAULT_MODEL)
    assert report.rows == 5000
    assert round(100 * report.macro_f1, 2) == manifest["metrics"]["macro_f1"]
    assert round(100 * report.accuracy, 2) == manifest["metrics"]["accuracy"]
