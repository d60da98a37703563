"""The Python API: load a model once, then predict texts or score in-memory frames.

What the CLI does, callable from an Airflow/Dagster task or a notebook without files:
:func:`load` returns a :class:`Model` (a single bundle or an ensemble alike);
:func:`score_frame` appends exactly the columns ``score`` writes to a polars DataFrame,
a pandas DataFrame or a pyarrow Table, and returns the same type.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa

from emoji_batch.device import DeviceChoice
from emoji_batch.errors import InputError
from emoji_batch.fileio import find_column
from emoji_batch.labels import Label
from emoji_batch.loading import AnyPredictor, load_predictor
from emoji_batch.options import ScoreOptions
from emoji_batch.position import PositionModel, load_position_model
from emoji_batch.predict import PrecisionChoice
from emoji_batch.scoring import output_schema, score_table
from emoji_batch.tweet import TweetPrediction, predict_tweets, prepare_texts

Frame = TypeVar("Frame")


@dataclass
class Model:
    """A loaded model, reused across calls (loading is the slow part)."""

    predictor: AnyPredictor
    models_dir: Path | None = None
    _placer: PositionModel | None = None

    @property
    def name(self) -> str:
        return self.predictor.bundle.name

    @property
    def labels(self) -> list[Label]:
        return list(self.predictor.bundle.labels)

    @property
    def precision(self) -> str:
        return self.predictor.precision

    @property
    def device(self) -> str:
        return self.predictor.device

    @property
    def placer(self) -> PositionModel:
        """The emoji-position model, loaded on first use."""
        if self._placer is None:
            self._placer = load_position_model(self.models_dir)
        return self._placer

    def predict(
        self, texts: Sequence[str | None], top_k: int = 5, insert: bool = True
    ) -> list[TweetPrediction]:
        """Each text's top-``top_k`` emoji with probabilities, the text with its top emoji
        placed (``insert``), or ``error``: why it cannot be scored (as ``score_error``)."""
        if top_k < 1:
            raise InputError("top_k must be at least 1")
        k = min(top_k, self.predictor.n_labels)
        return predict_tweets(texts, self.predictor, self.placer if insert else None, k)

    def predict_proba(self, texts: Sequence[str | None]) -> np.ndarray:
        """Probabilities, one row per text and one column per label (``labels`` order);
        a text that cannot be scored (``predict`` says why) gets a row of NaN."""
        chunk = prepare_texts(texts, self.predictor)
        out = np.full((len(chunk.ok), self.predictor.n_labels), np.nan, dtype=np.float32)
        out[chunk.ok] = self.predictor.predict_encoded(chunk.encoded)
        return out


def load(
    model: str | Path | None = None,
    *,
    models_dir: Path | None = None,
    device: DeviceChoice = "auto",
    precision: PrecisionChoice = "auto",
    batch_size: int | None = None,
) -> Model:
    """The model ``score --model`` would use: a bundle or ensemble name or path, or None
    for the shipped default; ``device`` and ``precision`` as on the command line."""
    name = None if model is None else str(model)
    return Model(load_predictor(name, models_dir, device, batch_size, precision), models_dir)


def _to_arrow(frame: Any) -> tuple[pa.Table, str]:
    """An Arrow table of ``frame`` and what kind it was, to convert the result back."""
    if isinstance(frame, pa.Table):
        return frame, "arrow"
    kind = type(frame).__module__.split(".")[0]
    if kind == "polars":
        return frame.to_arrow(), "polars"
    if kind == "pandas":
        return pa.Table.from_pandas(frame, preserve_index=False), "pandas"
    raise InputError(
        f"score_frame takes a polars or pandas DataFrame or a pyarrow Table, not {type(frame)}"
    )


def _from_arrow(table: pa.Table, kind: str) -> Any:
    if kind == "polars":
        import polars as pl

        return pl.from_arrow(table)
    if kind == "pandas":
        return table.to_pandas()
    return table


def score_frame(
    frame: Frame,
    options: ScoreOptions | None = None,
    *,
    model: "str | Path | Model | None" = None,
    **settings: Any,
) -> Frame:
    """``frame`` with the columns ``score`` appends (``emoji_1..k``, ``prob_1..k``,
    ``score_error``, with ``insert`` ``text_with_emoji``), as the same type.

    ``options`` or keyword ``settings`` (any :class:`ScoreOptions` field: ``text_column=``,
    ``top_k=`` (default 3), ``insert=``, ``device=``, ``precision=``, ``chunk_rows=``, ...)
    say how, as for ``score``. ``model`` is a loaded :class:`Model` (reused: nothing is
    loaded again) or what :func:`load` takes. pandas is accepted where installed; it is
    not a dependency.
    """
    if isinstance(model, Model):
        options = ScoreOptions.of(options, settings)
        loaded = model
    else:
        if model is not None:
            settings["model"] = str(model)
        options = ScoreOptions.of(options, settings)
        loaded = load(
            options.model,
            models_dir=options.models_dir,
            device=options.device,
            precision=options.precision,
            batch_size=options.batch_size,
        )
    table, kind = _to_arrow(frame)
    text_col = find_column(table.column_names, options.text_column, "text")
    k = min(options.top_k, loaded.predictor.n_labels)
    schema = output_schema(table.schema, k, options.insert)
    placer = loaded.placer if options.insert else None
    step = options.chunk_rows
    parts = [
        score_table(table.slice(start, step), text_col, loaded.predictor, k, placer)
        for start in range(0, table.num_rows, step)
    ]
    scored = pa.concat_tables(parts) if parts else schema.empty_table()
    return _from_arrow(scored, kind)
