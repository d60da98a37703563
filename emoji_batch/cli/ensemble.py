"""``emoji-batch ensemble``: mix several bundles into one ensemble bundle."""

from pathlib import Path
from typing import Annotated

import typer

from emoji_batch.bundle import resolve_model
from emoji_batch.cli._shared_flags import (
    LabelColumnOption,
    ModelsDirOption,
    TextColumnOption,
)
from emoji_batch.predictor import PrecisionChoice


def ensemble_cli(
    members: Annotated[
        list[str],
        typer.Argument(metavar="MEMBER", help="Two or more bundle directories or names."),
    ],
    data: Annotated[
        Path, typer.Option(help="Labelled CSV/Parquet to fit the mix on, e.g. Val.csv.")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Ensemble bundle directory to write.")
    ],
    models_dir: ModelsDirOption = None,
    text_column: TextColumnOption = "text",
    label_column: LabelColumnOption = "label",
    seed: Annotated[int, typer.Option(help="Seed of the two-fold split.")] = 13,
    precision: Annotated[
        PrecisionChoice,
        typer.Option(help="Each member's precision while fitting [default: what score runs]."),
    ] = "auto",
    force: Annotated[bool, typer.Option("--force", help="Overwrite OUTPUT.")] = False,
) -> None:
    """Fit how to mix the MEMBERs' probabilities on DATA and write an ensemble bundle.

    Per-member weights, log-linear or linear mixing and a prior power are chosen for
    macro-F1. The reported metrics are cross-fitted (each half of DATA scored with the
    mix fitted on the other half); the stored mix is fitted on all of DATA. The bundle
    names its members by relative path and content hash: `score`, `evaluate` and
    `models list` treat it as one model and refuse it if a member changes.
    """
    from emoji_batch.cli import invoked_command
    from emoji_batch.ensemble_fit import fit_ensemble

    result = fit_ensemble(
        [resolve_model(member, models_dir) for member in members],
        data,
        output,
        text_column=text_column,
        label_column=label_column,
        seed=seed,
        precision=precision,
        command=invoked_command(),
        force=force,
    )
    for name, f1 in result.member_reports.items():
        typer.echo(f"{name}: macro-F1 {f1:.2f} alone")
    typer.echo(result.report.table())
    typer.echo(f"ensemble written to {result.output}", err=True)
