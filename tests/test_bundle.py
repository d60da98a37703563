"""Bundles: what a bundle holds, and refusal of bundles this version must not load (the
round trip of each architecture: tests/test_architectures.py)."""

import json
import shutil
from pathlib import Path

import pytest

from emoji_batch.bundle import load_bundle, read_manifest
from emoji_batch.errors import ModelError
from tests.helpers import PROBE_TEXTS

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


def test_manifest_is_complete(tiny_cnn: Path) -> None:
    data = json.loads((tiny_cnn / "manifest.json").read_text(encoding="utf-8"))
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
    assert data["training"]["command"].startswith("emoji-batch train glove_cnn")
    assert 0 <= data["metrics"]["macro_f1"] <= 100
    assert not list(tiny_cnn.rglob("*.pkl")) and not list(tiny_cnn.rglob("*.pickle"))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format_version": 99}, "format version 99"),
        ({"cleaning_version": "0"}, "cleaning version '0'"),
        ({"architecture": "mystery_net"}, "unknown architecture 'mystery_net'"),
        ({"files": {"weights": "../../etc/passwd", "vocab": "vocab.txt"}}, "escapes the bundle"),
        ({"max_length": 0}, "max_length must be a whole number >= 1"),
        ({"max_length": 2.5}, "max_length must be a whole number >= 1"),
        (
            {
                "labels": [
                    {"id": 0, "emoji": None, "name": "x"},
                    {"id": 1, "emoji": "a", "name": "y"},
                ]
            },
            "label 0 needs a non-empty emoji",
        ),
        (
            {
                "labels": [
                    {"id": 0, "emoji": "a", "name": "x"},
                    {"id": 0, "emoji": "b", "name": "y"},
                ]
            },
            "at least two different ids",
        ),
    ],
)
def test_refuses_bad_manifests(tiny_cnn: Path, tmp_path: Path, changes: dict, message: str) -> None:
    bundle = copy_bundle(tiny_cnn, tmp_path)
    edit_manifest(bundle, **changes)
    with pytest.raises(ModelError, match=message):
        load_bundle(bundle)


def test_refuses_missing_weights(tiny_cnn: Path, tmp_path: Path) -> None:
    bundle = copy_bundle(tiny_cnn, tmp_path)
    (bundle / "weights.safetensors").unlink()
    with pytest.raises(ModelError, match=r"missing weights\.safetensors"):
        load_bundle(bundle)


def test_refuses_weights_of_another_shape(tiny_cnn: Path, tmp_path: Path) -> None:
    bundle = copy_bundle(tiny_cnn, tmp_path)
    config = read_manifest(bundle).config
    edit_manifest(bundle, config={**config, "filters": 16})
    with pytest.raises(ModelError, match="has shape"):
        _ = load_bundle(bundle).model  # built on first use
