"""Unattended runs: bad rows, bad files, bad models, locks, logs, stdin/stdout (``--resume``
is tests/test_resume.py)."""

import json
import pickle
import shutil
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from emoji_batch.output import output_lock
from tests.helpers import run_cli, run_cli_process

ROOT = Path(__file__).parent.parent
SAMPLE = ROOT / "sample_data"


def score(args: list) -> int:
    return run_cli(["score", *args])


def scored_csv(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema=False)


# --- bad rows: kept in place, null predictions, a reason in score_error ----------------


def test_bad_csv_rows_are_kept_and_explained(tiny_cnn: Path, tmp_path: Path) -> None:
    long_text = "love " * 200_000  # 1 MB
    raw = (
        b"\xef\xbb\xbfid,text\r\n"  # UTF-8 BOM and CRLF line endings
        b'1,"two\r\nlines, ""quoted"""\r\n'
        b"2,\r\n"
        b"3,   \r\n"
        b"4,https://t.co/abc\r\n"
        b"5,@user @user\r\n"
        + "6,😂😂😂\r\n".encode()
        + b"7,caf\xe9 au lait\r\n"  # Latin-1 byte: invalid UTF-8
        + f"8,{long_text}\r\n".encode()
    )
    inp = tmp_path / "bad.csv"
    inp.write_bytes(raw)
    out = tmp_path / "bad.scored.csv"
    assert score([inp, "--model", tiny_cnn]) == 0
    result = scored_csv(out)
    assert result["id"].to_list() == [str(i) for i in range(1, 9)]
    assert result["text"][0] == 'two\r\nlines, "quoted"'
    assert result["score_error"].to_list() == [
        None,
        "empty text",
        "empty text",
        None,
        None,
        None,
        "invalid UTF-8 in row",
        None,
    ]
    assert result["emoji_1"].is_null().to_list() == [
        False,
        True,
        True,
        False,
        False,
        False,
        True,
        False,
    ]
    assert result["text"][6] == "caf\ufffd au lait"  # repaired, not dropped


@pytest.mark.parametrize(
    ("column", "reason"),
    [
        (
            pa.array([1, None, 3]),
            ["text is int64, not a string", "missing text", "text is int64, not a string"],
        ),
        (
            pa.array([["a"], ["b"], None]),
            ["text is list<element: string>, not a string"] * 2 + ["missing text"],
        ),
    ],
)
def test_non_string_parquet_text(
    tiny_cnn: Path, tmp_path: Path, column: pa.Array, reason: list[str]
) -> None:
    inp = tmp_path / "typed.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3], "text": column}), inp)
    assert score([inp, "--model", tiny_cnn]) == 0
    result = pl.read_parquet(tmp_path / "typed.scored.parquet")
    assert result["score_error"].to_list() == reason
    assert result["emoji_1"].null_count() == 3
    assert result["id"].to_list() == [1, 2, 3]


# --- bad files: one line on stderr, exit 2, nothing written ----------------------------


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.csv", b"", "is empty"),
        (
            "ragged.csv",
            b'id,text\n1,"o\nk"\n2,a,b\n',
            "ragged.csv:4: ragged CSV row: expected 2 fields, got 3: '2,a,b'",
        ),
        ("truncated.parquet", b"PAR1\x00\x00garbage", "cannot read"),
        ("rows.jsonl", b'{"text": "hi"}\nnot json\n', ":2: invalid JSON"),
    ],
)
def test_bad_files_fail_cleanly(
    tiny_cnn: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    data: bytes,
    message: str,
) -> None:
    inp = write(tmp_path / name, data)
    out = tmp_path / "out.csv"
    assert score([inp, "-o", out, "--model", tiny_cnn]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_directory_instead_of_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "dir.csv"
    d.mkdir()
    assert score([d]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_header_only_gives_header_only_output(tiny_cnn: Path, tmp_path: Path) -> None:
    inp = write(tmp_path / "h.csv", b"id,text\n")
    assert score([inp, "--model", tiny_cnn]) == 0
    result = scored_csv(tmp_path / "h.scored.csv")
    assert result.height == 0 and result.columns[:2] == ["id", "text"]


def test_debug_prints_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert score([tmp_path / "nope.csv", "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err


# --- models: clear error, nothing written ------------------------------------------------


def test_malicious_pickle_is_never_loaded(
    tiny_cnn: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple:
            return (Path.touch, (marker,))

    bundle = tmp_path / "evil"
    shutil.copytree(tiny_cnn, bundle)
    (bundle / "weights.pkl").write_bytes(pickle.dumps(Exploit()))
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"]["weights"] = "weights.pkl"
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "out.csv"
    assert score([SAMPLE / "tweets.csv", "-o", out, "--model", bundle]) == 2
    assert "unreadable weights" in capsys.readouterr().err
    assert not marker.exists() and not out.exists()


def test_keras_lambda_config_is_refused(
    tiny_cnn: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "lambda"
    shutil.copytree(tiny_cnn, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["architecture"] = "Lambda"
    manifest["config"] = {"class_name": "Lambda", "config": {"function": "os.system('x')"}}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    assert score([SAMPLE / "tweets.csv", "-o", tmp_path / "o.csv", "--model", bundle]) == 2
    assert "unknown architecture 'Lambda'" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


# --- locks, logs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "precision"), [("ngram_svm", "fp32"), ("fine_tuned_bert", "int8")]
)
def test_weights_that_do_not_match_the_labels_are_refused_by_every_runtime(
    tmp_path: Path, model: str, precision: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A hand-edited manifest with one label less than its weights: the NumPy and the
    int8 runtimes refuse it as the TensorFlow path does, not with a NumPy error."""
    shipped = ROOT / "emoji_batch" / "models" / model
    bundle = Path(shutil.copytree(shipped, tmp_path / model))
    manifest = json.loads((shipped / "manifest.json").read_text())
    manifest["labels"] = manifest["labels"][:-1]
    prior = manifest["calibration"]["label_prior"][:-1]
    manifest["calibration"]["label_prior"] = [p / sum(prior) for p in prior]
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    args = ["predict", "hello world", "--model", bundle, "--precision", precision]
    assert run_cli([*args, "--device", "cpu"]) == 2
    (error,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert "weights do not match" in error and "19 labels" in error


def test_second_writer_is_locked_out(
    tiny_cnn: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "locked.csv"
    with output_lock(out):
        assert score([SAMPLE / "tweets.csv", "-o", out, "--model", tiny_cnn]) == 3
    assert "another emoji-batch run is writing" in capsys.readouterr().err
    assert not out.exists()
    assert score([SAMPLE / "tweets.csv", "-o", out, "--model", tiny_cnn]) == 0


def test_json_logs(tiny_cnn: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "j.csv"
    args = [SAMPLE / "tweets.csv", "-o", out, "--model", tiny_cnn, "--log-format", "json"]
    assert score(args) == 0
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    assert [e["event"] for e in events] == ["start", "summary"]
    assert events[-1]["rows"] == 300 and events[-1]["error_rows"] == 2
    assert score(args) == 2  # exists, no --force
    (error,) = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    assert error["event"] == "error" and error["exit_code"] == 2 and "--force" in error["message"]


# --- subprocesses: stdin/stdout ---------------------------------------------------------


def test_stdin_to_stdout_pipeline(tmp_path: Path) -> None:
    """With the shipped NumPy default: no TensorFlow to import in the subprocess."""
    data = (SAMPLE / "tweets.csv").read_bytes()
    piped = run_cli_process("score", "-", "-o", "-", input=data)
    assert piped.returncode == 0, piped.stderr.decode()
    assert score([SAMPLE / "tweets.csv", "-o", tmp_path / "file.csv"]) == 0
    assert piped.stdout == (tmp_path / "file.csv").read_bytes()


def test_jsonl_stdin() -> None:
    lines = b'{"id": 1, "text": "merry christmas"}\n{"id": 2, "text": null}\n'
    piped = run_cli_process("score", "-", "-o", "-", "--input-format", "jsonl", input=lines)
    assert piped.returncode == 0, piped.stderr.decode()
    rows = [json.loads(line) for line in piped.stdout.splitlines()]
    assert [r["id"] for r in rows] == [1, 2]
    assert rows[1]["score_error"] == "missing text" and rows[0]["emoji_1"]
