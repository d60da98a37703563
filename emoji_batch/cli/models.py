"""``emoji-batch models list``: the bundles that ``--model NAME`` can find."""

from pathlib import Path
from typing import Any

import typer

from emoji_batch.bundle import (
    DEFAULT_MODEL,
    FoundModel,
    find_models,
    read_manifest,
)
from emoji_batch.cli._shared_flags import ModelsDirOption
from emoji_batch.ensemble import is_ensemble
from emoji_batch.errors import ModelError
from emoji_batch.manifests import MANIFEST, POSITION, manifest_kind, read_json_object

app = typer.Typer(help="Inspect available model bundles.", no_args_is_help=True)


def _header(bundle: FoundModel, clash: bool) -> str:
    """The bundle's name, marked if it is the default or shares its name with another."""
    tags = ["default"] if bundle.shipped and bundle.name == DEFAULT_MODEL else []
    if bundle.shadowed:
        tags.append(f"shadowed: --model {bundle.name} finds the one above")
    elif clash:
        tags.append("shadows the shipped bundle of this name")
    return f"{bundle.name}  [{'; '.join(tags)}]" if tags else bundle.name


def _manifest(path: Path) -> dict[str, Any]:
    return read_json_object(path / MANIFEST)


def _describe_ensemble(path: Path) -> list[str]:
    """Members, mix and the cross-fitted metrics, read from the manifest; raises
    ModelError if a member is missing (checking their hashes would read every weight)."""
    manifest = _manifest(path)
    specs = manifest["members"]
    for number, spec in enumerate(specs, start=1):
        missing = [key for key in ("name", "path", "weight") if key not in spec]
        if missing:
            raise ModelError(f"member {number} has no {' or '.join(missing)} in {MANIFEST}")
        if not (path / spec["path"] / MANIFEST).is_file():
            raise ModelError(
                f"member {spec['path']} is missing ({(path / spec['path']).resolve()})"
            )
    members = ", ".join(f"{m['name']} x{float(m['weight']):g}" for m in specs)
    metrics = manifest.get("metrics", {})
    return [
        f"ensemble ({manifest.get('mixing')}) of {members}",
        f"macro-F1 {metrics.get('macro_f1')}  accuracy {metrics.get('accuracy')}% "
        f"on {metrics.get('dataset')}",
    ]


def _describe_position(path: Path) -> list[str]:
    """What an emoji-position bundle is for, and its accuracy against the best rule."""
    metrics = _manifest(path).get("metrics", {})
    if not isinstance(metrics, dict):
        raise ModelError(f"metrics in {MANIFEST} is a {type(metrics).__name__}, not an object")
    heldout, best = metrics.get("heldout", {}), metrics.get("best_rule")
    return [
        "emoji position (where predict and score --insert put the emoji)",
        f"right gap for {heldout.get('model')}% of {heldout.get('n')} held-out marked "
        f"tweets ({best}: {heldout.get(best)}%)",
    ]


def _describe_classifier(path: Path) -> list[str]:
    """Architecture, labels, stored metrics and checked reduced precisions."""
    m = read_manifest(path)
    metrics = m.metrics
    score = (
        f"macro-F1 {metrics['macro_f1']}  accuracy {metrics['accuracy']}% on {metrics['dataset']}"
        if "macro_f1" in metrics
        else "no stored metrics"
    )
    emoji = "".join(label.emoji for label in m.labels)
    lines = [f"{m.architecture}, {len(m.labels)} labels {emoji}", score]
    for precision, check in (m.precisions or {}).items():
        lines.append(
            f"{precision}: top-1 agreement {100 * check['top1_agreement']:.2f}% with "
            f"fp32, macro-F1 {check['macro_f1']}, {check['tweets_per_second']:,.0f} vs "
            f"{check['fp32_tweets_per_second']:,.0f} tweets/s on {check['dataset']}"
        )
    return lines


def _describe(path: Path) -> list[str]:
    """The lines that describe the bundle at ``path``; ModelError says why it is unusable."""
    if is_ensemble(path):
        describe = _describe_ensemble
    elif manifest_kind(path) == POSITION:
        describe = _describe_position
    else:
        describe = _describe_classifier
    try:
        return describe(path)
    except ModelError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise ModelError(f"malformed {MANIFEST} ({exc!r})") from exc


@app.command("list")
def list_cli(models_dir: ModelsDirOption = None) -> None:
    """List bundles with architecture, labels and stored validation metrics; a bundle
    that cannot be used is listed too, marked unusable with the reason."""
    found = find_models(models_dir)
    names = [f.name for f in found]
    for bundle in found:
        header = _header(bundle, names.count(bundle.name) > 1)
        try:
            lines = _describe(bundle.path)
        except ModelError as exc:
            typer.echo(f"{header}  (unusable: {exc})\n  {bundle.path}")
            continue
        typer.echo("\n  ".join([header, *lines, str(bundle.path)]))
