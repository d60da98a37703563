"""Scoring speed and memory of emoji-batch against the ways people would otherwise do it.

Every measurement runs in its own child process, so each peak RSS is that approach's
alone (``os.wait4``) and no approach warms a cache for another. Ratios compare numbers
from this one run; every run prints the CPU flags that decide bf16 and int8 speed.
Usage (``make bench`` runs the defaults)::

    python benchmarks/bench.py [--bert-model NAME|PATH] [--glove-model NAME|PATH]

Approaches, per model family:
  emoji-batch   ``emoji-batch score FILE.parquet -o OUT.parquet``: the whole process,
                Python and TensorFlow start-up included, file in -> file out
  notebook      the research notebook's way: every tweet padded to 100 tokens, batches
                of 32, ``model.predict`` per batch; timed from texts in memory to
                probabilities, start-up and file I/O not counted
  hf-pipeline   ``transformers.pipeline("text-classification")`` in PyTorch on the same
                weights, batch 64 (BERT family only; needs the ``bench`` extra: torch);
                timed like notebook
  onnxruntime   the CPU-inference peer for BERT: the same weights exported from PyTorch
                to ONNX and quantized by ONNX Runtime's ``quantize_dynamic`` (int8), as
                Hugging Face Optimum does; the same cleaning, tokenizer and length-sorted
                batches as emoji-batch; timed as a whole process (no TensorFlow in it)
  spark         ``emoji-batch score FILE.parquet -o DIR --engine spark`` on ``--spark-master``
                beside the same single-process ``score``; its peak memory is the sum over
                the process tree (driver, JVM, Python workers), sampled, not ``os.wait4``'s
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from emoji_batch.bundle import DEFAULT_MODEL

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "emoji_batch" / "models"
DATA = ROOT.parent / "shared" / "data" / "tweeteval-emoji"
CACHE = ROOT / "benchmarks" / ".cache"
BIN = Path(sys.executable).parent


def tweets_file(rows: int, suffix: str) -> Path:
    """``rows`` TweetEval tweets (Train.csv then Val.csv, repeated), written once."""
    import polars as pl

    path = CACHE / f"tweets_{rows}.{suffix}"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    source = pl.concat(
        [pl.read_csv(DATA / name, infer_schema=False) for name in ("Train.csv", "Val.csv")]
    ).select(pl.col("id"), pl.col("TEXT").alias("text"))
    table = pl.concat([source] * (rows // len(source) + 1)).head(rows)
    table = table.with_columns(pl.int_range(rows).alias("id"))
    tmp = path.with_suffix(".tmp")
    table.write_parquet(tmp) if suffix == "parquet" else table.write_csv(tmp)
    tmp.rename(path)
    return path


def measured(cmd: list[str]) -> tuple[float, float, str, str]:
    """Run ``cmd``; return its wall seconds, its peak RSS in MB, its stdout and stderr."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stderr = err.read().decode()
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"failed: {' '.join(cmd)}\n{stderr[-3000:]}")
        return seconds, usage.ru_maxrss / 1024, out.read().decode(), stderr


def score_e2e(model: str, data: Path, *extra: str) -> dict[str, Any]:
    """``emoji-batch score`` as a user runs it; its JSON summary says the precision used."""
    out = CACHE / f"out{''.join(data.suffixes)}"
    cmd = [str(BIN / "emoji-batch"), "score", str(data), "-o", str(out), "--model", model]
    seconds, rss, _, stderr = measured([*cmd, "--force", "--log-format", "json", *extra])
    summary = json.loads(stderr.strip().splitlines()[-1])
    return {
        "seconds": seconds,
        "rss_mb": rss,
        "output": out,
        "precision": summary["precision"],
        "after_start_up": summary["rows_per_second"],
        "fallback_rows": summary.get("fallback_rows", 0),
    }


def _tree_memory(pid: int) -> tuple[int, int]:
    """RSS and PSS in bytes summed over ``pid`` and all its descendants (PSS shares each
    page among the processes mapping it, so forked workers' common pages count once)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    rss = pss = 0
    todo = [pid]
    while todo:
        proc = todo.pop()
        todo += children.get(proc, [])
        try:
            for line in Path(f"/proc/{proc}/smaps_rollup").read_text().splitlines():
                if line.startswith(("Rss:", "Pss:")):
                    kb = int(line.split()[1]) * 1024
                    rss, pss = (rss + kb, pss) if line.startswith("Rss:") else (rss, pss + kb)
        except (OSError, ValueError):
            continue
    return rss, pss


def measured_tree(cmd: list[str]) -> tuple[float, float, float, str]:
    """Run ``cmd``; return its wall seconds, the peak RSS and PSS in MB of its whole
    process tree (sampled every 0.2 s) and its stderr."""
    started = time.perf_counter()
    peak_rss = peak_pss = 0
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        while proc.poll() is None:
            rss, pss = _tree_memory(proc.pid)
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
            time.sleep(0.2)
        seconds = time.perf_counter() - started
        err.seek(0)
        stderr = err.read().decode()
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{stderr[-3000:]}")
    return seconds, peak_rss / 2**20, peak_pss / 2**20, stderr


def spark(model: str, rows: int, master: str) -> list[dict[str, Any]]:
    """``score --engine spark`` beside single-process ``score`` on the same file."""
    import polars as pl

    data = tweets_file(rows, "parquet")
    ours = score_e2e(model, data)
    out = CACHE / "out_spark"
    cmd = [str(BIN / "emoji-batch"), "score", str(data), "-o", str(out), "--model", model]
    cmd += ["--engine", "spark", "--spark-master", master, "--force", "--log-format", "json"]
    seconds, rss, pss, stderr = measured_tree(cmd)
    summary = json.loads(stderr.strip().splitlines()[-1])
    local = pl.read_parquet(ours["output"]).select("id", "emoji_1")
    spark_top1 = pl.read_parquet(out / "*.parquet").select("id", "emoji_1")
    same = local.join(spark_top1, on="id").filter(pl.col("emoji_1") == pl.col("emoji_1_right"))
    name = f"Spark ({Path(model).name})"
    return [
        {
            "family": name,
            "approach": f"emoji-batch score ({ours['precision']}), one process",
            "rows": rows,
            "tweets_per_s": rows / ours["seconds"],
            "rss_mb": ours["rss_mb"],
            "note": f"whole process; after imports: {ours['after_start_up']:,.0f}/s",
        },
        {
            "family": name,
            "approach": f"emoji-batch score --engine spark --spark-master {master}",
            "rows": rows,
            "tweets_per_s": rows / seconds,
            "rss_mb": rss,
            "ratio": (rows / ours["seconds"]) / (rows / seconds),
            "note": f"driver + JVM + Python workers (PSS {pss:,.0f} MB); its summary line: "
            f"{summary['rows_per_second']:,.0f}/s; top-1 same as one process: "
            f"{100 * same.height / rows:.1f}%",
        },
    ]


# Start-up targets of `predict` on one tweet, whole process (issue: one tweet at a time).
# The default's bound is issue 27's (a linear n-gram model chosen on Dev).
STARTUP_TARGETS = {"default": 1.0, "int8 BERT": 4.0}
# Whole-process `score` of the default on the 1M-row file, 2 cores (issue 27).
DEFAULT_TWEETS_PER_S = 15_000
TWEET = "merry christmas everyone"


def start_up(default_model: str, bert_model: str, runs: int) -> str:
    """One tweet through ``predict`` (and a one-row ``score``), whole process, each
    command run ``runs`` times in turn; the table gives the median and the fastest."""
    one_row = CACHE / "one_tweet.csv"
    CACHE.mkdir(parents=True, exist_ok=True)
    one_row.write_text(f"text\n{TWEET}\n", encoding="utf-8")
    exe = str(BIN / "emoji-batch")
    commands = {
        ("predict", "default"): [exe, "predict", TWEET, "--model", default_model],
        ("predict", "int8 BERT"): [
            *(exe, "predict", TWEET, "--model", bert_model, "--precision", "int8"),
        ],
        ("score, 1 row", "default"): [
            *(exe, "score", str(one_row), "-o", str(CACHE / "one_tweet.scored.csv")),
            *("--model", default_model, "--force", "--quiet"),
        ],
    }
    times: dict[tuple[str, str], list[float]] = {key: [] for key in commands}
    for _ in range(runs):
        for key, cmd in commands.items():
            times[key].append(measured(cmd)[0])
    out = [
        f"start-up, whole process, {runs} runs of each command in turn:",
        "| command | model | median s | fastest s | target |",
        "| --- | --- | --- | --- | --- |",
    ]
    for (command, model), seconds in times.items():
        target = STARTUP_TARGETS.get(model) if command == "predict" else None
        median = float(np.median(seconds))
        verdict = ""
        if target is not None:
            verdict = f"<= {target} s: {'met' if median <= target else 'MISSED'}"
        out.append(f"| {command} | {model} | {median:.2f} | {min(seconds):.2f} | {verdict} |")
    return "\n".join(out)


def child(approach: str, model: str, data: Path) -> dict[str, Any]:
    """An alternative approach, in a child process; returns its loop time and RSS."""
    cmd = [sys.executable, __file__, "--child", approach, "--model", model, "--data", str(data)]
    seconds, rss, stdout, _ = measured(cmd)
    return {**json.loads(stdout.strip().splitlines()[-1]), "rss_mb": rss, "process_s": seconds}


# --- the alternatives, run inside a child process ------------------------------------


def _texts(data: Path) -> list[str]:
    import polars as pl

    from emoji_batch.cleaning import clean_texts

    return clean_texts(pl.read_parquet(data)["text"].to_list())


def run_notebook(model: str, data: Path) -> dict[str, Any]:
    from emoji_batch.bundle import load_bundle, resolve_model
    from emoji_batch.device import tensorflow

    tf = tensorflow()
    bundle = load_bundle(resolve_model(model, None))
    texts = _texts(data)
    started = time.perf_counter()
    seqs = bundle.encoder.encode(texts, 100)
    padded = tf.keras.utils.pad_sequences(seqs, maxlen=100, padding="post", truncating="post")
    probs = [bundle.model.predict(padded[i : i + 32], verbose=0) for i in range(0, len(padded), 32)]
    seconds = time.perf_counter() - started
    return {"rows": len(texts), "seconds": seconds, "top1": _top1(bundle, probs)}


def _torch_bert(model: str) -> tuple[Any, Any, Any]:
    """The bundle, its weights in a PyTorch ``BertForSequenceClassification`` (Hugging
    Face's own TF-to-PyTorch name rules) and its fast tokenizer."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast
    from transformers.modeling_tf_pytorch_utils import convert_tf_weight_name_to_pt_weight_name

    from emoji_batch.bundle import bundle_file, load_bundle, resolve_model

    bundle = load_bundle(resolve_model(model, None))
    if bundle.manifest.architecture != "fine_tuned_bert":
        raise SystemExit("the PyTorch and ONNX Runtime rows need a fine_tuned_bert bundle")
    encoder = bundle.model.get_layer("encoder")
    config = BertConfig(**bundle.manifest.config["encoder"], num_labels=len(bundle.labels))
    torch_model = BertForSequenceClassification(config).eval()
    shapes = {name: tuple(v.shape) for name, v in torch_model.state_dict().items()}
    state = {}
    for w in encoder.weights:
        name, transpose = convert_tf_weight_name_to_pt_weight_name(
            w.name, start_prefix_to_remove=encoder.name + "/", tf_weight_shape=w.shape
        )
        value = w.numpy().T if transpose else w.numpy()
        # The name rules also transpose embedding tables, which PyTorch keeps as they are.
        state[name] = torch.from_numpy(value if value.shape == shapes[name] else value.T)
    kernel, bias = bundle.model.get_layer("probs").get_weights()
    state["classifier.weight"] = torch.from_numpy(kernel.T)
    state["classifier.bias"] = torch.from_numpy(bias)
    state = {name: v.contiguous() for name, v in state.items()}
    missing, unexpected = torch_model.load_state_dict(state, strict=False)
    if unexpected or [m for m in missing if "position_ids" not in m]:
        raise SystemExit(f"weights do not map: missing {missing}, unexpected {unexpected}")
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(bundle_file(bundle.directory, bundle.manifest, "tokenizer")),
        pad_token="[PAD]",
    )
    return bundle, torch_model, tokenizer


def run_hf_pipeline(model: str, data: Path) -> dict[str, Any]:
    from transformers import pipeline as hf_pipeline

    bundle, torch_model, tokenizer = _torch_bert(model)
    classify = hf_pipeline(
        "text-classification", model=torch_model, tokenizer=tokenizer, device="cpu"
    )
    texts = _texts(data)
    started = time.perf_counter()
    results = classify(texts, batch_size=64, truncation=True, max_length=64, top_k=None)
    seconds = time.perf_counter() - started
    probs = np.zeros((len(texts), len(bundle.labels)), dtype=np.float32)
    label2id = torch_model.config.label2id
    for row, scores in zip(probs, results, strict=True):
        for score in scores:
            row[label2id[score["label"]]] = score["score"]
    return {"rows": len(texts), "seconds": seconds, "top1": _top1(bundle, [probs])}


INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def peer_onnx(model: str) -> Path:
    """Where the ONNX Runtime peer's int8 model of ``model`` is cached (by weights hash)."""
    from emoji_batch.bundle import bundle_files, load_bundle, resolve_model
    from emoji_batch.fileio import file_digest

    bundle = load_bundle(resolve_model(model, None))
    return CACHE / f"{bundle.name}.{file_digest(*bundle_files(bundle))[:12]}.int8.onnx"


def run_onnx_export(model: str, data: Path) -> dict[str, Any]:
    """The peer's model, made as Hugging Face Optimum makes one for CPUs: the PyTorch
    model exported to ONNX, then ONNX Runtime's ``quantize_dynamic`` (int8 weights,
    activations quantized per call); written to ``data``."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    _, torch_model, _ = _torch_bert(model)
    fp32 = data.with_suffix(".fp32.onnx")
    ids = torch.ones((2, 8), dtype=torch.long)
    axes = {name: {0: "batch", 1: "width"} for name in INPUTS} | {"logits": {0: "batch"}}
    torch.onnx.export(
        torch_model,
        (ids, torch.ones_like(ids), torch.zeros_like(ids)),
        str(fp32),
        input_names=list(INPUTS),
        output_names=["logits"],
        dynamic_axes=axes,
        opset_version=17,
        dynamo=False,
    )
    quantize_dynamic(fp32, data, weight_type=QuantType.QInt8)
    fp32.unlink()
    return {"rows": 0, "seconds": 0.0, "top1": []}


def run_onnxruntime(model: str, data: Path) -> dict[str, Any]:
    """ONNX Runtime on the peer's int8 model (see :func:`run_onnx_export`) with the same
    cleaning, tokenizer, length-sorted batches (emoji-batch's BERT batch size) and CPU
    threads as emoji-batch; the parent also times the whole process. No TensorFlow is
    imported."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    from emoji_batch.bundle import bundle_file, read_manifest, resolve_model
    from emoji_batch.families import get_family
    from emoji_batch.predictor import pad_batch

    size = get_family("bert").batch_size
    bundle_dir = resolve_model(model, None)
    onnx_file = str(peer_onnx(model))
    manifest = read_manifest(bundle_dir)
    tokenizer = Tokenizer.from_file(str(bundle_file(bundle_dir, manifest, "tokenizer")))
    tokenizer.enable_truncation(manifest.max_length)
    options = ort.SessionOptions()
    options.intra_op_num_threads = len(os.sched_getaffinity(0))
    session = ort.InferenceSession(onnx_file, options, providers=["CPUExecutionProvider"])
    texts = _texts(data)
    started = time.perf_counter()
    ids = [e.ids for e in tokenizer.encode_batch(texts)]
    order = np.argsort([len(i) for i in ids], kind="stable")
    logits = np.zeros((len(ids), len(manifest.labels)), dtype=np.float32)
    for start in range(0, len(order), size):
        batch = order[start : start + size]
        padded = pad_batch([np.asarray(ids[i]) for i in batch]).astype(np.int64)
        feed = {"input_ids": padded, "attention_mask": (padded != 0).astype(np.int64)}
        feed["token_type_ids"] = np.zeros_like(padded)
        logits[batch] = session.run(["logits"], feed)[0]
    seconds = time.perf_counter() - started
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = exp / exp.sum(axis=1, keepdims=True)
    return {"rows": len(texts), "seconds": seconds, "top1": _top1(manifest, [probs])}


def _top1(bundle: Any, probs: list[Any]) -> list[int]:
    """Top-1 output positions after the calibration of ``bundle`` (a bundle or its
    manifest), as emoji-batch decides."""
    from emoji_batch.predictor import adjust_to_prior

    joined = np.concatenate(probs)
    calibration = getattr(bundle, "manifest", bundle).calibration
    if calibration is not None:
        joined = adjust_to_prior(joined, calibration["label_prior"], calibration["prior_power"])
    return joined.argmax(axis=1).tolist()


# --- the report ----------------------------------------------------------------------


def agreement(a: list[int], b: list[int]) -> float:
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def our_top1(output: Path, bundle_dir: Path, rows: int) -> list[int]:
    """Output positions of emoji_1 in the emoji-batch output, to compare predictions."""
    import polars as pl

    from emoji_batch.bundle import read_manifest

    emoji = [label.emoji for label in read_manifest(bundle_dir).labels]
    return [emoji.index(e) for e in pl.read_parquet(output)["emoji_1"].head(rows).to_list()]


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    from emoji_batch.device import REPORTED_CPU_FLAGS, cpu_flags

    isa = sorted(cpu_flags() & REPORTED_CPU_FLAGS)
    flags = ", ".join(isa) if isa else "none of " + ", ".join(sorted(REPORTED_CPU_FLAGS))
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{cpu}, {len(os.sched_getaffinity(0))} cores (CPU flags: {flags}), {mem:.0f} GiB RAM, "
        f"Python {platform.python_version()}, no GPU measured"
    )


def family(
    name: str, model: str, rows: int, alt_rows: int, alternatives: list[str]
) -> list[dict[str, Any]]:
    from emoji_batch.bundle import resolve_model

    data = tweets_file(rows, "parquet")
    ours = score_e2e(model, data)
    lines = [
        {
            "family": name,
            "approach": f"emoji-batch score ({Path(model).name}, {ours['precision']})",
            "rows": rows,
            "tweets_per_s": rows / ours["seconds"],
            "rss_mb": ours["rss_mb"],
            "note": "whole process, file in -> file out; after imports (its summary "
            f"line): {ours['after_start_up']:,.0f}/s",
        }
    ]
    alt_data = tweets_file(alt_rows, "parquet")
    top1 = our_top1(ours["output"], resolve_model(model, None), alt_rows)
    if ours["precision"] != "fp32":
        exact = score_e2e(model, alt_data, "--precision", "fp32")
        same = agreement(top1, our_top1(exact["output"], resolve_model(model, None), alt_rows))
        lines.append(
            {
                "family": name,
                "approach": f"emoji-batch score ({Path(model).name}, fp32)",
                "rows": alt_rows,
                "tweets_per_s": alt_rows / exact["seconds"],
                "rss_mb": exact["rss_mb"],
                "note": f"whole process; top-1 same as the row above: {100 * same:.1f}%",
            }
        )
    for approach in alternatives:
        result = child(approach, model, alt_data)
        lines.append(
            {
                "family": name,
                "approach": approach,
                "rows": alt_rows,
                "tweets_per_s": result["rows"] / result["seconds"],
                "rss_mb": result["rss_mb"],
                "note": f"top-1 same as emoji-batch: {100 * agreement(top1, result['top1']):.1f}%",
            }
        )
    for line in lines[1:]:
        line["ratio"] = lines[0]["tweets_per_s"] / line["tweets_per_s"]
    return lines


# Whole-process speed targets of the BERT int8 path (issue 20): against the Hugging Face
# pipeline, by CPU class, and against ONNX Runtime's dynamic int8 on every CPU.
HF_TARGET = {"AVX-512 VNNI/AMX": 5.0, "AVX2": 3.0}
ORT_TARGET = 1.0


def cpu_class() -> str:
    from emoji_batch.device import cpu_flags

    fast_int8 = {"avx512_vnni", "amx_int8"} & cpu_flags()
    return "AVX-512 VNNI/AMX" if fast_int8 else "AVX2"


def bert_peers(model: str, rows: int) -> tuple[list[dict[str, Any]], list[str]]:
    """BERT against its peers on the same ``rows`` tweets: emoji-batch ``score`` (auto,
    then fp32), ONNX Runtime's dynamic int8 as Hugging Face Optimum would run it, and the
    Hugging Face pipeline; top-1 agreement with emoji-batch's fp32. Returns the rows and
    the verdicts on the targets."""
    from emoji_batch.bundle import resolve_model

    directory = resolve_model(model, None)
    data = tweets_file(rows, "parquet")
    ours = score_e2e(model, data)
    top1 = our_top1(ours["output"], directory, rows)
    exact = score_e2e(model, data, "--precision", "fp32")
    fp32_top1 = our_top1(exact["output"], directory, rows)
    peer = peer_onnx(model)
    if not peer.is_file():
        child("onnx-export", model, peer)
    onnx_rt = child("onnxruntime", model, data)
    hf = child("hf-pipeline", model, data)
    name = f"BERT peers ({Path(model).name})"
    whole = rows / ours["seconds"]
    lines = [
        {
            "family": name,
            "approach": f"emoji-batch score ({ours['precision']})",
            "rows": rows,
            "tweets_per_s": whole,
            "rss_mb": ours["rss_mb"],
            "note": f"whole process; {ours['fallback_rows']:,} near-tie rows redone in fp32; "
            f"top-1 same as fp32: {100 * agreement(top1, fp32_top1):.2f}%",
        },
        {
            "family": name,
            "approach": "emoji-batch score (fp32)",
            "rows": rows,
            "tweets_per_s": rows / exact["seconds"],
            "rss_mb": exact["rss_mb"],
            "note": "whole process",
        },
        {
            "family": name,
            "approach": "ONNX Runtime, dynamic int8 (Optimum's recipe)",
            "rows": rows,
            "tweets_per_s": rows / onnx_rt["process_s"],
            "rss_mb": onnx_rt["rss_mb"],
            "note": f"whole process (after start-up: {rows / onnx_rt['seconds']:,.0f}/s); "
            f"top-1 same as fp32: {100 * agreement(onnx_rt['top1'], fp32_top1):.2f}%",
        },
        {
            "family": name,
            "approach": "hf-pipeline (PyTorch fp32)",
            "rows": rows,
            "tweets_per_s": rows / hf["seconds"],
            "rss_mb": hf["rss_mb"],
            "note": "texts in memory to probabilities, start-up not counted (in its favour); "
            f"top-1 same as fp32: {100 * agreement(hf['top1'], fp32_top1):.2f}%",
        },
    ]
    for line in lines[1:]:
        line["ratio"] = whole / line["tweets_per_s"]
    kind = cpu_class()
    verdicts = []
    for line, target in ((lines[3], HF_TARGET[kind]), (lines[2], ORT_TARGET)):
        met = "met" if line["ratio"] >= target else "MISSED"
        verdicts.append(
            f"- {lines[0]['approach']} vs {line['approach']}: {line['ratio']:.2f}x "
            f"(target on this {kind} CPU: >= {target}x): {met}"
        )
    return lines, verdicts


def memory_and_chunks(model: str, small: int, large: int) -> list[str]:
    import polars as pl

    report = []
    rss = {}
    for rows in (small, large):
        result = score_e2e(model, tweets_file(rows, "parquet"))
        rss[rows] = result["rss_mb"]
        report.append(
            f"- `score` of {rows:,} rows (Parquet, {model}): peak RSS {result['rss_mb']:,.0f} MB, "
            f"{rows / result['seconds']:,.0f} tweets/s"
        )
    report.append(f"- peak RSS {large:,} / {small:,} rows: {rss[large] / rss[small]:.3f}")
    data = tweets_file(small, "parquet")
    outputs = []
    for chunk_rows in (7_919, 50_000):
        result = score_e2e(model, data, "--chunk-rows", str(chunk_rows))
        outputs.append(pl.read_parquet(result["output"]))
    same = outputs[0].equals(outputs[1])
    emoji = [c for c in outputs[0].columns if c.startswith("emoji_")]
    probs = [c for c in outputs[0].columns if c.startswith("prob_")]
    same_emoji = outputs[0].select(emoji).equals(outputs[1].select(emoji))
    gap = max(
        float(np.nanmax(np.abs(outputs[0][c].to_numpy() - outputs[1][c].to_numpy()))) for c in probs
    )
    report.append(
        f"- outputs of --chunk-rows 7919 and 50000 on {small:,} rows identical: {same} "
        f"(emoji columns identical: {same_emoji}; largest probability difference {gap:.1e})"
    )
    csv_data = tweets_file(small, "csv")
    result = score_e2e(model, csv_data)
    report.append(
        f"- `score` of {small:,} rows from CSV to CSV ({model}): "
        f"{small / result['seconds']:,.0f} tweets/s, peak RSS {result['rss_mb']:,.0f} MB"
    )
    return report


def table(lines: list[dict[str, Any]]) -> str:
    out = [
        "| family | approach | rows | tweets/s | peak RSS | emoji-batch / this | note |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for line in lines:
        ratio = f"{line['ratio']:.2f}x" if "ratio" in line else ""
        out.append(
            f"| {line['family']} | {line['approach']} | {line['rows']:,} | "
            f"{line['tweets_per_s']:,.0f} | {line['rss_mb']:,.0f} MB | {ratio} | {line['note']} |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # The shipped bundles by path: a name would find a local ./models/NAME first.
    parser.add_argument("--bert-model", default=str(SHIPPED / "fine_tuned_bert"))
    parser.add_argument("--glove-model", default=str(SHIPPED / "glove_cnn"))
    parser.add_argument("--default-model", default=str(SHIPPED / DEFAULT_MODEL))
    parser.add_argument("--default-rows", type=int, default=1_000_000)
    parser.add_argument("--bert-rows", type=int, default=20_000)
    parser.add_argument(
        "--bert-peer-rows", type=int, default=20_000, help="rows for BERT against its peers"
    )
    parser.add_argument("--glove-rows", type=int, default=1_000_000)
    parser.add_argument(
        "--bert-alt-rows", type=int, default=5_000, help="rows for the BERT alternatives"
    )
    parser.add_argument("--glove-alt-rows", type=int, default=50_000)
    parser.add_argument("--memory-rows", type=int, nargs=2, default=[100_000, 1_000_000])
    parser.add_argument("--spark-rows", type=int, default=1_000_000)
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument("--startup-runs", type=int, default=5)
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["default", "bert", "glove", "spark", "memory", "startup"],
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run = {
            "notebook": run_notebook,
            "hf-pipeline": run_hf_pipeline,
            "onnx-export": run_onnx_export,
            "onnxruntime": run_onnxruntime,
        }[args.child]
        print(json.dumps(run(args.model, args.data)))
        return

    print(f"machine: {machine()}")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}\n", flush=True)
    lines, verdicts = [], []
    if "default" not in args.skip:
        name = Path(args.default_model).name
        default = family(f"default ({name})", args.default_model, args.default_rows, 5_000, [])
        lines += default
        rate = default[0]["tweets_per_s"]
        met = "met" if rate >= DEFAULT_TWEETS_PER_S else "MISSED"
        verdicts.append(
            f"default {name}: {rate:,.0f} tweets/s whole process on {args.default_rows:,} rows "
            f"(target >= {DEFAULT_TWEETS_PER_S:,}: {met})"
        )
    if "bert" not in args.skip:
        if not Path(args.bert_model, "manifest.json").is_file():
            sys.exit(
                f"{args.bert_model} is not a bundle: train it with "
                "`training/train_all.sh fine_tuned_bert`, or pass --bert-model or --skip bert"
            )
        lines += family("BERT", args.bert_model, args.bert_rows, args.bert_alt_rows, ["notebook"])
        peers, bert_verdicts = bert_peers(args.bert_model, args.bert_peer_rows)
        lines += peers
        verdicts += bert_verdicts
    if "glove" not in args.skip:
        lines += family(
            "GloVe", args.glove_model, args.glove_rows, args.glove_alt_rows, ["notebook"]
        )
    if "spark" not in args.skip:
        lines += spark(args.default_model, args.spark_rows, args.spark_master)
    if lines:
        print(table(lines), flush=True)
    if verdicts:
        print("\n" + "\n".join(verdicts), flush=True)
    if "memory" not in args.skip:
        print("\n" + "\n".join(memory_and_chunks(args.default_model, *args.memory_rows)))
    if "startup" not in args.skip:
        print("\n" + start_up(args.default_model, args.bert_model, args.startup_runs))


if __name__ == "__main__":
    main()
