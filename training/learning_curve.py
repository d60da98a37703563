"""Learning curve of a trained bundle: its validation set's macro-F1 (Dev.csv for the
shipped models) against the share of its training data, to tell whether labelling more
tweets would pay.

Reruns the bundle's own recorded `emoji-batch train` command (its manifest's
`training.command`) on seeded stratified subsets of its training files, concatenated,
and takes the 100% point from the bundle itself. Prints a Markdown table and writes a
PNG. Subsets and their bundles go to the git-ignored models/learning_curve/.

    .venv/bin/python training/learning_curve.py emoji_batch/models/ngram_svm \
        --data ../shared/data/tweeteval-emoji/Train.csv \
        --data ../shared/data/semeval2018-extra/Extra.csv --png docs/learning_curve.png
"""

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

import polars as pl
from sklearn.model_selection import train_test_split

from emoji_batch.fileio import file_digest

ROOT = Path(__file__).resolve().parent.parent


def subset(files: list[Path], share: float, seed: int, label: str, out: Path) -> int:
    """A stratified ``share`` of the concatenated files, written as one CSV (text kept as
    read: no type inference)."""
    rows = pl.concat([pl.read_csv(f, infer_schema=False) for f in files])
    keep, _ = train_test_split(
        list(range(rows.height)), train_size=share, random_state=seed, stratify=rows[label]
    )
    rows[sorted(keep)].write_csv(out)
    return len(keep)


def rerun_command(command: str, data: Path, output: Path) -> list[str]:
    """The recorded train command with its --data and --output replaced."""
    args, out = shlex.split(command)[1:], []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("--data", "--output", "-o"):
            skip = True
        elif arg != "--force":
            out.append(arg)
    return [
        str(ROOT / ".venv/bin/emoji-batch"),
        *out,
        "--data",
        str(data),
        "--output",
        str(output),
        "--force",
    ]


def point(bundle: Path, share: float) -> dict:
    manifest = json.loads((bundle / "manifest.json").read_text())
    training = manifest["training"]
    return {
        "share": share,
        "rows": training["split"]["train"],
        "macro_f1": manifest["metrics"]["macro_f1"],
        "accuracy": manifest["metrics"]["accuracy"],
        "epochs": training.get("epochs", "-"),  # a convex solve has none
        "dataset": manifest["metrics"]["dataset"],
        "seconds": training["seconds"],
    }


def plot(points: list[dict], png: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    ax.plot([p["rows"] for p in points], [p["macro_f1"] for p in points], "o-")
    for p in points:
        ax.annotate(
            f"{p['macro_f1']:.2f}",
            (p["rows"], p["macro_f1"]),
            textcoords="offset points",
            xytext=(0, 7),
            ha="center",
        )
    ax.set_xscale("log")
    ax.set_xlabel("training tweets (log scale)")
    ax.set_ylabel(f"{points[-1]['dataset']} macro-F1")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(png)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path, help="the 100%% point: a bundle trained on --data")
    parser.add_argument("--data", type=Path, action="append", required=True)
    parser.add_argument("--shares", default="0.1,0.25,0.5")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--label-column", default="Label")
    parser.add_argument("--work", type=Path, default=ROOT / "models" / "learning_curve")
    parser.add_argument("--png", type=Path, default=ROOT / "docs" / "learning_curve.png")
    args = parser.parse_args()

    manifest = json.loads((args.bundle / "manifest.json").read_text())
    recorded = [d["sha256"] for d in manifest["training"]["data"]]
    if recorded != [file_digest(f) for f in args.data]:
        sys.exit(f"{args.bundle} was not trained on exactly {[str(f) for f in args.data]}")
    args.work.mkdir(parents=True, exist_ok=True)
    points = []
    for share in (float(s) for s in args.shares.split(",")):
        name = f"{manifest['architecture']}_{round(100 * share)}pct"
        data, bundle = args.work / f"{name}.csv", args.work / name
        subset(args.data, share, args.seed, args.label_column, data)
        command = rerun_command(manifest["training"]["command"], data, bundle)
        print("+", shlex.join(command), file=sys.stderr, flush=True)
        with open(args.work / f"{name}.log", "w") as log:
            subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
        points.append(point(bundle, share))
    points.append(point(args.bundle, 1.0))

    on = points[-1]["dataset"]
    print(
        f"| share of the data | training tweets | {on} macro-F1 | accuracy | epochs | train time |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for p in points:
        print(
            f"| {p['share']:.0%} | {p['rows']:,} | {p['macro_f1']:.2f} | {p['accuracy']:.2f}% "
            f"| {p['epochs']} | {p['seconds']:.0f} s |"
        )
    plot(points, args.png, f"{manifest['architecture']}: {on} macro-F1 vs training data")
    print(f"plot written to {args.png}", file=sys.stderr)


if __name__ == "__main__":
    main()
