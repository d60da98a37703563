"""One manifest reader for every bundle kind: the same checks and one error type."""

import json
import shutil
from pathlib import Path

import pytest

from emoji_batch.bundle import load_bundle, shipped_models_dir
from emoji_batch.ensemble import load_ensemble
from emoji_batch.errors import ModelError
from emoji_batch.manifests import (
    CLASSIFIER,
    ENSEMBLE,
    MANIFEST,
    POSITION,
    manifest_kind,
    read_json_object,
    read_manifest_json,
)
from emoji_batch.position import PositionModel

SHIPPED = shipped_models_dir()


def test_kinds_of_the_shipped_bundles() -> None:
    assert manifest_kind(SHIPPED / "ngram_svm") == CLASSIFIER
    assert manifest_kind(SHIPPED / "ensemble_bert_svm") == ENSEMBLE
    assert manifest_kind(SHIPPED / "emoji_position") == POSITION


@pytest.mark.parametrize(
    ("name", "wanted", "message"),
    [
        ("emoji_position", CLASSIFIER, "is an emoji-position bundle .* not a model that predicts"),
        ("ngram_svm", POSITION, "predicts emoji, not an emoji-position bundle"),
        ("ngram_svm", ENSEMBLE, "predicts emoji, not an ensemble bundle"),
        ("ensemble_bert_svm", CLASSIFIER, "is an ensemble bundle, not a model"),
    ],
)
def test_a_bundle_of_another_kind_is_refused_saying_what_it_is(
    name: str, wanted: str, message: str
) -> None:
    with pytest.raises(ModelError, match=message):
        read_manifest_json(SHIPPED / name, wanted, 1)


@pytest.mark.parametrize(
    ("name", "load"),
    [
        ("ngram_svm", load_bundle),
        ("ensemble_bert_svm", load_ensemble),
        ("emoji_position", PositionModel.load),
    ],
)
def test_every_loader_checks_the_format_and_cleaning_versions_the_same_way(
    name: str, load: object, tmp_path: Path
) -> None:
    copy = Path(shutil.copytree(SHIPPED / name, tmp_path / name))
    manifest = json.loads((copy / MANIFEST).read_text(encoding="utf-8"))
    kind = manifest.get("kind", CLASSIFIER)
    (copy / MANIFEST).write_text(json.dumps({**manifest, "format_version": 99}), "utf-8")
    with pytest.raises(ModelError, match=f"{kind} format version 99 is not supported"):
        load(copy)  # type: ignore[operator]
    if "cleaning_version" in manifest:
        changed = {**manifest, "cleaning_version": "0"}
        (copy / MANIFEST).write_text(json.dumps(changed), "utf-8")
        with pytest.raises(ModelError, match="cleaning version '0'"):
            load(copy)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, r"no manifest\.json"), ("{not json", "unreadable"), ("[1, 2]", "JSON object")],
)
def test_missing_unreadable_or_non_object_manifests(
    content: str | None, message: str, tmp_path: Path
) -> None:
    if content is not None:
        (tmp_path / MANIFEST).write_text(content, encoding="utf-8")
    with pytest.raises(ModelError, match=message):
        read_json_object(tmp_path / MANIFEST)
    for load in (load_bundle, load_ensemble, PositionModel.load):
        with pytest.raises(ModelError, match=message):
            load(tmp_path)
    assert manifest_kind(tmp_path) is None


def test_retired_shipped_names_resolve_to_their_successors(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from emoji_batch.bundle import RETIRED_NAMES, resolve_model

    for old, new in RETIRED_NAMES.items():
        assert not (SHIPPED / old).exists() and (SHIPPED / new / "manifest.json").is_file()
        assert resolve_model(old, tmp_path) == SHIPPED / new
        assert f"--model {old} was retired; using the shipped {new}" in caplog.text
    (tmp_path / "ngram_linear").mkdir()  # a bundle of the old name is still found first
    (tmp_path / "ngram_linear" / "manifest.json").write_text("{}")
    assert resolve_model("ngram_linear", tmp_path) == tmp_path / "ngram_linear"
