"""``score --resume``: a killed or interrupted run keeps its finished chunks in a journal
beside OUTPUT, a rerun continues to exactly what an uninterrupted run writes, and a rerun
whose input, model, position model or options changed is refused."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from emoji_batch import resume
from emoji_batch.bundle import shipped_models_dir
from emoji_batch.resume import Journal
from tests.helpers import run_cli, run_cli_process

ROOT = Path(__file__).parent.parent
SAMPLE = ROOT / "sample_data" / "tweets.csv"


def score(args: list) -> int:
    return run_cli(["score", *args])


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


# --- in this process: interrupted by SIGTERM or Ctrl-C -----------------------------------


def _stop_after_second_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM this process once the journal holds two chunks."""
    save = resume.Journal.save

    def save_then_stop(journal: resume.Journal, index: int, table: object) -> None:
        save(journal, index, table)  # type: ignore[arg-type]
        if index == 1:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)

    monkeypatch.setattr(resume.Journal, "save", save_then_stop)


def test_resume_journal_survives_sigterm_and_refuses_changes(
    cnn_bundle: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    sigterm_guard: None,
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    inp = work / "in.csv"
    shutil.copy(SAMPLE, inp)
    out = work / "o.csv"
    args = [inp, "-o", out, "--resume", "--chunk-rows", 50, "--quiet"]
    with monkeypatch.context() as patched:
        _stop_after_second_chunk(patched)
        assert score([*args, "--model", cnn_bundle]) == 143
    assert error_lines(capsys.readouterr().err) == ["error: terminated (SIGTERM)"]
    journal = work / ".o.csv.resume"
    assert names(work) == [".o.csv.resume", "in.csv"]
    assert names(journal) == ["0000000.arrow", "0000001.arrow", "journal.json"]

    other_model = Path(shutil.copytree(cnn_bundle, tmp_path / "other_model"))
    manifest = json.loads((other_model / "manifest.json").read_text())
    (other_model / "manifest.json").write_text(json.dumps({**manifest, "created": "later"}))
    for changed, what in [
        (["--model", cnn_bundle, "--chunk-rows", 60], "options"),
        (["--model", other_model], "model"),
    ]:
        assert score([*args, *changed]) == 2
        (error,) = error_lines(capsys.readouterr().err)
        assert f"{what} changed since the interrupted run" in error
    with open(inp, "a", encoding="utf-8") as fh:
        fh.write('301,"one more tweet","en","2026-11-21T00:00:00Z"\n')
    assert score([*args, "--model", cnn_bundle]) == 2
    assert "input changed since the interrupted run" in capsys.readouterr().err
    assert names(work) == [".o.csv.resume", "in.csv"]
    assert len(list(journal.iterdir())) == 3


def test_resume_directory_without_journal_starts_over(cnn_bundle: Path, tmp_path: Path) -> None:
    """A run killed between creating the directory and writing journal.json."""
    journal = tmp_path / ".o.csv.resume"
    journal.mkdir()
    (journal / "journal.json.tmp").write_text("{")
    (journal / "0000000.arrow").write_bytes(b"not arrow")
    out = tmp_path / "o.csv"
    args = [SAMPLE, "--model", cnn_bundle, "--chunk-rows", 50, "--quiet"]
    assert score([*args, "-o", out, "--resume"]) == 0
    assert score([*args, "-o", tmp_path / "clean.csv"]) == 0
    assert out.read_bytes() == (tmp_path / "clean.csv").read_bytes()
    assert names(tmp_path) == ["clean.csv", "o.csv"]


@pytest.mark.parametrize("damage", ["corrupt journal", "file in its place"])
def test_damaged_resume_journal_is_a_usage_error(
    cnn_bundle: Path, tmp_path: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / ".o.csv.resume"
    if damage == "corrupt journal":
        journal.mkdir()
        (journal / "journal.json").write_text('{"input": ')
    else:
        journal.write_text("")
    args = [SAMPLE, "--model", cnn_bundle, "--quiet", "-o", tmp_path / "o.csv", "--resume"]
    assert score(args) == 2
    assert "cannot resume" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


def test_resume_refuses_a_changed_position_model(
    cnn_bundle: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    sigterm_guard: None,
) -> None:
    """--insert output depends on the position model too: a rerun with another one would
    place the emoji of the resumed chunks differently from the rest."""
    models = tmp_path / "models"
    position = Path(
        shutil.copytree(shipped_models_dir() / "emoji_position", models / "emoji_position")
    )
    work = tmp_path / "work"
    work.mkdir()
    inp = work / "in.csv"
    shutil.copy(SAMPLE, inp)
    args = [inp, "-o", work / "o.csv", "--model", cnn_bundle, "--models-dir", models]
    args += ["--insert", "--resume", "--chunk-rows", 50, "--quiet"]
    with monkeypatch.context() as patched:
        _stop_after_second_chunk(patched)
        assert score(args) == 143
    capsys.readouterr()
    weights = json.loads((position / "weights.json").read_text())
    (position / "weights.json").write_text(json.dumps({**weights, "intercept": 1.0}))
    assert score(args) == 2
    (error,) = [line for line in error_lines(capsys.readouterr().err) if line.startswith("error:")]
    assert "position model changed since the interrupted run" in error
    assert names(work) == [".o.csv.resume", "in.csv"]


def test_interrupted_parquet_run_resumes_to_identical_output(
    tiny_cnn: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    inp = tmp_path / "tweets.parquet"
    pl.concat([pl.read_parquet(SAMPLE.with_suffix(".parquet"))] * 4).write_parquet(inp)
    out = tmp_path / "resumed.parquet"
    args = ["score", inp, "-o", out, "--model", tiny_cnn, "--chunk-rows", 100]
    save = Journal.save
    saved: list[int] = []

    def save_then_die(self: Journal, index: int, table: object) -> None:
        save(self, index, table)
        saved.append(index)
        if len(saved) == 3:
            raise KeyboardInterrupt  # interrupted after the third chunk of twelve

    monkeypatch.setattr(Journal, "save", save_then_die)
    assert run_cli([*args, "--resume"]) == 130
    monkeypatch.setattr(Journal, "save", save)
    journal = tmp_path / ".resumed.parquet.resume"
    assert not out.exists() and len(list(journal.glob("*.arrow"))) == 3

    capsys.readouterr()
    assert run_cli([*args, "--resume", "--log-format", "json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    assert any(e["event"] == "resume" and e["chunks"] == 3 for e in events)
    assert not journal.exists()
    assert run_cli([*args[:3], tmp_path / "clean.parquet", *args[4:], "--quiet"]) == 0
    resumed, clean = pq.read_table(out), pq.read_table(tmp_path / "clean.parquet")
    assert resumed.num_rows == 1200
    assert resumed.equals(clean)


def test_resume_with_stdin_or_stdout_is_refused(tmp_path: Path, capsys) -> None:
    assert score(["-", "-o", tmp_path / "o.csv", "--resume"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert score([SAMPLE, "-o", "-", "--resume"]) == 2
    assert "--resume" in capsys.readouterr().err


def test_resume_refuses_changed_input(
    tiny_cnn: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inp = tmp_path / "in.csv"
    shutil.copy(SAMPLE, inp)
    out = tmp_path / "o.csv"
    journal = tmp_path / ".o.csv.resume"
    journal.mkdir()
    (journal / "journal.json").write_text(json.dumps({"input": {}, "model": "", "options": {}}))
    assert score([inp, "-o", out, "--model", tiny_cnn, "--resume"]) == 2
    assert "input, model, options changed" in capsys.readouterr().err
    assert not out.exists()


# --- in a subprocess: killed with SIGKILL ------------------------------------------------


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sample = pl.read_csv(SAMPLE, infer_schema=False)
    big = pl.concat([sample] * 100).with_row_index("row")  # 30,000 rows
    path = tmp_path_factory.mktemp("big") / "big.csv"
    big.write_csv(path)
    return path


def test_killed_run_resumes_to_identical_output(big_csv: Path, tmp_path: Path) -> None:
    """With the shipped NumPy default (no TensorFlow to import): a run killed midway
    refuses to resume with other options or an input edited in place (same size), then
    resumes to exactly what an uninterrupted run writes."""
    inp = tmp_path / big_csv.name
    shutil.copy(big_csv, inp)
    out = tmp_path / "resumed.csv"
    args = ["score", inp, "-o", out, "--resume", "--chunk-rows", 300, "--quiet"]
    journal = tmp_path / ".resumed.csv.resume"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "emoji_batch", *map(str, args)], env=env)
    deadline = time.monotonic() + 120
    while len(list(journal.glob("*.arrow"))) < 3:
        assert proc.poll() is None, "finished before it could be killed: make the input bigger"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "a killed run must not leave OUTPUT"
    done = len(list(journal.glob("*.arrow")))
    assert 3 <= done < 100

    for changed in (["--top-k", 2], ["--text-column", "lang"]):
        refused = run_cli_process(*args, *changed)
        assert refused.returncode == 2 and b"options changed" in refused.stderr, changed
    original, stamp = inp.read_bytes(), inp.stat().st_mtime_ns
    # Same size and modification time, other content: only the hash can tell.
    inp.write_bytes(original.replace(b"dying", b"DYING", 1))
    os.utime(inp, ns=(stamp, stamp))
    refused = run_cli_process(*args)
    assert refused.returncode == 2 and b"input changed" in refused.stderr
    inp.write_bytes(original)
    os.utime(inp, ns=(stamp, stamp))
    assert not out.exists() and len(list(journal.glob("*.arrow"))) == done

    resumed = run_cli_process(*args[:-1], "--log-format", "json")
    assert resumed.returncode == 0, resumed.stderr.decode()
    events = [json.loads(line) for line in resumed.stderr.decode().splitlines()]
    assert any(e["event"] == "resume" and e["chunks"] >= done for e in events)
    assert not journal.exists()

    clean = tmp_path / "clean.csv"
    assert run_cli_process("score", inp, "-o", clean, "--chunk-rows", 300).returncode == 0
    assert out.read_bytes() == clean.read_bytes()
