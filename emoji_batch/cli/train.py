"""``emoji-batch train``: fit an architecture and write a model bundle."""

import json
from pathlib import Path
from typing import Annotated, Any

import typer


def parse_settings(items: list[str]) -> dict[str, Any]:
    """``["units=8", "dropout=0.2"]`` -> ``{"units": 8, "dropout": 0.2}``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--set")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def train_cli(
    architecture: Annotated[str, typer.Argument(help="Architecture name, e.g. glove_bilstm.")],
    data: Annotated[Path, typer.Option(help="Labelled training CSV/Parquet.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Bundle directory to write.")],
    val: Annotated[
        Path | None, typer.Option(help="Validation file (else a held-out split).")
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option(help="Kaggle Mapping.csv: label id -> emoji.")
    ] = None,
    embeddings: Annotated[Path | None, typer.Option(help="GloVe text file (GloVe family).")] = None,
    encoder: Annotated[
        str | None,
        typer.Option(help="BERT directory or hub name (BERT family) [default: packaged MiniLM]."),
    ] = None,
    text_column: Annotated[str, typer.Option(help="Text column (case-insensitive).")] = "text",
    label_column: Annotated[str, typer.Option(help="Label id column.")] = "label",
    class_weight: Annotated[str, typer.Option(help="none or balanced.")] = "none",
    labels: Annotated[
        str, typer.Option(help="all, or topN: only the N most frequent labels (e.g. top9).")
    ] = "all",
    balance: Annotated[
        str, typer.Option(help="none, or downsample: every label cut to the rarest one's count.")
    ] = "none",
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
    max_epochs: Annotated[int | None, typer.Option(min=1, help="Cap epochs per phase.")] = None,
    patience: Annotated[int, typer.Option(min=0, help="Early-stopping patience.")] = 2,
    max_length: Annotated[int | None, typer.Option(min=1, help="Max tokens per tweet.")] = None,
    min_count: Annotated[
        int, typer.Option(min=1, help="Keep words seen this often (GloVe words always).")
    ] = 2,
    seed: Annotated[int, typer.Option()] = 13,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Architecture setting KEY=VALUE (JSON value), repeatable."),
    ] = None,
    learning_rate: Annotated[
        float | None,
        typer.Option(min=0, help="Peak learning rate of the last (fine-tuning) phase."),
    ] = None,
    warmup: Annotated[
        float, typer.Option(min=0, max=1, help="Share of each phase's steps warming up.")
    ] = 0.0,
    decay: Annotated[
        bool | None,
        typer.Option(
            "--decay/--no-decay",
            help="Decay the learning rate linearly to 0 [default: per architecture].",
        ),
    ] = None,
    label_smoothing: Annotated[float, typer.Option(min=0, max=1)] = 0.0,
    monitor: Annotated[
        str, typer.Option(help="Early stopping watches val_loss or val_macro_f1.")
    ] = "val_loss",
    weights_dtype: Annotated[
        str, typer.Option(help="float32, or float16 (half the size; metrics as rounded).")
    ] = "float32",
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the per-epoch checkpoints.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite OUTPUT.")] = False,
) -> None:
    """Train ARCHITECTURE; writes the bundle, history.json, curves.png and an evaluation."""
    from emoji_batch.cli import invoked_command
    from emoji_batch.train import TrainConfig, train

    if class_weight not in ("none", "balanced"):
        raise typer.BadParameter("use none or balanced", param_hint="--class-weight")
    if balance not in ("none", "downsample"):
        raise typer.BadParameter("use none or downsample", param_hint="--balance")
    if monitor not in ("val_loss", "val_macro_f1"):
        raise typer.BadParameter("use val_loss or val_macro_f1", param_hint="--monitor")
    if weights_dtype not in ("float32", "float16"):
        raise typer.BadParameter("use float32 or float16", param_hint="--weights-dtype")
    config = TrainConfig(
        architecture=architecture,
        data=data,
        output=output,
        embeddings=embeddings,
        encoder=encoder,
        val=val,
        mapping=mapping,
        text_column=text_column,
        label_column=label_column,
        class_weight=class_weight,  # type: ignore[arg-type]
        labels=labels,
        balance=balance,  # type: ignore[arg-type]
        batch_size=batch_size,
        max_epochs=max_epochs,
        patience=patience,
        max_length=max_length,
        min_count=min_count,
        seed=seed,
        overrides=parse_settings(set_ or []),
        learning_rate=learning_rate,
        warmup=warmup,
        linear_decay=decay,
        label_smoothing=label_smoothing,
        monitor=monitor,  # type: ignore[arg-type]
        weights_dtype=weights_dtype,  # type: ignore[arg-type]
        command=invoked_command(),
        force=force,
        resume=resume,
    )
    result = train(config)
    typer.echo(result.report.table())
    typer.echo(f"bundle written to {result.output} in {result.seconds:.0f} s", err=True)
