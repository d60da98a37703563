"""A model's accuracy, macro-F1 and per-class scores on a labelled file: the library behind
``emoji-batch evaluate``.
"""

import logging
import os
from pathlib import Path

from emoji_batch.dataset import check_labels, keep_labels, read_labelled
from emoji_batch.device import DeviceChoice
from emoji_batch.errors import InputError
from emoji_batch.evaluation import EvalReport, evaluate_probs, write_report
from emoji_batch.extras import require
from emoji_batch.fileio import file_digest
from emoji_batch.loading import load_predictor
from emoji_batch.manifests import record_evaluation
from emoji_batch.predictor import PrecisionChoice
from emoji_batch.remote import RemoteFile, fetched, locate

log = logging.getLogger(__name__)


def evaluate_file(
    data: str | os.PathLike[str],
    *,
    model: str | None = None,
    models_dir: str | os.PathLike[str] | None = None,
    report_dir: str | os.PathLike[str] | None = None,
    text_column: str = "text",
    label_column: str = "label",
    device: DeviceChoice = "auto",
    batch_size: int | None = None,
    precision: PrecisionChoice = "auto",
    record: bool = False,
) -> EvalReport:
    """Accuracy, macro-F1 and per-class scores of a model on a labelled file, with the
    precision ``score`` would use (``auto``) unless told otherwise; ``record`` also
    stores the summary (and the precision) in the model's manifest. ``data`` may be a
    URI (given as a string): it is downloaded to a temporary file, since evaluation
    holds the whole file anyway."""
    source = locate(data)
    models_dir = None if models_dir is None else Path(models_dir)
    report_dir = None if report_dir is None else Path(report_dir)
    if report_dir is not None:  # before the scoring, not after it
        require("evaluate --report-dir (its confusion.png)", "matplotlib")
    if isinstance(source, RemoteFile):
        with fetched(source) as local:
            labelled = read_labelled(local, text_column, label_column)
            digest = file_digest(local)
        labelled.source = source.uri
    else:
        labelled = read_labelled(source, text_column, label_column)
        digest = file_digest(source)
    if not len(labelled):
        raise InputError(f"{source} has no labelled rows to evaluate on")
    predictor = load_predictor(model, models_dir, device, batch_size, precision)
    log.info("evaluating %s (%s) on %s", predictor.name, predictor.precision, source)
    ids = [label.id for label in predictor.labels]
    inside = keep_labels(labelled, ids)
    if len(inside) < len(labelled):
        if not len(inside):
            check_labels(labelled, predictor.labels)  # raises: nothing to evaluate
        log.warning(
            "%d of %d rows have labels this model does not predict; evaluating the other %d",
            len(labelled) - len(inside),
            len(labelled),
            len(inside),
        )
        labelled = inside
    probs = predictor.predict_proba(labelled.texts)
    report = evaluate_probs(labelled.labels, probs, predictor.labels, source.name)
    how = predictor.fitted_on().get(digest)
    if how is not None:
        log.warning(
            "%s is the data %s was %s: these figures are in-sample, not a measure on new tweets",
            source.name,
            predictor.name,
            how,
        )
    if report_dir is not None:
        write_report(report, report_dir)
    if record:
        summary = {**report.summary(), "precision": predictor.precision}
        record_evaluation(predictor.directory, source.name, summary)
    return report
