"""Print the results table (markdown) from trained bundles' manifests.

Usage: python training/results_table.py BUNDLE_DIR [BUNDLE_DIR ...]
Every number comes from a manifest written by `emoji-batch train`; nothing is typed in.
"""

import json
import sys
from pathlib import Path


def size_mb(directory: Path) -> float:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file()) / 1e6


def main(paths: list[str]) -> None:
    print(
        "| model | evaluated on | labels | macro-F1 | accuracy | epochs | train wall time "
        "| bundle | command |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for path in map(Path, paths):
        m = json.loads((path / "manifest.json").read_text())
        t, s = m["training"], m["metrics"]
        print(
            f"| `{m['architecture']}` | {s['dataset']}, {s['rows']} rows | {len(m['labels'])} "
            f"| {s['macro_f1']} | {s['accuracy']}% | {t['epochs']} "
            f"| {t['seconds']:.0f} s | {size_mb(path):.1f} MB | `{t['command']}` |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
