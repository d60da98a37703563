"""Print the results table (markdown) from trained bundles' manifests.

Usage: python training/results_table.py [--baseline JSON] BUNDLE_DIR [BUNDLE_DIR ...]
       python training/results_table.py --dev BUNDLE_DIR [BUNDLE_DIR ...]
Every number comes from a manifest written by `emoji-batch train`, `emoji-batch
ensemble` or `emoji-batch evaluate --record`, or from `training/baseline_tfidf.py
--json`; nothing is typed in. An ensemble's bundle size counts its members' files.
``--dev`` prints the Dev.csv table (issue 27): Dev and Val side by side, Dev's ECE; a
model whose per-label biases were fitted on Dev shows its cross-fitted Dev macro-F1 first.
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


def _on(m: dict, name: str) -> dict | None:
    """A manifest's summary on data file ``name``: its own metrics or a recorded one."""
    metrics = m["metrics"]
    if metrics.get("dataset", "").split(" ")[0] == name:
        return metrics
    return metrics.get("evaluated", {}).get(name)


def dev_row(path: Path) -> str:
    m = json.loads((path / "manifest.json").read_text())
    dev, val = _on(m, "Dev.csv"), _on(m, "Val.csv")
    if m.get("kind") == "ensemble":
        members = [(path / member["path"]).resolve() for member in m["members"]]
        mix = " + ".join(f"{x['weight']:g} `{x['name']}`" for x in m["members"])
        name = f"`{path.name}`: {mix} ({m['mixing']})"
        seconds, command = "-", m["command"]
        size = size_mb(path) + sum(size_mb(member) for member in members)
        trained = "its members"
    else:
        t = m["training"]
        name, command, size = f"`{path.name}` ({m['architecture']})", t["command"], size_mb(path)
        seconds = f"{t['seconds']:.0f} s"
        trained = " + ".join(f"{d['path']} ({d['rows']:,})" for d in t["data"])

    def cell(summary: dict | None, key: str, unit: str = "") -> str:
        return "-" if summary is None or key not in summary else f"{summary[key]}{unit}"

    dev_f1 = f"**{cell(dev, 'macro_f1')}**"
    calibration = m.get("calibration") or {}
    if calibration.get("label_biases") is not None:
        # Biases fitted on all of Dev flatter it; the cross-fitted figure is the honest one.
        crossed = calibration["cross_fitted_macro_f1"]["with"]
        dev_f1 = f"**{crossed}** cross-fitted ({cell(dev, 'macro_f1')} in-sample)"
    return (
        f"| {name} | {trained} | {dev_f1} | {cell(dev, 'accuracy', '%')} "
        f"| {cell(dev, 'ece')} | {cell(val, 'macro_f1')} | {cell(val, 'accuracy', '%')} "
        f"| {size:.1f} MB | {seconds} | `{command}` |"
    )


def main(args: list[str]) -> None:
    if args[:1] == ["--dev"]:
        print(
            "| model | trained on | Dev macro-F1 | Dev accuracy | Dev ECE | Val macro-F1 "
            "| Val accuracy | bundle | training time | command |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for path in map(Path, args[1:]):
            print(dev_row(path))
        return
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
