"""``emoji-batch score``: append top-k emoji predictions to every row of a file."""

from typing import Annotated, Literal

import typer

from emoji_batch import logs
from emoji_batch.cli._shared_flags import (
    DebugOption,
    DeviceOption,
    ModelOption,
    ModelsDirOption,
    TextColumnOption,
)
from emoji_batch.errors import FilesFailed, InputError
from emoji_batch.fileio import FileFormat
from emoji_batch.folders import FolderSummary, is_folder, score_folder
from emoji_batch.options import DEFAULT_CHUNK_ROWS, ScoreOptions
from emoji_batch.predictor import BATCH_HELP, PRECISION_HELP, PrecisionChoice
from emoji_batch.scoring import score_file

LogFormatOption = Annotated[
    logs.LogFormat, typer.Option(help="text, or json: one JSON object per event on stderr.")
]


def score_cli(
    # Text, not Path: with --engine spark they may be URIs, which Path would mangle.
    input_path: Annotated[
        str,
        typer.Argument(
            metavar="INPUT",
            help="Input .csv/.parquet/.jsonl (a path or an s3://, gs://, file:// URI), - for "
            "stdin, or a directory, glob or URI prefix of them (scored into -o OUTDIR, only "
            "what is new or changed); with --engine spark any path or URI Spark reads.",
        ),
    ],
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="Output file or URI, or - for stdout; for a folder INPUT (and with --engine "
            "spark) a directory or URI prefix [default: INPUT.scored.SUFFIX].",
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
    insert: Annotated[
        bool,
        typer.Option(
            "--insert",
            help="Add text_with_emoji: the text with its top emoji placed where the position "
            "model expects it.",
        ),
    ] = False,
    chunk_rows: Annotated[
        int, typer.Option(min=1, help="Rows read per chunk.")
    ] = DEFAULT_CHUNK_ROWS,
    batch_size: Annotated[int | None, typer.Option(min=1, help=BATCH_HELP)] = None,
    device: DeviceOption = "auto",
    precision: Annotated[PrecisionChoice, typer.Option(help=PRECISION_HELP)] = "auto",
    force: Annotated[
        bool,
        typer.Option("--force", help="Overwrite an existing OUTPUT; for a folder, rescore all."),
    ] = False,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Keep finished chunks; a rerun continues a killed run."),
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")
    ] = False,
    engine: Annotated[
        Literal["local", "spark"],
        typer.Option(help="local: this process; spark: a Spark job (the spark extra)."),
    ] = "local",
    spark_master: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="Spark master for --engine spark [default: spark-submit's, else local[*]].",
        ),
    ] = None,
    log_format: LogFormatOption = "text",
    debug: DebugOption = False,
) -> None:
    """Score INPUT and write every row back with emoji_1..K, prob_1..K and score_error."""
    logs.configure(log_format, quiet)
    options = ScoreOptions(
        model=model,
        models_dir=models_dir,
        text_column=text_column,
        top_k=top_k,
        insert=insert,
        input_format=input_format,
        output_format=output_format,
        chunk_rows=chunk_rows,
        batch_size=batch_size,
        device=device,
        precision=precision,
    )
    if engine == "spark":
        if resume:
            raise InputError("--resume is for --engine local; Spark reruns failed tasks itself")
        from emoji_batch.spark import score_path

        summary = score_path(
            input_path, output, options, master=spark_master, force=force, spark_logs=debug
        )
    else:
        if spark_master is not None:
            raise InputError("--spark-master needs --engine spark")
        folder = is_folder(input_path)
        if folder and output is None:
            raise InputError(
                f"input {input_path} is a directory, glob or URI prefix: to score every "
                "file in it, name OUTDIR with -o"
            )
        run = score_folder if folder else score_file
        summary = run(
            input_path,
            output,
            options,
            force=force,
            resume=resume,
            progress=False if quiet else None,
        )
    logs.emit("summary", summary.line(), **summary.fields())
    if isinstance(summary, FolderSummary) and summary.failed:
        total = len(summary.failed) + len(summary.scored) + len(summary.unchanged)
        names = ", ".join(summary.failed)
        raise FilesFailed(f"{len(summary.failed)} of {total} files failed: {names}")
