"""Ensemble bundles: fitted on labelled data, scored as one model, refused if a member
changes."""

import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from emoji_batch.bundle import load_bundle
from emoji_batch.ensemble import EnsemblePredictor, Mix, load_ensemble
from emoji_batch.ensemble_fit import fit_mix
from emoji_batch.evaluation import macro_f1
from emoji_batch.predictor import Predictor
from tests.helpers import run_cli, train_args

TEXTS = ["i love you mom", "merry christmas santa tree", "lol so funny", "zzz unknown"]


@pytest.fixture(scope="module")
def members(tiny_data: dict[str, Path], tiny_cnn: Path, tmp_path_factory) -> list[Path]:
    """Two small bundles of different families (GloVe CNN, n-grams), side by side in one
    models directory."""
    root = tmp_path_factory.mktemp("members")
    cnn = Path(shutil.copytree(tiny_cnn, root / "tiny_cnn"))
    ngram = root / "tiny_ngram"
    args = train_args("ngram_linear", tiny_data, ngram, "--max-epochs", 3, "--batch-size", 16)
    assert run_cli([*args, "--seed", 13]) == 0
    return [cnn, ngram]


@pytest.fixture(scope="module")
def fitted(members: list[Path], tiny_data: dict[str, Path]) -> Path:
    """The ensemble, fitted once, beside its members."""
    out = members[0].parent / "tiny_ensemble"
    args = ["ensemble", *members, "--data", tiny_data["val"], "--output", out]
    assert run_cli([*args, "--text-column", "TEXT", "--label-column", "Label"]) == 0
    return out


@pytest.fixture
def ensemble(fitted: Path, tmp_path: Path) -> Path:
    """A copy of the ensemble and its members, so a test may tamper with them."""
    root = Path(shutil.copytree(fitted.parent, tmp_path / "models"))
    return root / fitted.name


def test_fit_mix_finds_the_better_member() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 400)
    good = np.eye(4)[y] * 0.6 + rng.random((400, 4)) * 0.5
    noise = rng.random((400, 4))
    probs = [p / p.sum(axis=1, keepdims=True) for p in (noise, good)]
    mix, f1 = fit_mix(probs, y, np.full(4, 0.25))
    assert mix.weights[1] > mix.weights[0]
    assert f1 == macro_f1(y, mix.apply(probs, np.full(4, 0.25)))
    assert f1 >= macro_f1(y, probs[1])


def test_ensemble_manifest_names_members_by_path_and_hash(ensemble: Path) -> None:
    manifest = json.loads((ensemble / "manifest.json").read_text())
    assert manifest["kind"] == "ensemble"
    assert [m["path"] for m in manifest["members"]] == ["../tiny_cnn", "../tiny_ngram"]
    assert all(len(m["sha256"]) == 64 for m in manifest["members"])
    assert sum(m["weight"] for m in manifest["members"]) == pytest.approx(1.0)
    assert "cross-fitted" in manifest["metrics"]["dataset"]
    assert "halves" in manifest["evaluation"]["protocol"]


def test_cross_fitted_metrics_score_each_half_with_the_other_halfs_mix(
    ensemble: Path, tiny_data: dict[str, Path]
) -> None:
    """The recorded macro-F1 is out of fold: each stratified half (seed 13) scored with
    the mix recorded for it, and that mix is the one fitted on the other half alone."""
    from sklearn.model_selection import StratifiedKFold

    manifest = json.loads((ensemble / "manifest.json").read_text())
    loaded = load_ensemble(ensemble)
    val = pl.read_csv(tiny_data["val"])
    y = val["Label"].to_numpy()
    probs = [Predictor(m).predict_proba(val["TEXT"].to_list()) for m in loaded.members]
    folds = StratifiedKFold(n_splits=2, shuffle=True, random_state=13).split(y, y)
    cross = np.zeros_like(probs[0])
    for (fit_rows, held_out), recorded in zip(
        folds, manifest["evaluation"]["fold_mixes"], strict=True
    ):
        biases = recorded["label_biases"]
        mix = Mix(
            tuple(recorded["weights"]),
            recorded["mixing"],
            recorded["prior_power"],
            None if biases is None else tuple(biases),
        )
        with_biases = biases is not None
        refit, _ = fit_mix([p[fit_rows] for p in probs], y[fit_rows], loaded.prior, with_biases)
        assert refit == mix  # fitted on the other half, never on the rows it scores
        cross[held_out] = mix.apply([p[held_out] for p in probs], loaded.prior)
    assert round(100 * macro_f1(y, cross), 2) == manifest["metrics"]["macro_f1"]
    in_sample = loaded.mix.apply(probs, loaded.prior)
    assert round(100 * macro_f1(y, in_sample), 2) == manifest["evaluation"]["in_sample_macro_f1"]


def test_reloaded_ensemble_gives_the_mix_of_its_members(ensemble: Path) -> None:
    loaded = load_ensemble(ensemble)
    members = [Predictor(load_bundle(m.directory)).predict_proba(TEXTS) for m in loaded.members]
    expected = Mix(
        loaded.mix.weights, loaded.mix.mixing, loaded.mix.prior_power, loaded.mix.biases
    ).apply(members, loaded.prior)
    probs = EnsemblePredictor(loaded).predict_proba(TEXTS)
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_a_member_weighted_zero_is_not_run(ensemble: Path) -> None:
    """A member the mix weighs 0 is never loaded into a predictor, and the result is
    the full mix's (its log-probabilities would be multiplied by 0)."""
    loaded = load_ensemble(ensemble)
    weights = (0.0, *loaded.mix.weights[1:])
    weights = tuple(w / sum(weights) for w in weights)
    loaded.mix = Mix(weights, loaded.mix.mixing, loaded.mix.prior_power)
    members = [Predictor(load_bundle(m.directory)).predict_proba(TEXTS) for m in loaded.members]
    expected = loaded.mix.apply(members, loaded.prior)
    predictor = EnsemblePredictor(loaded)
    assert [m.bundle.name for m in predictor.members] == [m.name for m in loaded.members[1:]]
    np.testing.assert_allclose(predictor.predict_proba(TEXTS), expected, atol=1e-6)


def test_score_evaluate_and_list_treat_it_as_one_model(
    ensemble: Path, tiny_data: dict[str, Path], tmp_path: Path, capsys
) -> None:
    out = tmp_path / "scored.csv"
    args = ["score", tiny_data["val"], "-o", out, "--model", ensemble, "--text-column", "TEXT"]
    assert run_cli([*args, "--chunk-rows", 7]) == 0
    scored = pl.read_csv(out)
    assert scored.height == 60 and scored["score_error"].null_count() == 60
    report = tmp_path / "report"
    evaluate = ["evaluate", "--model", ensemble, "--data", tiny_data["val"], "--report-dir", report]
    assert run_cli([*evaluate, "--text-column", "TEXT", "--label-column", "Label"]) == 0
    manifest = json.loads((ensemble / "manifest.json").read_text())
    measured = json.loads((report / "metrics.json").read_text())["macro_f1"]
    assert round(100 * measured, 2) == manifest["evaluation"]["in_sample_macro_f1"]
    capsys.readouterr()
    assert run_cli(["models", "list", "--models-dir", ensemble.parent]) == 0
    listing = capsys.readouterr().out
    assert "tiny_ensemble" in listing and "ensemble" in listing


@pytest.mark.parametrize("damage", ["tampered", "missing"])
def test_changed_or_missing_member_is_refused(
    ensemble: Path, tiny_data: dict[str, Path], tmp_path: Path, damage: str, capsys
) -> None:
    member = ensemble.parent / "tiny_cnn"
    if damage == "tampered":
        weights = member / "weights.safetensors"
        data = bytearray(weights.read_bytes())
        data[-1] ^= 1
        weights.write_bytes(bytes(data))
    else:
        shutil.rmtree(member)
    args = ["score", tiny_data["val"], "-o", tmp_path / "o.csv", "--model", ensemble]
    assert run_cli([*args, "--text-column", "TEXT"]) == 2
    err = capsys.readouterr().err
    assert ("changed since" if damage == "tampered" else "is missing") in err
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("case", ["one member", "labels differ", "output exists"])
def test_ensemble_refusals(
    case: str,
    members: list[Path],
    fitted: Path,
    tiny_data: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Usage errors (exit 2) that write nothing: one member, members whose labels differ
    in order, an existing OUTPUT without --force."""
    out = tmp_path / "out"
    chosen = list(members)
    if case == "one member":
        chosen, message = chosen[:1], "an ensemble needs at least two members"
    elif case == "labels differ":
        chosen[1] = Path(shutil.copytree(members[1], tmp_path / "reordered"))
        manifest = json.loads((chosen[1] / "manifest.json").read_text())
        manifest["labels"] = manifest["labels"][::-1]
        (chosen[1] / "manifest.json").write_text(json.dumps(manifest))
        message = "members must predict the same labels in the same order; reordered differs"
    else:
        out, message = fitted, "exists and is not empty; pass --force"
    before = sorted((p, p.stat().st_mtime_ns) for p in fitted.parent.rglob("*"))
    args = ["ensemble", *chosen, "--data", tiny_data["val"], "--output", out]
    assert run_cli([*args, "--text-column", "TEXT", "--label-column", "Label"]) == 2
    assert message in _error(capsys.readouterr().err)
    assert case == "output exists" or not out.exists()
    assert sorted((p, p.stat().st_mtime_ns) for p in fitted.parent.rglob("*")) == before


def test_biases_raise_macro_f1_where_the_argmax_neglects_a_label() -> None:
    """A label the probabilities always rank second is never predicted; an offset for
    it recovers it."""
    from emoji_batch.calibration import fit_biases

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=600)
    probs = np.full((600, 3), 0.1)
    probs[np.arange(600), y] = 0.5
    probs[y == 2, 0] = 0.6  # label 2 always loses to label 0
    probs /= probs.sum(axis=1, keepdims=True)
    before = macro_f1(y, probs)
    biases = fit_biases(probs, y)
    after = macro_f1(y, np.log(probs) + np.asarray(biases))
    assert after > before + 0.2 and biases[2] > biases[0]


def test_macro_f1_matches_scikit_learn() -> None:
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(5)
    for _ in range(5):
        probs, y = rng.random((300, 7)), rng.integers(0, 6, 300)  # label 6 never occurs
        expected = f1_score(
            y, probs.argmax(axis=1), average="macro", labels=np.arange(7), zero_division=0
        )
        assert macro_f1(y, probs) == pytest.approx(expected, abs=1e-12)


def test_members_are_fitted_in_the_precision_score_runs_them_at(
    members: list[Path], tiny_data: dict[str, Path], tmp_path: Path, monkeypatch
) -> None:

    from emoji_batch import predictor

    monkeypatch.setattr(predictor, "native_bf16", lambda: True)
    cnn = Path(shutil.copytree(members[0], tmp_path / "cnn"))
    manifest = json.loads((cnn / "manifest.json").read_text())
    check = {"precision": "bf16", "dataset": "Val.csv", "rows": 60, "fallback_margin": 0.0}
    check |= {"fallback_share": 0.0, "top1_agreement": 1.0, "agreement_without_fallback": 1.0}
    check |= {"fp32_macro_f1": 50.0, "macro_f1": 50.0}
    check |= {"fp32_tweets_per_second": 100.0, "tweets_per_second": 200.0}
    manifest["precisions"] = {"bf16": check}
    (cnn / "manifest.json").write_text(json.dumps(manifest))
    args = ["ensemble", cnn, members[1], "--data", tiny_data["val"]]
    args += ["--text-column", "TEXT", "--label-column", "Label"]
    for choice, expected in (("auto", ["bf16", "fp32"]), ("fp32", ["fp32", "fp32"])):
        out = tmp_path / f"ens_{choice}"
        assert run_cli([*args, "--output", out, "--precision", choice]) == 0
        written = json.loads((out / "manifest.json").read_text())
        assert [m["precision"] for m in written["members"]] == expected
        assert "what users run" in written["evaluation"]["protocol"]


@pytest.mark.parametrize("rows", ["0,love\n", "0,love\n1,tree\n"])
def test_data_too_small_to_cross_fit_is_a_usage_error(
    rows: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two stratified halves need two rows of one label at least: said, with exit 2,
    before any member scores a row."""
    data = tmp_path / "tiny.csv"
    data.write_text("label,text\n" + rows)
    shipped = Path(__file__).parent.parent / "emoji_batch" / "models"
    args = ["ensemble", shipped / "ngram_svm", shipped / "fine_tuned_bert", "--data", data]
    assert run_cli([*args, "--output", tmp_path / "out"]) == 2
    (error,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert "too few" in error and "at least 2 rows of one label" in error
    assert not (tmp_path / "out").exists()


SHIPPED = Path(__file__).parent.parent / "emoji_batch" / "models"


def _error(err: str) -> str:
    (line,) = [line for line in err.splitlines() if line.startswith("error")]
    return line


def test_an_ensemble_is_neither_a_member_nor_quantized(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data.csv"
    data.write_text("label,text\n0,love\n0,heart\n")
    ensemble = SHIPPED / "ensemble_bert_svm"
    args = ["ensemble", ensemble, SHIPPED / "ngram_svm", "--data", data, "-o", tmp_path / "o"]
    assert run_cli(args) == 2
    assert "ensembles cannot be members of an ensemble" in _error(capsys.readouterr().err)
    assert run_cli(["quantize", ensemble, "--data", data]) == 2
    assert "ensembles cannot be quantized" in _error(capsys.readouterr().err)


def test_reduced_precision_a_member_lacks_says_what_is_possible(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Quantizing the member would change the hash the ensemble records: not advised."""
    import json

    lacking = [
        name
        for name in ("fine_tuned_bert", "ngram_svm")
        if "int8" not in json.loads((SHIPPED / name / "manifest.json").read_text())["precisions"]
    ]
    assert lacking, "some shipped member must lack int8 for this test"
    args = ["predict", "hello", "--model", "ensemble_bert_svm", "--device", "cpu"]
    assert run_cli([*args, "--precision", "int8"]) == 2
    error = _error(capsys.readouterr().err)
    said = "members " + ", ".join(lacking) if len(lacking) > 1 else "member " + lacking[0]
    assert f"{said} {'have' if len(lacking) > 1 else 'has'} no checked int8" in error
    assert "--precision auto" in error
    assert "emoji-batch quantize" not in error


@pytest.mark.parametrize("weights", [[0.0, 0.0], [-0.5, 1.5], [float("nan"), 1.0]])
def test_bad_member_weights_are_refused_when_loading(
    ensemble: Path, tiny_data: dict[str, Path], tmp_path: Path, weights: list, capsys
) -> None:
    manifest = json.loads((ensemble / "manifest.json").read_text())
    for member, weight in zip(manifest["members"], weights, strict=True):
        member["weight"] = weight
    (ensemble / "manifest.json").write_text(json.dumps(manifest))
    args = ["score", tiny_data["val"], "-o", tmp_path / "o.csv", "--model", ensemble]
    assert run_cli([*args, "--text-column", "TEXT"]) == 2
    assert "member weights must be finite, non-negative and not all 0" in capsys.readouterr().err


def test_members_must_share_one_cleaning_version(
    ensemble: Path, tiny_data: dict[str, Path], tmp_path: Path, capsys
) -> None:
    member = ensemble.parent / "tiny_cnn"
    manifest = json.loads((member / "manifest.json").read_text())
    (member / "manifest.json").write_text(json.dumps({**manifest, "cleaning_version": "1"}))
    args = ["ensemble", member, ensemble.parent / "tiny_ngram", "--data", tiny_data["val"]]
    args += ["--output", tmp_path / "mixed", "--text-column", "TEXT", "--label-column", "Label"]
    assert run_cli(args) == 2
    assert "members must share one cleaning version" in capsys.readouterr().err


def test_evaluate_on_the_mix_data_says_it_is_in_sample(
    fitted: Path, tiny_data: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    from emoji_batch.evaluate import evaluate_file

    manifest = json.loads((fitted / "manifest.json").read_text())
    evaluate_file(tiny_data["val"], model=str(fitted), text_column="TEXT", label_column="Label")
    warned = [r.getMessage() for r in caplog.records if "in-sample" in r.getMessage()]
    assert len(warned) == 1
    assert (
        f"mixed on; its cross-fitted macro-F1 there is {manifest['metrics']['macro_f1']}"
        in (warned[0])
    )
