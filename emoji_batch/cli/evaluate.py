"""``emoji-batch evaluate``: score a labelled file and report accuracy and macro-F1."""

from pathlib import Path
from typing import Annotated

import typer

from emoji_batch.cli._shared_flags import (
    DeviceOption,
    LabelColumnOption,
    ModelOption,
    ModelsDirOption,
    TextColumnOption,
)
from emoji_batch.evaluate import evaluate_file
from emoji_batch.predictor import BATCH_HELP, PRECISION_HELP, PrecisionChoice


def evaluate_cli(
    # Text, not Path: it may be a URI, which Path would mangle.
    data: Annotated[
        str, typer.Option(help="Labelled CSV/Parquet (text + label id): a path or a URI.")
    ],
    model: ModelOption = None,
    models_dir: ModelsDirOption = None,
    report_dir: Annotated[
        Path | None, typer.Option(help="Write metrics.json, report.txt, confusion.png here.")
    ] = None,
    text_column: TextColumnOption = "text",
    label_column: LabelColumnOption = "label",
    device: DeviceOption = "auto",
    batch_size: Annotated[int | None, typer.Option(min=1, help=BATCH_HELP)] = None,
    precision: Annotated[PrecisionChoice, typer.Option(help=PRECISION_HELP)] = "auto",
    record: Annotated[
        bool,
        typer.Option(
            "--record",
            help="Also store the summary in the bundle's manifest (metrics.evaluated.DATA).",
        ),
    ] = False,
) -> None:
    """Evaluate a model on labelled data: accuracy, macro-F1, per-class scores."""
    report = evaluate_file(
        data,
        record=record,
        model=model,
        models_dir=models_dir,
        report_dir=report_dir,
        text_column=text_column,
        label_column=label_column,
        device=device,
        batch_size=batch_size,
        precision=precision,
    )
    typer.echo(report.table())
    if report_dir is not None:
        typer.echo(f"report written to {report_dir}", err=True)
