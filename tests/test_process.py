"""A run as the shell sees it: which model it picks, the files it leaves and their modes,
exit codes and signals, and ``--resume`` journals."""

import fcntl
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest

import emoji_batch.cli.score
from emoji_batch import resume
from emoji_batch.bundle import (
    DEFAULT_MODEL,
    load_bundle,
    resolve_model,
    save_bundle,
    shipped_models_dir,
)
from emoji_batch.errors import InputError, LockedError
from emoji_batch.output import output_lock
from tests.conftest import run_cli, train_args

ROOT = Path(__file__).parent.parent
SAMPLE = ROOT / "sample_data" / "tweets.csv"


def score(args: list) -> int:
    return run_cli(["score", *args])


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@pytest.fixture(scope="module")
def cnn_bundle(tiny_data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GloVe CNN, trained like any bundle: these tests load a model a dozen times,
    and it loads in a fraction of a second where a BiLSTM takes seconds to build."""
    out = tmp_path_factory.mktemp("process") / "tiny_cnn"
    args = train_args("glove_cnn", tiny_data, out, "--max-epochs", 1, "--batch-size", 32)
    assert run_cli(args) == 0
    return out


@pytest.fixture
def umask_002() -> Iterator[None]:
    previous = os.umask(0o002)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
def sigterm_guard() -> Iterator[None]:
    """Keep an unhandled SIGTERM from killing pytest: it fails the test instead."""

    def unhandled(signum: int, frame: object) -> None:
        raise AssertionError("SIGTERM reached the test's own handler")

    previous = signal.signal(signal.SIGTERM, unhandled)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- model lookup: the shipped default is never replaced by a local bundle --------------


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


# --- file modes: 0666 less the umask for new files; an overwritten file keeps its mode --


def test_output_mode_follows_umask_and_overwrite_keeps_it(
    cnn_bundle: Path, tmp_path: Path, umask_002: None
) -> None:
    out = tmp_path / "o.parquet"
    args = [SAMPLE, "-o", out, "--model", cnn_bundle, "--quiet"]
    assert score(args) == 0
    assert mode(out) == 0o664
    out.chmod(0o640)
    assert score([*args, "--force"]) == 0
    assert mode(out) == 0o640


def test_bundle_files_get_ordinary_modes(cnn_bundle: Path, tmp_path: Path) -> None:
    new_file = 0o666 & ~current_umask()
    trained = {p.relative_to(cnn_bundle): mode(p) for p in cnn_bundle.rglob("*") if p.is_file()}
    assert trained == dict.fromkeys(trained, new_file)

    bundle = load_bundle(cnn_bundle)
    copy = tmp_path / "copy"
    save_bundle(copy, bundle.manifest, bundle.model, bundle.encoder)
    assert {mode(p) for p in copy.iterdir()} == {new_file}
    (copy / "weights.safetensors").chmod(0o640)
    (copy / "manifest.json").chmod(0o600)
    save_bundle(copy, bundle.manifest, bundle.model, bundle.encoder)
    assert mode(copy / "weights.safetensors") == 0o640
    assert mode(copy / "manifest.json") == 0o600


# --- failures leave nothing behind ---------------------------------------------------


def test_error_partway_through_leaves_nothing(
    cnn_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ragged row past the first 1 MiB block: chunks were scored and written first."""
    padding = " " * 200  # cleaning drops it, so the rows are big but cheap to score
    rows = "".join(f'{i},"love my mom{padding}"\n' for i in range(6000))
    inp = tmp_path / "late.csv"
    inp.write_text(f"id,text\n{rows}6000,a,b\n")
    assert inp.stat().st_size > 1 << 20
    out = tmp_path / "out.csv"
    assert score([inp, "-o", out, "--model", cnn_bundle, "--chunk-rows", 1000, "--quiet"]) == 2
    (error,) = error_lines(capsys.readouterr().err)
    assert error.startswith("error: ") and "late.csv:6002: ragged CSV row" in error
    assert names(tmp_path) == ["late.csv"]


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory this process cannot create files in. Root writes through permission
    bits, so as root use sysfs, which refuses new files even to root."""
    if os.geteuid() == 0:
        if not os.path.isdir("/sys/kernel"):
            pytest.skip("running as root without sysfs: no read-only directory to use")
        yield Path("/sys/kernel")
        return
    directory = tmp_path / "read-only"
    directory.mkdir(mode=0o555)
    try:
        yield directory
    finally:
        directory.chmod(0o755)


def test_read_only_output_directory_is_a_usage_error(
    cnn_bundle: Path, read_only_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = read_only_dir / "emoji-batch-test.csv"
    assert score([SAMPLE, "-o", out, "--model", cnn_bundle, "--quiet"]) == 2
    (error,) = error_lines(capsys.readouterr().err)
    assert error.startswith("error: ") and str(read_only_dir) in error
    assert "unexpected" not in error
    assert not out.exists()


def test_output_format_follows_input_format(cnn_bundle: Path, tmp_path: Path) -> None:
    inp = tmp_path / "tweets.txt"
    shutil.copy(SAMPLE, inp)
    assert score([inp, "--input-format", "csv", "--model", cnn_bundle, "--quiet"]) == 0
    result = pl.read_csv(tmp_path / "tweets.scored.txt", infer_schema=False)
    assert result.height == 300 and "emoji_1" in result.columns


# --- the output lock: removed on every exit, only by its holder -------------------------


def test_lock_file_is_removed_by_its_holder_only(tmp_path: Path) -> None:
    out = tmp_path / "o.csv"
    lock = tmp_path / ".o.csv.lock"
    with output_lock(out):
        with pytest.raises(LockedError), output_lock(out):
            pass
        assert lock.exists(), "a refused run must not remove the holder's lock file"
    assert not lock.exists()
    with pytest.raises(RuntimeError), output_lock(out):
        raise RuntimeError("failed run")
    assert names(tmp_path) == []


def test_lock_on_a_removed_lock_file_is_not_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run opens the lock file; before it calls flock, the holder finishes and removes
    the file. The flock then succeeds on a file no path leads to, so a third run could
    lock a new file at the path: the run must notice and lock that new file instead."""
    out = tmp_path / "o.csv"
    lock = tmp_path / ".o.csv.lock"
    flock = fcntl.flock
    holder_left: list[int] = []

    def flock_after_the_holder_left(fd: int, operation: int) -> None:
        if not holder_left:
            holder_left.append(fd)
            lock.unlink()
        flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock_after_the_holder_left)
    with output_lock(out):
        monkeypatch.setattr(fcntl, "flock", flock)
        with pytest.raises(LockedError), output_lock(out):
            pass
    assert holder_left and not lock.exists()


# --- exit codes through the real entry point --------------------------------------------


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["score"]) == 2
    assert run_cli(["score", "x.csv", "--top-k", "0"]) == 2
    assert run_cli(["score", "x.csv", "--device", "tpu"]) == 2
    assert run_cli(["no-such-command"]) == 2
    assert "Usage: emoji-batch" in capsys.readouterr().err


def _signal(signum: int) -> Callable[..., None]:
    def send(*args: object, **kwargs: object) -> None:
        os.kill(os.getpid(), signum)
        time.sleep(10)  # the handler raises before this ends

    return send


def _raiser(exc: BaseException) -> Callable[..., None]:
    def fail(*args: object, **kwargs: object) -> None:
        raise exc

    return fail


@pytest.mark.parametrize(
    ("behaviour", "code", "message"),
    [
        (_raiser(InputError("bad input")), 2, "error: bad input"),
        (_raiser(LockedError("locked")), 3, "error: locked"),
        (_signal(signal.SIGINT), 130, "error: interrupted"),
        (_signal(signal.SIGTERM), 143, "error: terminated (SIGTERM)"),
        (
            _raiser(RuntimeError("boom")),
            1,
            "error: unexpected failure: RuntimeError: boom (rerun with --debug)",
        ),
    ],
    ids=["input", "locked", "ctrl-c", "sigterm", "unexpected"],
)
def test_exit_codes(
    behaviour: Callable[..., None],
    code: int,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    sigterm_guard: None,
) -> None:
    monkeypatch.setattr(emoji_batch.cli.score, "score_file", behaviour)
    before = signal.getsignal(signal.SIGTERM)
    assert run_cli(["score", "in.csv"]) == code
    assert error_lines(capsys.readouterr().err) == [message]
    assert signal.getsignal(signal.SIGTERM) is before, "main() restores the handlers"


def test_sigterm_removes_temporary_and_lock_files(cnn_bundle: Path, tmp_path: Path) -> None:
    """The one real signal: a subprocess killed while it writes OUTPUT."""
    padding = " " * 100
    inp = tmp_path / "in" / "big.csv"
    inp.parent.mkdir()
    inp.write_text("id,text\n" + "".join(f'{i},"lol{padding}"\n' for i in range(200_000)))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    args = ["score", inp, "-o", out_dir / "o.csv", "--model", cnn_bundle, "--chunk-rows", 100]
    proc = subprocess.Popen(
        [sys.executable, "-m", "emoji_batch", *map(str, args), "--quiet"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not any(p.stat().st_size > 20_000 for p in out_dir.glob(".o.csv.*.tmp")):
        assert proc.poll() is None, "finished before it could be stopped: make the input bigger"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        "error: terminated (SIGTERM)"
    ]
    assert names(out_dir) == []


# --- --resume journals, run in this process ---------------------------------------------


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


def test_ragged_csv_exits_2_every_time(tmp_path: Path) -> None:
    """Arrow's reader threads let go of the Python objects they were lent (the stream, its
    blocks, the ragged-row handler) before the interpreter shuts down: never ``terminate
    called without an active exception`` and exit 134 (7 runs in 10 on a busy machine,
    before). One run after another: side by side they slow each other down, which hides
    the race rather than shows it."""
    (tmp_path / "r.csv").write_text("id,text\n1,hello world\n2,too,many,fields\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    expected = ["error: r.csv:3: ragged CSV row: expected 2 fields, got 4: '2,too,many,fields'"]
    for _ in range(10):
        run = subprocess.run(
            [sys.executable, "-m", "emoji_batch", "score", "r.csv", "-o", "o.csv"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert (run.returncode, error_lines(run.stderr)) == (2, expected)
    assert names(tmp_path) == ["r.csv"]


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


@pytest.mark.parametrize("command", ["predict", "score"])
def test_closed_pipe_ends_quietly_with_141(command: str, tmp_path: Path) -> None:
    """``... | head -1``: the reader goes away; the run ends as a Unix tool killed by
    SIGPIPE does, 128 + 13 and no message, and leaves nothing behind."""
    rows = tmp_path / "in.csv"
    rows.write_text("text\n" + "".join(f"tweet number {i} with love\n" for i in range(20_000)))
    args = ["predict", "--json"] if command == "predict" else ["score", "-", "-o", "-", "--quiet"]
    with open(rows, "rb") as stdin:
        proc = subprocess.Popen(
            [sys.executable, "-m", "emoji_batch", *args],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd=tmp_path,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline()
    proc.stdout.close()
    assert proc.wait(timeout=120) == 141
    assert [line for line in proc.stderr.read().splitlines() if "warning" not in line] == []
    assert names(tmp_path) == ["in.csv"]
