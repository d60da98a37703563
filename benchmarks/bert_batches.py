"""Model-only speed of a BERT bundle's int8 runtime (LiteRT) and its fp32 fallback (ONNX
Runtime) by batch size: how the BERT family's ``batch_size`` (emoji_batch.families) was
chosen. Usage::

    python benchmarks/bert_batches.py [--model PATH] [--rows 6000] [--sizes 16 32 64 128 256]

Texts: the bench's cached tweets (``benchmarks/.cache/tweets_20000.parquet``, written by
``bench.py``), cleaned and tokenized once; each size runs once to warm up, then is timed.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import polars as pl

from emoji_batch import bert_onnx
from emoji_batch.bundle import load_bundle
from emoji_batch.cleaning import clean_texts
from emoji_batch.device import REPORTED_CPU_FLAGS, cpu_flags
from emoji_batch.predictor import Predictor

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "emoji_batch/models/fine_tuned_bert")
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64, 128, 256])
    args = parser.parse_args()
    print(f"CPU flags: {', '.join(sorted(cpu_flags() & REPORTED_CPU_FLAGS))}")
    bundle = load_bundle(args.model)
    texts = pl.read_parquet(ROOT / "benchmarks/.cache/tweets_20000.parquet")["text"]
    seqs = bundle.encoder.encode(clean_texts(texts.head(args.rows).to_list()), 64)
    fallback = bert_onnx.fp32_runtime(bundle)
    print("| batch | LiteRT int8 tweets/s | ONNX Runtime fp32 tweets/s |")
    print("| --- | --- | --- |")
    for size in args.sizes:
        predictor = Predictor(bundle, precision="int8", batch_size=size)
        rates = []
        for run in (predictor._run, fallback):
            out = np.zeros((len(seqs), len(bundle.labels)), dtype=np.float32)
            predictor._run_batches(run, seqs[:300], out[:300])
            started = time.perf_counter()
            predictor._run_batches(run, seqs, out)
            rates.append(len(seqs) / (time.perf_counter() - started))
        print(f"| {size} | {rates[0]:,.0f} | {rates[1]:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
