"""Every architecture builds, trains a step, saves, reloads and predicts what the trained
model predicted."""

import json
from pathlib import Path

import numpy as np
import pytest

from emoji_batch.architectures import ARCHITECTURES
from emoji_batch.bundle import load_bundle
from emoji_batch.predict import Predictor
from tests.conftest import train_args, train_capturing

TEXTS = ["i love you mom", "merry christmas santa tree", "lol so funny", "", "zzz unknown"]


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_trains_saves_and_reloads(
    name: str, tiny_data: dict[str, Path], tiny_bert: Path, tmp_path: Path
) -> None:
    out = tmp_path / name
    bert = ARCHITECTURES[name].family == "bert"
    args = train_args(
        name,
        tiny_data,
        out,
        "--max-epochs",
        1,
        "--batch-size",
        32,
        encoder=tiny_bert if bert else None,
    )
    # Narrow layers: the widths do not change what is built, saved and reloaded, and the
    # default 128-unit recurrent layers made this the slowest test of the suite.
    for key in ("units", "attention_units", "filters", "dense_units"):
        if key in ARCHITECTURES[name].defaults:
            args += ["--set", f"{key}=8"]
    code, trained = train_capturing(args, TEXTS)
    assert code == 0 and trained is not None
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["architecture"] == name
    history = json.loads((out / "history.json").read_text())
    assert len(history) == len(ARCHITECTURES[name].phases)  # one epoch per phase

    bundle = load_bundle(out)
    first = Predictor(bundle, batch_size=2).predict_proba(TEXTS)
    again = Predictor(load_bundle(out), batch_size=5).predict_proba(TEXTS)
    # The reloaded bundle is the trained model: same weights, vocabulary and calibration
    # (batch size only changes padding and summation order).
    np.testing.assert_allclose(first, trained, atol=1e-5)
    np.testing.assert_allclose(first, again, atol=1e-5)
    assert first.shape == (len(TEXTS), 3)
    np.testing.assert_allclose(first.sum(axis=1), 1.0, rtol=1e-5)
