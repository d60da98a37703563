"""Journal of a ``--resume`` run: finished chunks kept beside OUTPUT until it is whole.

Each scored chunk is saved as an Arrow IPC file (written to a temporary name, fsynced,
then renamed), so a run killed at any moment, SIGKILL included, leaves only whole
chunks. A rerun with the same arguments checks that the input, the model and the
options are unchanged, skips the saved chunks and scores the rest; the output is then
assembled from all chunks in order, exactly as an uninterrupted run writes it.
"""

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from emoji_batch.errors import InputError
from emoji_batch.fileio import file_digest
from emoji_batch.remote import Location, RemoteFile

JOURNAL = "journal.json"


def input_fingerprint(path: Location) -> dict[str, Any]:
    """Size, modification time and sha256 of a local file or a remote object."""
    if isinstance(path, RemoteFile):
        info = path.info()
        return {"size": info.size, "mtime_ns": info.mtime_ns, "sha256": path.digest()}
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": file_digest(path)}


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Journal:
    """The chunks of one output that are already scored, and what they were scored from."""

    def __init__(self, output: Path, fingerprint: dict[str, Any]) -> None:
        self.dir = output.parent / f".{output.name}.resume"
        self.fingerprint = fingerprint

    def start(self) -> int:
        """Open the journal; return how many leading chunks are already done.

        A journal left by a run with other input, model or options is refused rather
        than silently mixed into this output.
        """
        meta = self.dir / JOURNAL
        if self.dir.exists() and not self.dir.is_dir():
            raise InputError(f"cannot resume into {self.dir}: it is a file; delete it")
        if meta.is_file():
            try:
                saved = json.loads(meta.read_text())
            except (OSError, ValueError) as exc:
                raise InputError(
                    f"cannot resume from {meta}: unreadable journal ({exc}); delete {self.dir}"
                ) from exc
            if not isinstance(saved, dict):
                raise InputError(f"cannot resume from {meta}: not a journal; delete {self.dir}")
            if saved != self.fingerprint:
                changed = sorted(k for k in self.fingerprint if saved.get(k) != self.fingerprint[k])
                raise InputError(
                    f"cannot resume into {self.dir}: {', '.join(changed)} changed since the "
                    "interrupted run; delete that directory or rerun without --resume"
                )
            return self._done()
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir()
        tmp = self.dir / f"{JOURNAL}.tmp"
        tmp.write_text(json.dumps(self.fingerprint, indent=2))
        os.replace(tmp, meta)
        _fsync_dir(self.dir)
        return 0

    def _part(self, index: int) -> Path:
        return self.dir / f"{index:07d}.arrow"

    def _done(self) -> int:
        n = 0
        while self._part(n).is_file():
            n += 1
        return n

    def save(self, index: int, table: pa.Table) -> None:
        tmp = self.dir / f"{index:07d}.arrow.tmp"
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self._part(index))
        _fsync_dir(self.dir)

    def parts(self) -> Iterator[pa.Table]:
        for index in range(self._done()):
            with pa.OSFile(str(self._part(index)), "rb") as source:
                yield pa.ipc.open_file(source).read_all()

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
