"""Helpers the tests share: tiny labelled data, running the real entry point in-process
or in a fresh interpreter, and training with its in-memory model captured.

Fixtures live in conftest.py; plain functions and constants live here and are imported
(``from tests.helpers import run_cli``).
"""

import ast
import contextlib
import csv
import os
import random
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from emoji_batch.cli import main

ROOT = Path(__file__).parent.parent

# Three labels, each with words that give it away, so a tiny model learns something.
CUES = {0: ["love", "heart", "mom"], 1: ["tree", "christmas", "santa"], 2: ["lol", "funny", "joke"]}
FILLER = ["the", "a", "today", "with", "my", "so", "is", "this", "@user", "#happy", "!"]
EMOJI = ["❤", "🎄", "😂"]


def make_rows(n: int, seed: int) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.randrange(3)
        words = rng.sample(FILLER, 4) + [rng.choice(CUES[label]) for _ in range(2)]
        rng.shuffle(words)
        rows.append((" ".join(words), label))
    return rows


def write_labelled(path: Path, rows: list[tuple[str, int]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "TEXT", "Label"])
        w.writerows((i, text, label) for i, (text, label) in enumerate(rows))
    return path


def run_cli(args: list[str]) -> int:
    """Run the real entry point in-process and return its exit code."""
    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        return int(exc.code or 0)
    raise AssertionError("main() must always exit")


def train_args(
    name: str,
    data: dict[str, Path],
    out: Path,
    *extra: object,
    val: bool = True,
    encoder: Path | None = None,
) -> list:
    """``emoji-batch train NAME`` on the tiny data: GloVe file, or ``encoder`` for BERT
    (n-gram models take neither)."""
    from emoji_batch.architectures import ARCHITECTURES

    args: list = ["train", name, "--data", data["train"], "--mapping", data["mapping"]]
    args += ["--val", data["val"]] if val else []
    if encoder:
        args += ["--encoder", encoder]
    elif ARCHITECTURES[name].family != "ngram":
        args += ["--embeddings", data["glove"]]
    return [*args, "--output", out, *extra]


PROBE_TEXTS = ["I love you mom", "merry christmas santa", "lol so funny", "", "unknown words only"]


def modules_loaded_by(args: list, modules: tuple[str, ...]) -> tuple[list[str], str]:
    """Run ``emoji-batch ARGS`` in a fresh interpreter (it must exit 0); return which of
    ``modules`` it imported, and its stderr."""
    code = (
        "import sys\n"
        "from emoji_batch.cli import main\n"
        "try:\n"
        f"    main({[str(a) for a in args]!r})\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        f"print(sorted(m for m in {modules!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    return ast.literal_eval(done.stdout.splitlines()[-1]), done.stderr


@contextlib.contextmanager
def eager_functions() -> Iterator[None]:
    """Every ``tf.function`` runs eagerly inside: for a few steps of tiny data, tracing
    the training graphs (forward and backward; for an LSTM both of its kernel choices)
    was most of a test's time. What is built, trained and saved is the same; bundles
    loaded afterwards predict in graph mode, as ``score`` does, and the session's tiny
    CNN below is trained in graph mode."""
    import tensorflow as tf

    tf.config.run_functions_eagerly(True)
    try:
        with warnings.catch_warnings():  # tf.data's own functions stay traced: fine here
            warnings.filterwarnings("ignore", message="Even though the `tf.config.experimen")
            yield
    finally:
        tf.config.run_functions_eagerly(False)


def train_capturing(args: list, texts: list[str] = PROBE_TEXTS) -> tuple[int, np.ndarray | None]:
    """Run ``emoji-batch train`` in-process and return its exit code and the trained
    in-memory model's probabilities for ``texts``, taken just before the bundle is written
    (calibration included), so a test can hold the reloaded bundle to them."""
    from emoji_batch import train
    from emoji_batch.bundle import Bundle, model_weights
    from emoji_batch.predictor import Predictor

    seen: list[np.ndarray] = []
    save = train.save_bundle

    def predict_then_save(
        directory: Path, manifest: Any, model: Any, encoder: Any, *rest: Any
    ) -> None:
        bundle = Bundle(directory, manifest, model_weights(model), encoder, model)
        seen.append(Predictor(bundle).predict_proba(texts))
        save(directory, manifest, model, encoder, *rest)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train, "save_bundle", predict_then_save)
        code = run_cli(args)
    return code, (seen[-1] if seen else None)


def run_cli_process(*args: object, **kwargs: object) -> subprocess.CompletedProcess:
    """Run ``python -m emoji_batch ARGS`` in a fresh interpreter with this checkout first
    on its path; return what it wrote and its exit code (never raises on one)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "emoji_batch", *map(str, args)],
        capture_output=True,
        env=env,
        timeout=300,
        check=False,
        **kwargs,  # type: ignore[arg-type]
    )
