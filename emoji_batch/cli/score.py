"""``emoji-batch score``: append top-k emoji predictions to every row of a file."""

from pathlib import Path
from typing import Annotated

import typer

from emoji_batch import logs
from emoji_batch.cli._options import DeviceOption, ModelOption, ModelsDirOption, TextColumnOption
from emoji_batch.fileio import FileFormat
from emoji_batch.predict import BATCH_HELP, PRECISION_HELP, PrecisionChoice
from emoji_batch.scoring import DEFAULT_CHUNK_ROWS, score_file

LogFormatOption = Annotated[
    logs.LogFormat, typer.Option(help="text, or json: one JSON object per event on stderr.")
]
DebugOption = Annotated[bool, typer.Option("--debug", help="Print tracebacks of errors.")]


def score_cli(
    input_path: Annotated[
        Path, typer.Argument(metavar="INPUT", help="Input .csv/.parquet/.jsonl, or - for stdin.")
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Output file, or - for stdout [default: INPUT.scored.SUFFIX]."
        ),
    ] = None,
    model: ModelOption = None,
    models_dir: ModelsDirOption = None,
    text_column: TextColumnOption = "text",
    input_format: Annotated[
        FileFormat | None, typer.Option(help="Format of INPUT, overriding its suffix.")
    ] = None,
    output_format: Annotated[
        FileFormat | None,
        typer.Option(
            help="Format of OUTPUT, overriding its suffix; stdout and the default OUTPUT "
            "take INPUT's format."
        ),
    ] = None,
    top_k: Annotated[int, typer.Option(min=1, help="Emoji per row.")] = 3,
    chunk_rows: Annotated[
        int, typer.Option(min=1, help="Rows read per chunk.")
    ] = DEFAULT_CHUNK_ROWS,
    batch_size: Annotated[int | None, typer.Option(min=1, help=BATCH_HELP)] = None,
    device: DeviceOption = "auto",
    precision: Annotated[PrecisionChoice, typer.Option(help=PRECISION_HELP)] = "auto",
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing OUTPUT.")] = False,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Keep finished chunks; a rerun continues a killed run."),
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")
    ] = False,
    log_format: LogFormatOption = "text",
    debug: DebugOption = False,
) -> None:
    """Score INPUT and write every row back with emoji_1..K, prob_1..K and score_error."""
    logs.configure(log_format, quiet)
    summary = score_file(
        input_path,
        output,
        model=model,
        models_dir=models_dir,
        text_column=text_column,
        input_format=input_format,
        output_format=output_format,
        top_k_labels=top_k,
        chunk_rows=chunk_rows,
        batch_size=batch_size,
        device=device,
        precision=precision,
        force=force,
        resume=resume,
        progress=False if quiet else None,
    )
    logs.emit("summary", summary.line(), **summary.fields())
