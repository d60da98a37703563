"""Python objects lent to Arrow's reader threads, and waiting until Arrow lets go of them."""

import atexit
import gc
import threading
import weakref
from typing import BinaryIO, TypeVar

import numpy as np
import pyarrow as pa

T = TypeVar("T")

#
# Arrow's CSV reader reads ahead in its own C++ threads, which hold the Python file it
# reads, the blocks read from it and the ragged-row handler, and may go on doing so for
# a while after an error. The thread that lets go of the last reference to one needs the
# GIL for it; if the interpreter is shutting down by then, Python ends that thread inside
# C++ code and the process aborts ("terminate called without an active exception", exit
# 134) after an error that should have exited 2. So every such object is lent through
# ``lend``, and ``wait_for_arrow`` (called by the CLI before it exits, and at exit for
# library users, before shutdown begins) waits until Arrow has let go of them all.
_lent_cond = threading.Condition(threading.RLock())  # reentrant: gc may run a finalizer
_lent = 0
ARROW_RELEASE_SECONDS = 10.0


def _returned() -> None:
    global _lent
    with _lent_cond:
        _lent -= 1
        _lent_cond.notify_all()


def lend(obj: T) -> T:
    """``obj``, counted as held by Arrow until it is garbage."""
    global _lent
    with _lent_cond:
        _lent += 1
    weakref.finalize(obj, _returned).atexit = False  # called when obj dies, never at exit
    return obj


def wait_for_arrow(timeout: float = ARROW_RELEASE_SECONDS) -> bool:
    """Wait until Arrow's threads hold no Python object lent to them (after a collection,
    for objects that only a reference cycle kept); False if ``timeout`` passed first."""
    with _lent_cond:
        if not _lent:
            return True
    gc.collect()
    with _lent_cond:
        return _lent_cond.wait_for(lambda: not _lent, timeout)


atexit.register(wait_for_arrow)


class _ArrowSource:
    """``stream`` for Arrow's reader threads, lent with every block it reads (as a NumPy
    array: bytes cannot be weakly referenced), so ``wait_for_arrow`` knows when Arrow is
    done with all of them."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def read(self, size: int = -1) -> np.ndarray:
        return lend(np.frombuffer(self._stream.read(size), dtype=np.uint8))

    @property
    def closed(self) -> bool:
        return self._stream.closed

    def close(self) -> None:
        self._stream.close()


def lent_stream(stream: BinaryIO) -> pa.PythonFile:
    return pa.PythonFile(lend(_ArrowSource(stream)), mode="r")
