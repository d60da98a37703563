"""Score every file under a folder, a glob or a URI prefix, incrementally.

``score landing/ -o scored/`` scores each supported file (``.csv``, ``.parquet``,
``.pq``, ``.jsonl``, ``.ndjson``; names starting with ``.`` are skipped) one at a time
with :func:`~emoji_batch.scoring.score_file`, so memory stays flat, into the same
relative name under OUTDIR: ``a/b.parquet`` -> ``scored/a/b.scored.parquet``. The model
is loaded once.

A state file in OUTDIR (``.emoji-batch-state.json``, replaced atomically after every
file) records what each output was scored from: the input's size, modification time
and sha256, and, once for the run, the model's fingerprint and the options the output
depends on. A rerun scores only inputs that are new, changed (a new size or time whose
content hash differs too) or whose output is gone; all of them if the model or those
options changed; all with ``force``. One file's failure is recorded and the run goes on.
"""

import glob
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from emoji_batch import logs
from emoji_batch.errors import EmojiBatchError, InputError
from emoji_batch.fileio import atomic_output, detect_format, file_digest
from emoji_batch.loading import AnyPredictor, load_predictor
from emoji_batch.options import ScoreOptions
from emoji_batch.output import output_lock, scored_name
from emoji_batch.position import load_position_model
from emoji_batch.remote import Location, RemoteFile, is_uri, local_path, staging_path
from emoji_batch.scoring import score_file

STATE = ".emoji-batch-state.json"
STATE_VERSION = 1
_GLOB_CHARS = frozenset("*?[")


@dataclass
class FolderSummary:
    """What a folder run did, file by file (names relative to INPUT)."""

    output: str
    model: str
    scored: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # name -> why
    rows: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        failed = "".join(f"\n  failed: {name}: {why}" for name, why in self.failed.items())
        return (
            f"{len(self.scored)} file{'' if len(self.scored) == 1 else 's'} scored "
            f"({self.rows} rows), {len(self.unchanged)} "
            f"unchanged, {len(self.failed)} failed in {self.seconds:.1f} s with {self.model} "
            f"-> {self.output}{failed}"
        )

    def fields(self) -> dict[str, object]:
        return {
            "output": self.output,
            "model": self.model,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "scored": self.scored,
            "unchanged": self.unchanged,
            "failed": self.failed,
        }


def _has_glob(text: str) -> bool:
    return any(c in _GLOB_CHARS for c in text)


def is_folder(value: str | os.PathLike[str]) -> bool:
    """Whether ``value`` names many inputs: a directory, a glob pattern (local paths) or
    a URI prefix (ending in ``/``, or a prefix with objects under it)."""
    text = os.fspath(value)
    if is_uri(text):
        return RemoteFile.of(text).is_dir()
    path = local_path(text)
    return path.is_dir() or (_has_glob(str(path)) and not path.exists())


def _supported(name: str) -> bool:
    try:
        detect_format(Path(name))
    except InputError:
        return False
    return True


def _visible(relative: str) -> bool:
    return not any(part.startswith(".") for part in relative.split("/"))


def _local_inputs(text: str, output: Path | None) -> dict[str, Path]:
    """Files of a directory (recursively) or matched by a glob, by name relative to the
    directory (or the pattern's fixed leading directories), OUTDIR's own files left out."""
    path = local_path(text)
    if path.is_dir():
        root, found = path, (p for p in path.rglob("*") if p.is_file())
    else:
        parts = path.parts
        fixed = next(i for i, part in enumerate(parts) if _has_glob(part))
        root = Path(*parts[:fixed]) if fixed else Path(".")
        found = (Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
    out = None if output is None else output.resolve()
    if out is not None and root.resolve().is_relative_to(out):
        raise InputError(f"OUTDIR {output} holds INPUT {text}: score into another directory")
    inputs = {}
    for p in found:
        relative = p.relative_to(root).as_posix()
        mine = out is not None and p.resolve().is_relative_to(out)
        if _visible(relative) and _supported(p.name) and not mine:
            inputs[relative] = p
    return inputs


def _remote_inputs(prefix: RemoteFile, output: Location) -> dict[str, RemoteFile]:
    """Objects under a URI prefix, by key relative to it."""
    base = prefix.path.rstrip("/")
    out_uri = str(output).rstrip("/") + "/"
    if (prefix.uri.rstrip("/") + "/").startswith(out_uri):
        raise InputError(f"OUTDIR {output} holds INPUT {prefix}: score into another prefix")
    selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
    try:
        infos = prefix.fs.get_file_info(selector)
    except OSError as exc:
        raise InputError(f"cannot list {prefix}: {exc}") from exc
    inputs = {}
    for info in infos:
        relative = info.path[len(base) + 1 :]
        child = prefix.child(relative)
        if (
            info.type == pafs.FileType.File
            and _visible(relative)
            and _supported(info.base_name)
            and not child.uri.startswith(out_uri)
        ):
            inputs[relative] = child
    return inputs


def output_name(relative: str, output_format: str | None) -> str:
    """``a/b.parquet`` -> ``a/b.scored.parquet``; ``--output-format`` sets the suffix."""
    head, slash, name = relative.rpartition("/")
    return f"{head}{slash}{scored_name(name, output_format)}"


class _Outdir:
    """OUTDIR, local or a URI prefix: where outputs and the state file go."""

    def __init__(self, text: str) -> None:
        self.remote = RemoteFile.of(text) if is_uri(text) else None
        self.local = None if self.remote else local_path(text)
        if self.local is not None:
            if self.local.exists() and not self.local.is_dir():
                raise InputError(f"OUTDIR {self.local} is a file, not a directory")
            self.local.mkdir(parents=True, exist_ok=True)
        elif self.remote is not None and self.remote.info().type == pafs.FileType.File:
            raise InputError(f"OUTDIR {self.remote} is an object, not a prefix")

    def __str__(self) -> str:
        return str(self.remote or self.local)

    def file(self, relative: str) -> Location:
        if self.remote is not None:
            return self.remote.child(relative)
        assert self.local is not None
        return self.local / relative

    def exists(self, relative: str) -> bool:
        target = self.file(relative)
        if isinstance(target, RemoteFile):
            return target.info().type == pafs.FileType.File
        return target.is_file()

    def lock_path(self) -> Path:
        """The local file whose lock keeps a second run off this OUTDIR."""
        state = self.file(STATE)
        return staging_path(state) if isinstance(state, RemoteFile) else state

    def read_state(self) -> dict[str, Any]:
        state = self.file(STATE)
        try:
            if isinstance(state, RemoteFile):
                if state.info().type != pafs.FileType.File:
                    return {}
                text = state.read_bytes()
            elif state.is_file():
                text = state.read_bytes()
            else:
                return {}
            saved = json.loads(text)
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read the state file {state} ({exc}); delete it") from exc
        if not isinstance(saved, dict) or saved.get("version") != STATE_VERSION:
            raise InputError(f"{state} is not a state file of this version; delete it")
        return saved

    def write_state(self, state: dict[str, Any]) -> None:
        data = json.dumps(state, indent=1, sort_keys=True).encode()
        target = self.file(STATE)
        if isinstance(target, RemoteFile):
            target.write_bytes(data)
            return
        with atomic_output(target, force=True) as tmp:
            tmp.write_bytes(data)


def _stat(source: Location) -> dict[str, int]:
    if isinstance(source, RemoteFile):
        info = source.info()
        return {"size": info.size, "mtime_ns": info.mtime_ns}
    st = source.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _digest(source: Location) -> str:
    return source.digest() if isinstance(source, RemoteFile) else file_digest(source)


def _settings(predictor: AnyPredictor, options: ScoreOptions) -> dict[str, object]:
    """What every output depends on besides its input: the model (and with --insert the
    position model) and the options that change what is written."""
    settings: dict[str, object] = {
        "model": predictor.fingerprint(),
        "precision": predictor.precision,
        "text_column": options.text_column,
        "top_k": options.top_k,
        "insert": options.insert,
        "input_format": options.input_format,
        "output_format": options.output_format,
    }
    if options.insert:
        settings["position model"] = load_position_model(options.models_dir).fingerprint()
    return settings


def score_folder(
    input_path: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    options: ScoreOptions | None = None,
    *,
    force: bool = False,
    resume: bool = False,
    progress: bool | None = None,
    **settings: Any,
) -> FolderSummary:
    """Score every new or changed file under ``input_path`` (a directory, a glob or a
    URI prefix) into ``output_dir`` (a directory or a URI prefix), keeping the state
    file there; ``force`` re-scores every file. Options are :func:`score_file`'s. A
    file that fails is named in the summary's ``failed``; the others are written."""
    started = time.perf_counter()
    options = ScoreOptions.of(options, settings)
    text, out_text = os.fspath(input_path), os.fspath(output_dir)
    outdir = _Outdir(out_text)
    if is_uri(text):
        inputs: dict[str, Location] = dict(
            _remote_inputs(RemoteFile.of(text), outdir.remote or Path(out_text))
        )
    else:
        inputs = dict(_local_inputs(text, outdir.local))
    if not inputs:
        raise InputError(f"no .csv, .parquet or .jsonl files in {text}")
    predictor = load_predictor(
        options.model, options.models_dir, options.device, options.batch_size, options.precision
    )
    summary = FolderSummary(str(outdir), predictor.name)
    current = _settings(predictor, options)
    key = hashlib.sha256(json.dumps(current, sort_keys=True).encode()).hexdigest()[:16]
    with output_lock(outdir.lock_path()):
        saved = outdir.read_state()
        if saved and saved.get("settings") != current:
            changed = sorted(k for k in current if saved["settings"].get(k) != current[k])
            logs.emit("rescore", f"{', '.join(changed)} changed: every file is scored again")
        # Entries of inputs still present are kept until their file is done, so that a
        # run stopped midway still knows which outputs are its own.
        files = {k: v for k, v in saved.get("files", {}).items() if k in inputs}
        state = {"version": STATE_VERSION, "settings": current, "files": files}
        for relative in sorted(inputs):
            source, known = inputs[relative], files.get(relative)
            out_relative = output_name(relative, options.output_format)
            try:
                stat = _stat(source)
                if not force and _unchanged(known, key, stat, source, outdir):
                    files[relative] = {**known, **stat}
                    summary.unchanged.append(relative)
                    continue
                target = outdir.file(out_relative)
                if isinstance(target, Path):
                    target.parent.mkdir(parents=True, exist_ok=True)
                digest = _digest(source)
                ours = known is not None and known["output"] == out_relative
                result = score_file(
                    source,
                    target,
                    options,
                    force=force or ours,
                    resume=resume,
                    progress=progress,
                    predictor=predictor,
                )
            except Exception as exc:  # one bad file must not cost the others their outputs
                why = (
                    str(exc) if isinstance(exc, EmojiBatchError) else f"{type(exc).__name__}: {exc}"
                )
                summary.failed[relative] = why
                logs.emit("file_failed", f"{relative}: {why}", logging.ERROR, input=relative)
                continue
            files[relative] = {**stat, "sha256": digest, "output": out_relative, "settings": key}
            outdir.write_state(state)
            summary.scored.append(relative)
            summary.rows += result.rows
            logs.emit("file", f"{relative}: {result.line()}", input=relative, **result.fields())
        outdir.write_state(state)
    summary.seconds = time.perf_counter() - started
    return summary


def _unchanged(
    known: dict[str, Any] | None,
    key: str,
    stat: dict[str, int],
    source: Location,
    outdir: _Outdir,
) -> bool:
    """Whether ``known`` says the input's output is current: scored with these settings,
    still there, and from these bytes (same size and time, or same size and hash)."""
    if not known or known.get("settings") != key or not outdir.exists(known["output"]):
        return False
    if known["size"] != stat["size"]:
        return False
    return known["mtime_ns"] == stat["mtime_ns"] or known["sha256"] == _digest(source)
