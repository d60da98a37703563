"""Train a registered architecture on labelled tweets and write a bundle.

Writes the bundle plus ``history.json``, ``curves.png`` and an evaluation report of
the validation set, scored through the same :class:`~emoji_batch.predictor.Predictor`
that ``score`` uses, so the recorded metrics are the ones a user reproduces.
"""

import json
import logging
import re
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from emoji_batch.architectures import Architecture, Phase, get_architecture
from emoji_batch.bundle import (
    Bundle,
    Manifest,
    check_new_bundle_dir,
    model_weights,
    save_bundle,
)
from emoji_batch.checkpoints import TrainingCheckpoints
from emoji_batch.cleaning import clean_texts
from emoji_batch.dataset import (
    Labelled,
    check_labels,
    downsample,
    keep_labels,
    label_indices,
    most_frequent,
    read_labelled,
    read_labelled_files,
    select,
)
from emoji_batch.device import tensorflow
from emoji_batch.errors import InputError
from emoji_batch.evaluation import EvalReport, evaluate_probs, macro_f1, write_report
from emoji_batch.families import get_family
from emoji_batch.fileio import file_digest
from emoji_batch.labels import Label
from emoji_batch.networks import set_pretrained_trainable
from emoji_batch.predictor import PRIOR_POWERS, Predictor, adjust_to_prior, pad_batch
from emoji_batch.train_config import TrainConfig, TrainResult, labels_for

tf = tensorflow()
import tf_keras as keras  # noqa: E402  (after TensorFlow's quiet import)

log = logging.getLogger(__name__)


def _split(config: TrainConfig, data: Labelled) -> tuple[Labelled, Labelled]:
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(data))
    try:
        tr, va = train_test_split(
            idx, test_size=config.val_fraction, random_state=config.seed, stratify=data.labels
        )
    except ValueError:  # a class too rare to stratify
        tr, va = train_test_split(idx, test_size=config.val_fraction, random_state=config.seed)

    return select(data, tr), select(data, va)


def _batches(
    seqs: list[np.ndarray],
    labels: np.ndarray,
    weights: np.ndarray,
    batch_size: int,
    rng: np.random.Generator | None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Batches of similar length (sorted within pools of 50 batches), shuffled if ``rng``."""
    lengths = np.array([len(s) for s in seqs])
    order = rng.permutation(len(seqs)) if rng is not None else np.arange(len(seqs))
    pool = batch_size * 50
    batches = []
    for start in range(0, len(order), pool):
        part = order[start : start + pool]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    if rng is not None:
        rng.shuffle(batches)
    for b in batches:
        yield pad_batch([seqs[i] for i in b]), labels[b], weights[b]


def _dataset(
    seqs: list[np.ndarray],
    labels: np.ndarray,
    weights: np.ndarray,
    batch_size: int,
    seed: int | None,
    skip_epochs: int = 0,
) -> Any:
    """Length-bucketed batches of (ids, label, sample weight) for ``model.fit``; a
    resumed run skips the shuffles of the epochs it already trained."""
    rng = np.random.default_rng(seed) if seed is not None else None
    for _ in range(skip_epochs if rng is not None else 0):
        deque(_batches(seqs, labels, weights, batch_size, rng), maxlen=0)
    return tf.data.Dataset.from_generator(
        lambda: _batches(seqs, labels, weights, batch_size, rng),
        output_signature=(
            tf.TensorSpec([None, None], tf.int32),
            tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([None], tf.float32),
        ),
    ).prefetch(2)


def _class_weights(config: TrainConfig, train_labels: np.ndarray, n: int) -> np.ndarray:
    """Per-class loss weights; applied to validation too, so early stopping watches the
    same objective that training minimises."""
    if config.class_weight == "none":
        return np.ones(n, dtype=np.float32)
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(train_labels)
    out = np.ones(n, dtype=np.float32)
    out[present] = compute_class_weight("balanced", classes=present, y=train_labels)
    return out


def _choose_prior_power(
    probs: np.ndarray, labels: np.ndarray, prior: np.ndarray
) -> tuple[float, float]:
    """The power of the training label prior that maximises validation macro-F1, and
    that macro-F1 (in percent).

    Macro-F1 rewards rare labels more than the training loss does (or, with balanced
    class weights, less): one scalar on the dev set trades this off. Ties keep 0.
    """

    def score(power: float) -> float:
        return macro_f1(labels, adjust_to_prior(probs, prior, power))

    power = max(sorted(PRIOR_POWERS, key=abs), key=score)
    return power, 100 * score(power)


def _better(monitor: str, value: float, than: float) -> bool:
    return value < than if monitor == "val_loss" else value > than


class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to ``peak`` over ``warmup`` steps, then (with ``decay``)
    linear decay to 0 at ``total`` steps: the usual schedule for fine-tuning BERT."""

    def __init__(self, peak: float, warmup: int, total: int, decay: bool) -> None:
        self.peak, self.warmup, self.total, self.decay = peak, warmup, total, decay

    def __call__(self, step: Any) -> Any:
        step = tf.cast(step, tf.float32)
        rate = tf.constant(self.peak, tf.float32)
        if self.warmup:
            rate *= tf.minimum(1.0, (step + 1.0) / self.warmup)
        if self.decay:
            rate *= tf.clip_by_value((self.total - step) / max(self.total - self.warmup, 1), 0, 1)
        return rate

    def get_config(self) -> dict[str, Any]:
        return {"peak": self.peak, "warmup": self.warmup, "total": self.total, "decay": self.decay}


def _learning_rate(config: TrainConfig, phase: Phase, is_last: bool, steps: int) -> Any:
    """The phase's learning rate, or a schedule over its ``steps``."""
    peak = config.learning_rate if is_last and config.learning_rate else phase.learning_rate
    decay = phase.linear_decay if config.linear_decay is None else config.linear_decay
    warmup = round(config.warmup * steps)
    return WarmupLinearDecay(peak, warmup, steps, decay) if decay or warmup else peak


def _loss(label_smoothing: float) -> Any:
    """Cross-entropy on label ids, with the targets smoothed toward uniform if asked."""
    if not label_smoothing:
        return "sparse_categorical_crossentropy"

    def smoothed_crossentropy(y_true: Any, y_pred: Any) -> Any:
        onehot = tf.one_hot(tf.cast(tf.reshape(y_true, [-1]), tf.int32), tf.shape(y_pred)[-1])
        return keras.losses.categorical_crossentropy(
            onehot, y_pred, label_smoothing=label_smoothing
        )

    return smoothed_crossentropy


class EpochEnd(keras.callbacks.Callback):
    """After each epoch: the monitored value (validation macro-F1 at the best prior
    power, if asked), early stopping as Keras' ``EarlyStopping`` does it, and a
    checkpoint, so that a killed run resumes with all of that intact."""

    def __init__(
        self,
        phase: str,
        config: TrainConfig,
        checkpoints: TrainingCheckpoints,
        optimizer: Any,
        val_ds: Any,
        prior: np.ndarray,
    ) -> None:
        super().__init__()
        self.phase, self.config, self.checkpoints = phase, config, checkpoints
        self.optimizer, self.val_ds, self.prior = optimizer, val_ds, prior

    def _macro_f1(self) -> float:
        probs, labels = [], []
        for ids, y, _ in self.val_ds:
            probs.append(self.model(ids, training=False).numpy())
            labels.append(y.numpy())
        return _choose_prior_power(np.concatenate(probs), np.concatenate(labels), self.prior)[1]

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs if logs is not None else {}
        monitor = self.config.monitor
        if monitor == "val_macro_f1":
            logs[monitor] = self._macro_f1()
            log.info("epoch %d: validation macro-F1 %.2f", epoch + 1, logs[monitor])
        state = self.checkpoints.state
        current = float(logs[monitor])
        state["wait"] += 1
        improved = state["phase_best"] is None or _better(monitor, current, state["phase_best"])
        if improved:
            state["phase_best"], state["wait"] = current, 0
        elif state["wait"] >= self.config.patience and epoch > 0:
            state["stopped"] = self.model.stop_training = True
        state["epoch"] = epoch + 1
        state["history"].append({"phase": self.phase, **{k: float(v) for k, v in logs.items()}})
        self.checkpoints.save(self.model, self.optimizer, improved)


def round_to_float16(model: Any) -> None:
    """Round float32 weights to float16 and back: what a float16 bundle will load."""
    for w in model.weights:
        if w.dtype == "float32":
            value = w.numpy()
            if np.abs(value).max(initial=0) > np.finfo(np.float16).max:
                raise InputError(f"weight {w.name} exceeds the float16 range; use float32")
            w.assign(value.astype(np.float16).astype(np.float32))


def _fingerprint(config: TrainConfig) -> dict[str, Any]:
    """What a resumed run must share with the interrupted one: options and data."""
    options = {
        k: str(v) for k, v in asdict(config).items() if k not in ("command", "force", "resume")
    }
    paths = [*config.data, config.val, config.mapping]
    return {"options": options, "data": [file_digest(p) for p in paths if p is not None]}


def _plot_history(history: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = range(1, len(history) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ["loss", "accuracy"], strict=True):
        ax.plot(epochs, [h[metric] for h in history], label=f"train {metric}")
        ax.plot(epochs, [h[f"val_{metric}"] for h in history], label=f"val {metric}")
        for i in range(1, len(history)):
            if history[i]["phase"] != history[i - 1]["phase"]:
                ax.axvline(i + 0.5, color="grey", linestyle=":", label=history[i]["phase"])
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _top_n(spec: str) -> int:
    """``"top9"`` -> 9: keep that many most frequent labels."""
    match = re.fullmatch(r"top([1-9][0-9]*)", spec)
    if match is None:
        raise InputError(f"--labels must be 'all' or 'topN' (e.g. top9), not {spec!r}")
    return int(match.group(1))


def _training_sets(
    config: TrainConfig,
) -> tuple[Labelled, Labelled, list[Label], list[int]]:
    """The training and validation sets with the labels kept (``--labels``, ``--balance``
    applied), and the rows read from each data file."""
    data, file_rows = read_labelled_files(config.data, config.text_column, config.label_column)
    labels = all_labels = labels_for(config, data)
    check_labels(data, labels)
    if config.labels != "all":
        keep = most_frequent(data, _top_n(config.labels))
        labels = [label for label in labels if label.id in keep]
        data = keep_labels(data, keep)
    if config.balance == "downsample":
        data = downsample(data, config.seed)
    if config.val is not None:
        val_set = read_labelled(config.val, config.text_column, config.label_column)
        check_labels(val_set, all_labels)
        train_set, val_set = data, keep_labels(val_set, [label.id for label in labels])
    else:
        train_set, val_set = _split(config, data)
    log.info(
        "%d labels; split sizes: train %d, validation %d",
        len(labels),
        len(train_set),
        len(val_set),
    )
    return train_set, val_set, labels, file_rows


def _fit_phases(
    arch: Architecture,
    config: TrainConfig,
    model: Any,
    data: tuple[Any, Any],
    prior: np.ndarray,
    checkpoints: TrainingCheckpoints,
    steps_per_epoch: int,
) -> None:
    """Train each phase of ``arch`` not yet finished by a resumed run, and leave ``model``
    holding the best epoch of them all."""
    train_ds, val_ds = data
    state = checkpoints.state
    if checkpoints.resumed:
        checkpoints.restore("latest", model)
    for index, phase in enumerate(arch.phases):
        if index < state["phase"]:
            continue
        set_pretrained_trainable(model, phase.train_pretrained)
        epochs = config.max_epochs or phase.max_epochs
        is_last = index == len(arch.phases) - 1
        optimizer = keras.optimizers.Adam(
            _learning_rate(config, phase, is_last, steps_per_epoch * epochs)
        )
        model.compile(
            optimizer=optimizer,
            loss=_loss(config.label_smoothing),
            weighted_metrics=["accuracy"],
        )
        if state["epoch"]:  # resuming inside this phase: its optimizer state too
            optimizer.build(model.trainable_variables)
            checkpoints.restore("latest", model, optimizer)
        else:
            state |= {"phase_best": None, "wait": 0, "stopped": False}
        if state["epoch"] < epochs and not state["stopped"]:
            model.fit(
                train_ds,
                validation_data=val_ds,
                epochs=epochs,
                initial_epoch=state["epoch"],
                callbacks=[EpochEnd(phase.name, config, checkpoints, optimizer, val_ds, prior)],
                verbose=2,
            )
        # Keep this phase's best epoch, and that only if it beats the earlier phases, so
        # a later phase that only overfits cannot make the model worse.
        checkpoints.restore("phase_best", model)
        best = state["best"] is None or _better(config.monitor, state["phase_best"], state["best"])
        if best:
            state["best"] = state["phase_best"]
        state |= {"phase": index + 1, "epoch": 0}
        checkpoints.save(model, None, improved=False, best=best)
    checkpoints.restore("best", model)


def _calibrate(
    bundle: Bundle, config: TrainConfig, val_set: Labelled, y_val: np.ndarray, prior: np.ndarray
) -> EvalReport:
    """Choose the prior power on the validation set, store it in the bundle's manifest,
    and evaluate the calibrated model there (its report's summary goes in the manifest)."""
    manifest = bundle.manifest
    raw = Predictor(bundle).predict_proba(val_set.texts)
    power, _ = _choose_prior_power(raw, y_val, prior)
    log.info("prior power %.1f chosen on the validation set", power)
    manifest.calibration = {
        "label_prior": [round(float(p), 6) for p in prior],
        "prior_power": power,
        "chosen_on": "validation macro-F1",
    }
    # Exactly what the Predictor does with the stored calibration, without rerunning the model.
    probs = adjust_to_prior(raw, manifest.calibration["label_prior"], power)
    names = " + ".join(path.name for path in config.data)
    dataset_name = config.val.name if config.val else f"{names} (held-out split)"
    report = evaluate_probs(val_set.labels, probs, bundle.manifest.labels, dataset_name)
    manifest.metrics = report.summary()
    return report


def train(config: TrainConfig) -> TrainResult:
    """Train ``config.architecture`` and write its bundle and reports to ``config.output``."""
    started = time.perf_counter()
    arch = get_architecture(config.architecture)
    check_new_bundle_dir(config.output, config.force)
    train_set, val_set, labels, file_rows = _training_sets(config)
    y_train, y_val = label_indices(train_set, labels), label_indices(val_set, labels)

    keras.utils.set_random_seed(config.seed)
    params = config.settings(arch.name, arch.defaults)
    max_length = int(params["max_length"])
    train_clean = clean_texts(train_set.texts)
    params["max_length"] = max_length
    encoder, init_weights = get_family(arch.family).prepare()(config, train_clean, params)
    model = arch.build(params, len(labels))
    init_weights(model)

    prior = np.bincount(y_train, minlength=len(labels)) + 1.0
    prior /= prior.sum()
    checkpoints = TrainingCheckpoints(config.output, _fingerprint(config), config.resume)
    class_weight = _class_weights(config, y_train, len(labels))
    train_ds = _dataset(
        encoder.encode(train_clean, max_length),
        y_train,
        class_weight[y_train],
        config.batch_size,
        config.seed,
        skip_epochs=len(checkpoints.state["history"]),
    )
    val_seqs = encoder.encode(clean_texts(val_set.texts), max_length)
    val_ds = _dataset(val_seqs, y_val, class_weight[y_val], 256, None)
    steps_per_epoch = -(-len(train_set) // config.batch_size)
    _fit_phases(arch, config, model, (train_ds, val_ds), prior, checkpoints, steps_per_epoch)
    history = checkpoints.state["history"]
    if config.weights_dtype == "float16":
        round_to_float16(model)
    set_pretrained_trainable(model, True)  # the weight order of a freshly built model

    manifest = Manifest(
        architecture=arch.name,
        config=params,
        labels=labels,
        max_length=max_length,
        metrics={},
        training={
            **config.training_record(file_rows, len(train_set), len(val_set)),
            "epochs": len(history),
            "seconds": round(time.perf_counter() - started, 1),
        },
    )
    bundle = Bundle(config.output, manifest, model_weights(model), encoder, model)
    report = _calibrate(bundle, config, val_set, y_val, prior)
    save_bundle(config.output, manifest, model, encoder, config.weights_dtype)
    (config.output / "history.json").write_text(json.dumps(history, indent=2) + "\n")
    _plot_history(history, config.output / "curves.png")
    write_report(report, config.output / "evaluation")
    checkpoints.remove()
    return TrainResult(config.output, report, time.perf_counter() - started)
