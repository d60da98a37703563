"""The scoring install (``pip install emoji-batch``, no training extra) scores, and what
needs ``emoji-batch[train]`` says so in one line with exit code 2.

Each check runs the CLI in a fresh interpreter where the training install's packages
(and the other extras') cannot be imported, as in a venv without them: their
``sys.modules`` entries are None before ``emoji_batch`` is imported, so ``import`` raises
ImportError and ``importlib.util.find_spec`` finds nothing.
"""

import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from emoji_batch import device
from emoji_batch.extras import TRAIN_INSTALL, TRAIN_PACKAGES
from tests.helpers import run_cli

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "tweets.parquet"
# What the scoring install lacks: the training extra (with Keras 3, TensorFlow's own),
# and the spark, app and bench extras. (Not pandas: pyarrow looks it up in sys.modules
# itself, and a None entry breaks it where a missing pandas does not.)
ABSENT = (*TRAIN_PACKAGES, "keras", "pyspark", "streamlit", "altair", "torch")


def run_without_extras(body: str) -> subprocess.CompletedProcess[str]:
    """Run Python ``body`` in a fresh interpreter without the ABSENT packages."""
    code = f"import sys\nfor name in {ABSENT!r}:\n    sys.modules[name] = None\n{body}\n"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT
    )


def cli_without_extras(*args: object) -> subprocess.CompletedProcess[str]:
    return run_without_extras(f"from emoji_batch.cli import main\nmain({[str(a) for a in args]!r})")


def test_base_dependencies_leave_the_training_packages_to_the_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(requirements: list[str]) -> set[str]:
        return {
            r.split(";")[0].split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip()
            for r in requirements
        }

    base = names(project["dependencies"])
    extras = project["optional-dependencies"]
    training = set(TRAIN_PACKAGES.values())
    assert not base & (training | {"torch", "pyspark", "pandas", "streamlit"})
    assert {"ai-edge-litert", "onnxruntime", "tokenizers", "polars", "numpy"} <= base
    assert names(extras["train"]) == training
    assert any(r.startswith("emoji-batch[") and "train" in r for r in extras["dev"])


def test_the_training_packages_are_really_absent_in_the_check() -> None:
    """The blocker works: otherwise every test below would pass for nothing."""
    done = run_without_extras(
        "import importlib.util\n"
        f"print([importlib.util.find_spec(n) for n in {tuple(TRAIN_PACKAGES)!r}])\n"
        "import sklearn.metrics"
    )
    assert done.stdout.strip() == str([None] * len(TRAIN_PACKAGES))
    assert "ModuleNotFoundError" in done.stderr


@pytest.mark.parametrize("model", ["ngram_svm", "fine_tuned_bert"])
def test_predict_and_score_without_the_training_install(model: str, tmp_path: Path) -> None:
    done = cli_without_extras("predict", "--model", model, "--json", "merry christmas!")
    assert done.returncode == 0, done.stderr
    assert '"emoji"' in done.stdout

    out = tmp_path / "scored.parquet"
    done = cli_without_extras("score", SAMPLE, "-o", out, "--model", model)
    assert done.returncode == 0, done.stderr
    full = tmp_path / "full.parquet"  # the same command with everything installed
    assert run_cli(["score", SAMPLE, "-o", full, "--model", model]) == 0
    scored, expected = pl.read_parquet(out), pl.read_parquet(full)
    assert scored.height == 300 and scored["score_error"].null_count() == 298
    assert scored["emoji_1"].to_list() == expected["emoji_1"].to_list()
    np.testing.assert_allclose(scored["prob_1"].to_numpy(), expected["prob_1"].to_numpy())


@pytest.mark.parametrize("model", ["ngram_svm", "fine_tuned_bert"])
def test_evaluate_without_the_training_install(model: str, tiny_data: dict[str, Path]) -> None:
    done = cli_without_extras("evaluate", "--data", tiny_data["val"], "--model", model)
    assert done.returncode == 0, done.stderr
    assert "macro-F1" in done.stdout and "60 rows" in done.stdout


def test_models_list_help_and_the_python_api_without_the_training_install() -> None:
    done = cli_without_extras("models", "list")
    assert done.returncode == 0, done.stderr
    assert "ngram_svm  [default]" in done.stdout
    for command in ("train", "quantize", "ensemble", "evaluate", "score", "predict", "app"):
        done = cli_without_extras(command, "--help")
        assert done.returncode == 0 and "Usage:" in done.stdout, (command, done.stderr)
    done = run_without_extras(
        "import emoji_batch\n"
        "model = emoji_batch.load('fine_tuned_bert')\n"
        "print(model.precision, model.device, model.predict(['merry christmas!'])[0].top[0][0])"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("int8 /CPU:0 ")


@pytest.mark.parametrize(
    "args",
    [
        ["train", "ngram_svm", "--data", "{train}", "--val", "{val}", "-o", "{out}"],
        ["train", "glove_cnn", "--data", "{train}", "-o", "{out}"],
        ["train", "emoji_position", "--data", "{train}", "-o", "{out}"],
        ["quantize", "fine_tuned_bert", "--data", "{val}"],
        ["ensemble", "fine_tuned_bert", "ngram_svm", "--data", "{val}", "-o", "{out}"],
        ["predict", "--model", "glove_cnn", "hi"],
        ["predict", "--model", "fine_tuned_bert", "--precision", "fp32", "hi"],
        ["predict", "--device", "gpu", "hi"],
        ["score", "{val}", "-o", "{scored}", "--model", "glove_cnn", "--precision", "int8"],
        ["evaluate", "--data", "{val}", "--report-dir", "{out}"],
    ],
    ids=lambda args: " ".join(a for a in args if not a.startswith("{")),
)
def test_what_needs_the_training_install_says_so_in_one_line(
    args: list[str], tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    out, scored = tmp_path / "out", tmp_path / "scored.csv"
    paths = {"train": tiny_data["train"], "val": tiny_data["val"], "out": out, "scored": scored}
    done = cli_without_extras(*(a.format(**paths) for a in args))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "needs the training install" in lines[0] and lines[0].endswith(TRAIN_INSTALL)
    assert not out.exists() and not scored.exists()  # refused before writing anything


def test_auto_device_is_the_cpu_without_tensorflow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Even where a GPU might be, a scoring install answers CPU without asking TensorFlow."""
    monkeypatch.setattr(device, "_no_gpu_possible", lambda: False)
    monkeypatch.setattr(device, "installed", lambda module: module != "tensorflow")
    assert device.resolve_device("auto") == "/CPU:0"


def test_evaluation_metrics_are_sklearns_without_sklearn() -> None:
    """evaluate_probs computes in NumPy what scikit-learn's metrics give (checked here,
    where it is installed), labels absent from the data or the predictions included."""
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    from emoji_batch.evaluation import evaluate_probs
    from emoji_batch.labels import Label

    labels = [Label(2 * i, "x", f"label{i}") for i in range(6)]
    ids = [label.id for label in labels]
    rng = np.random.default_rng(3)
    for n in (1, 7, 40):
        probs = rng.dirichlet(np.full(6, 0.3), size=n)
        y = rng.choice(ids[:4], size=n)
        report = evaluate_probs(y, probs, labels, "data")
        pred = np.asarray(ids)[probs.argmax(axis=1)]
        p, r, f, s = precision_recall_fscore_support(y, pred, labels=ids, zero_division=0)
        np.testing.assert_allclose([c.precision for c in report.per_class], p, rtol=1e-12)
        np.testing.assert_allclose([c.recall for c in report.per_class], r, rtol=1e-12)
        np.testing.assert_allclose([c.f1 for c in report.per_class], f, rtol=1e-12)
        assert [c.support for c in report.per_class] == s.tolist()
        macro = f1_score(y, pred, labels=ids, average="macro", zero_division=0)
        assert report.macro_f1 == pytest.approx(macro, rel=1e-12)
        assert report.accuracy == np.mean(y == pred)
        assert report.confusion == confusion_matrix(y, pred, labels=ids).tolist()
