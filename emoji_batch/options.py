"""The settings of one scoring run, defined once.

The CLI builds a :class:`ScoreOptions` from its flags; the local engine
(:func:`emoji_batch.scoring.score_file`), the Spark engine
(:func:`emoji_batch.spark.score_path`), :func:`emoji_batch.score_frame` and the demo page
consume it. A new option is a field here plus its CLI flag. Python callers may pass the
fields as keywords instead (``score_file(path, top_k=5)``).
"""

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emoji_batch.device import DeviceChoice
from emoji_batch.errors import InputError
from emoji_batch.fileio import FileFormat
from emoji_batch.predictor import PrecisionChoice

DEFAULT_CHUNK_ROWS = 50_000


@dataclass(frozen=True)
class ScoreOptions:
    """What to score with and how; the defaults are the CLI's."""

    model: str | None = None  # a bundle or ensemble name or path; None: the shipped default
    models_dir: Path | None = None  # a str or os.PathLike is taken as a Path
    text_column: str = "text"
    top_k: int = 3
    insert: bool = False  # add text_with_emoji, placed by the position model
    input_format: FileFormat | None = None  # None: from the input's suffix
    output_format: FileFormat | None = None  # None: from the output's suffix
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    batch_size: int | None = None  # None: the model family's default
    device: DeviceChoice = "auto"
    precision: PrecisionChoice = "auto"

    def __post_init__(self) -> None:
        if self.models_dir is not None and not isinstance(self.models_dir, Path):
            object.__setattr__(self, "models_dir", Path(self.models_dir))
        for name in ("top_k", "chunk_rows", "batch_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InputError(f"--{name.replace('_', '-')} must be at least 1, got {value}")

    @classmethod
    def of(cls, options: "ScoreOptions | None", settings: dict[str, Any]) -> "ScoreOptions":
        """``options`` (or the defaults) with the keyword ``settings`` laid over them;
        an unknown keyword is a TypeError, as for any function."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(settings) - fields)
        if unknown:
            raise TypeError(f"unknown scoring option(s) {unknown}; known: {sorted(fields)}")
        return dataclasses.replace(options or cls(), **settings)
