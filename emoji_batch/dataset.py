"""Labelled data for training and evaluation: texts plus integer label ids."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from emoji_batch.errors import InputError
from emoji_batch.fileio import detect_format, find_column, read_table
from emoji_batch.labels import Label


@dataclass
class Labelled:
    path: Path
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
    return Labelled(path, texts, labels)


def check_labels(data: Labelled, labels: list[Label]) -> None:
    bad = data.labels[(data.labels < 0) | (data.labels >= len(labels))]
    if bad.size:
        raise InputError(
            f"{data.path}: label ids must lie in 0..{len(labels) - 1}; found {sorted(set(bad))[:5]}"
        )
