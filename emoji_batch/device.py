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
from emoji_batch.extras import installed, require

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
    require("TensorFlow (training, quantizing, fp32/bf16 Keras models)", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with stderr_silenced():
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
    return tf


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags Linux reports (empty elsewhere): which reduced precisions
    run natively here rather than emulated."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


# The flags that decide how fast (and how exactly) bf16 and int8 run.
REPORTED_CPU_FLAGS = frozenset(
    {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_bf16", "amx_int8"}
)


def native_bf16() -> bool:
    """Whether the CPU does bfloat16 arithmetic in hardware (AVX-512 BF16 or AMX); without
    it oneDNN emulates bf16, slower than fp32."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def _no_gpu_possible() -> bool:
    """Whether this machine surely has no GPU TensorFlow could use: no NVIDIA (or WSL)
    device nodes, or CUDA told to see none. Then ``auto`` needs no 4-second TensorFlow
    import to answer CPU."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "unset").strip() in ("", "-1"):
        return True
    return not (glob.glob("/dev/nvidia[0-9]*") or os.path.exists("/dev/dxg"))


def resolve_device(choice: DeviceChoice = "auto") -> str:
    """Return a TensorFlow device string for ``choice``; asking for a missing GPU is an error."""
    if choice == "cpu" or (
        choice == "auto" and (_no_gpu_possible() or not installed("tensorflow"))
    ):
        return "/CPU:0"
    require("--device gpu (GPUs run the Keras models, in TensorFlow)", "tensorflow")
    gpus = tensorflow().config.list_physical_devices("GPU")
    if choice == "gpu" and not gpus:
        raise InputError("--device gpu was asked for, but TensorFlow sees no GPU")
    return "/GPU:0" if gpus else "/CPU:0"
