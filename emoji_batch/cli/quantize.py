"""``emoji-batch quantize``: add a checked int8 copy of a model for fast CPU scoring."""

from pathlib import Path
from typing import Annotated

import typer

from emoji_batch.bundle import resolve_model
from emoji_batch.quantize import quantize_bundle


def quantize_cli(
    model: Annotated[str, typer.Argument(help="Bundle name or path; the int8 copy goes in it.")],
    data: Annotated[Path, typer.Option(help="Labelled CSV/Parquet to check it on, e.g. Val.csv.")],
    models_dir: Annotated[
        Path | None,
        typer.Option(envvar="EMOJI_BATCH_MODELS", help="Where named bundles live."),
    ] = None,
    text_column: Annotated[str, typer.Option()] = "text",
    label_column: Annotated[str, typer.Option()] = "label",
    batch_size: Annotated[int, typer.Option(min=1)] = 256,
) -> None:
    """Write model.int8.tflite into the bundle if it matches fp32 on DATA.

    Rows whose two best emoji are nearly tied fall back to fp32; the margin is fitted on
    DATA so that the top-1 emoji agrees with fp32 on 99.5% of rows. The copy is refused
    (exit 1, nothing written) if agreement is under 99%, macro-F1 moves by more than
    0.3 points, or over a quarter of rows would fall back.
    """
    report = quantize_bundle(
        resolve_model(model, models_dir),
        data,
        text_column=text_column,
        label_column=label_column,
        batch_size=batch_size,
    )
    typer.echo(report.line())
