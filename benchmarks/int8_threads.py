"""Model-only speed of a bundle's int8 model by how its threads are laid out: one
interpreter running all the threads against one single-threaded interpreter per thread,
each running its own share of a batch's fixed-shape pieces. How ``Int8Runtime``'s
default layout was chosen. Usage::

    python benchmarks/int8_threads.py [--model PATH] [--rows 6000] [--repeats 3]

Texts: the bench's cached tweets (``benchmarks/.cache/tweets_20000.parquet``, written by
``bench.py``), cleaned and tokenized once, in length-sorted batches of 32 (BERT's
default), without the fp32 fallback. The layouts take turns ``--repeats`` times after a
warm-up, so a slower stretch of a noisy machine hits all of them. It also checks that
every layout gives the same probabilities.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import polars as pl

from emoji_batch.bundle import bundle_file, load_bundle
from emoji_batch.cleaning import clean_texts
from emoji_batch.device import REPORTED_CPU_FLAGS, cpu_flags
from emoji_batch.families import get_family
from emoji_batch.predictor import pad_batch
from emoji_batch.runtimes import Int8Runtime, threads

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "emoji_batch/models/fine_tuned_bert")
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n = threads()
    print(f"{n} threads; CPU flags: {', '.join(sorted(cpu_flags() & REPORTED_CPU_FLAGS))}")
    bundle = load_bundle(args.model)
    texts = pl.read_parquet(ROOT / "benchmarks/.cache/tweets_20000.parquet")["text"]
    seqs = bundle.encoder.encode(clean_texts(texts.head(args.rows).to_list()), 64)
    order = np.argsort([len(s) for s in seqs], kind="stable")
    size = get_family("bert").batch_size
    batches = [
        pad_batch([seqs[i] for i in order[s : s + size]]) for s in range(0, len(order), size)
    ]
    flat = bundle_file(bundle.directory, bundle.manifest, "int8").read_bytes()
    layouts = {
        f"one interpreter of {n} threads": Int8Runtime(flat, bundle.weight, n, interpreters=1),
        f"{n} interpreters of 1 thread": Int8Runtime(flat, bundle.weight, n, interpreters=n),
        "one interpreter of 1 thread": Int8Runtime(flat, bundle.weight, 1),
    }
    outputs = {name: np.concatenate([run(b) for b in batches]) for name, run in layouts.items()}
    first = next(iter(outputs.values()))
    same = all(np.array_equal(first, out) for out in outputs.values())
    print(f"same probabilities in every layout: {same}")
    rates: dict[str, list[float]] = {name: [] for name in layouts}
    for _ in range(args.repeats):
        for name, run in layouts.items():
            started = time.perf_counter()
            for batch in batches:
                run(batch)
            rates[name].append(len(seqs) / (time.perf_counter() - started))
    base = np.median(next(iter(rates.values())))
    print(f"{len(seqs):,} tweets in batches of {size}:")
    print("| int8 threads | tweets/s (each run) | median vs the first |")
    print("| --- | --- | --- |")
    for name, rate in rates.items():
        runs = ", ".join(f"{r:,.0f}" for r in rate)
        print(f"| {name} | {runs} | {np.median(rate) / base:.2f}x |")


if __name__ == "__main__":
    main()
