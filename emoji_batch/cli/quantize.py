"""``emoji-batch quantize``: check reduced precisions of a model for fast CPU scoring."""

from pathlib import Path
from typing import Annotated

import typer

from emoji_batch.bundle import resolve_model
from emoji_batch.cli._shared_flags import (
    LabelColumnOption,
    ModelsDirOption,
    TextColumnOption,
)
from emoji_batch.errors import InputError, QuantizationRejected
from emoji_batch.predictor import BATCH_HELP, REDUCED
from emoji_batch.quantize import MAX_F1_CHANGE, quantize_bundle, recheck_precisions


def quantize_cli(
    model: Annotated[
        str,
        typer.Argument(
            metavar="MODEL", help="Bundle directory or name; the int8 copy is written into it."
        ),
    ],
    data: Annotated[Path, typer.Option(help="Labelled CSV/Parquet to check it on, e.g. Val.csv.")],
    models_dir: ModelsDirOption = None,
    text_column: TextColumnOption = "text",
    label_column: LabelColumnOption = "label",
    batch_size: Annotated[int | None, typer.Option(min=1, help=BATCH_HELP)] = None,
    precision: Annotated[
        list[str] | None,
        typer.Option(
            metavar="<int8|bf16>", help="Check only this one (repeatable) [default: both]."
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Re-run the recorded precisions' check on this CPU; write nothing.",
        ),
    ] = False,
) -> None:
    """Check int8 and bf16 against fp32 on DATA and record those that pass in the bundle.

    int8 writes model.int8.tflite; bf16 needs no file. Rows whose two best emoji are
    nearly tied fall back to fp32; the margin is fitted on DATA so that the top-1 emoji
    agrees with fp32 on 99.5% of rows. A precision is refused (nothing recorded) if
    agreement is under 99%, macro-F1 moves by more than 0.3 points, or over a quarter
    of rows would fall back; exit 1 if none passes. `score --precision auto` then takes
    the fastest recorded one on the CPU.

    --check re-runs that rule for the recorded precisions with their recorded margins on
    this machine (reduced-precision decimals differ by CPU); exit 1 if one fails.
    """
    directory = resolve_model(model, models_dir)
    from emoji_batch.ensemble import NOT_QUANTIZED, is_ensemble

    if is_ensemble(directory):
        raise InputError(f"{directory} is an ensemble; {NOT_QUANTIZED}")
    if check:
        if precision:
            raise InputError("--check re-checks every recorded precision; drop --precision")
        checked = recheck_precisions(
            directory,
            data,
            text_column=text_column,
            label_column=label_column,
            batch_size=batch_size,
        )
        if not checked:
            raise InputError(f"{directory} records no reduced precision to check")
        for report in checked:
            typer.echo(f"{report.line()}: {'passes' if report.accepted else 'FAILS'}")
        failed = [r.precision for r in checked if not r.accepted]
        if failed:
            raise QuantizationRejected(
                f"{', '.join(failed)} fails its check on this CPU (agreement, macro-F1 within "
                f"{MAX_F1_CHANGE}, fallback share); run it in fp32 or quantize it again here"
            )
        return
    for name in precision or []:
        if name not in REDUCED:
            raise InputError(f"--precision {name!r}: choose from {', '.join(REDUCED)}")
    reports = quantize_bundle(
        directory,
        data,
        precisions=tuple(precision or REDUCED),  # type: ignore[arg-type]
        text_column=text_column,
        label_column=label_column,
        batch_size=batch_size,
    )
    for report in reports:
        typer.echo(report.line())
