"""``emoji-batch models list``: the bundles that ``--model NAME`` can find."""

import json
from pathlib import Path

import typer

from emoji_batch.bundle import (
    DEFAULT_MODEL,
    MANIFEST,
    POSITION_KIND,
    FoundModel,
    bundle_kind,
    find_models,
    read_manifest,
)
from emoji_batch.cli._options import ModelsDirOption
from emoji_batch.ensemble import is_ensemble
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


def _describe_ensemble(path: Path) -> str:
    """Members, mix and the cross-fitted metrics, read from the manifest alone."""
    manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    members = ", ".join(f"{m['name']} x{m['weight']:g}" for m in manifest.get("members", []))
    metrics = manifest.get("metrics", {})
    return (
        f"ensemble ({manifest.get('mixing')}) of {members}\n"
        f"  macro-F1 {metrics.get('macro_f1')}  accuracy {metrics.get('accuracy')}% "
        f"on {metrics.get('dataset')}"
    )


def _describe_position(path: Path) -> str:
    """What an emoji-position bundle is for, and its accuracy against the best rule."""
    manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    metrics = manifest.get("metrics", {})
    heldout, best = metrics.get("heldout", {}), metrics.get("best_rule")
    return (
        "emoji position (where predict and score --insert put the emoji)\n"
        f"  right gap for {heldout.get('model')}% of {heldout.get('n')} held-out marked "
        f"tweets ({best}: {heldout.get(best)}%)"
    )


@app.command("list")
def list_cli(models_dir: ModelsDirOption = None) -> None:
    """List bundles with architecture, labels and stored validation metrics."""
    found = find_models(models_dir)
    names = [f.name for f in found]
    for bundle in found:
        name, path = bundle.name, bundle.path
        header = _header(bundle, names.count(name) > 1)
        if is_ensemble(path):
            typer.echo(f"{header}\n  {_describe_ensemble(path)}\n  {path}")
            continue
        if bundle_kind(path) == POSITION_KIND:
            typer.echo(f"{header}\n  {_describe_position(path)}\n  {path}")
            continue
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
