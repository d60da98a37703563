"""Where a run's scored rows go: OUTPUT resolved once, then written whole or not at all.

One place for the rules every engine and face shares: the default name
(``INPUT.scored.SUFFIX``, :func:`scored_name`), the output's format (``--output-format``,
else OUTPUT's suffix; the default OUTPUT and stdout take INPUT's format,
:func:`output_format`), what stdout can take, and for the local engine the
:class:`OutputTarget`: checked before any input is read, one writer at a time
(:func:`output_lock`), written atomically or through the ``--resume`` journal, and for a
URI written to a local staging copy first, then uploaded (see :mod:`emoji_batch.remote`).
"""

import contextlib
import fcntl
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa

from emoji_batch.errors import InputError, LockedError
from emoji_batch.fileio import (
    FileFormat,
    TableWriter,
    atomic_output,
    check_output,
    check_writable,
    detect_format,
    is_stdio,
)
from emoji_batch.remote import Location, RemoteFile, staging_path
from emoji_batch.resume import Journal


def scored_name(name: str, output_format: str | None = None) -> str:
    """``tweets.csv`` -> ``tweets.scored.csv``; with ``output_format`` (a folder run's
    ``--output-format``) the suffix is that format's: ``tweets.scored.jsonl``."""
    path = Path(name)
    suffix = f".{output_format}" if output_format else path.suffix
    return f"{path.stem}.scored{suffix}"


def default_output(input_path: Location) -> Location:
    """``tweets.csv`` -> ``tweets.scored.csv`` beside the input (a URI beside its
    object); stdin -> stdout."""
    if is_stdio(input_path):
        return input_path
    return input_path.with_name(scored_name(input_path.name))


def output_format(
    output: Location,
    override: FileFormat | None,
    input_format: FileFormat,
    *,
    inherit: bool = False,
    directory: bool = False,
) -> FileFormat:
    """``override`` (``--output-format``), else INPUT's format where OUTPUT ``inherit``s
    it (the default OUTPUT, stdout), else OUTPUT's suffix; an OUTPUT that may be a
    ``directory`` (Spark's ``scored/``) and has no known suffix takes INPUT's format too."""
    if override is not None or inherit:
        return detect_format(output, override or input_format)
    try:
        return detect_format(output)
    except InputError:
        if directory:
            return input_format
        raise


@contextlib.contextmanager
def output_lock(output: Path) -> Iterator[None]:
    """One writer per OUTPUT: a second run on the same OUTPUT fails with exit code 3.

    ``flock`` is released by the kernel when a process dies, even by SIGKILL, so a
    killed run never leaves a lock that holds. The lock file is removed on every other
    exit, by the run that holds the lock and before it lets go. A run that opened the
    file just before then gets the lock on a file no path leads to; it notices and
    locks the path's new file instead, so two runs never both think they hold it.
    """
    lock_path = output.parent / f".{output.name}.lock"
    while True:
        try:
            fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o666)
        except OSError as exc:
            raise InputError(
                f"output directory {output.parent} is not writable ({exc.strerror})"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockedError(
                f"another emoji-batch run is writing {output} (lock {lock_path})"
            ) from None
        if _is_open_file(lock_path, fd):
            break
        os.close(fd)  # its holder removed it after we opened it: lock the new one
    try:
        yield
    finally:
        with contextlib.suppress(OSError):  # a left lock file is harmless: it locks nothing
            lock_path.unlink()  # only while holding the lock (see above)
        os.close(fd)


def _is_open_file(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (opened.st_dev, opened.st_ino)


def _write_all(
    sink: Path | BinaryIO,
    fmt: FileFormat,
    schema: pa.Schema,
    tables: Iterable[pa.Table],
    written: Callable[[pa.Table], object],
) -> None:
    writer = TableWriter(sink, fmt, schema)
    try:
        for table in tables:
            writer.write(table)
            written(table)
    finally:
        writer.close()


@dataclass(frozen=True)
class OutputTarget:
    """Where and how a run writes: resolved and checked before anything is read or loaded."""

    path: Path  # the local file written: for a remote OUTPUT, its staging copy
    format: FileFormat
    to_stdout: bool
    force: bool
    remote: RemoteFile | None = None  # uploaded from ``path`` once it is whole

    @classmethod
    def resolve(
        cls,
        input_path: Location,
        output_path: Location | None,
        input_format: FileFormat,
        override: FileFormat | None = None,
        *,
        force: bool = False,
        resume: bool = False,
    ) -> "OutputTarget":
        """OUTPUT (INPUT.scored.SUFFIX by default; ``-`` is stdout) and its format;
        refuses what cannot work before any input is read."""
        inherit = output_path is None or is_stdio(output_path)
        path = output_path or default_output(input_path)
        to_stdout = is_stdio(path)
        fmt = output_format(path, override, input_format, inherit=inherit)
        if resume and (to_stdout or is_stdio(input_path)):
            raise InputError("--resume needs a file INPUT and a file OUTPUT, not stdin/stdout")
        if to_stdout and fmt == "parquet":
            raise InputError("stdout output must be csv or jsonl (--output-format)")
        if isinstance(path, RemoteFile):
            path.check_output(force)
            # Written locally first (a staging copy left by a killed run is overwritten).
            return cls(staging_path(path), fmt, False, True, path)
        if not to_stdout:
            check_output(path, force)
        return cls(path, fmt, to_stdout, force)

    @property
    def name(self) -> str:
        return str(self.remote or self.path)

    def check_writable(self, schema: pa.Schema) -> None:
        """Refuse columns this format cannot hold, before anything is scored."""
        check_writable(schema, self.format)

    def locked(self) -> contextlib.AbstractContextManager[None]:
        """The OUTPUT's lock (see :func:`output_lock`); stdout has none."""
        return contextlib.nullcontext() if self.to_stdout else output_lock(self.path)

    def write(
        self,
        schema: pa.Schema,
        tables: Iterable[pa.Table],
        written: Callable[[pa.Table], object] = lambda table: None,
    ) -> None:
        """Write ``tables`` (calling ``written`` after each): to stdout as they come, or
        to OUTPUT whole or not at all (a temporary file renamed at the end; a remote
        OUTPUT is then uploaded, see :meth:`RemoteFile.upload`)."""
        if self.to_stdout:
            with os.fdopen(os.dup(sys.stdout.fileno()), "wb") as out:
                _write_all(out, self.format, schema, tables, written)
            return
        with atomic_output(self.path, self.force) as tmp:
            _write_all(tmp, self.format, schema, tables, written)
        if self.remote is not None:
            try:
                self.remote.upload(self.path)
            finally:
                self.path.unlink(missing_ok=True)

    def write_through(
        self,
        journal: Journal,
        first: int,
        schema: pa.Schema,
        tables: Iterable[pa.Table],
        written: Callable[[pa.Table], object] = lambda table: None,
    ) -> None:
        """Save ``tables`` (chunks ``first``, ``first + 1``, ...) in the resume journal,
        then write OUTPUT from all its chunks and drop the journal."""
        for index, table in enumerate(tables, start=first):
            journal.save(index, table)
        self.write(schema, journal.parts(), written)
        journal.remove()

    def close(self) -> None:
        """Remove a remote OUTPUT's staging directory, unless a journal is kept there."""
        if self.remote is not None:
            with contextlib.suppress(OSError):
                self.path.parent.rmdir()
