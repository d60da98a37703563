"""``train ngram_svm``: a convex n-gram model trained without TensorFlow, calibrated on the
validation set, pruned, and scored in NumPy exactly as its features were computed."""

import json
from pathlib import Path

import numpy as np
import pytest

from emoji_batch.bundle import load_bundle
from emoji_batch.evaluate import evaluate_file
from emoji_batch.evaluation import expected_calibration_error
from emoji_batch.ngram import NgramEncoder
from emoji_batch.predictor import Predictor
from emoji_batch.train_linear import features, fit_calibration, fit_label_biases, softmax
from tests.helpers import make_rows, modules_loaded_by, run_cli, train_args, write_labelled

TEXTS = ["i love you mom", "lol so funny", "merry christmas tree", "a b", ""]


@pytest.fixture(scope="module")
def svm(tiny_data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("svm") / "tiny_svm"
    args = train_args("ngram_svm", tiny_data, out, "--text-column", "TEXT")
    args += ["--label-column", "Label", "--class-weight", "balanced"]
    args += ["--set", "max_features=60", "--set", "char_ngrams=[1,4]", "--set", "C=0.5"]
    assert run_cli(args) == 0
    return out


def test_features_are_what_the_numpy_runtime_computes() -> None:
    """The sparse rows the solver sees, times the weights, are the runtime's logits."""
    encoder, idf = NgramEncoder.fit(
        [t for t, _ in make_rows(50, 3)], (1, 2), (1, 4), min_df=1, char_analyzer="char"
    )
    rng = np.random.default_rng(0)
    table = rng.normal(size=(len(encoder), 3)).astype(np.float32)
    table[0] = 0
    x = features(encoder, idf, TEXTS, 2048)
    norms = [np.linalg.norm(x[i].toarray()[0, 1 : encoder.n_words + 1]) for i in range(3)]
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)
    from emoji_batch.predictor import pad_batch
    from emoji_batch.runtimes import NgramRuntime

    runtime = NgramRuntime(table, idf, np.zeros(3, np.float32), encoder.n_words)
    probs = runtime(pad_batch(encoder.encode(TEXTS, 2048)))
    np.testing.assert_allclose(probs, softmax(np.asarray(x @ table)), atol=1e-5)


def test_trained_bundle_scores_in_numpy_and_reproduces_its_metrics(
    svm: Path, tiny_data: dict[str, Path]
) -> None:
    manifest = json.loads((svm / "manifest.json").read_text())
    assert manifest["architecture"] == "ngram_svm" and manifest["cleaning_version"] == "2"
    assert manifest["config"]["n_features"] == 61  # 60 kept + padding
    assert manifest["training"]["solver"] == "LinearSVC"
    assert manifest["training"]["config"]["data"] == [str(tiny_data["train"])]
    assert 0 <= manifest["metrics"]["ece"] <= 1
    report = evaluate_file(
        tiny_data["val"], model=str(svm), text_column="TEXT", label_column="Label"
    )
    assert round(100 * report.macro_f1, 2) == manifest["metrics"]["macro_f1"]
    assert report.macro_f1 > 0.9  # the cues give the labels away
    probs = Predictor(load_bundle(svm)).predict_proba(TEXTS[:3])
    assert probs.argmax(axis=1).tolist() == [0, 2, 1]


def test_training_and_scoring_never_import_tensorflow(
    svm: Path, tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    heavy = ("tensorflow", "tf_keras", "sklearn")
    loaded, _ = modules_loaded_by(["predict", "--model", svm, "i love you"], heavy)
    assert loaded == []
    args = train_args("ngram_svm", tiny_data, tmp_path / "again", "--text-column", "TEXT")
    loaded, _ = modules_loaded_by([*args, "--label-column", "Label"], heavy)
    assert loaded == ["sklearn"]


def test_keras_options_are_refused(tiny_data: dict[str, Path], tmp_path: Path, capsys) -> None:
    args = train_args("ngram_svm", tiny_data, tmp_path / "x", "--text-column", "TEXT")
    assert run_cli([*args, "--label-column", "Label", "--max-epochs", "3"]) == 2
    assert "--max-epochs: not an option of train ngram_svm" in capsys.readouterr().err
    no_val = train_args("ngram_svm", tiny_data, tmp_path / "y", "--text-column", "TEXT", val=False)
    assert run_cli([*no_val, "--label-column", "Label"]) == 2
    assert "needs --val" in capsys.readouterr().err
    bad = [*args, "--label-column", "Label", "--set", "loss=cubic"]
    assert run_cli(bad) == 2 and "loss must be one of" in capsys.readouterr().err


def test_calibration_fits_a_known_temperature() -> None:
    """Margins drawn from a softmax at temperature 0.5: the fitted temperature is near
    it, the power stays 0 on a uniform prior, and the calibrated ECE is small."""
    rng = np.random.default_rng(1)
    margins = rng.normal(size=(4000, 4)) * 2
    probs = softmax(margins / 0.5)
    y = np.array([rng.choice(4, p=p) for p in probs])
    temperature, power, f1 = fit_calibration(margins, y, np.full(4, 0.25))
    assert abs(temperature - 0.5) < 0.05 and power == 0.0 and f1 > 50
    assert expected_calibration_error(y, softmax(margins / temperature)) < 0.03
    assert expected_calibration_error(y, softmax(margins / 5.0)) > 0.2


def test_expected_calibration_error_by_hand() -> None:
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.3, 0.7]])
    y = np.array([0, 1, 0, 1])
    # Bins: 0.9 (two rows, one right: gap 0.4), 0.6 (right: gap 0.4), 0.7 (right: 0.3).
    assert expected_calibration_error(y, probs) == pytest.approx((2 * 0.4 + 0.4 + 0.3) / 4)


def test_evaluate_record_adds_the_summary_to_the_manifest(
    svm: Path, tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(svm, copy)
    before = json.loads((copy / "manifest.json").read_text())
    args = ["evaluate", "--model", copy, "--data", tiny_data["train"], "--text-column", "TEXT"]
    assert run_cli([*args, "--label-column", "Label", "--record"]) == 0
    after = json.loads((copy / "manifest.json").read_text())
    recorded = after["metrics"].pop("evaluated")["Train.csv"]
    assert after == before and recorded["rows"] == 240 and recorded["precision"] == "fp32"


def test_label_biases_are_kept_only_when_cross_fitting_says_so() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 600)
    logits = rng.normal(size=(600, 3))
    logits[np.arange(600), y] += 1.5
    logits[:, 2] -= 2.0  # label 2 is rarely predicted, which costs macro-F1
    offsets, scores = fit_label_biases(softmax(logits), y, seed=0)
    assert offsets is not None and offsets[2] > 0.5
    assert scores["with"] > scores["without"] + 5
    right = np.full((600, 3), 0.1)
    right[np.arange(600), y] = 0.8  # already perfect: nothing to gain
    offsets, scores = fit_label_biases(right, y, seed=0)
    assert offsets is None and scores == {"without": 100.0, "with": 100.0}
    offsets, scores = fit_label_biases(right[:2], y[:2], seed=0)
    assert offsets is None and set(scores) == {"without"}  # too few rows to cross-fit


def test_evaluate_says_when_the_data_is_what_the_model_was_fitted_on(
    svm: Path, tiny_data: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Its validation set chose its calibration, its training data its weights: figures
    on them are in-sample, and evaluate says so; on other data it says nothing."""
    for data, how in ((tiny_data["val"], "calibrated on"), (tiny_data["train"], "trained on")):
        caplog.clear()
        evaluate_file(data, model=str(svm), text_column="TEXT", label_column="Label")
        warned = [r.getMessage() for r in caplog.records if "in-sample" in r.getMessage()]
        assert len(warned) == 1 and how in warned[0] and data.name in warned[0]
    caplog.clear()
    other = write_labelled(tmp_path / "Other.csv", make_rows(60, 7))
    evaluate_file(other, model=str(svm), text_column="TEXT", label_column="Label")
    assert not [r for r in caplog.records if "in-sample" in r.getMessage()]
