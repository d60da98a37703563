"""``emoji-batch score``: append top-k emoji predictions to every row of a file."""

from pathlib import Path
from typing import Annotated

import typer

from emoji_batch.device import DeviceChoice
from emoji_batch.scoring import DEFAULT_CHUNK_ROWS, score_file


def score_cli(
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="Input .csv or .parquet.")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Output file [default: INPUT stem + .scored + suffix]."
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Bundle name or path [default: the shipped default].")
    ] = None,
    models_dir: Annotated[
        Path | None,
        typer.Option(
            envvar="EMOJI_BATCH_MODELS", help="Where named bundles live [default: ./models]."
        ),
    ] = None,
    text_column: Annotated[
        str, typer.Option(help="Text column, matched case-insensitively.")
    ] = "text",
    input_format: Annotated[
        str | None, typer.Option(help="csv or parquet, overriding the suffix.")
    ] = None,
    top_k: Annotated[int, typer.Option(min=1, help="Emoji per row.")] = 3,
    chunk_rows: Annotated[
        int, typer.Option(min=1, help="Rows read per chunk.")
    ] = DEFAULT_CHUNK_ROWS,
    batch_size: Annotated[int, typer.Option(min=1, help="Texts per model call.")] = 256,
    device: Annotated[DeviceChoice, typer.Option(help="auto, cpu or gpu.")] = "auto",
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing OUTPUT.")] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")
    ] = False,
) -> None:
    """Score INPUT and write every row back with emoji_1..K and prob_1..K columns.

    Exit codes: 0 success, 1 runtime failure, 2 bad usage, input or model.
    """
    summary = score_file(
        input_path,
        output,
        model=model,
        models_dir=models_dir,
        text_column=text_column,
        input_format=input_format,
        top_k_labels=top_k,
        chunk_rows=chunk_rows,
        batch_size=batch_size,
        device=device,
        force=force,
        progress=False if quiet else None,
    )
    if not quiet:
        typer.echo(summary.line(), err=True)
