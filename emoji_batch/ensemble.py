"""Ensemble bundles: several bundles' probabilities mixed into one model.

Different families make different mistakes (n-grams see spelling and hashtags, BERT
sees meaning), so a weighted mix of their probabilities beats each of them. An ensemble
bundle is a directory with only ``manifest.json``: its members by path relative to it
and by content hash (a changed or missing member is refused rather than silently mixed
differently), the mixing (per-member weights, log-linear or linear) and the prior power
applied to the mix. The weights are fitted on a labelled file by cross-fitting: the
reported metric on each half comes from weights fitted on the other half.
"""

import itertools
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from emoji_batch import __version__
from emoji_batch.bundle import (
    Bundle,
    bundle_files,
    check_new_bundle_dir,
    load_bundle,
)
from emoji_batch.calibration import FOLDS, cross_fitted, fit_biases, with_biases
from emoji_batch.cleaning import CLEANING_VERSIONS, clean_texts
from emoji_batch.dataset import keep_labels, label_indices, read_labelled
from emoji_batch.device import REPORTED_CPU_FLAGS, cpu_flags
from emoji_batch.errors import InputError, ModelError
from emoji_batch.evaluation import EvalReport, evaluate_probs, macro_f1, write_report
from emoji_batch.extras import require
from emoji_batch.fileio import atomic_output, file_digest
from emoji_batch.labels import Label
from emoji_batch.manifests import (
    ENSEMBLE,
    MANIFEST,
    check_manifest,
    manifest_kind,
    read_json_object,
)
from emoji_batch.predict import (
    PRIOR_POWERS,
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
# Member weights are searched on a grid of this step over the simplex.
WEIGHT_STEP = 0.1


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


def _weight_grid(n: int) -> list[tuple[float, ...]]:
    """Every weight vector on the simplex with steps of ``WEIGHT_STEP``."""
    steps = round(1 / WEIGHT_STEP)
    return [
        tuple(c / steps for c in combo)
        for combo in itertools.product(range(steps + 1), repeat=n)
        if sum(combo) == steps
    ]


def fit_mix(
    probs: Sequence[np.ndarray], y: np.ndarray, prior: np.ndarray, biases: bool = False
) -> tuple[Mix, float]:
    """The weights, mixing and prior power that maximise macro-F1 on ``y`` (then, with
    ``biases``, per-label offsets on top). Ties keep the first found: log-linear, even
    weights, a power near 0."""
    best, best_f1 = None, -1.0
    grid = sorted(_weight_grid(len(probs)), key=lambda w: float(np.ptp(w)))
    for mixing in MIXINGS:
        for weights in grid:
            combined = Mix(weights, mixing, 0.0).combine(probs)
            for power in sorted(PRIOR_POWERS, key=abs):
                f1 = macro_f1(y, adjust_to_prior(combined, prior, power))
                if f1 > best_f1:
                    best, best_f1 = Mix(weights, mixing, float(power) + 0.0), f1
    assert best is not None
    if biases:
        offsets = fit_biases(best.apply(probs, prior), y)
        best = replace(best, biases=offsets)
        best_f1 = macro_f1(y, best.apply(probs, prior))
    return best, best_f1


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


def _check_same_cleaning(bundles: Sequence[Bundle], where: Path, version: str | None = None) -> str:
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


def _check_same_labels(bundles: Sequence[Bundle], where: Path) -> None:
    first = [label.id for label in bundles[0].labels]
    for bundle in bundles[1:]:
        if [label.id for label in bundle.labels] != first:
            raise InputError(
                f"{where}: members must predict the same labels in the same order; "
                f"{bundle.name} differs from {bundles[0].name}"
            )


def member_digest(bundle: Bundle) -> str:
    return file_digest(*bundle_files(bundle))


def _label_prior(bundles: Sequence[Bundle]) -> np.ndarray:
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
        if member_digest(bundle) != spec["sha256"]:
            raise ModelError(
                f"{directory}: member {spec['path']} changed since the ensemble was fitted; "
                "refit it with `emoji-batch ensemble`"
            )
        members.append(bundle)
    _check_same_labels(members, directory)
    _check_same_cleaning(members, directory, data["cleaning_version"])
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

    def fingerprint(self) -> str:
        """Hash of the ensemble's manifest and every member's files."""
        return file_digest(*self.bundle.files())

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


@dataclass
class EnsembleResult:
    output: Path
    mix: Mix
    report: EvalReport
    member_reports: dict[str, float]


def _cross_fit_mix(
    probs: Sequence[np.ndarray], y: np.ndarray, prior: np.ndarray, biases: bool, seed: int
) -> tuple[np.ndarray, list[Mix]]:
    """Each row's probabilities from a mix fitted on the other fold, and the fold mixes."""
    fold_mixes: list[Mix] = []

    def fit_apply(fit_rows: np.ndarray, held_out: np.ndarray) -> np.ndarray:
        mix, _ = fit_mix([p[fit_rows] for p in probs], y[fit_rows], prior, biases)
        fold_mixes.append(mix)
        return mix.apply([p[held_out] for p in probs], prior)

    return cross_fitted(y, seed, fit_apply), fold_mixes


def _check_enough_rows(y: np.ndarray, data: Path) -> None:
    """Refuse data the stratified split cannot cut in ``FOLDS``: it needs ``FOLDS`` rows
    of one label at least (and, for a mix worth having, many of each)."""
    most = int(np.bincount(y).max()) if len(y) else 0
    if most < FOLDS:
        raise InputError(
            f"{data}: {len(y)} labelled rows the members predict, too few to cross-fit the mix "
            f"on {FOLDS} stratified halves: it needs at least {FOLDS} rows of one label "
            "(and for a useful mix, hundreds of each)"
        )


@dataclass(frozen=True)
class _Fitting:
    """What an ensemble was fitted on and with, as its manifest records it."""

    data: Path
    rows: int
    seed: int
    cleaning: str
    labels: list[Label]
    precisions: dict[str, str]
    member_f1: dict[str, float]
    prior: np.ndarray
    command: str


def _ensemble_manifest(
    members: Sequence[Path],
    bundles: Sequence[Bundle],
    output: Path,
    mix: Mix,
    fold_mixes: list[Mix],
    report: EvalReport,
    cross_f1: dict[bool, float],
    fitted_f1: float,
    fitting: _Fitting,
) -> dict[str, Any]:
    """The ensemble's ``manifest.json``: its members by path and hash, the mix, and how
    the mix was fitted and measured."""
    return {
        "format_version": FORMAT_VERSION,
        "kind": KIND,
        "cleaning_version": fitting.cleaning,
        "labels": [label.to_dict() for label in fitting.labels],
        "members": [
            {
                "name": bundle.name,
                "path": os.path.relpath(Path(m).resolve(), output.resolve()),
                "sha256": member_digest(bundle),
                "architecture": bundle.manifest.architecture,
                "weight": w,
                "precision": fitting.precisions[bundle.name],
                "val_macro_f1_alone": fitting.member_f1[bundle.name],
            }
            for m, bundle, w in zip(members, bundles, mix.weights, strict=True)
        ],
        "mixing": mix.mixing,
        "prior_power": mix.prior_power,
        "label_biases": list(mix.biases) if mix.biases is not None else None,
        "label_prior": [round(float(p), 6) for p in fitting.prior],
        "metrics": report.summary(),
        "evaluation": {
            "protocol": (
                f"mix fitted on one of {FOLDS} stratified halves of {fitting.data.name}, "
                f"measured on the other, both ways (seed {fitting.seed}); the stored mix is "
                "fitted on all rows; each member scored in its listed precision on the "
                "CPU (what `score --precision auto` runs), so the metrics are those of what "
                "users run; reduced-precision decimals differ slightly between CPUs"
            ),
            "cpu_flags": sorted(cpu_flags() & REPORTED_CPU_FLAGS),
            "data": {
                "file": fitting.data.name,
                "rows": fitting.rows,
                "sha256": file_digest(fitting.data),
            },
            "fold_mixes": [
                {
                    "weights": list(m.weights),
                    "mixing": m.mixing,
                    "prior_power": m.prior_power,
                    "label_biases": list(m.biases) if m.biases is not None else None,
                }
                for m in fold_mixes
            ],
            "cross_fitted_macro_f1_without_biases": round(100 * cross_f1[False], 2),
            "cross_fitted_macro_f1_with_biases": round(100 * cross_f1[True], 2),
            "in_sample_macro_f1": round(100 * fitted_f1, 2),
        },
        "command": fitting.command,
        "package_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def fit_ensemble(
    members: Sequence[Path],
    data: Path,
    output: Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    seed: int = 13,
    precision: PrecisionChoice = "auto",
    command: str = "",
    force: bool = False,
) -> EnsembleResult:
    """Fit the mix of ``members`` on labelled ``data`` and write the ensemble to ``output``.

    The reported metrics are cross-fitted: the data is cut into two stratified halves,
    each half is scored with the mix fitted on the other, and macro-F1 is measured on the
    whole file. The stored mix is then fitted on all of it. Each member predicts in the
    precision ``precision`` resolves to on this CPU (``auto``: what ``score`` runs it
    at), so the mix is fitted to, and the metrics are those of, what users run.
    """
    require("fitting an ensemble", "sklearn", "matplotlib")
    if len(members) < 2:
        raise InputError("an ensemble needs at least two members")
    for member in members:
        if is_ensemble(member):
            raise InputError(f"{member} is an ensemble; {NOT_A_MEMBER}")
    check_new_bundle_dir(output, force)
    bundles = [load_bundle(m) for m in members]
    _check_same_labels(bundles, data)
    cleaning = _check_same_cleaning(bundles, data)
    labels = bundles[0].labels
    labelled = read_labelled(data, text_column, label_column)
    inside = keep_labels(labelled, [label.id for label in labels])
    if len(inside) < len(labelled):
        log.info(
            "%d rows with labels the members do not predict skipped", len(labelled) - len(inside)
        )
    y = label_indices(inside, labels)
    _check_enough_rows(y, data)
    cleaned = clean_texts(inside.texts, cleaning)
    probs = []
    member_f1: dict[str, float] = {}
    device = "/CPU:0"
    precisions = {b.name: resolve_precision(precision, b, device) for b in bundles}
    for bundle in bundles:
        log.info("scoring %s with %s (%s)", data.name, bundle.name, precisions[bundle.name])
        p = Predictor(bundle, device=device, precision=precisions[bundle.name]).predict_cleaned(
            cleaned
        )
        probs.append(p)
        member_f1[bundle.name] = round(100 * macro_f1(y, p), 2)
    prior = _label_prior(bundles)

    # Per-label biases are kept only if they raise the cross-fitted macro-F1: fitted on
    # the same rows they are measured on, they would always seem to help.
    crossed: dict[bool, tuple[np.ndarray, list[Mix]]] = {}
    for biases in (False, True):
        crossed[biases] = _cross_fit_mix(probs, y, prior, biases, seed)
    cross_f1 = {biases: macro_f1(y, cross) for biases, (cross, _) in crossed.items()}
    use_biases = cross_f1[True] > cross_f1[False]
    cross, fold_mixes = crossed[use_biases]
    report = evaluate_probs(inside.labels, cross, labels, f"{data.name} (2-fold cross-fitted)")
    mix, fitted_f1 = fit_mix(probs, y, prior, use_biases)
    log.info(
        "mix %s; cross-fitted macro-F1 %.2f (per-label biases: %.2f without, %.2f with)",
        mix,
        100 * report.macro_f1,
        100 * cross_f1[False],
        100 * cross_f1[True],
    )

    output.mkdir(parents=True, exist_ok=True)
    manifest = _ensemble_manifest(
        members,
        bundles,
        output,
        mix,
        fold_mixes,
        report,
        cross_f1,
        fitted_f1,
        _Fitting(data, len(inside), seed, cleaning, labels, precisions, member_f1, prior, command),
    )
    write_report(report, output / "evaluation")
    with atomic_output(output / MANIFEST, force=True) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return EnsembleResult(output, mix, report, member_f1)
