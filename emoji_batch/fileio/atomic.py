"""Files written whole or not at all, and the hashes that say which bytes a file holds.

Outputs go to a temporary file beside the target and are renamed into place only after
a complete, fsynced write. Only the standard library is imported, so bundles and
manifests are written without loading Arrow.
"""

import contextlib
import hashlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from emoji_batch.errors import InputError


def file_digest(*paths: Path) -> str:
    """sha256 over the bytes of ``paths`` in order, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def fsync_path(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _new_file_beside(path: Path) -> Path:
    """An empty ``.NAME.RANDOM.tmp`` beside ``path``, created as any new file is (0666
    less the umask, or the directory's default ACL), unlike mkstemp's private 0600."""
    while True:
        tmp = path.with_name(f".{path.name}.{os.urandom(4).hex()}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
        except OSError as exc:  # read-only file system, or a directory we may not write
            raise InputError(
                f"output directory {path.parent} is not writable ({exc.strerror})"
            ) from exc


@contextlib.contextmanager
def atomic_output(path: Path, force: bool) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    The result has the mode of the file it replaces, else that of a new file, whatever
    mode the writer gave the temporary file.
    """
    check_output(path, force)
    tmp = _new_file_beside(path)
    mode = stat.S_IMODE(tmp.stat().st_mode)
    try:
        yield tmp
        with contextlib.suppress(FileNotFoundError):
            mode = stat.S_IMODE(path.stat().st_mode)
        os.chmod(tmp, mode)
        fsync_path(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def check_output(path: Path, force: bool) -> None:
    """Refuse an output that exists (without ``force``), is a directory, or whose
    directory is missing or not writable: before any work is done, not after."""
    if path.is_dir():
        raise InputError(f"output {path} is a directory")
    if path.exists() and not force:
        raise InputError(f"output {path} already exists; pass --force to overwrite it")
    if not path.parent.is_dir():
        raise InputError(f"output directory {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise InputError(f"output directory {path.parent} is not writable")


def write_json(path: Path, data: Any, indent: int = 2) -> None:
    """Replace ``path`` with ``data`` as UTF-8 JSON text (and a final newline), whole or
    not at all: how every manifest is written, so a reader sees the old one or the new."""
    text = json.dumps(data, indent=indent, ensure_ascii=False) + "\n"
    with atomic_output(path, force=True) as tmp:
        tmp.write_text(text, encoding="utf-8")


def file_fingerprint(path: Path, rows: int, **counts: int) -> dict[str, Any]:
    """Identify a data file a model was fitted on: its name, row count, any other
    ``counts`` (e.g. ``marked_tweets=``) and the sha256 of its bytes."""
    return {"path": path.name, "rows": rows, **counts, "sha256": file_digest(path)}
