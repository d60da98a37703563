"""Accuracy, macro-F1, per-class scores and a confusion matrix, computed as scikit-learn's
metrics do but in NumPy, so that ``evaluate`` works in the scoring install; only the
confusion plot needs the training install (matplotlib)."""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from emoji_batch.extras import require
from emoji_batch.labels import Label


@dataclass
class ClassScore:
    id: int
    emoji: str
    name: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class EvalReport:
    dataset: str
    rows: int
    accuracy: float
    macro_f1: float
    top3_accuracy: float
    # Top-1 expected calibration error, 15 equal-width confidence bins: how far the
    # probability of the emoji shown is from how often it is right.
    ece: float
    per_class: list[ClassScore]
    confusion: list[list[int]]

    def summary(self) -> dict[str, float | int | str]:
        """The headline numbers stored in a bundle's manifest (macro-F1 in percent)."""
        return {
            "dataset": self.dataset,
            "rows": self.rows,
            "accuracy": round(100 * self.accuracy, 2),
            "macro_f1": round(100 * self.macro_f1, 2),
            "top3_accuracy": round(100 * self.top3_accuracy, 2),
            "ece": round(self.ece, 4),
        }

    def table(self) -> str:
        """A plain-text report a person can read in a terminal."""
        lines = [
            f"{self.dataset}: {self.rows} rows",
            f"accuracy {100 * self.accuracy:.2f}%  macro-F1 {100 * self.macro_f1:.2f}  "
            f"top-3 accuracy {100 * self.top3_accuracy:.2f}%  ECE {self.ece:.3f}",
            "",
            f"{'id':>3}  {'emoji':<5} {'precision':>9} {'recall':>7} {'f1':>6} "
            f"{'support':>8}  name",
        ]
        for c in self.per_class:
            lines.append(
                f"{c.id:>3}  {c.emoji:<5} {100 * c.precision:>9.1f} {100 * c.recall:>7.1f} "
                f"{100 * c.f1:>6.1f} {c.support:>8}  {c.name}"
            )
        return "\n".join(lines)


def macro_f1(y: np.ndarray, probs: np.ndarray) -> float:
    """Macro-F1 of the top-1 predictions over all labels (absent ones count as 0), as
    scikit-learn's ``f1_score(average="macro", zero_division=0)``; fast enough to search
    thousands of mixes."""
    n = probs.shape[1]
    pred = probs.argmax(axis=1)
    hits = np.bincount(y[pred == y], minlength=n)
    both = np.bincount(pred, minlength=n) + np.bincount(y, minlength=n)
    return float(np.mean(np.divide(2 * hits, both, out=np.zeros(n), where=both > 0)))


ECE_BINS = 15


def expected_calibration_error(y: np.ndarray, probs: np.ndarray, bins: int = ECE_BINS) -> float:
    """Top-1 ECE: the rows' weighted mean gap between confidence and accuracy, per
    equal-width confidence bin (``y`` as output positions)."""
    if not len(y):
        return 0.0
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    counts = np.bincount(which, minlength=bins)
    gap = np.bincount(which, confidence - correct, minlength=bins)
    return float(np.abs(gap).sum() / counts.sum())


def evaluate_probs(
    y_true: np.ndarray, probs: np.ndarray, labels: list[Label], dataset: str
) -> EvalReport:
    ids = [label.id for label in labels]
    y_pred = np.asarray(ids)[probs.argmax(axis=1)]  # output position -> dataset label id
    position = {label_id: i for i, label_id in enumerate(ids)}
    top3 = np.asarray(ids)[np.argsort(-probs, axis=1)[:, :3]]
    true_pos, pred_pos = _positions(y_true, ids), _positions(y_pred, ids)
    n = len(ids)
    # As sklearn's precision_recall_fscore_support(labels=ids, zero_division=0): every
    # row counts towards its true and predicted label's totals, hits where they agree.
    hits = np.bincount(pred_pos[(pred_pos == true_pos) & (pred_pos >= 0)], minlength=n)
    predicted = np.bincount(pred_pos[pred_pos >= 0], minlength=n)
    support = np.bincount(true_pos[true_pos >= 0], minlength=n)
    p, r = _ratio(hits, predicted), _ratio(hits, support)
    f = _ratio(2 * hits, predicted + support)
    per_class = [
        ClassScore(
            lab.id, lab.emoji, lab.name, float(p[i]), float(r[i]), float(f[i]), int(support[i])
        )
        for i, lab in enumerate(labels)
    ]
    # sklearn's confusion_matrix(labels=ids) leaves out rows whose labels are not in ids.
    both = (true_pos >= 0) & (pred_pos >= 0)
    confusion = np.bincount(true_pos[both] * n + pred_pos[both], minlength=n * n)
    return EvalReport(
        dataset=dataset,
        rows=len(y_true),
        accuracy=float(np.mean(y_true == y_pred)) if len(y_true) else 0.0,
        macro_f1=float(np.mean(f)),
        top3_accuracy=float(np.mean([t in row for t, row in zip(y_true, top3, strict=True)])),
        ece=expected_calibration_error(
            np.array([position[t] for t in y_true.tolist()], dtype=np.int64), probs
        ),
        per_class=per_class,
        confusion=confusion.reshape(n, n).tolist(),
    )


def _positions(y: np.ndarray, ids: list[int]) -> np.ndarray:
    """Each label id's position in ``ids``, -1 for an id not among them."""
    lookup = {label_id: i for i, label_id in enumerate(ids)}
    return np.array([lookup.get(v, -1) for v in np.asarray(y).tolist()], dtype=np.int64)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den``, 0 where ``den`` is 0 (sklearn's ``zero_division=0``)."""
    return np.divide(num, den, out=np.zeros(len(num)), where=den > 0)


def write_report(report: EvalReport, directory: Path) -> list[Path]:
    """Write ``metrics.json``, ``report.txt`` and ``confusion.png`` into ``directory``."""
    require("writing confusion.png", "matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    metrics = directory / "metrics.json"
    metrics.write_text(json.dumps(asdict(report), indent=2, ensure_ascii=False) + "\n")
    text = directory / "report.txt"
    text.write_text(report.table() + "\n", encoding="utf-8")

    cm = np.asarray(report.confusion, dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    names = [f"{c.id}" for c in report.per_class]
    fig, ax = plt.subplots(figsize=(9, 8))
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), [f"{c.id} {c.name[:18]}" for c in report.per_class])
    ax.set_xlabel("predicted label id")
    ax.set_ylabel("true label")
    ax.set_title(
        f"{report.dataset}: row-normalised confusion (macro-F1 {100 * report.macro_f1:.1f})"
    )
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    png = directory / "confusion.png"
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return [metrics, text, png]
