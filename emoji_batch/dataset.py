"""Labelled data for training and evaluation: texts plus integer label ids."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from emoji_batch.errors import InputError
from emoji_batch.fileio import detect_format, find_column, read_table
from emoji_batch.labels import Label


@dataclass
class Labelled:
    source: str  # the file name(s), for messages
    texts: list[str | None]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.texts)


def read_labelled(
    path: Path,
    text_column: str = "text",
    label_column: str = "label",
    input_format: str | None = None,
) -> Labelled:
    """Read a whole labelled CSV/Parquet file with the same column rules as ``score``."""
    df = read_table(path, detect_format(path, input_format))
    text_col = find_column(df.columns, text_column, "text")
    label_col = find_column(df.columns, label_column, "label")
    try:
        labels = df[label_col].cast(pl.Int64, strict=True).to_numpy()
    except pl.exceptions.PolarsError as exc:
        raise InputError(
            f"{path}: label column {label_col!r} must hold integer ids ({exc})"
        ) from exc
    texts = df[text_col].cast(pl.String, strict=False).to_list()
    return Labelled(str(path), texts, labels)


def read_labelled_files(
    paths: Sequence[Path], text_column: str = "text", label_column: str = "label"
) -> tuple[Labelled, list[int]]:
    """Several labelled files read with the same column rules and concatenated in order,
    and each file's row count (for its fingerprint)."""
    if not paths:
        raise InputError("no training data given")
    parts = [read_labelled(path, text_column, label_column) for path in paths]
    data = Labelled(
        " + ".join(part.source for part in parts),
        [text for part in parts for text in part.texts],
        np.concatenate([part.labels for part in parts]),
    )
    return data, [len(part) for part in parts]


def check_labels(data: Labelled, labels: list[Label]) -> None:
    known = [label.id for label in labels]
    bad = data.labels[~np.isin(data.labels, known)]
    if bad.size:
        raise InputError(
            f"{data.source}: label ids must be among {known}; found {sorted(set(bad.tolist()))[:5]}"
        )


def label_indices(data: Labelled, labels: list[Label]) -> np.ndarray:
    """Dataset label ids -> positions in ``labels`` (the model's output order)."""
    check_labels(data, labels)
    index = {label.id: i for i, label in enumerate(labels)}
    return np.array([index[int(i)] for i in data.labels], dtype=np.int32)


def select(data: Labelled, rows: np.ndarray) -> Labelled:
    return Labelled(data.source, [data.texts[i] for i in rows], data.labels[rows])


def keep_labels(data: Labelled, ids: list[int]) -> Labelled:
    """Only the rows whose label is one of ``ids``."""
    return select(data, np.flatnonzero(np.isin(data.labels, ids)))


def most_frequent(data: Labelled, n: int) -> list[int]:
    """The ``n`` most frequent label ids (ties: lower id first), in id order."""
    ids, counts = np.unique(data.labels, return_counts=True)
    order = sorted(zip(-counts, ids, strict=True))[:n]
    return sorted(int(i) for _, i in order)


def downsample(data: Labelled, seed: int) -> Labelled:
    """Every label cut to the count of the rarest one (random rows, order kept)."""
    rng = np.random.default_rng(seed)
    ids, counts = np.unique(data.labels, return_counts=True)
    keep = [rng.choice(np.flatnonzero(data.labels == i), counts.min(), replace=False) for i in ids]
    return select(data, np.sort(np.concatenate(keep)))
