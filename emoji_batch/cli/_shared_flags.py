"""Flags that several commands share, so that they read the same in every ``--help``
(the options of a scoring run itself are `emoji_batch.options.ScoreOptions`)."""

from pathlib import Path
from typing import Annotated

import typer

from emoji_batch.bundle import DEFAULT_MODEL, MODELS_ENV
from emoji_batch.device import DeviceChoice

ModelOption = Annotated[
    str | None,
    typer.Option(
        metavar="<name|path>",
        help="Bundle directory, or a name in --models-dir or among the shipped bundles "
        f"[default: the shipped {DEFAULT_MODEL}].",
    ),
]
ModelsDirOption = Annotated[
    Path | None,
    typer.Option(
        envvar=MODELS_ENV, help="Where bundle names are looked up first [default: ./models]."
    ),
]
DeviceOption = Annotated[
    DeviceChoice, typer.Option(help="Where the model runs; auto takes a GPU if there is one.")
]
TextColumnOption = Annotated[str, typer.Option(help="Text column, matched case-insensitively.")]
LabelColumnOption = Annotated[str, typer.Option(help="Label id column, matched likewise.")]
DebugOption = Annotated[
    bool, typer.Option("--debug", help="Print the traceback of an error with its message.")
]
