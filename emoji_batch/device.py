"""Pick where the model runs: a GPU when TensorFlow sees one, else the CPU."""

import contextlib
import functools
import glob
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


def _no_gpu_possible() -> bool:
    """Whether this machine surely has no GPU TensorFlow could use: no NVIDIA (or WSL)
    device nodes, or CUDA told to see none. Then ``auto`` needs no 4-second TensorFlow
    import to answer CPU."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "unset").strip() in ("", "-1"):
        return True
    return not (glob.glob("/dev/nvidia[0-9]*") or os.path.exists("/dev/dxg"))


def resolve_device(choice: DeviceChoice = "auto") -> str:
    """Return a TensorFlow device string for ``choice``; asking for a missing GPU is an error."""
    if choice == "cpu" or (choice == "auto" and _no_gpu_possible()):
        return "/CPU:0"
    gpus = tensorflow().config.list_physical_devices("GPU")
    if choice == "gpu" and not gpus:
        raise InputError("--device gpu was asked for, but TensorFlow sees no GPU")
    return "/GPU:0" if gpus else "/CPU:0"
