"""The emoji-position model: markers to gaps, exact insertion, rules, fitting and bundles."""

import csv
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from emoji_batch.bundle import shipped_models_dir
from emoji_batch.errors import ModelError
from emoji_batch.position import (
    KIND,
    PositionModel,
    insert_emoji,
    load_position_model,
    marked_gaps,
    rule_before_checkin,
    rule_before_trailing,
    rule_end,
)
from emoji_batch.position_fit import fit_position_model
from tests.helpers import run_cli

M = "\ufe0f"
TREE = "🎄"
WORDS = ["so", "happy", "today", "with", "my", "family", "the", "best", "day", "ever"]
SAMPLE = Path(__file__).parent.parent / "sample_data" / "tweets.csv"
PLACES = ["Venice Beach", "Omnia Night Club", "Abbot Kinney, Venice", "Home"]


@pytest.mark.parametrize(
    ("text", "unmarked", "gaps"),
    [
        (f"I {M} the people I work with", "I the people I work with", {1}),
        (f"Last night {M} @ Omnia ", "Last night @ Omnia", {2}),
        (f"@user {M} {M} {M} @ Abbot Kinney, Venice", "@user @ Abbot Kinney, Venice", {1}),
        (f"{M} first {M}{M} and last {M}", "first and last", {0, 1, 3}),
        (f"glued {M}start and end{M} !", "glued start and end !", {1, 4}),
        (f"zwj \u200d{M} run\tand\nnewline", "zwj run and newline", {1}),
        (f"in{M}side", "inside", set()),
        ("no markers here", "no markers here", set()),
        ("", "", set()),
        (f" {M} ", "", {0}),
    ],
)
def test_marked_gaps(text: str, unmarked: str, gaps: set[int]) -> None:
    assert marked_gaps(text) == (unmarked, gaps)


@pytest.mark.parametrize(
    ("text", "position", "expected"),
    [
        ("a b c", 0, f"{TREE} a b c"),
        ("a b c", 1, f"a {TREE} b c"),
        ("a b c", 3, f"a b c {TREE}"),
        ("  a  b \t", 0, f"  {TREE} a  b \t"),
        ("  a  b \t", 1, f"  a {TREE}  b \t"),
        ("  a  b \t", 2, f"  a  b {TREE} \t"),
        ("a\nb\tc", 2, f"a\nb {TREE}\tc"),
        (f"{M} a {M} b {M}", 0, f"{M} {TREE} a {M} b {M}"),
        (f"{M} a {M} b {M}", 1, f"{M} a {TREE} {M} b {M}"),
        (f"{M} a {M} b {M}", 2, f"{M} a {M} b {TREE} {M}"),
        ("", 0, TREE),
        ("  ", 0, f"{TREE}  "),
        (f" {M} ", 0, f"{TREE} {M} "),
    ],
)
def test_insert_emoji_is_exact(text: str, position: int, expected: str) -> None:
    assert insert_emoji(text, TREE, position) == expected


def test_insert_emoji_puts_it_where_the_marker_stood() -> None:
    """Inserting at a marked gap and unmarking again finds the emoji at that gap."""
    rng = random.Random(5)
    for _ in range(200):
        tokens = [rng.choice([*WORDS, "@user", "#tag", "!"]) for _ in range(rng.randrange(8))]
        spaces = [rng.choice([" ", "  ", "\t", "\n"]) for _ in range(len(tokens) + 1)]
        text = "".join(s + t for s, t in zip(spaces, [*tokens, ""], strict=True))
        p = rng.randrange(len(tokens) + 1)
        marked = insert_emoji(text, M, p)
        assert marked_gaps(marked) == (" ".join(tokens), {p})
        inserted = M if not tokens else f"{M} " if p == 0 else f" {M}"
        assert marked.replace(inserted, "", 1) == text


def test_insert_emoji_refuses_a_gap_outside_the_text() -> None:
    with pytest.raises(ValueError, match=r"outside 0\.\.2"):
        insert_emoji(f"a {M} b", TREE, 3)


def test_rules() -> None:
    text = f"Great night {M} #fun #vegas @user @ Omnia Night Club"
    assert rule_end(text) == 9
    assert rule_before_checkin(text) == 5
    assert rule_before_trailing(text) == 2
    assert rule_before_trailing("just words here") == 3
    assert rule_before_trailing("see http://x.co #a") == 1
    assert rule_end("   ") == rule_before_trailing("") == 0


def _marked_row(rng: random.Random) -> str:
    """A tweet whose emoji stands after its first sentence, before "and" or a check-in."""
    first = rng.sample(WORDS, rng.randrange(2, 5))
    rest = rng.sample(WORDS, rng.randrange(1, 4))
    tail = rng.choice(["", f" @ {rng.choice(PLACES)}", " #love", f" @user @ {rng.choice(PLACES)}"])
    return f"{' '.join(first)}! {M} and {' '.join(rest)}{tail} "


def _write(path: Path, n: int, seed: int) -> Path:
    rng = random.Random(seed)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "TEXT", "Label"])
        for i in range(n):
            text = _marked_row(rng) if i % 3 else " ".join(rng.sample(WORDS, 5))
            w.writerow([i, text, i % 3])
    return path


@pytest.fixture(scope="module")
def marked_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("position")
    return {"train": _write(d / "Train.csv", 600, 1), "val": _write(d / "Val.csv", 150, 2)}


@pytest.fixture(scope="module")
def fitted(marked_files: dict[str, Path]) -> tuple[PositionModel, dict]:
    return fit_position_model([marked_files["train"]], marked_files["val"], text_column="TEXT")


def test_fit_learns_the_pattern_the_rules_miss(fitted: tuple[PositionModel, dict]) -> None:
    _, metrics = fitted
    assert metrics["heldout"]["n"] > 50 and metrics["val"]["n"] == 100
    for part in ("heldout", "val"):
        assert metrics[part]["model"] > 95, metrics
        assert metrics[part]["model"] > metrics[part]["rule_before_trailing"] + 30, metrics
        assert metrics[part]["rule_end"] < 5, metrics


def test_fit_is_deterministic(
    marked_files: dict[str, Path], fitted: tuple[PositionModel, dict], tmp_path: Path
) -> None:
    unmarked = tmp_path / "unmarked.csv"
    unmarked.write_text("TEXT\nno markers\nnone here either\n", encoding="utf-8")
    again, metrics = fit_position_model([marked_files["train"]], unmarked, text_column="TEXT")
    assert again.weights == fitted[0].weights
    assert metrics["val"] == {"n": 0}


def test_save_load_round_trip(fitted: tuple[PositionModel, dict], tmp_path: Path) -> None:
    model, _ = fitted
    model.save(tmp_path / "b")
    loaded = PositionModel.load(tmp_path / "b")
    rng = random.Random(9)
    texts = [_marked_row(rng) for _ in range(100)] + ["", "  ", "one"]
    assert loaded.predict(texts) == model.predict(texts)
    assert [s.tolist() for s in map(loaded.gap_scores, texts)] == [
        s.tolist() for s in map(model.gap_scores, texts)
    ]
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["kind"] == KIND and manifest["format_version"] == 1
    (data,) = manifest["training_data"]
    assert data["path"] == "Train.csv" and data["rows"] == 600 and len(data["sha256"]) == 64
    assert "heldout" in manifest["metrics"]


def test_fit_on_several_files_is_fit_on_their_concatenation(
    marked_files: dict[str, Path], tmp_path: Path
) -> None:
    lines = marked_files["train"].read_text(encoding="utf-8").splitlines(keepends=True)
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text("".join(lines[:251]), encoding="utf-8")
    second.write_text(lines[0] + "".join(lines[251:]), encoding="utf-8")
    whole, metrics = fit_position_model([marked_files["train"]], text_column="TEXT")
    split, split_metrics = fit_position_model([first, second], text_column="TEXT")
    assert split.weights == whole.weights and split_metrics == metrics
    data = split.manifest["training_data"]
    assert [(d["path"], d["rows"]) for d in data] == [("first.csv", 250), ("second.csv", 350)]
    assert sum(d["marked_tweets"] for d in data) == metrics["train"]["n"] + metrics["heldout"]["n"]


def test_load_refuses_other_bundles(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="predicts emoji, not an emoji-position bundle"):
        PositionModel.load(shipped_models_dir() / "ngram_svm")
    with pytest.raises(ModelError, match=r"no manifest\.json"):
        PositionModel.load(tmp_path)


def test_shipped_bundle_predicts_valid_gaps() -> None:
    model = load_position_model()
    assert model.manifest["metrics"]["heldout"]["n"] > 1000
    with open(SAMPLE, encoding="utf-8") as fh:
        texts = [row["text"] for row in csv.DictReader(fh)]
    gaps = model.predict(texts)
    assert len(gaps) == len(texts)
    assert all(0 <= g <= len(marked_gaps(t)[0].split()) for g, t in zip(gaps, texts, strict=True))
    assert model.predict(["", " \t "]) == [0, 0]
    assert model.predict([f"Good times {M} @ Omnia Night Club"]) == [2]
    assert load_position_model(shipped_models_dir()).weights == model.weights


def test_import_and_shipped_prediction_stay_light() -> None:
    code = (
        "import sys, emoji_batch.position as p; p.load_position_model().predict(['a b']); "
        "print([m for m in ('sklearn', 'tensorflow', 'polars', 'pyarrow') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_train_cli_writes_a_position_bundle(
    marked_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "emoji_position"
    args = ["train", KIND, "--data", marked_files["train"], "--val", marked_files["val"]]
    args += ["--text-column", "TEXT", "--output", out]
    assert run_cli(args) == 0
    assert "rule_before_trailing" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["command"].startswith("emoji-batch train emoji_position")
    assert load_position_model(model=out).predict(["a b"]) == PositionModel.load(out).predict(
        ["a b"]
    )
    assert run_cli(args) == 2  # exists, no --force
    assert run_cli([*args, "--force"]) == 0


def test_train_cli_refuses_classifier_options(
    marked_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", KIND, "--data", marked_files["train"], "--output", tmp_path / "b"]
    assert run_cli([*args, "--max-epochs", "3", "--class-weight", "balanced"]) == 2
    err = capsys.readouterr().err
    assert "--class-weight, --max-epochs: not an option of train emoji_position" in err
    assert not (tmp_path / "b").exists()
