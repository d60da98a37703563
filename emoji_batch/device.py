"""Pick where the model runs: a GPU when TensorFlow sees one, else the CPU."""

from typing import Literal

from emoji_batch.errors import InputError

DeviceChoice = Literal["auto", "cpu", "gpu"]


def resolve_device(choice: DeviceChoice = "auto") -> str:
    """Return a TensorFlow device string for ``choice``; asking for a missing GPU is an error."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if choice == "cpu":
        return "/CPU:0"
    if choice == "gpu" and not gpus:
        raise InputError("--device gpu was asked for, but TensorFlow sees no GPU")
    return "/GPU:0" if gpus else "/CPU:0"
