"""Print the results table (markdown) from trained bundles' manifests.

Usage: python training/results_table.py [--baseline JSON] BUNDLE_DIR [BUNDLE_DIR ...]
Every number comes from a manifest written by `emoji-batch train` or `emoji-batch
ensemble`, or from `training/baseline_tfidf.py --json`; nothing is typed in. An
ensemble's bundle size counts its members' files.
"""

import json
import sys
from pathlib import Path


def size_mb(directory: Path) -> float:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file()) / 1e6


def row(path: Path) -> str:
    m = json.loads((path / "manifest.json").read_text())
    s = m["metrics"]
    if m.get("kind") == "ensemble":
        members = [(path / member["path"]).resolve() for member in m["members"]]
        mix = " + ".join(f"{x['weight']:g} `{x['name']}`" for x in m["members"])
        name = f"ensemble ({m['mixing']}): {mix}"
        epochs, seconds, command = "-", "-", m["command"]
        size = size_mb(path) + sum(size_mb(member) for member in members)
    else:
        t = m["training"]
        name, epochs, command = f"`{m['architecture']}`", t["epochs"], t["command"]
        seconds, size = f"{t['seconds']:.0f} s", size_mb(path)
    return (
        f"| {name} | {s['dataset']}, {s['rows']} rows | {len(m['labels'])} | {s['macro_f1']} "
        f"| {s['accuracy']}% | {epochs} | {seconds} | {size:.1f} MB | `{command}` |"
    )


def baseline_row(path: Path) -> str:
    """The tf-idf + logistic-regression reference, which writes no bundle."""
    b = json.loads(path.read_text())
    return (
        f"| reference: tf-idf + logistic regression (scikit-learn) | {b['val']['file']}, "
        f"{b['val']['rows']} rows | {b['labels']} | {b['macro_f1']} | {b['accuracy']}% | - "
        f"| {b['seconds']:.0f} s | - | `{b['command']}` |"
    )


def main(args: list[str]) -> None:
    baseline = None
    if args[:1] == ["--baseline"]:
        baseline, args = Path(args[1]), args[2:]
    print(
        "| model | evaluated on | labels | macro-F1 | accuracy | epochs | train wall time "
        "| bundle | command |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for path in map(Path, args):
        print(row(path))
    if baseline is not None:
        print(baseline_row(baseline))


if __name__ == "__main__":
    main(sys.argv[1:])
