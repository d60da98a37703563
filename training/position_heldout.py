"""Accuracy of emoji-position bundles on one fixed set: the held-out share of Train.csv's
marked tweets (the split `train emoji_position` uses, seed 13, 20%), so a bundle trained
on Train + Extra compares with one trained on Train alone on the same tweets.

    .venv/bin/python training/position_heldout.py BUNDLE... [--data Train.csv]
"""

import argparse
from pathlib import Path

from emoji_batch.position import PositionModel
from emoji_batch.position_fit import accuracy, in_holdout, read_marked

TRAIN = Path(__file__).resolve().parent.parent.parent / "shared/data/tweeteval-emoji/Train.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundles", type=Path, nargs="+")
    parser.add_argument("--data", type=Path, default=TRAIN)
    parser.add_argument("--share", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    marked, _ = read_marked(args.data, "TEXT")
    held = [
        (t, g)
        for t, g in zip(marked.texts, marked.gaps, strict=True)
        if in_holdout(t, args.share, args.seed)
    ]
    texts, gaps = [t for t, _ in held], [g for _, g in held]
    print(f"| bundle | trained on | {args.data.name} held-out marked tweets | model accuracy |")
    print("| --- | --- | --- | --- |")
    for bundle in args.bundles:
        model = PositionModel.load(bundle)
        data = model.manifest["training_data"]  # one file (older bundles) or a list
        trained_on = " + ".join(d["path"] for d in (data if isinstance(data, list) else [data]))
        hit = accuracy(model.predict(texts), gaps)
        print(f"| `{bundle}` | {trained_on} | {len(texts)} | {hit:.2f}% |")


if __name__ == "__main__":
    main()
