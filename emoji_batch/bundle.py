"""Model bundles: a readable directory with ``manifest.json``, weights and vocabulary.

Loading reads JSON, text and safetensors only and builds the model from the
architecture registered in :mod:`emoji_batch.architectures`; nothing in a bundle is
ever executed or unpickled.
"""

import logging
import os
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emoji_batch import __version__
from emoji_batch.cleaning import CLEANING_VERSION, CLEANING_VERSIONS
from emoji_batch.errors import InputError, ModelError
from emoji_batch.fileio import file_digest, write_json
from emoji_batch.labels import Label
from emoji_batch.manifests import CLASSIFIER, MANIFEST, check_manifest, read_json_object

if TYPE_CHECKING:
    from emoji_batch.families import Encoder, Family

FORMAT_VERSION = 1
WEIGHTS = "weights.safetensors"
DEFAULT_MODEL = "ngram_svm"
# Shipped names that were retired, and the shipped bundle each now means (when no bundle
# of the old name is found), so a cron job's --model keeps working.
RETIRED_NAMES = {"ngram_linear": "ngram_svm", "ensemble_bert_ngram_cnn": "ensemble_bert_svm"}
MODELS_ENV = "EMOJI_BATCH_MODELS"

log = logging.getLogger(__name__)


@dataclass
class Manifest:
    """What a bundle is: everything needed to rebuild, trust and compare the model."""

    architecture: str
    config: dict[str, Any]
    labels: list[Label]
    max_length: int
    metrics: dict[str, Any]
    training: dict[str, Any]
    cleaning_version: str = CLEANING_VERSION
    format_version: int = FORMAT_VERSION
    package_version: str = __version__
    created: str = ""
    files: dict[str, str] | None = None
    calibration: dict[str, Any] | None = None
    # Reduced-precision copies beside the fp32 weights, with how they compared to fp32.
    precisions: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "architecture": self.architecture,
            "config": self.config,
            "labels": [label.to_dict() for label in self.labels],
            "cleaning_version": self.cleaning_version,
            "max_length": self.max_length,
            "metrics": self.metrics,
            "training": self.training,
            "package_version": self.package_version,
            "created": self.created,
            "files": self.files or {},
            "calibration": self.calibration,
            "precisions": self.precisions or {},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], where: Path) -> "Manifest":
        """Fields of a manifest :func:`read_manifest` has checked (kind and versions)."""
        version, cleaning = data["format_version"], data["cleaning_version"]
        try:
            return cls(
                architecture=data["architecture"],
                config=data["config"],
                labels=_check_labels(data["labels"], where),
                max_length=_check_max_length(data["max_length"], where),
                metrics=data.get("metrics", {}),
                training=data.get("training", {}),
                cleaning_version=cleaning,
                format_version=version,
                package_version=data.get("package_version", ""),
                created=data.get("created", ""),
                files=data["files"],
                calibration=_check_calibration(data.get("calibration"), len(data["labels"]), where),
                precisions=_check_precisions(data.get("precisions"), where),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{where}: malformed manifest ({exc!r})") from exc


def _check_labels(value: Any, where: Path) -> list[Label]:
    """At least two labels, each an integer id (all different) with a non-empty emoji and
    name: the scorer writes the emoji, so a null one would be a silent null answer."""
    labels = [Label(int(x["id"]), x["emoji"], x["name"]) for x in value]
    for label in labels:
        if not (isinstance(label.emoji, str) and label.emoji and isinstance(label.name, str)):
            raise ModelError(f"{where}: label {label.id} needs a non-empty emoji and a name")
    if len(labels) < 2 or len({label.id for label in labels}) != len(labels):
        raise ModelError(f"{where}: labels need at least two different ids")
    return labels


def _check_max_length(value: Any, where: Path) -> int:
    """Tokens read per text: at least 1, else every text is scored as empty."""
    if isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise ModelError(f"{where}: max_length must be a whole number >= 1, not {value!r}")
    return int(value)


def _check_calibration(value: Any, n_labels: int, where: Path) -> dict[str, Any] | None:
    """``{"label_prior": [n floats > 0], "prior_power": float}`` or None."""
    if value is None:
        return None
    try:
        prior = [float(x) for x in value["label_prior"]]
        power = float(value["prior_power"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{where}: malformed calibration ({exc!r})") from exc
    if len(prior) != n_labels or min(prior) <= 0:
        raise ModelError(f"{where}: calibration needs one positive prior per label")
    return {**value, "label_prior": prior, "prior_power": power}


def _check_precisions(value: Any, where: Path) -> dict[str, Any]:
    """``{name: {fallback_margin, tweets_per_second, fp32_tweets_per_second, ...}}``."""
    if not value:
        return {}
    try:
        for check in value.values():
            for key in ("fallback_margin", "tweets_per_second", "fp32_tweets_per_second"):
                float(check[key])
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{where}: malformed precisions record ({exc!r})") from exc
    return dict(value)


def bundle_file(directory: Path, manifest: Manifest, key: str) -> Path:
    """Path of a file the manifest lists, refusing names that leave the bundle directory."""
    files = manifest.files or {}
    if key not in files:
        raise ModelError(f"{directory}: manifest lists no {key!r} file")
    root = directory.resolve()
    path = (root / files[key]).resolve()
    if not path.is_relative_to(root) or path == root:
        raise ModelError(f"{directory}: manifest file {files[key]!r} escapes the bundle")
    if not path.is_file():
        raise ModelError(f"{directory}: bundle is missing {files[key]}")
    return path


def read_manifest(directory: Path, data: dict[str, Any] | None = None) -> Manifest:
    """The classifier manifest in ``directory`` (``data``: its JSON, read already)."""
    if data is None:
        data = read_json_object(directory / MANIFEST)
    check_manifest(data, directory, CLASSIFIER, FORMAT_VERSION, CLEANING_VERSIONS)
    return Manifest.from_json(data, directory)


def write_manifest(directory: Path, manifest: Manifest) -> None:
    manifest.created = manifest.created or datetime.now(UTC).isoformat(timespec="seconds")
    write_json(directory / MANIFEST, manifest.to_json())


def save_weights(path: Path, weights: dict[str, np.ndarray], dtype: str = "float32") -> None:
    """Write named weights, float32 arrays stored as ``dtype`` (float16 halves a bundle)."""
    from safetensors.numpy import save_file

    def stored(value: np.ndarray) -> np.ndarray:
        return value.astype(dtype) if value.dtype == np.float32 else value

    path.touch()  # a new file gets the system's mode for new files, an old one keeps its own
    mode = stat.S_IMODE(path.stat().st_mode)
    save_file({k: np.ascontiguousarray(stored(v)) for k, v in weights.items()}, str(path))
    path.chmod(mode)  # safetensors writes a private 0600 file


def load_weights(path: Path) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{path}: unreadable weights ({exc})") from exc


# --- finding bundles ---------------------------------------------------------------


def shipped_models_dir() -> Path:
    return Path(str(resources.files("emoji_batch") / "models"))


def search_dirs(models_dir: Path | None) -> list[Path]:
    """Where model names are looked up: ``--models-dir``/env/./models, then the package."""
    first = models_dir or Path(os.environ.get(MODELS_ENV, "models"))
    shipped = shipped_models_dir()
    return [shipped] if first.resolve() == shipped.resolve() else [first, shipped]


@dataclass(frozen=True)
class FoundModel:
    """A bundle in a search directory, as ``--model NAME`` sees it."""

    name: str
    path: Path
    shipped: bool
    # An earlier search directory holds a bundle of the same name, which NAME finds.
    shadowed: bool


def find_models(models_dir: Path | None) -> list[FoundModel]:
    """Every bundle in the search directories in lookup order, shadowed ones included,
    so that a local bundle named like a shipped one can be pointed out."""
    found: list[FoundModel] = []
    shipped = shipped_models_dir()
    for directory in search_dirs(models_dir):
        if directory.is_dir():
            for child in sorted(directory.iterdir()):
                if (child / MANIFEST).is_file():
                    shadowed = any(m.name == child.name for m in found)
                    found.append(FoundModel(child.name, child, directory == shipped, shadowed))
    return found


def resolve_model(model: str | None, models_dir: Path | None, *, implied: bool = False) -> Path:
    """The bundle directory ``--model`` names: a path, or a name looked up in the search
    directories. Without ``model``, always the shipped default, whatever lies in
    ./models: a local bundle must be asked for. ``implied``: the name is the program's
    (the position model's), not a ``--model`` the user typed, so a local bundle of that
    name is only noted, not warned about as a --model that shadows."""
    shipped = shipped_models_dir()
    if model is None:
        return shipped / DEFAULT_MODEL
    path = _find_model(model, models_dir)
    namesake = shipped / model
    is_name = Path(model).name == model
    if is_name and (namesake / MANIFEST).is_file() and path.resolve() != namesake.resolve():
        if implied:
            log.info("%s: using %s rather than the shipped %s", model, path, namesake)
        else:
            log.warning("--model %s is %s, which shadows the shipped %s", model, path, namesake)
    return path


def _find_model(model: str, models_dir: Path | None) -> Path:
    as_path = Path(model)
    if (as_path / MANIFEST).is_file():
        return as_path
    found = [m for m in find_models(models_dir) if not m.shadowed]
    for m in found:
        if m.name == model:
            return m.path
    if model in RETIRED_NAMES and not as_path.exists():
        now = shipped_models_dir() / RETIRED_NAMES[model]
        log.warning("--model %s was retired; using the shipped %s in its place", model, now.name)
        return now
    if as_path.is_dir():
        raise ModelError(f"{as_path} is not a model bundle (no {MANIFEST})")
    known = ", ".join(m.name for m in found) or "(none)"
    where = ", ".join(str(d) for d in search_dirs(models_dir))
    raise ModelError(f"no model named {model!r} (looked in {where}); available: {known}")


def check_new_bundle_dir(directory: Path, force: bool) -> None:
    """Refuse to write into an existing non-empty directory unless forced."""
    if directory.exists() and any(directory.iterdir()) and not force:
        raise InputError(f"output {directory} exists and is not empty; pass --force")


# --- loading and saving models ------------------------------------------------------


@dataclass
class Bundle:
    """A loaded bundle: its manifest, its named weights, its text encoder (a word
    vocabulary, n-gram list or WordPiece tokenizer) and the Keras model, built from the
    weights on first use: the NumPy and int8 runtimes never need it, nor TensorFlow."""

    directory: Path
    manifest: Manifest
    weights: dict[str, np.ndarray]
    encoder: "Encoder"
    built: Any = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.directory.name

    @property
    def labels(self) -> list[Label]:
        return self.manifest.labels

    @property
    def family(self) -> "Family":
        """The model family of the bundle's architecture."""
        from emoji_batch.architectures import get_architecture
        from emoji_batch.families import get_family

        return get_family(get_architecture(self.manifest.architecture).family)

    @property
    def model(self) -> Any:
        if self.built is None:
            self.built = build_model(self.manifest, self.weights, self.directory)
        return self.built

    def weight(self, name: str) -> np.ndarray:
        """One weight by its name in the weights file (see :func:`model_weights`), as float32."""
        try:
            return np.asarray(self.weights[name], dtype=np.float32)
        except KeyError:
            raise ModelError(f"{self.directory}: weights have no {name!r}") from None


def _named_weights(model: Any) -> list[tuple[str, Any]]:
    """Stable names ``layer/index:leaf`` built from the explicitly named top-level layers.

    Keras' own variable names gain ``_1`` suffixes when a process builds a model twice,
    so they cannot key a file; layer names chosen in ``architectures`` can.
    """
    named = []
    for layer in model.layers:
        for i, w in enumerate(layer.weights):
            leaf = w.name.rsplit("/", 1)[-1].split(":")[0]
            named.append((f"{layer.name}/{i}:{leaf}", w))
    return named


def model_weights(model: Any) -> dict[str, np.ndarray]:
    return {name: w.numpy() for name, w in _named_weights(model)}


def assign_weights(model: Any, weights: dict[str, np.ndarray], where: Path) -> None:
    """Load named weights into a freshly built model, refusing any mismatch."""
    named = _named_weights(model)
    expected = {name for name, _ in named}
    if expected != set(weights):
        missing = sorted(expected - set(weights))[:3]
        extra = sorted(set(weights) - expected)[:3]
        raise ModelError(
            f"{where}: weights do not match the architecture "
            f"(missing {missing}, unexpected {extra})"
        )
    for name, w in named:
        value = weights[name]
        if tuple(value.shape) != tuple(w.shape):
            raise ModelError(
                f"{where}: weight {name} has shape {value.shape}, architecture needs {w.shape}"
            )
        w.assign(value.astype(w.dtype.as_numpy_dtype, copy=False))  # float16 storage


def bundle_files(bundle: Bundle) -> list[Path]:
    """The files that make up a bundle's behaviour: its manifest and what it lists."""
    files = [bundle.directory / MANIFEST]
    files += [
        bundle_file(bundle.directory, bundle.manifest, key)
        for key in sorted(bundle.manifest.files or {})
    ]
    return files


def bundle_digest(bundle: Bundle) -> str:
    """sha256 of the files its predictions depend on: what ``--resume`` journals, folder
    state files and ensemble manifests record of a bundle."""
    return file_digest(*bundle_files(bundle))


def load_bundle(directory: Path) -> Bundle:
    """Read the manifest, weights and text encoder; the model is built when first used."""
    return open_bundle(directory, read_manifest(directory))


def open_bundle(directory: Path, manifest: Manifest) -> Bundle:
    """The bundle of an already read ``manifest``: its weights and its family's encoder."""
    from emoji_batch.architectures import get_architecture
    from emoji_batch.families import get_family

    try:
        arch = get_architecture(manifest.architecture)
    except InputError as exc:
        raise ModelError(f"{directory}: {exc}") from None
    family = get_family(arch.family)
    weights = load_weights(bundle_file(directory, manifest, "weights"))
    encoder = family.load_encoder(
        bundle_file(directory, manifest, family.encoder_file), manifest.config
    )
    return Bundle(directory, manifest, weights, encoder)


def build_model(
    manifest: Manifest, weights: dict[str, np.ndarray], where: Path, dtype_policy: str | None = None
) -> Any:
    """The manifest's architecture built (under a Keras dtype policy if given, e.g.
    ``mixed_bfloat16``: bfloat16 arithmetic, float32 weights and output) with ``weights``."""
    from emoji_batch.architectures import get_architecture

    arch = get_architecture(manifest.architecture)
    try:
        model = arch.build(manifest.config, len(manifest.labels), dtype_policy)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{where}: cannot build {arch.name} from its config ({exc!r})") from exc
    assign_weights(model, weights, where)
    return model


def rebuild_model(bundle: Bundle, dtype_policy: str) -> Any:
    """The bundle's model built again under a Keras dtype policy, with the same weights."""
    return build_model(bundle.manifest, bundle.weights, bundle.directory, dtype_policy)


def save_bundle(
    directory: Path, manifest: Manifest, model: Any, encoder: "Encoder", dtype: str = "float32"
) -> None:
    """Write weights (float32 ones stored as ``dtype``), the text encoder's files and then
    the manifest (last, so a bundle is whole or absent)."""
    directory.mkdir(parents=True, exist_ok=True)
    save_weights(directory / WEIGHTS, model_weights(model), dtype)
    manifest.files = {"weights": WEIGHTS, **encoder.save(directory)}
    write_manifest(directory, manifest)
