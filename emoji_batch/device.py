"""Pick where the model runs: a GPU when TensorFlow sees one, else the CPU."""

import contextlib
import functools
import os
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Literal

from emoji_batch.errors import InputError

DeviceChoice = Literal["auto", "cpu", "gpu"]


@contextlib.contextmanager
def stderr_silenced() -> Iterator[None]:
    """Silence file descriptor 2: TensorFlow's C++ start-up logs ignore TF_CPP_MIN_LOG_LEVEL."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@functools.cache
def tensorflow() -> ModuleType:
    """Import TensorFlow and probe its devices once, without flooding a pipeline's log."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with stderr_silenced():
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
    return tf


def resolve_device(choice: DeviceChoice = "auto") -> str:
    """Return a TensorFlow device string for ``choice``; asking for a missing GPU is an error."""
    gpus = tensorflow().config.list_physical_devices("GPU")
    if choice == "cpu":
        return "/CPU:0"
    if choice == "gpu" and not gpus:
        raise InputError("--device gpu was asked for, but TensorFlow sees no GPU")
    return "/GPU:0" if gpus else "/CPU:0"
