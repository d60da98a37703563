"""Load whatever ``--model`` names, a single bundle or an ensemble, ready to predict.

Both kinds answer the same calls (``encode``, ``predict_encoded``, ``predict_proba``,
``fingerprint``, ``bundle.labels``), so scoring and evaluation never ask which it is.
"""

from pathlib import Path

from emoji_batch.bundle import load_bundle, resolve_model
from emoji_batch.device import DeviceChoice, resolve_device
from emoji_batch.ensemble import EnsemblePredictor, is_ensemble, load_ensemble
from emoji_batch.predict import PrecisionChoice, Predictor, resolve_precision

AnyPredictor = Predictor | EnsemblePredictor


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
    if is_ensemble(directory):
        return EnsemblePredictor(load_ensemble(directory), where, batch_size, precision)
    bundle = load_bundle(directory)
    chosen = resolve_precision(precision, bundle, where)
    return Predictor(bundle, device=where, batch_size=batch_size, precision=chosen)
