"""One reader for every bundle's ``manifest.json``: classifier, ensemble and position.

Each kind of bundle is a directory whose manifest says what it is (``kind``; classifier
manifests predate the key and have none) and which format it is written in. Reading,
requiring a JSON object, checking the kind, the format version and the cleaning version,
and turning every failure into one :class:`ModelError` happen here, once. Only the
standard library (and ``fileio.atomic``, which uses nothing else) is imported, so the
light paths (the position model, ``models list``) stay light.
"""

import json
from pathlib import Path
from typing import Any

from emoji_batch.errors import ModelError
from emoji_batch.fileio.atomic import write_json

MANIFEST = "manifest.json"
CLASSIFIER = "classifier"
ENSEMBLE = "ensemble"
POSITION = "emoji_position"

_WHAT = {
    CLASSIFIER: "a model that predicts emoji",
    ENSEMBLE: "an ensemble bundle",
    POSITION: (
        "an emoji-position bundle (what `predict` and `score --insert` use to place the emoji)"
    ),
}


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; a missing or unreadable file, or one that holds
    anything but an object, is a :class:`ModelError` naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelError(f"{path.parent} is not a model bundle (no {path.name})") from exc
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: unreadable ({exc})") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{path}: must be a JSON object, not {type(data).__name__}")
    return data


def record_evaluation(directory: Path, dataset: str, summary: dict[str, Any]) -> None:
    """Store ``summary`` under ``metrics.evaluated[dataset]`` in the bundle's manifest,
    replacing the file atomically (a reader sees the old manifest or the new one).

    A bundle records its validation metrics when it is made; this adds the other data
    sets it is compared on (Dev and Val side by side). An ensemble records member hashes,
    so record the members' evaluations before fitting one."""
    path = directory / MANIFEST
    data = read_json_object(path)
    metrics = data.setdefault("metrics", {})
    metrics.setdefault("evaluated", {})[dataset] = summary
    write_json(path, data)


def manifest_kind(directory: Path) -> str | None:
    """What the bundle in ``directory`` is (``CLASSIFIER``, ``ENSEMBLE``, ``POSITION`` or
    another kind's name), or None if its manifest cannot be read."""
    try:
        kind = read_json_object(directory / MANIFEST).get("kind", CLASSIFIER)
    except ModelError:
        return None
    return kind if isinstance(kind, str) else None


def read_manifest_json(
    directory: Path,
    kind: str,
    format_version: int,
    cleaning_versions: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """The manifest of the ``kind`` bundle in ``directory``, checked (see
    :func:`check_manifest`)."""
    data = read_json_object(directory / MANIFEST)
    check_manifest(data, directory, kind, format_version, cleaning_versions)
    return data


def check_manifest(
    data: dict[str, Any],
    directory: Path,
    kind: str,
    format_version: int,
    cleaning_versions: tuple[str, ...] | None = None,
) -> None:
    """Refuse a manifest that is not of ``kind``, not in ``format_version``, or (when
    given) not fitted with one of ``cleaning_versions``."""
    found = data.get("kind", CLASSIFIER)
    if found != kind:
        what = _WHAT.get(found, f"a bundle of kind {found!r}")
        raise ModelError(f"{directory} is {what}, not {_WHAT.get(kind, kind)}")
    version = data.get("format_version")
    if version != format_version:
        raise ModelError(
            f"{directory}: {kind} format version {version!r} is not supported "
            f"(this emoji-batch reads version {format_version})"
        )
    if cleaning_versions is not None and data.get("cleaning_version") not in cleaning_versions:
        known = ", ".join(repr(v) for v in cleaning_versions)
        raise ModelError(
            f"{directory}: {kind} was trained with cleaning version "
            f"{data.get('cleaning_version')!r}, this emoji-batch implements {known}"
        )
