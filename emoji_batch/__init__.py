"""emoji-batch: predict the emoji a tweet would carry, for whole files at a time.

The Python API (see README "Python API")::

    import emoji_batch

    model = emoji_batch.load("fine_tuned_bert")
    model.predict(["merry christmas!"])
    emoji_batch.score_frame(df, model=model)

Names are imported on first use, so ``import emoji_batch`` (and the CLI's start-up)
stays light.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("emoji-batch")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

_PUBLIC = {
    "Model": "emoji_batch.api",
    "ScoreOptions": "emoji_batch.options",
    "load": "emoji_batch.api",
    "score_frame": "emoji_batch.api",
    "score_file": "emoji_batch.scoring",
    "score_folder": "emoji_batch.folders",
    "evaluate_file": "emoji_batch.evaluate",
    "insert_emoji": "emoji_batch.position",
    "TweetPrediction": "emoji_batch.tweet",
}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'emoji_batch' has no attribute {name!r}")
