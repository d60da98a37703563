"""Load whatever ``--model`` names, a single bundle or an ensemble, ready to predict.

Both kinds satisfy :class:`AnyPredictor`, so scoring and evaluation never ask which it
is. The bundle's manifest is read once here and its ``kind`` decides which one loads.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from emoji_batch.bundle import open_bundle, read_manifest, resolve_model
from emoji_batch.device import DeviceChoice, resolve_device
from emoji_batch.ensemble import EnsemblePredictor, load_ensemble
from emoji_batch.labels import Label
from emoji_batch.manifests import CLASSIFIER, ENSEMBLE, MANIFEST, read_json_object
from emoji_batch.predictor import PrecisionChoice, Predictor, resolve_precision


class AnyPredictor(Protocol):
    """What every predictor answers: a bundle's :class:`~emoji_batch.predictor.Predictor`
    and an :class:`~emoji_batch.ensemble.EnsemblePredictor` alike."""

    @property
    def name(self) -> str: ...

    @property
    def labels(self) -> list[Label]: ...

    @property
    def precision(self) -> str:
        """fp32, int8 or bf16; an ensemble joins its members' with "+"."""
        ...

    @property
    def device(self) -> str: ...

    @property
    def batch_size(self) -> int | None:
        """Texts per model call (None: an ensemble's members each take their default)."""
        ...

    @property
    def n_labels(self) -> int: ...

    @property
    def directory(self) -> Path:
        """The bundle's (or the ensemble's) directory."""
        ...

    def fitted_on(self) -> dict[str, str]:
        """sha256 of each data file the model was fitted or calibrated on -> how."""
        ...

    @property
    def fallback_rows(self) -> int:
        """Reduced-precision rows recomputed in fp32 so far."""
        ...

    def fingerprint(self) -> str:
        """Hash of the files its predictions depend on (for ``--resume`` journals)."""
        ...

    def clean(self, texts: Sequence[str | None]) -> list[str]: ...

    def encode(self, cleaned: Sequence[str]) -> list[Any]: ...

    def predict_encoded(self, encoded: Sequence[Any]) -> np.ndarray: ...

    def predict_proba(self, texts: Sequence[str | None]) -> np.ndarray: ...


def load_predictor(
    model: str | None,
    models_dir: Path | None,
    device: DeviceChoice,
    batch_size: int | None,
    precision: PrecisionChoice = "auto",
) -> AnyPredictor:
    """The model named by ``model`` (a bundle or ensemble path or name; None: the shipped
    default) on ``device``, in ``precision`` (an ensemble's members each resolve it)."""
    where = resolve_device(device)
    directory = resolve_model(model, models_dir)
    data = read_json_object(directory / MANIFEST)
    if data.get("kind", CLASSIFIER) == ENSEMBLE:
        return EnsemblePredictor(load_ensemble(directory, data), where, batch_size, precision)
    bundle = open_bundle(directory, read_manifest(directory, data))
    chosen = resolve_precision(precision, bundle, where)
    return Predictor(bundle, device=where, batch_size=batch_size, precision=chosen)
