"""Which model a name means: the shipped default unless asked otherwise, a local bundle
that shadows a shipped name warned about, and ``$EMOJI_BATCH_MODELS`` searched for names."""

import shutil
from pathlib import Path

import pytest

from emoji_batch.bundle import (
    DEFAULT_MODEL,
    MODELS_ENV,
    resolve_model,
    shipped_models_dir,
)
from tests.helpers import run_cli

SAMPLE = Path(__file__).parent.parent / "sample_data" / "tweets.csv"


def score(args: list) -> int:
    return run_cli(["score", *args])


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


def error_line(err: str) -> str:
    (line,) = [line for line in err.splitlines() if line.startswith("error")]
    return line


# --- the shipped default is never replaced by a local bundle -----------------------------


@pytest.fixture
def local_default(cnn_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A local bundle named like the shipped default, in ``./models`` of the repo root."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EMOJI_BATCH_MODELS", raising=False)
    return Path(shutil.copytree(cnn_bundle, tmp_path / "models" / DEFAULT_MODEL))


def test_no_model_means_the_shipped_default(local_default: Path) -> None:
    assert resolve_model(None, None) == shipped_models_dir() / DEFAULT_MODEL
    assert resolve_model(DEFAULT_MODEL, None).resolve() == local_default.resolve()


def test_models_list_shows_the_clash(
    local_default: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["models", "list"]) == 0
    entries = capsys.readouterr().out.split(f"\n{DEFAULT_MODEL}")
    assert len(entries) == 2, "both bundles of the default's name are listed"
    local, shipped = entries
    assert "shadows" in local.splitlines()[0] and "default" not in local.splitlines()[0]
    assert "[default" in shipped.splitlines()[0]
    assert str(shipped_models_dir() / DEFAULT_MODEL) in shipped


def test_named_local_bundle_that_shadows_a_shipped_one_is_warned_about(
    local_default: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "o.csv"
    assert score([SAMPLE, "-o", out, "--model", DEFAULT_MODEL, "--quiet"]) == 0
    (warning,) = error_lines(capsys.readouterr().err)
    assert warning.startswith("warning: ") and "shadows the shipped" in warning
    assert str(Path("models") / DEFAULT_MODEL) in warning


# --- EMOJI_BATCH_MODELS ------------------------------------------------------------------


def test_models_env_is_searched_for_names(
    tiny_cnn: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Without --models-dir, a name is looked up in $EMOJI_BATCH_MODELS (not ./models)."""
    store = tmp_path / "store"
    shutil.copytree(tiny_cnn, store / "my_model")
    monkeypatch.chdir(tmp_path)  # no ./models here
    monkeypatch.delenv(MODELS_ENV, raising=False)
    out = tmp_path / "o.csv"
    args = ["score", SAMPLE, "-o", out, "--model", "my_model", "--quiet"]
    assert run_cli(args) == 2
    assert "no model named 'my_model'" in error_line(capsys.readouterr().err)

    monkeypatch.setenv(MODELS_ENV, str(store))
    assert run_cli(args) == 0
    assert run_cli([*args[:3], tmp_path / "direct.csv", *args[4:-3], "--model", tiny_cnn]) == 0
    assert out.read_bytes() == (tmp_path / "direct.csv").read_bytes()
    capsys.readouterr()
    assert run_cli(["models", "list"]) == 0
    listing = capsys.readouterr().out
    assert "my_model" in listing and str(store) in listing
