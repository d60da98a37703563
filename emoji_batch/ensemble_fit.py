"""Fitting an ensemble bundle: the mix of its members' probabilities chosen on labelled
data, measured by cross-fitting, and written as the ensemble's ``manifest.json``.

Loading and mixing an ensemble (what ``score`` runs) is :mod:`emoji_batch.ensemble`;
this module is the ``ensemble`` command's, with the training install's dependencies.
"""

import itertools
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from emoji_batch import __version__
from emoji_batch.bundle import Bundle, bundle_digest, check_new_bundle_dir, load_bundle
from emoji_batch.calibration import FOLDS, cross_fitted, fit_biases
from emoji_batch.cleaning import clean_texts
from emoji_batch.dataset import Labelled, keep_labels, label_indices, read_labelled
from emoji_batch.device import REPORTED_CPU_FLAGS, cpu_flags
from emoji_batch.ensemble import (
    FORMAT_VERSION,
    KIND,
    MIXINGS,
    NOT_A_MEMBER,
    Mix,
    check_same_cleaning,
    check_same_labels,
    is_ensemble,
    members_label_prior,
)
from emoji_batch.errors import InputError
from emoji_batch.evaluation import EvalReport, evaluate_probs, macro_f1, write_report
from emoji_batch.extras import require
from emoji_batch.fileio import file_digest, write_json
from emoji_batch.labels import Label
from emoji_batch.manifests import MANIFEST
from emoji_batch.predictor import (
    PRIOR_POWERS,
    PrecisionChoice,
    Predictor,
    adjust_to_prior,
    resolve_precision,
)

log = logging.getLogger(__name__)

# Member weights are searched on a grid of this step over the simplex.
WEIGHT_STEP = 0.1


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


def _evaluation_record(
    fold_mixes: list[Mix], cross_f1: dict[bool, float], fitted_f1: float, fitting: _Fitting
) -> dict[str, Any]:
    """The manifest's ``evaluation``: how the mix was measured, on what, and the scores."""
    return {
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
    }


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
                "sha256": bundle_digest(bundle),
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
        "evaluation": _evaluation_record(fold_mixes, cross_f1, fitted_f1, fitting),
        "command": fitting.command,
        "package_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _labelled_rows(
    data: Path, labels: list[Label], text_column: str, label_column: str
) -> tuple[Labelled, np.ndarray]:
    """The rows of ``data`` with labels the members predict, and their label indices."""
    labelled = read_labelled(data, text_column, label_column)
    inside = keep_labels(labelled, [label.id for label in labels])
    if len(inside) < len(labelled):
        log.info(
            "%d rows with labels the members do not predict skipped", len(labelled) - len(inside)
        )
    y = label_indices(inside, labels)
    _check_enough_rows(y, data)
    return inside, y


def _member_probabilities(
    bundles: Sequence[Bundle],
    precisions: dict[str, str],
    inside: Labelled,
    y: np.ndarray,
    cleaning: str,
    data: Path,
) -> tuple[list[np.ndarray], dict[str, float]]:
    """Each member's probabilities for the rows, on the CPU in its listed precision, and
    its own macro-F1 there."""
    cleaned = clean_texts(inside.texts, cleaning)
    probs = []
    member_f1: dict[str, float] = {}
    device = "/CPU:0"
    for bundle in bundles:
        log.info("scoring %s with %s (%s)", data.name, bundle.name, precisions[bundle.name])
        p = Predictor(bundle, device=device, precision=precisions[bundle.name]).predict_cleaned(
            cleaned
        )
        probs.append(p)
        member_f1[bundle.name] = round(100 * macro_f1(y, p), 2)
    return probs, member_f1


def _cross_fit_choosing_biases(
    probs: Sequence[np.ndarray], y: np.ndarray, prior: np.ndarray, seed: int
) -> tuple[dict[bool, float], np.ndarray, list[Mix]]:
    """The cross-fitted macro-F1 without and with per-label biases, and the cross-fitted
    probabilities and fold mixes of the better one (biases only if they raise it)."""
    # Fitted on the same rows they are measured on, biases would always seem to help.
    crossed: dict[bool, tuple[np.ndarray, list[Mix]]] = {}
    for biases in (False, True):
        crossed[biases] = _cross_fit_mix(probs, y, prior, biases, seed)
    cross_f1 = {biases: macro_f1(y, cross) for biases, (cross, _) in crossed.items()}
    cross, fold_mixes = crossed[cross_f1[True] > cross_f1[False]]
    return cross_f1, cross, fold_mixes


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
    check_same_labels(bundles, data)
    cleaning = check_same_cleaning(bundles, data)
    labels = bundles[0].labels
    inside, y = _labelled_rows(data, labels, text_column, label_column)
    precisions = {b.name: resolve_precision(precision, b, "/CPU:0") for b in bundles}
    probs, member_f1 = _member_probabilities(bundles, precisions, inside, y, cleaning, data)
    prior = members_label_prior(bundles)
    cross_f1, cross, fold_mixes = _cross_fit_choosing_biases(probs, y, prior, seed)
    use_biases = cross_f1[True] > cross_f1[False]
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
    write_json(output / MANIFEST, manifest)
    return EnsembleResult(output, mix, report, member_f1)
