"""Every architecture builds, trains a step, saves, reloads (also from a copy elsewhere)
and predicts what the trained model predicted, whatever the batch size."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from emoji_batch.architectures import ARCHITECTURES
from emoji_batch.bundle import load_bundle
from emoji_batch.predictor import Predictor
from tests.helpers import PROBE_TEXTS, eager_functions, train_args, train_capturing

# Architectures trained in Keras epochs; ngram_svm (a convex solve) has tests/test_train_linear.py.
KERAS_TRAINED = sorted(name for name, arch in ARCHITECTURES.items() if arch.trainer == "keras")


@pytest.mark.parametrize("name", KERAS_TRAINED)
def test_trains_saves_and_reloads(
    name: str,
    tiny_data: dict[str, Path],
    tiny_bert: Path,
    tmp_path: Path,
) -> None:
    architecture = ARCHITECTURES[name]
    out = tmp_path / name
    bert = architecture.family == "bert"
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
    # Narrow layers: the widths do not change what is built, saved and reloaded, and
    # the default 128-unit recurrent layers made this the slowest test of the suite.
    for key in ("units", "attention_units", "filters", "dense_units"):
        if key in architecture.defaults:
            args += ["--set", f"{key}=8"]
    with eager_functions():
        code, trained = train_capturing(args, PROBE_TEXTS)
    assert code == 0 and trained is not None
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["architecture"] == name
    history = json.loads((out / "history.json").read_text())
    phases = [h["phase"] for h in history]
    assert list(dict.fromkeys(phases)) == [phase.name for phase in architecture.phases]
    assert len(phases) == len(architecture.phases)  # --max-epochs 1: one per phase

    first = Predictor(load_bundle(out), batch_size=2).predict_proba(PROBE_TEXTS)
    copy = Path(shutil.copytree(out, tmp_path / "copy"))
    again = Predictor(load_bundle(copy), batch_size=5).predict_proba(PROBE_TEXTS)
    # The reloaded bundle, here or copied elsewhere, is the trained model: same weights,
    # vocabulary and calibration; the batch size (and so each text's padding, masked by
    # the recurrent and attention layers) changes only the summation order.
    np.testing.assert_allclose(first, trained, atol=1e-5)
    np.testing.assert_allclose(first, again, atol=1e-5)
    assert first.shape == (len(PROBE_TEXTS), 3)
    np.testing.assert_allclose(first.sum(axis=1), 1.0, rtol=1e-5)
