"""``emoji-batch models list``: the bundles that ``--model NAME`` can find."""

from pathlib import Path
from typing import Annotated

import typer

from emoji_batch.bundle import DEFAULT_MODEL, available_models, read_manifest
from emoji_batch.errors import ModelError

app = typer.Typer(help="Inspect available model bundles.", no_args_is_help=True)


@app.command("list")
def list_cli(
    models_dir: Annotated[
        Path | None,
        typer.Option(
            envvar="EMOJI_BATCH_MODELS", help="Where named bundles live [default: ./models]."
        ),
    ] = None,
) -> None:
    """List bundles with architecture, labels and stored validation metrics."""
    for name, path in available_models(models_dir).items():
        try:
            m = read_manifest(path)
        except ModelError as exc:
            typer.echo(f"{name}  (unusable: {exc})")
            continue
        metrics = m.metrics
        score = (
            f"macro-F1 {metrics['macro_f1']}  accuracy {metrics['accuracy']}%"
            f" on {metrics['dataset']}"
            if "macro_f1" in metrics
            else "no stored metrics"
        )
        default = "  [default]" if name == DEFAULT_MODEL else ""
        emoji = "".join(label.emoji for label in m.labels)
        typer.echo(f"{name}{default}\n  {m.architecture}, {len(m.labels)} labels {emoji}")
        typer.echo(f"  {score}")
        for precision, check in (m.precisions or {}).items():
            typer.echo(
                f"  {precision}: top-1 agreement {100 * check['top1_agreement']:.2f}% with "
                f"fp32, macro-F1 {check['macro_f1']}, {check['tweets_per_second']:,.0f} vs "
                f"{check['fp32_tweets_per_second']:,.0f} tweets/s on {check['dataset']}"
            )
        typer.echo(f"  {path}")
