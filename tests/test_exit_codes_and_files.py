"""A run as the shell sees it: the files it leaves and their modes, the output lock, exit
codes and signals. Which model a name means is tests/test_model_lookup.py; ``--resume``
is tests/test_resume.py."""

import fcntl
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import emoji_batch.cli.score
from emoji_batch.bundle import (
    load_bundle,
    save_bundle,
)
from emoji_batch.errors import InputError, LockedError
from emoji_batch.output import output_lock
from tests.helpers import run_cli

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


@pytest.fixture
def umask_002() -> Iterator[None]:
    previous = os.umask(0o002)
    try:
        yield
    finally:
        os.umask(previous)


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
