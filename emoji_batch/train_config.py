"""What decides a training run, shared by every trainer (Keras epochs, convex solvers).

Kept apart from :mod:`emoji_batch.train` so that a trainer that does not need TensorFlow
does not import it.
"""

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from emoji_batch.dataset import Labelled
from emoji_batch.errors import InputError
from emoji_batch.evaluation import EvalReport
from emoji_batch.fileio import file_fingerprint
from emoji_batch.labels import Label, read_mapping


@dataclass
class TrainConfig:
    """Everything that decides a training run; stored in the bundle's manifest."""

    architecture: str
    # Training files, read with the same column rules and concatenated in this order.
    data: list[Path]
    output: Path
    embeddings: Path | None = None
    val: Path | None = None
    mapping: Path | None = None
    text_column: str = "text"
    label_column: str = "label"
    val_fraction: float = 0.1
    class_weight: Literal["none", "balanced"] = "none"
    batch_size: int = 64
    max_epochs: int | None = None
    patience: int = 2
    seed: int = 13
    min_count: int = 2
    max_vocab: int = 50_000
    labels: str = "all"
    balance: Literal["none", "downsample"] = "none"
    encoder: str | None = None
    max_length: int | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    # Peak learning rate of the last (fine-tuning) phase; None: the architecture's.
    learning_rate: float | None = None
    # Share of each phase's steps spent warming the learning rate up linearly from 0.
    warmup: float = 0.0
    # Decay the learning rate linearly to 0 over each phase; None: the phase's default.
    linear_decay: bool | None = None
    label_smoothing: float = 0.0
    # What early stopping and the choice of the best epoch watch.
    monitor: Literal["val_loss", "val_macro_f1"] = "val_loss"
    # float16 halves a bundle; the recorded metrics are those of the rounded weights.
    weights_dtype: Literal["float32", "float16"] = "float32"
    command: str = ""
    force: bool = False
    resume: bool = False

    def settings(self, architecture: str, defaults: dict[str, Any]) -> dict[str, Any]:
        """The architecture's settings with ``--set`` and ``--max-length`` laid over them;
        a setting the architecture does not have is an input error."""
        unknown = sorted(set(self.overrides) - set(defaults))
        if unknown:
            raise InputError(f"{architecture} has no setting {unknown}; it has {sorted(defaults)}")
        params = {**defaults, **self.overrides}
        if self.max_length is not None:
            params["max_length"] = self.max_length
        return params

    def training_record(
        self, file_rows: list[int], train_rows: int, val_rows: int
    ) -> dict[str, Any]:
        """The manifest's ``training`` entry every trainer writes: how it was invoked,
        its settings, and the training and validation data by row count and hash."""

        return {
            "command": self.command,
            "config": self.recorded(),
            "data": [
                file_fingerprint(path, rows)
                for path, rows in zip(self.data, file_rows, strict=True)
            ],
            "val": file_fingerprint(self.val, val_rows) if self.val else None,
            "split": {"train": train_rows, "validation": val_rows},
        }

    def recorded(self) -> dict[str, Any]:
        """The settings as the manifest stores them: JSON values (paths as strings, a
        list of paths as a list of strings), without how the run was invoked."""

        def plain(value: Any) -> Any:
            if isinstance(value, list):
                return [plain(v) for v in value]
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if value is None or isinstance(value, bool | int | float | str):
                return value
            return str(value)

        skip = ("command", "force", "resume")
        return {f.name: plain(getattr(self, f.name)) for f in fields(self) if f.name not in skip}


def labels_for(config: TrainConfig, train: Labelled) -> list[Label]:
    """The labels a model predicts: the mapping file's, else the ids 0..max seen."""
    if config.mapping is not None:
        return read_mapping(config.mapping)
    n = int(train.labels.max()) + 1
    return [Label(i, str(i), f"label_{i}") for i in range(n)]


@dataclass
class TrainResult:
    output: Path
    report: EvalReport
    seconds: float
