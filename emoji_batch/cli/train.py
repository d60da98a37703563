"""``emoji-batch train``: fit an architecture and write a model bundle."""

import json
import time
from pathlib import Path
from typing import Annotated, Any, Literal

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


# The options ``train emoji_position`` reads; it learns from marker positions, not labels.
POSITION_OPTIONS = {"architecture", "data", "output", "val", "text_column", "seed", "force"}


def refuse_other_options(ctx: typer.Context, allowed: set[str], architecture: str) -> None:
    """Refuse options given on the command line that ``architecture``'s trainer ignores."""
    from emoji_batch.errors import InputError

    # Typer bundles its own click, so the ParameterSource enum is compared by name.
    given = [
        param.opts[0]
        for param in ctx.command.params
        if param.name not in allowed
        and getattr(ctx.get_parameter_source(param.name or ""), "name", "DEFAULT") != "DEFAULT"
    ]
    if given:
        raise InputError(f"{', '.join(given)}: not an option of train {architecture}")


def _train_position(
    ctx: typer.Context,
    data: list[Path],
    output: Path,
    val: Path | None,
    text_column: str,
    seed: int,
    force: bool,
) -> None:
    """Fit the emoji-position model; refuse options given for the emoji classifiers."""
    from emoji_batch.bundle import check_new_bundle_dir
    from emoji_batch.cli import invoked_command
    from emoji_batch.position import KIND
    from emoji_batch.position_fit import fit_position_model, format_metrics

    refuse_other_options(ctx, POSITION_OPTIONS, KIND)
    check_new_bundle_dir(output, force)
    start = time.perf_counter()
    model, metrics = fit_position_model(data, val, text_column=text_column, seed=seed)
    model.manifest["command"] = invoked_command()
    model.save(output)
    typer.echo(format_metrics(metrics))
    typer.echo(f"bundle written to {output} in {time.perf_counter() - start:.0f} s", err=True)


def train_cli(
    ctx: typer.Context,
    architecture: Annotated[
        str, typer.Argument(metavar="ARCHITECTURE", help="Architecture name, e.g. glove_bilstm.")
    ],
    data: Annotated[
        list[Path],
        typer.Option(help="Labelled training CSV/Parquet; repeat to concatenate several files."),
    ],
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
    class_weight: Annotated[
        Literal["none", "balanced"], typer.Option(help="Weight each label by its rarity.")
    ] = "none",
    labels: Annotated[
        str, typer.Option(help="all, or topN: only the N most frequent labels (e.g. top9).")
    ] = "all",
    balance: Annotated[
        Literal["none", "downsample"],
        typer.Option(help="downsample: every label cut to the rarest one's count."),
    ] = "none",
    batch_size: Annotated[int, typer.Option(min=1, help="Tweets per training step.")] = 64,
    max_epochs: Annotated[int | None, typer.Option(min=1, help="Cap epochs per phase.")] = None,
    patience: Annotated[int, typer.Option(min=0, help="Early-stopping patience.")] = 2,
    max_length: Annotated[int | None, typer.Option(min=1, help="Max tokens per tweet.")] = None,
    min_count: Annotated[
        int, typer.Option(min=1, help="Keep words seen this often (GloVe words always).")
    ] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the split, sampling and weights.")] = 13,
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
    label_smoothing: Annotated[
        float, typer.Option(min=0, max=1, help="Share of each target spread over all labels.")
    ] = 0.0,
    monitor: Annotated[
        Literal["val_loss", "val_macro_f1"],
        typer.Option(help="What early stopping and the best epoch follow."),
    ] = "val_loss",
    weights_dtype: Annotated[
        Literal["float32", "float16"],
        typer.Option(help="float16 halves the bundle; its metrics are the rounded model's."),
    ] = "float32",
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the per-epoch checkpoints.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite OUTPUT.")] = False,
) -> None:
    """Train ARCHITECTURE; writes the bundle, history.json, curves.png and an evaluation.

    ARCHITECTURE emoji_position instead fits where the emoji goes in a tweet, from the
    U+FE0F markers of --data's tweets (only --val, --text-column and --seed apply).
    ngram_svm is solved in one go, without epochs or TensorFlow: --val is required (its
    calibration is fitted there) and the options of epoch training are refused.
    """
    from emoji_batch.position import KIND

    if architecture == KIND:
        _train_position(ctx, data, output, val, text_column, seed, force)
        return
    from emoji_batch.architectures import get_architecture
    from emoji_batch.cli import invoked_command
    from emoji_batch.extras import require
    from emoji_batch.train_config import TrainConfig

    require(f"train {get_architecture(architecture).name}")
    if get_architecture(architecture).trainer == "convex":
        from emoji_batch.train_linear import OPTIONS, train_linear

        refuse_other_options(ctx, OPTIONS, architecture)
        trainer = train_linear
    else:
        from emoji_batch.train import train as trainer

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
        class_weight=class_weight,
        labels=labels,
        balance=balance,
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
        monitor=monitor,
        weights_dtype=weights_dtype,
        command=invoked_command(),
        force=force,
        resume=resume,
    )
    result = trainer(config)
    typer.echo(result.report.table())
    typer.echo(f"bundle written to {result.output} in {result.seconds:.0f} s", err=True)
