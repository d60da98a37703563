"""The Python API: load a model once, then predict texts or score in-memory frames.

What the CLI does, callable from an Airflow/Dagster task or a notebook without files:
:func:`load` returns a :class:`Model` (a single bundle or an ensemble alike);
:func:`score_frame` appends exactly the columns ``score`` writes to a polars DataFrame,
a pandas DataFrame or a pyarrow Table, and returns the same type.
"""

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa

from emoji_batch.device import DeviceChoice
from emoji_batch.errors import InputError
from emoji_batch.fileio import check_unique_names, find_column
from emoji_batch.labels import Label
from emoji_batch.loading import AnyPredictor, load_predictor
from emoji_batch.options import ScoreOptions
from emoji_batch.position import PositionModel, load_position_model
from emoji_batch.predictor import PrecisionChoice
from emoji_batch.scoring import (
    finish_chunk,
    output_schema,
    prepare_chunk,
    python_texts,
    score_table,
)
from emoji_batch.tweet import TEXT, TweetPrediction, check_texts, predict_tweets, prepare_texts

Frame = TypeVar("Frame")


@dataclass
class Model:
    """A loaded model, reused across calls (loading is the slow part)."""

    predictor: AnyPredictor
    models_dir: Path | None = None
    _placer: PositionModel | None = None

    @property
    def name(self) -> str:
        return self.predictor.name

    @property
    def labels(self) -> list[Label]:
        return list(self.predictor.labels)

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
        self, texts: Sequence[object], top_k: int = 5, insert: bool = True
    ) -> list[TweetPrediction]:
        """Each text's top-``top_k`` emoji with probabilities, the text with its top emoji
        placed (``insert``), or ``error``: why it cannot be scored (as ``score_error``:
        None and NaN are ``missing text``, a number or bytes ``text is int, not a
        string``). ``texts`` is a sequence: a bare ``str`` is refused with a TypeError
        (``predict(["one tweet"])`` scores one)."""
        check_texts(texts)
        if top_k < 1:
            raise InputError("top_k must be at least 1")
        k = min(top_k, self.predictor.n_labels)
        return predict_tweets(texts, self.predictor, self.placer if insert else None, k)

    def predict_proba(self, texts: Sequence[object]) -> np.ndarray:
        """Probabilities, one row per text and one column per label (``labels`` order);
        a text that cannot be scored (``predict`` says why) gets a row of NaN. A bare
        ``str`` is refused with a TypeError, as by ``predict``."""
        chunk = prepare_texts(texts, self.predictor)
        out = np.full((len(chunk.ok), self.predictor.n_labels), np.nan, dtype=np.float32)
        out[chunk.ok] = self.predictor.predict_encoded(chunk.encoded)
        return out


def load(
    model: str | os.PathLike[str] | None = None,
    *,
    models_dir: str | os.PathLike[str] | None = None,
    device: DeviceChoice = "auto",
    precision: PrecisionChoice = "auto",
    batch_size: int | None = None,
) -> Model:
    """The model ``score --model`` would use: a bundle or ensemble name or path, or None
    for the shipped default; ``device`` and ``precision`` as on the command line."""
    name = None if model is None else os.fspath(model)
    where = None if models_dir is None else Path(models_dir)
    return Model(load_predictor(name, where, device, batch_size, precision), where)


# Options that say how a model is loaded: a loaded Model has settled them.
_LOAD_OPTIONS = ("model", "models_dir", "device", "precision", "batch_size")


def _check_load_options(model: "Model", options: ScoreOptions) -> None:
    """Refuse loading options that a loaded ``model`` does not already satisfy, rather
    than ignore them."""
    defaults = ScoreOptions()
    conflicts = [
        f"{name}={getattr(options, name)!r}"
        for name in _LOAD_OPTIONS
        if getattr(options, name) != getattr(defaults, name)
        and not (name == "precision" and options.precision == model.precision)
        and not (name == "device" and f"/{options.device.upper()}:0" == model.device)
    ]
    if conflicts:
        raise InputError(
            f"{', '.join(conflicts)}: the model is already loaded ({model.name}, "
            f"{model.precision} on {model.device}); pass these to emoji_batch.load instead"
        )


def _pandas_text_table(frame: Any, text_col: Any) -> tuple[pa.Table, tuple[list, list]]:
    """The text column of a pandas frame alone, as Arrow, and each row's text and reason
    (an object column may mix str with NaN, numbers or bytes: those rows get a reason)."""
    row_texts = python_texts(frame[text_col].tolist())
    return pa.table({TEXT: pa.array(row_texts[0], pa.string())}), row_texts


def _score_pandas(
    frame: Any, options: ScoreOptions, loaded: "Model", k: int, placer: PositionModel | None
) -> Any:
    """A pandas frame with the scored columns appended by position, so its index, index
    name, column labels (an integer ``0`` too) and column types are those given."""
    labels = list(frame.columns)
    if len(set(labels)) != len(labels):
        raise InputError("the frame has duplicate column names; rename them first")
    text_col = find_column([c for c in labels if isinstance(c, str)], options.text_column, "text")
    output_schema(pa.schema([pa.field(str(c), pa.null()) for c in labels]), k, options.insert)
    text_table, (texts, errors) = _pandas_text_table(frame, text_col)
    step = options.chunk_rows
    parts = [
        finish_chunk(
            prepare_chunk(
                text_table.slice(start, step),
                TEXT,
                loaded.predictor,
                (texts[start : start + step], errors[start : start + step]),
            ),
            loaded.predictor,
            k,
            placer,
        ).drop_columns([TEXT])
        for start in range(0, len(texts), step)
    ]
    added = output_schema(pa.schema([]), k, options.insert)
    scored = pa.concat_tables(parts) if parts else added.empty_table()
    out = frame.copy()
    for name in added.names:
        out[name] = scored.column(name).to_pandas().to_numpy()
    return out


def _table_kind(frame: Any) -> str:
    if isinstance(frame, pa.Table):
        return "arrow"
    kind = type(frame).__module__.split(".")[0]
    if kind in ("polars", "pandas") and type(frame).__name__ == "DataFrame":
        return kind
    raise InputError(
        f"score_frame takes a polars or pandas DataFrame or a pyarrow Table, not {type(frame)}"
    )


def score_frame(
    frame: Frame,
    options: ScoreOptions | None = None,
    *,
    model: "str | os.PathLike[str] | Model | None" = None,
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
    kind = _table_kind(frame)
    if isinstance(model, Model):
        options = ScoreOptions.of(options, settings)
        _check_load_options(model, options)
        loaded = model
    else:
        if model is not None:
            settings["model"] = os.fspath(model)
        options = ScoreOptions.of(options, settings)
        loaded = load(
            options.model,
            models_dir=options.models_dir,
            device=options.device,
            precision=options.precision,
            batch_size=options.batch_size,
        )
    k = min(options.top_k, loaded.predictor.n_labels)
    placer = loaded.placer if options.insert else None
    if kind == "pandas":
        return _score_pandas(frame, options, loaded, k, placer)  # type: ignore[return-value]
    table = frame if kind == "arrow" else frame.to_arrow()  # type: ignore[attr-defined]
    check_unique_names(table.column_names)
    text_col = find_column(table.column_names, options.text_column, "text")
    schema = output_schema(table.schema, k, options.insert)
    step = options.chunk_rows
    parts = [
        score_table(table.slice(start, step), text_col, loaded.predictor, k, placer)
        for start in range(0, table.num_rows, step)
    ]
    scored = pa.concat_tables(parts) if parts else schema.empty_table()
    if kind == "polars":
        import polars as pl

        return pl.from_arrow(scored)  # type: ignore[return-value]
    return scored  # type: ignore[return-value]
