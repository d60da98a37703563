"""Ensemble bundles: several bundles' probabilities mixed into one model.

Different families make different mistakes (n-grams see spelling and hashtags, BERT
sees meaning), so a weighted mix of their probabilities beats each of them. An ensemble
bundle is a directory with only ``manifest.json``: its members by path relative to it
and by content hash (a changed or missing member is refused rather than silently mixed
differently), the mixing (per-member weights, log-linear or linear) and the prior power
applied to the mix. The weights are fitted on a labelled file by cross-fitting: the
reported metric on each half comes from weights fitted on the other half
(:mod:`emoji_batch.ensemble_fit`).
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from emoji_batch.bundle import Bundle, bundle_digest, bundle_files, load_bundle
from emoji_batch.calibration import with_biases
from emoji_batch.cleaning import CLEANING_VERSIONS, clean_texts
from emoji_batch.errors import InputError, ModelError
from emoji_batch.fileio import file_digest
from emoji_batch.labels import Label
from emoji_batch.manifests import (
    ENSEMBLE,
    MANIFEST,
    check_manifest,
    manifest_kind,
    read_json_object,
)
from emoji_batch.predictor import (
    REDUCED,
    PrecisionChoice,
    Predictor,
    adjust_to_prior,
    resolve_precision,
)

log = logging.getLogger(__name__)

KIND = ENSEMBLE
FORMAT_VERSION = 1
Mixing = Literal["log_linear", "linear"]
MIXINGS: tuple[Mixing, ...] = ("log_linear", "linear")


def is_ensemble(directory: Path) -> bool:
    """Whether ``directory`` holds an ensemble bundle (its manifest says ``kind``)."""
    return manifest_kind(directory) == KIND


@dataclass(frozen=True)
class Mix:
    """How member probabilities become one distribution."""

    weights: tuple[float, ...]
    mixing: Mixing
    prior_power: float
    # Per-label log-offsets for macro-F1 (None: none), added after the prior power.
    biases: tuple[float, ...] | None = None

    def combine(self, probs: Sequence[np.ndarray]) -> np.ndarray:
        """The weighted mix of member probabilities, before the prior power."""
        pairs = zip(self.weights, probs, strict=True)
        if self.mixing == "linear":
            mixed = sum(w * p for w, p in pairs)
        else:
            logs = sum(w * np.log(np.maximum(p, 1e-12)) for w, p in pairs)
            mixed = np.exp(logs - logs.max(axis=1, keepdims=True))
        mixed = np.asarray(mixed, dtype=np.float32)
        return mixed / mixed.sum(axis=1, keepdims=True)

    def apply(self, probs: Sequence[np.ndarray], prior: np.ndarray) -> np.ndarray:
        adjusted = adjust_to_prior(self.combine(probs), prior, self.prior_power)
        if self.biases is None:
            return adjusted
        return with_biases(adjusted, np.asarray(self.biases, dtype=np.float32))


@dataclass
class Ensemble:
    """A loaded ensemble: its members' bundles and how to mix them."""

    directory: Path
    members: list[Bundle]
    mix: Mix
    prior: np.ndarray
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.directory.name

    @property
    def labels(self) -> list[Label]:
        return self.members[0].labels

    def files(self) -> list[Path]:
        """Everything its predictions depend on: its manifest and every member's files."""
        return [self.directory / MANIFEST] + [f for m in self.members for f in bundle_files(m)]


def check_same_cleaning(bundles: Sequence[Bundle], where: Path, version: str | None = None) -> str:
    """The one cleaning version the members share (and the ensemble records): the text
    of a chunk is cleaned once for all of them."""
    versions = {b.manifest.cleaning_version for b in bundles} | ({version} if version else set())
    if len(versions) > 1:
        each = ", ".join(f"{b.name}: {b.manifest.cleaning_version}" for b in bundles)
        raise ModelError(
            f"{where}: members must share one cleaning version ({each}); retrain the older "
            "ones with this emoji-batch"
        )
    return versions.pop()


def check_same_labels(bundles: Sequence[Bundle], where: Path) -> None:
    first = [label.id for label in bundles[0].labels]
    for bundle in bundles[1:]:
        if [label.id for label in bundle.labels] != first:
            raise InputError(
                f"{where}: members must predict the same labels in the same order; "
                f"{bundle.name} differs from {bundles[0].name}"
            )


def members_label_prior(bundles: Sequence[Bundle]) -> np.ndarray:
    """The training label prior the members recorded (uniform if none did)."""
    for bundle in bundles:
        if bundle.manifest.calibration:
            return np.asarray(bundle.manifest.calibration["label_prior"], dtype=np.float32)
    n = len(bundles[0].labels)
    return np.full(n, 1 / n, dtype=np.float32)


def load_ensemble(directory: Path, data: dict[str, Any] | None = None) -> Ensemble:
    """Load the members named by the manifest (``data``: its JSON, read already),
    refusing any that moved or changed."""
    path = directory / MANIFEST
    if data is None:
        data = read_json_object(path)
    check_manifest(data, directory, KIND, FORMAT_VERSION, CLEANING_VERSIONS)
    try:
        specs = data["members"]
        biases = data.get("label_biases")
        mix = Mix(
            tuple(float(m["weight"]) for m in specs),
            data["mixing"],
            float(data["prior_power"]),
            None if biases is None else tuple(float(b) for b in biases),
        )
        prior = np.asarray([float(p) for p in data["label_prior"]], dtype=np.float32)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelError(f"{path}: malformed ensemble manifest ({exc!r})") from exc
    if mix.mixing not in MIXINGS or not specs:
        raise ModelError(f"{path}: malformed ensemble manifest (mixing {mix.mixing!r})")
    weights = np.asarray(mix.weights)
    if not np.isfinite(weights).all() or (weights < 0).any() or not weights.sum() > 0:
        raise ModelError(
            f"{path}: member weights must be finite, non-negative and not all 0, "
            f"not {list(mix.weights)}"
        )
    if not np.isfinite(mix.prior_power):
        raise ModelError(f"{path}: prior_power must be a finite number")
    members = []
    for spec in specs:
        member = (directory / spec["path"]).resolve()
        if not (member / MANIFEST).is_file():
            raise ModelError(f"{directory}: member {spec['path']} is missing ({member})")
        bundle = load_bundle(member)
        if bundle_digest(bundle) != spec["sha256"]:
            raise ModelError(
                f"{directory}: member {spec['path']} changed since the ensemble was fitted; "
                "refit it with `emoji-batch ensemble`"
            )
        members.append(bundle)
    check_same_labels(members, directory)
    check_same_cleaning(members, directory, data["cleaning_version"])
    if len(prior) != len(members[0].labels):
        raise ModelError(f"{path}: label_prior needs one value per label")
    if mix.biases is not None and (
        len(mix.biases) != len(prior) or not np.isfinite(mix.biases).all()
    ):
        raise ModelError(f"{path}: label_biases needs one finite number per label")
    return Ensemble(directory, members, mix, prior, data)


NOT_A_MEMBER = "ensembles cannot be members of an ensemble: list the bundles it mixes instead"
NOT_QUANTIZED = (
    "ensembles cannot be quantized (a quantized member no longer has the hash the "
    "ensemble records): quantize the members first, then fit the ensemble again; "
    "`score --precision auto` runs each member in the fastest precision it has checked"
)


def _check_members_have(precision: PrecisionChoice, ensemble: Ensemble) -> None:
    """Refuse a reduced ``precision`` some member was not checked for, before any member
    loads, with what can be done: not ``quantize`` on the member, which would change the
    hash the ensemble records and so break it."""
    if precision not in REDUCED:
        return
    lacking = [m.name for m in ensemble.members if precision not in (m.manifest.precisions or {})]
    if lacking:
        have = {m.name: sorted(m.manifest.precisions or {}) for m in ensemble.members}
        each = ", ".join(f"{name}: {'/'.join(p) or 'fp32 only'}" for name, p in have.items())
        raise InputError(
            f"ensemble {ensemble.name}: {'member' if len(lacking) == 1 else 'members'} "
            f"{', '.join(lacking)} {'has' if len(lacking) == 1 else 'have'} no checked "
            f"{precision} precision ({each}); run it with --precision auto (each member in "
            "the fastest precision it has checked) or fp32. Quantizing a member would change "
            "the hash the ensemble records: quantize the members first, then fit it again"
        )


class EnsemblePredictor:
    """Probabilities of an ensemble: each member predicts in its own precision and
    tokenization from text cleaned once, then the mix combines them."""

    def __init__(
        self,
        ensemble: Ensemble,
        device: str = "/CPU:0",
        batch_size: int | None = None,
        precision: PrecisionChoice = "fp32",
    ) -> None:
        self.bundle = ensemble
        self.name = ensemble.name
        self.labels = ensemble.labels
        self.device = device
        _check_members_have(precision, ensemble)
        # A member the mix weighs 0 changes nothing: it is neither loaded nor run (the
        # shipped ensemble's CNN would otherwise import TensorFlow for it).
        used = [i for i, weight in enumerate(ensemble.mix.weights) if weight > 0]
        self.mix = replace(ensemble.mix, weights=tuple(ensemble.mix.weights[i] for i in used))
        self.members = [
            Predictor(
                member,
                device=device,
                batch_size=batch_size,
                precision=resolve_precision(precision, member, device),
            )
            for member in (ensemble.members[i] for i in used)
        ]
        self.batch_size = batch_size
        self.precision = "+".join(m.precision for m in self.members)

    @property
    def n_labels(self) -> int:
        return len(self.labels)

    @property
    def fallback_rows(self) -> int:
        return sum(m.fallback_rows for m in self.members)

    @property
    def directory(self) -> Path:
        return self.bundle.directory

    def fingerprint(self) -> str:
        """Hash of the ensemble's manifest and every member's files."""
        return file_digest(*self.bundle.files())

    def fitted_on(self) -> dict[str, str]:
        """What its members were fitted on, and the file its mix was fitted on (with the
        cross-fitted macro-F1 measured there): see :meth:`Predictor.fitted_on`."""
        found = {k: v for member in self.members for k, v in member.fitted_on().items()}
        manifest = self.bundle.manifest
        data = manifest.get("evaluation", {}).get("data", {})
        if "sha256" in data:
            crossed = manifest.get("metrics", {}).get("macro_f1")
            found[data["sha256"]] = f"mixed on; its cross-fitted macro-F1 there is {crossed}"
        return found

    @property
    def cleaning_version(self) -> str:
        return self.members[0].cleaning_version

    def clean(self, texts: Sequence[str | None]) -> list[str]:
        """Cleaned once for every member: they share one cleaning version."""
        return clean_texts(list(texts), self.cleaning_version)

    def encode(self, cleaned: Sequence[str]) -> list[list[np.ndarray]]:
        """Per text, the encodings of every member (texts stay the unit of a chunk)."""
        per_member = [m.encode(cleaned) for m in self.members]
        return [list(row) for row in zip(*per_member, strict=True)] if per_member else []

    def predict_encoded(self, encoded: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
        if not encoded:
            return np.zeros((0, self.n_labels), dtype=np.float32)
        probs = [m.predict_encoded([row[i] for row in encoded]) for i, m in enumerate(self.members)]
        return self.mix.apply(probs, self.bundle.prior)

    def predict_cleaned(self, cleaned: Sequence[str]) -> np.ndarray:
        return self.predict_encoded(self.encode(cleaned))

    def predict_proba(self, texts: Sequence[str | None]) -> np.ndarray:
        return self.predict_cleaned(self.clean(texts))
