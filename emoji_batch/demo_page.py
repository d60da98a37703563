"""The demo page behind ``emoji-batch app``: type a tweet, see its emoji; score a small file.

A Streamlit script, run top to bottom on every interaction. ``emoji-batch app`` starts it
with its settings after ``--`` (``streamlit run demo_page.py -- --model X --models-dir D``) and
sets the upload bound (``server.maxUploadSize``). ``?text=...`` in the URL fills the tweet
box, so a link can show a prediction. Importing the module only defines the functions.
"""

import argparse
import dataclasses
import html
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import altair as alt
import polars as pl
import streamlit as st

from emoji_batch.bundle import find_models, resolve_model
from emoji_batch.errors import EmojiBatchError, InputError
from emoji_batch.loading import AnyPredictor, load_predictor
from emoji_batch.manifests import POSITION, manifest_kind
from emoji_batch.options import ScoreOptions
from emoji_batch.output import scored_name
from emoji_batch.position import PositionModel, load_position_model
from emoji_batch.scoring import ScoreSummary, score_file
from emoji_batch.tweet import TweetPrediction, predict_tweets

TOP_K = 5
# Emoji per row of a scored file, as `emoji-batch score` gives by default.
FILE_TOP_K = 3
MB = 1024 * 1024
# Rows the page scores at most: a small Parquet file can hold millions of rows
# (dictionary-encoded), which the byte bound alone would let through.
MAX_ROWS = 100_000
UPLOAD_TYPES = ["csv", "parquet", "jsonl"]
MIME = {
    ".csv": "text/csv",
    ".parquet": "application/vnd.apache.parquet",
    ".jsonl": "application/jsonl",
}


@dataclass(frozen=True)
class Settings:
    """What the command line gave the page."""

    model: str | None
    models_dir: Path | None


@dataclass(frozen=True)
class Choice:
    """One entry of the model picker: what it shows and the bundle it loads."""

    label: str
    path: Path


def parse_settings(argv: list[str]) -> Settings:
    """The page's options; Streamlit passes what follows ``--`` as ``sys.argv[1:]``."""
    parser = argparse.ArgumentParser(prog="emoji_batch/demo_page.py")
    parser.add_argument("--model", default=None)
    parser.add_argument("--models-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    return Settings(args.model, args.models_dir)


def scoring_models(models_dir: Path | None) -> list[Choice]:
    """The bundles ``models list`` finds that score tweets: not the position model, which
    only places emoji, nor a bundle whose manifest cannot even be read. Shipped bundles
    show their name; others also their directory, so namesakes stay apart."""
    choices = []
    for found in find_models(models_dir):
        if manifest_kind(found.path) in (None, POSITION):
            continue
        label = found.name if found.shipped else f"{found.name} ({found.path.parent})"
        choices.append(Choice(label, found.path))
    return choices


def picker_choices(settings: Settings) -> tuple[list[Choice], int]:
    """The picker's entries and the index of the one ``--model`` names (the shipped
    default without it); a bundle outside the search directories is added in front."""
    choices = scoring_models(settings.models_dir)
    wanted = resolve_model(settings.model, settings.models_dir).resolve()
    for index, choice in enumerate(choices):
        if choice.path.resolve() == wanted:
            return choices, index
    return [Choice(str(wanted), wanted), *choices], 0


def score_upload(
    name: str,
    data: bytes,
    *,
    model: str,
    models_dir: Path | None,
    text_column: str,
    max_bytes: int,
    max_rows: int = MAX_ROWS,
) -> tuple[bytes, ScoreSummary]:
    """Score an uploaded file (its format from ``name``'s suffix) with ``text_with_emoji``
    inserted; the scored file in the same format, and the summary naming the download.
    Files over ``max_bytes`` or ``max_rows`` are refused before anything is scored."""
    if len(data) > max_bytes:
        raise InputError(
            f"{name} is {len(data) / MB:.1f} MB; the page scores files up to "
            f"{max_bytes / MB:g} MB (use `emoji-batch score` for bigger ones)"
        )
    suffix = Path(name).suffix.lower()
    with tempfile.TemporaryDirectory(prefix="emoji-batch-app-") as tmp:
        # Fixed names inside our own directory: the upload's name never becomes a path.
        source, target = Path(tmp) / f"upload{suffix}", Path(tmp) / f"scored{suffix}"
        source.write_bytes(data)
        rows = _row_count(source, suffix)
        if rows > max_rows:
            raise InputError(
                f"{name} has {rows:,} rows; the page scores files of up to {max_rows:,} rows "
                "(use `emoji-batch score` for bigger ones)"
            )
        try:
            options = ScoreOptions(
                model=model,
                models_dir=models_dir,
                text_column=text_column,
                top_k=FILE_TOP_K,
                insert=True,
            )
            summary = score_file(source, target, options, progress=False)
        except EmojiBatchError as exc:  # it names our temporary file: name the upload
            message = str(exc).replace(str(source), name).replace(str(target), download_name(name))
            raise type(exc)(message.replace(tmp, "")) from exc
        scored = target.read_bytes()
    return scored, dataclasses.replace(summary, output=download_name(name))


def _row_count(path: Path, suffix: str) -> int:
    """Rows of an upload, read from Parquet's footer, or at most its lines for CSV (a
    header, and texts with line breaks, only make the count larger) and JSON lines."""
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(path).metadata.num_rows
        except Exception:  # not Parquet after all: score_file says why
            return 0
    with open(path, "rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


def download_name(name: str) -> str:
    """The download's file name: ``score``'s default OUTPUT name, with the suffix in
    lower case, as the page reads the upload's format and MIME type from it."""
    path = Path(name)
    return scored_name(path.stem + path.suffix.lower())


# --- the page ----------------------------------------------------------------------


@st.cache_resource(show_spinner="Loading the model...")
def _predictor(path: str) -> AnyPredictor:
    return load_predictor(path, None, "auto", None)


@st.cache_resource(show_spinner="Loading the position model...")
def _placer(models_dir: Path | None) -> PositionModel:
    return load_position_model(models_dir)


# Reruns (typing a tweet, clicking download) find the scored file here instead of
# scoring it again; errors are not cached, so they show on every rerun.
@st.cache_data(show_spinner="Scoring...", max_entries=4)
def _scored(
    name: str, data: bytes, model: str, models_dir: Path | None, text_column: str, max_bytes: int
) -> tuple[bytes, ScoreSummary]:
    return score_upload(
        name,
        data,
        model=model,
        models_dir=models_dir,
        text_column=text_column,
        max_bytes=max_bytes,
    )


def show_prediction(prediction: TweetPrediction) -> None:
    """The tweet with its emoji placed, large, and the top emoji as a bar chart."""
    if prediction.error is not None:
        st.warning(f"Not scored: {prediction.error}")
        return
    placed = html.escape(prediction.text_with_emoji or prediction.text or "")
    st.html(f'<p style="font-size:2.2rem;line-height:1.3;margin:0.4rem 0">{placed}</p>')
    top = pl.DataFrame(
        {
            "emoji": [emoji for emoji, _ in prediction.top],
            "probability": [probability for _, probability in prediction.top],
        }
    )
    bars = alt.Chart(top).encode(
        x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        y=alt.Y("emoji:N", sort="-x", title=None, axis=alt.Axis(labelFontSize=24)),
    )
    labels = bars.mark_text(align="left", dx=4, fontSize=14).encode(
        text=alt.Text("probability:Q", format=".1%")
    )
    st.altair_chart(bars.mark_bar() + labels, height=260)


def file_section(choice: Choice, models_dir: Path | None) -> None:
    """Upload a small file, score it with the picked model, download the result."""
    st.subheader("Score a file")
    limit_mb = int(st.get_option("server.maxUploadSize"))
    upload = st.file_uploader(
        f"CSV, Parquet or JSON lines, up to {limit_mb} MB; every row comes back with its "
        f"top {FILE_TOP_K} emoji, probabilities and text_with_emoji",
        type=UPLOAD_TYPES,
        key="upload",
    )
    text_column = st.text_input("Text column", value="text", key="text_column")
    if upload is None:
        return
    try:
        scored, summary = _scored(
            upload.name, upload.getvalue(), str(choice.path), models_dir, text_column, limit_mb * MB
        )
    except EmojiBatchError as exc:
        st.error(str(exc))
        return
    st.success(summary.line())
    suffix = Path(upload.name).suffix.lower()
    st.download_button(
        f"Download {summary.output}",
        scored,
        file_name=summary.output,
        mime=MIME.get(suffix, "application/octet-stream"),
        on_click="ignore",
        key="download",
    )


def main() -> None:
    """The page, top to bottom: model picker, tweet and its emoji, file section."""
    settings = parse_settings(sys.argv[1:])
    st.set_page_config(page_title="emoji-batch", page_icon="🎄")
    st.title("emoji-batch")
    st.write("Type a tweet and see the emoji it would carry, placed where it belongs.")
    try:
        choices, index = picker_choices(settings)
    except EmojiBatchError as exc:
        st.error(str(exc))
        return
    choice = st.selectbox("Model", choices, index=index, format_func=lambda c: c.label, key="model")
    try:
        predictor = _predictor(str(choice.path))
        placer = _placer(settings.models_dir)
    except EmojiBatchError as exc:
        st.error(str(exc))
        return
    text = st.text_input(
        "Tweet",
        value=st.query_params.get("text", ""),
        placeholder="merry christmas everyone",
        key="tweet",
    )
    if text:
        [prediction] = predict_tweets([text], predictor, placer, k=TOP_K)
        show_prediction(prediction)
    st.divider()
    file_section(choice, settings.models_dir)


if __name__ == "__main__":
    main()
