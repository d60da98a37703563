"""What the training install adds, and the one-line error of a feature that needs it.

``pip install emoji-batch`` is the scoring install: the NumPy n-gram models and the int8
bundles (LiteRT, with ONNX Runtime for BERT's near-tie rows) score with it, and
``predict``, ``score``, ``evaluate`` and ``models list`` work. Training, quantizing,
fitting an ensemble, fp32/bf16 Keras models and plots need ``emoji-batch[train]``; each
checks here first, without importing anything, so that a scoring install answers with
the install command and exit code 2 instead of an ImportError traceback.
"""

import importlib.util

from emoji_batch.errors import MissingExtra

TRAIN_INSTALL = "pip install 'emoji-batch[train]'"
# Import name -> the distribution pip installs it as, for the message.
TRAIN_PACKAGES = {
    "tensorflow": "tensorflow",
    "tf_keras": "tf-keras",
    "transformers": "transformers",
    "sklearn": "scikit-learn",
    "scipy": "scipy",
    "matplotlib": "matplotlib",
}
# What building and running a Keras model takes (a BERT one also needs transformers).
KERAS = ("tensorflow", "tf_keras")


def installed(module: str) -> bool:
    """Whether the top-level ``module`` can be imported, found without importing it."""
    return importlib.util.find_spec(module) is not None


def require(feature: str, *modules: str) -> None:
    """Raise :class:`MissingExtra` naming ``feature`` and the install command when any of
    ``modules`` (default: every package of the training install) is missing."""
    missing = [m for m in modules or TRAIN_PACKAGES if not installed(m)]
    if missing:
        names = ", ".join(TRAIN_PACKAGES.get(m, m) for m in missing)
        raise MissingExtra(
            f"{feature} needs the training install ({names} not installed): {TRAIN_INSTALL}"
        )
