"""``emoji-batch models list``: the bundles that ``--model NAME`` can find."""

import typer

from emoji_batch.bundle import DEFAULT_MODEL, FoundModel, find_models, read_manifest
from emoji_batch.cli._options import ModelsDirOption
from emoji_batch.errors import ModelError

app = typer.Typer(help="Inspect available model bundles.", no_args_is_help=True)


def _header(bundle: FoundModel, clash: bool) -> str:
    """The bundle's name, marked if it is the default or shares its name with another."""
    tags = ["default"] if bundle.shipped and bundle.name == DEFAULT_MODEL else []
    if bundle.shadowed:
        tags.append(f"shadowed: --model {bundle.name} finds the one above")
    elif clash:
        tags.append("shadows the shipped bundle of this name")
    return f"{bundle.name}  [{'; '.join(tags)}]" if tags else bundle.name


@app.command("list")
def list_cli(models_dir: ModelsDirOption = None) -> None:
    """List bundles with architecture, labels and stored validation metrics."""
    found = find_models(models_dir)
    names = [f.name for f in found]
    for bundle in found:
        name, path = bundle.name, bundle.path
        header = _header(bundle, names.count(name) > 1)
        try:
            m = read_manifest(path)
        except ModelError as exc:
            typer.echo(f"{header}  (unusable: {exc})")
            continue
        metrics = m.metrics
        score = (
            f"macro-F1 {metrics['macro_f1']}  accuracy {metrics['accuracy']}%"
            f" on {metrics['dataset']}"
            if "macro_f1" in metrics
            else "no stored metrics"
        )
        emoji = "".join(label.emoji for label in m.labels)
        typer.echo(f"{header}\n  {m.architecture}, {len(m.labels)} labels {emoji}")
        typer.echo(f"  {score}")
        for precision, check in (m.precisions or {}).items():
            typer.echo(
                f"  {precision}: top-1 agreement {100 * check['top1_agreement']:.2f}% with "
                f"fp32, macro-F1 {check['macro_f1']}, {check['tweets_per_second']:,.0f} vs "
                f"{check['fp32_tweets_per_second']:,.0f} tweets/s on {check['dataset']}"
            )
        typer.echo(f"  {path}")
