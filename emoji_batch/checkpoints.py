"""Per-epoch training checkpoints, so a killed ``train`` loses at most one epoch.

A BERT epoch costs 15-20 minutes on a small CPU; sessions and cron slots end. After
every epoch the model, the optimizer (step count and Adam moments, which drive the
learning-rate schedule) and the run's bookkeeping are written beside the output as
``.<output name>.train/``; ``train --resume`` with the same command continues from
there. TensorFlow checkpoints (tensors by name, no pickle) hold the weights: they are
training scratch, never part of a bundle, and the directory is removed once the bundle
is written.
"""

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from emoji_batch.errors import InputError

log = logging.getLogger(__name__)

STATE = "state.json"


class TrainingCheckpoints:
    """The scratch directory of one training run: weights and where the run stands.

    ``state`` holds ``phase`` (index of the phase in progress), ``epoch`` (epochs of it
    done), ``history``, the early-stopping bookkeeping of the phase (``phase_best``,
    ``wait``) and the best value over all finished phases (``best``).
    """

    def __init__(self, output: Path, fingerprint: dict[str, Any], resume: bool) -> None:
        self.dir = output.parent / f".{output.name}.train"
        self.fingerprint = fingerprint
        self.state: dict[str, Any] = {"phase": 0, "epoch": 0, "history": [], "best": None}
        path = self.dir / STATE
        if resume and path.is_file():
            saved = json.loads(path.read_text())
            if saved.get("fingerprint") != fingerprint:
                changed = sorted(
                    k for k in fingerprint if saved.get("fingerprint", {}).get(k) != fingerprint[k]
                )
                raise InputError(
                    f"cannot resume from {self.dir}: {', '.join(changed) or 'the run'} changed; "
                    "delete that directory or train without --resume"
                )
            self.state = saved["state"]
            log.info(
                "resuming at phase %d after %d epochs of it",
                self.state["phase"] + 1,
                self.state["epoch"],
            )
        elif self.dir.exists():
            if not resume:
                log.info("discarding the checkpoints of an earlier run in %s", self.dir)
            shutil.rmtree(self.dir)

    @property
    def resumed(self) -> bool:
        return bool(self.state["history"])

    def _write(self, name: str, model: Any, optimizer: Any | None = None) -> None:
        import tensorflow as tf

        tf.train.Checkpoint(**_trackables(model, optimizer)).write(str(self.dir / name / "ckpt"))

    def restore(self, name: str, model: Any, optimizer: Any | None = None) -> None:
        """Load checkpoint ``name`` (``latest``, ``phase_best``, ``best``) into the model's
        weights, and the optimizer's state if given."""
        import tensorflow as tf

        status = tf.train.Checkpoint(**_trackables(model, optimizer)).read(
            str(self.dir / name / "ckpt")
        )
        status.expect_partial()

    def save(self, model: Any, optimizer: Any | None, improved: bool, best: bool = False) -> None:
        """Write the weights (and optimizer) of the epoch just finished, then the state.

        The state goes last: a run killed mid-write resumes from the previous epoch.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        if improved:
            self._write("phase_best", model)
        if best:
            self._write("best", model)
        self._write("latest", model, optimizer)
        tmp = self.dir / f"{STATE}.tmp"
        tmp.write_text(json.dumps({"fingerprint": self.fingerprint, "state": self.state}))
        tmp.replace(self.dir / STATE)

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _trackables(model: Any, optimizer: Any | None) -> dict[str, Any]:
    """The model's layers by position, and the optimizer if given.

    Not the model itself: a compiled Keras model also tracks its optimizer, whose slots
    differ between phases (a frozen encoder has none), so a phase could not read the
    weights another phase wrote. Layers track their weights by attribute, whatever is
    frozen.
    """
    objects = {f"layer_{i}": layer for i, layer in enumerate(model.layers) if layer.weights}
    return objects | ({"optimizer": optimizer} if optimizer is not None else {})
