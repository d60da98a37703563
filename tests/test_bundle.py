"""Bundle round trip and refusal of bundles this version must not load."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from emoji_batch.bundle import load_bundle, read_manifest
from emoji_batch.errors import ModelError
from emoji_batch.predict import Predictor
from tests.conftest import PROBE_TEXTS

TEXTS = PROBE_TEXTS


def copy_bundle(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    return dst


def edit_manifest(bundle: Path, **changes: object) -> None:
    path = bundle / "manifest.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_round_trip_gives_identical_probabilities(
    tiny_bilstm: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    """The bundle, reloaded (here and from a copy elsewhere), predicts what the trained
    in-memory model predicted just before it was written: weights, vocabulary and
    calibration all survive the round trip."""
    bundle_dir, trained = tiny_bilstm
    first = Predictor(load_bundle(bundle_dir)).predict_proba(PROBE_TEXTS)
    again = Predictor(load_bundle(copy_bundle(bundle_dir, tmp_path))).predict_proba(PROBE_TEXTS)
    # Same float32 weights through the same graph: equal up to float summation order.
    np.testing.assert_allclose(first, trained, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(first.sum(axis=1), 1.0, rtol=1e-5)
    assert len(set(first.argmax(axis=1))) > 1  # a model that tells texts apart


def test_manifest_is_complete(tiny_bundle: Path) -> None:
    data = json.loads((tiny_bundle / "manifest.json").read_text(encoding="utf-8"))
    for key in (
        "format_version",
        "architecture",
        "labels",
        "cleaning_version",
        "max_length",
        "metrics",
        "training",
        "package_version",
        "created",
        "files",
    ):
        assert key in data, key
    assert data["labels"][1] == {"id": 1, "emoji": "🎄", "name": "christmas_tree"}
    (train_file,) = data["training"]["data"]
    assert train_file["path"] == "Train.csv" and train_file["rows"] == 240
    assert len(train_file["sha256"]) == 64
    assert data["training"]["command"].startswith("emoji-batch train glove_bilstm")
    assert 0 <= data["metrics"]["macro_f1"] <= 100
    assert not list(tiny_bundle.rglob("*.pkl")) and not list(tiny_bundle.rglob("*.pickle"))


def test_batch_size_does_not_change_probabilities(tiny_bundle: Path) -> None:
    bundle = load_bundle(tiny_bundle)
    a = Predictor(bundle, batch_size=1).predict_proba(TEXTS)
    b = Predictor(bundle, batch_size=64).predict_proba(TEXTS)
    np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format_version": 99}, "format version 99"),
        ({"cleaning_version": "0"}, "cleaning version '0'"),
        ({"architecture": "mystery_net"}, "unknown architecture 'mystery_net'"),
        ({"files": {"weights": "../../etc/passwd", "vocab": "vocab.txt"}}, "escapes the bundle"),
    ],
)
def test_refuses_bad_manifests(
    tiny_bundle: Path, tmp_path: Path, changes: dict, message: str
) -> None:
    bundle = copy_bundle(tiny_bundle, tmp_path)
    edit_manifest(bundle, **changes)
    with pytest.raises(ModelError, match=message):
        load_bundle(bundle)


def test_refuses_missing_weights(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = copy_bundle(tiny_bundle, tmp_path)
    (bundle / "weights.safetensors").unlink()
    with pytest.raises(ModelError, match=r"missing weights\.safetensors"):
        load_bundle(bundle)


def test_refuses_weights_of_another_shape(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = copy_bundle(tiny_bundle, tmp_path)
    config = read_manifest(bundle).config
    edit_manifest(bundle, config={**config, "units": 16})
    with pytest.raises(ModelError, match="has shape"):
        _ = load_bundle(bundle).model  # built on first use
