"""Label sets: id -> emoji -> readable name, read from the Kaggle ``Mapping.csv`` layout."""

import unicodedata
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from emoji_batch.errors import InputError


@dataclass(frozen=True)
class Label:
    id: int
    emoji: str
    name: str

    def to_dict(self) -> dict:
        return {"id": self.id, "emoji": self.emoji, "name": self.name}


def emoji_name(emoji: str) -> str:
    """A readable identifier for an emoji: 'SMILING FACE WITH...' -> 'smiling_face_with...'."""
    chars = [c for c in emoji if c not in "\ufe0e\ufe0f"]
    try:
        return unicodedata.name(chars[0]).lower().replace(" ", "_").replace("-", "_")
    except (IndexError, ValueError):
        return f"label_{emoji!r}"


def read_mapping(path: Path) -> list[Label]:
    """Read ``,emoticons,number`` (Kaggle layout) or ``emoji,id`` style mappings."""
    try:
        df = pl.read_csv(path, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(f"cannot read label mapping {path}: {exc}") from exc
    cols = {c.lower(): c for c in df.columns}
    emoji_col = cols.get("emoticons") or cols.get("emoji")
    id_col = cols.get("number") or cols.get("id") or cols.get("label")
    if emoji_col is None or id_col is None:
        raise InputError(
            f"mapping {path} needs an emoji column ('emoticons' or 'emoji') and an id column "
            f"('number', 'id' or 'label'); found {df.columns}"
        )
    labels = [
        Label(int(i), e, emoji_name(e))
        for e, i in zip(df[emoji_col].to_list(), df[id_col].to_list(), strict=True)
    ]
    labels.sort(key=lambda label: label.id)
    if [label.id for label in labels] != list(range(len(labels))):
        raise InputError(f"mapping {path}: label ids must be 0..{len(labels) - 1} without gaps")
    return labels
