"""What decides a training run, shared by every trainer (Keras epochs, convex solvers).

Kept apart from :mod:`emoji_batch.train` so that a trainer that does not need TensorFlow
does not import it.
"""

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from emoji_batch.evaluation import EvalReport


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


@dataclass
class TrainResult:
    output: Path
    report: EvalReport
    seconds: float
