"""Files named by URI (``s3://``, ``gs://``, ``file://``, ...) through pyarrow's filesystems.

An INPUT URI is streamed from the store with random-access reads (Parquet reads its
footer and row groups, JSON lines is read twice), never downloaded whole. An OUTPUT URI
is written as a local file first, in a staging directory under the user's cache (with
the same lock, atomic rename and ``--resume`` journal as any local OUTPUT), then
uploaded to a temporary key beside the target and moved into place: the target appears
only when whole. ``file://`` URIs are plain local paths.

Credentials, region and endpoint come from the environment as pyarrow reads them (for
S3: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ``AWS_REGION``,
and ``AWS_ENDPOINT_URL`` or ``AWS_ENDPOINT_URL_S3`` for an S3-compatible store).
"""

import contextlib
import hashlib
import io
import os
import re
import shutil
import tempfile
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.fs as pafs

from emoji_batch.errors import InputError

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_READ_BYTES = 1 << 20
_UPLOAD_BYTES = 8 << 20


def is_uri(value: str | os.PathLike[str]) -> bool:
    """Whether ``value`` is a URI other than ``file://`` (which is a local path)."""
    text = os.fspath(value)
    return bool(_SCHEME.match(text)) and not text.startswith("file://")


def local_path(value: str | os.PathLike[str]) -> Path:
    """``file:///a/b`` -> ``/a/b``; a path stays itself."""
    text = os.fspath(value)
    if text.startswith("file://"):
        parsed = urllib.parse.urlparse(text)
        if parsed.netloc not in ("", "localhost"):
            raise InputError(f"{text}: file:// URIs name local files (file:///path)")
        return Path(urllib.parse.unquote(parsed.path))
    return Path(text)


class _RawReader(io.RawIOBase):
    """A pyarrow input file as a Python raw stream, so ``io.BufferedReader`` gives it
    the ``readline`` and line iteration that the CSV and JSON-lines readers use."""

    def __init__(self, source: pa.NativeFile) -> None:
        self._source = source

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._source.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._source.seek(offset, whence)

    def tell(self) -> int:
        return self._source.tell()

    def close(self) -> None:
        self._source.close()
        super().close()


@dataclass(frozen=True)
class RemoteFile:
    """One object (or prefix) on a filesystem pyarrow reaches by URI."""

    uri: str
    fs: pafs.FileSystem
    path: str  # the filesystem's own path: bucket/key for S3 and GCS

    @classmethod
    def of(cls, uri: str) -> "RemoteFile":
        try:
            fs, path = pafs.FileSystem.from_uri(uri)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise InputError(f"cannot open {uri}: {exc}") from exc
        return cls(uri, fs, path)

    def __str__(self) -> str:
        return self.uri

    @property
    def name(self) -> str:
        return self.uri.rstrip("/").rpartition("/")[2]

    @property
    def suffix(self) -> str:
        return Path(self.name).suffix

    @property
    def stem(self) -> str:
        return Path(self.name).stem

    def with_name(self, name: str) -> "RemoteFile":
        head = self.uri.rstrip("/").rpartition("/")[0]
        return RemoteFile(f"{head}/{name}", self.fs, f"{self.path.rpartition('/')[0]}/{name}")

    def child(self, relative: str) -> "RemoteFile":
        """The object ``relative`` (a/b.csv) under this prefix."""
        return RemoteFile(
            f"{self.uri.rstrip('/')}/{relative}", self.fs, f"{self.path.rstrip('/')}/{relative}"
        )

    def info(self) -> pafs.FileInfo:
        try:
            return self.fs.get_file_info(self.path)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"cannot reach {self.uri}: {exc}") from exc

    def is_dir(self) -> bool:
        return self.uri.endswith("/") or self.info().type == pafs.FileType.Directory

    def check_input(self) -> None:
        kind = self.info().type
        if kind == pafs.FileType.NotFound:
            raise InputError(f"input file {self.uri} does not exist")
        if kind == pafs.FileType.Directory:
            raise InputError(f"input {self.uri} is a directory, not a file")

    def check_output(self, force: bool) -> None:
        """Refuse an OUTPUT that exists (without ``force``) or is a prefix, or whose
        bucket is missing: before any work is done, not after."""
        kind = self.info().type
        if kind == pafs.FileType.Directory:
            raise InputError(f"output {self.uri} is a directory")
        if kind == pafs.FileType.File and not force:
            raise InputError(f"output {self.uri} already exists; pass --force to overwrite it")
        bucket = self.path.split("/", 1)[0]
        with contextlib.suppress(pa.ArrowException, OSError):  # no right to look: try anyway
            if self.fs.get_file_info(bucket).type == pafs.FileType.NotFound:
                raise InputError(f"output bucket {bucket} of {self.uri} does not exist")

    def open_arrow(self) -> pa.NativeFile:
        """The object as a random-access Arrow file (for Parquet)."""
        try:
            return self.fs.open_input_file(self.path)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"cannot read {self.uri}: {exc}") from exc

    def open(self) -> BinaryIO:
        """The object as a buffered, seekable Python binary file."""
        return io.BufferedReader(_RawReader(self.open_arrow()), _READ_BYTES)  # type: ignore[return-value]

    def digest(self) -> str:
        """sha256 of the object's bytes."""
        digest = hashlib.sha256()
        with self.open() as fh:
            for block in iter(lambda: fh.read(_READ_BYTES), b""):
                digest.update(block)
        return digest.hexdigest()

    def upload(self, local: Path) -> None:
        """Put ``local`` at this URI, whole or not at all.

        A multipart upload that fails midway may still be completed when its stream is
        closed, so the file goes to a temporary key first and is moved (copied
        server-side) into place. The temporary key sits at the top of the bucket: pyarrow
        marks the "directory" of a deleted key with an empty ``dir/`` object, which the
        bucket itself does not need. It is deleted on any failure; only a run killed by
        SIGKILL during the upload or the move may leave it behind.
        """
        bucket = self.path.split("/", 1)[0]
        tmp = f"{bucket}/.emoji-batch-{os.urandom(6).hex()}.{self.name}.tmp"
        try:
            with open(local, "rb") as source, self.fs.open_output_stream(tmp) as sink:
                shutil.copyfileobj(source, sink, _UPLOAD_BYTES)
            self.fs.move(tmp, self.path)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"cannot write {self.uri}: {exc}") from exc
        finally:
            with contextlib.suppress(pa.ArrowException, OSError):
                if self.fs.get_file_info(tmp).type == pafs.FileType.File:
                    self.fs.delete_file(tmp)

    def write_bytes(self, data: bytes) -> None:
        """Put ``data`` at this URI, whole or not at all (see :meth:`upload`)."""
        with tempfile.TemporaryDirectory(prefix="emoji-batch-") as tmp:
            local = Path(tmp) / self.name
            local.write_bytes(data)
            self.upload(local)

    def read_bytes(self) -> bytes:
        with self.open() as fh:
            return fh.read()


Location = Path | RemoteFile


def locate(value: str | os.PathLike[str]) -> Location:
    """A local path, or the object a URI names."""
    if isinstance(value, RemoteFile):
        return value
    return RemoteFile.of(os.fspath(value)) if is_uri(value) else local_path(value)


def cache_dir() -> Path:
    """Where emoji-batch keeps local state: ``$XDG_CACHE_HOME/emoji-batch`` or
    ``~/.cache/emoji-batch``."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "emoji-batch"


def staging_path(target: RemoteFile) -> Path:
    """The local file a remote OUTPUT is written to before it is uploaded; its lock and
    ``--resume`` journal sit beside it, one directory per OUTPUT URI."""
    key = hashlib.sha256(target.uri.encode()).hexdigest()[:16]
    directory = cache_dir() / "outputs" / key
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot make the staging directory {directory}: {exc}") from exc
    return directory / target.name


@contextlib.contextmanager
def fetched(source: RemoteFile) -> Iterator[Path]:
    """A local copy of ``source`` (same name) in a temporary directory, removed after:
    for readers that need the whole file anyway (``evaluate``)."""
    source.check_input()
    with tempfile.TemporaryDirectory(prefix="emoji-batch-") as tmp:
        local = Path(tmp) / source.name
        with source.open() as fh, open(local, "wb") as out:
            shutil.copyfileobj(fh, out, _READ_BYTES)
        yield local
