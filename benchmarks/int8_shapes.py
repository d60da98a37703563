"""Model-only speed of a bundle's int8 model by the shapes it is converted at: one
signature of any shape (what emoji-batch wrote before) against fixed-shape signatures
of several row counts and sets of widths. How ``quantize.INT8_ROWS`` and
``quantize.INT8_WIDTHS`` were chosen. Usage::

    python benchmarks/int8_shapes.py [--model PATH] [--rows 6000] [--repeats 2]

Texts: the bench's cached tweets (``benchmarks/.cache/tweets_20000.parquet``, written by
``bench.py``), cleaned and tokenized once, scored in the Predictor's length-sorted
batches of 32 without the fp32 fallback. Each model runs once to warm up, then the models
take turns ``--repeats`` times, so a slower stretch of a noisy machine hits all of them.
Converting BERT takes about a minute per fixed-shape model.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import polars as pl

from emoji_batch import quantize
from emoji_batch.bundle import load_bundle
from emoji_batch.cleaning import clean_texts
from emoji_batch.device import REPORTED_CPU_FLAGS, cpu_flags
from emoji_batch.predictor import Predictor

ROOT = Path(__file__).resolve().parent.parent
# (rows, widths); None: one signature of any shape. 64 is the shipped BERT's max length.
SHAPES: list[tuple[int, list[int]] | None] = [
    None,
    (16, [4, 8, 12, 16, 20, 24, 28, 32, 48, 64]),
    (16, [12, 16, 20, 24, 28, 32, 64]),
    (8, [12, 16, 20, 24, 28, 32, 64]),
    (32, [12, 16, 20, 24, 28, 32, 64]),
    (16, [8, 16, 24, 32, 64]),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "emoji_batch/models/fine_tuned_bert")
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(f"CPU flags: {', '.join(sorted(cpu_flags() & REPORTED_CPU_FLAGS))}", flush=True)
    bundle = load_bundle(args.model)
    texts = pl.read_parquet(ROOT / "benchmarks/.cache/tweets_20000.parquet")["text"]
    seqs = bundle.encoder.encode(clean_texts(texts.head(args.rows).to_list()), 64)
    predictors, sizes = [], []
    for shape in SHAPES:
        if shape is None:
            flat = quantize.convert_int8(bundle.model, None)
        else:
            rows, widths = shape
            flat = quantize.convert_int8(bundle.model, widths, rows)
        predictor = Predictor(bundle, precision="int8", batch_size=32, int8_model=flat)
        predictor.fallback_margin = 0.0
        predictor.predict_encoded(seqs[:300])
        predictors.append(predictor)
        sizes.append(len(flat))
    rates: list[list[float]] = [[] for _ in SHAPES]
    for _ in range(args.repeats):
        for predictor, rate in zip(predictors, rates, strict=True):
            started = time.perf_counter()
            predictor.predict_encoded(seqs)
            rate.append(len(seqs) / (time.perf_counter() - started))
    base = np.median(rates[0])
    print("| int8 model shapes | file MB | tweets/s (each run) | median vs any shape |")
    print("| --- | --- | --- | --- |")
    for shape, size, rate in zip(SHAPES, sizes, rates, strict=True):
        name = f"{shape[0]} rows, widths {shape[1]}" if shape else "any shape (one signature)"
        runs = ", ".join(f"{r:,.0f}" for r in rate)
        print(f"| {name} | {size / 1e6:.1f} | {runs} | {np.median(rate) / base:.2f}x |")


if __name__ == "__main__":
    main()
