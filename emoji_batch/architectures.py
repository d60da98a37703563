"""Every model architecture, defined once: its family, settings and training phases.

Bundles never carry Keras configs or code; they name an architecture registered here
and the numbers it is built from, then load weights into the freshly built model. The
Keras layers and build functions live in :mod:`emoji_batch.networks`, imported only when
a model is built (see there why).
"""

from dataclasses import dataclass, field
from typing import Any

from emoji_batch.errors import InputError
from emoji_batch.extras import KERAS, require


@dataclass(frozen=True)
class Phase:
    """One stage of training: which parts train, at what learning rate, for how long."""

    name: str
    learning_rate: float
    max_epochs: int
    train_pretrained: bool
    # Decay the learning rate linearly to 0 over the phase's epochs.
    linear_decay: bool = False


@dataclass(frozen=True)
class Architecture:
    name: str
    family: str
    description: str
    # Name of the function in emoji_batch.networks that builds the Keras model.
    builder: str
    defaults: dict[str, Any] = field(default_factory=dict)
    phases: tuple[Phase, ...] = ()
    # "keras": trained in epochs by emoji_batch.train; "convex": solved in one go by
    # emoji_batch.train_linear (no TensorFlow).
    trainer: str = "keras"

    def build(self, config: dict[str, Any], n_labels: int, dtype_policy: str | None = None) -> Any:
        """The Keras model for ``config``, untrained (imports TensorFlow), under a Keras
        dtype policy if given (``mixed_bfloat16``: bfloat16 arithmetic, float32 weights
        and output)."""
        require(
            f"{self.name} as a Keras model (fp32 or bf16)",
            *KERAS,
            *(("transformers",) if self.family == "bert" else ()),
        )
        from emoji_batch import networks

        with networks.dtype_policy(dtype_policy):
            return getattr(networks, self.builder)(config, n_labels)


# Settings every GloVe-family model takes (see GloveEmbedding and _glove_input).
GLOVE_DEFAULTS: dict[str, Any] = {"embedding_dropout": 0.0, "extra_dim": 0, "max_length": 64}

# Settings every n-gram model takes; "n_features" and "n_word_features" are filled by
# train. max_length caps the n-grams read per text (words first): a 280-character tweet
# has fewer than 1,024 word 1-2-grams and char_wb 2-5-grams.
NGRAM_DEFAULTS: dict[str, Any] = {
    "word_ngrams": [1, 2],
    "char_ngrams": [2, 5],
    "char_analyzer": "char_wb",
    "min_df": 2,
    "max_length": 1024,
}


# Settings every BERT-family model takes; "encoder" (the BertConfig) is filled by train.
BERT_DEFAULTS: dict[str, Any] = {"max_length": 64}


ARCHITECTURES: dict[str, Architecture] = {
    arch.name: arch
    for arch in [
        Architecture(
            name="glove_bilstm",
            family="glove",
            description="GloVe -> BiLSTM(128, seq) -> BiLSTM(64) -> BN -> Dropout -> Dense 64, 32",
            builder="build_glove_bilstm",
            defaults={"units": 128, "dropout": 0.4, "l2": 1e-4, **GLOVE_DEFAULTS},
            phases=(
                Phase("frozen_embeddings", 2e-3, 8, train_pretrained=False),
                Phase("all_trainable", 5e-4, 6, train_pretrained=True),
            ),
        ),
        Architecture(
            name="glove_cnn",
            family="glove",
            description="GloVe -> Conv1D(128, 5) -> masked max pool -> BN -> Dropout -> Dense 64",
            builder="build_glove_cnn",
            defaults={
                "filters": 128,
                "kernel_sizes": [5],
                "mean_pool": False,
                "batch_norm": True,
                "dense_units": 64,
                "dropout": 0.5,
                **GLOVE_DEFAULTS,
            },
            phases=(
                Phase("frozen_embeddings", 3e-3, 20, train_pretrained=False),
                Phase("all_trainable", 1e-3, 25, train_pretrained=True),
            ),
        ),
        Architecture(
            name="glove_lstm_attention",
            family="glove",
            description="GloVe (trainable) -> BiLSTM(128, seq) -> Dropout -> attention -> Dense 64",
            builder="build_glove_lstm_attention",
            defaults={"units": 128, "attention_units": 64, "dropout": 0.4, **GLOVE_DEFAULTS},
            phases=(Phase("all_trainable", 1e-3, 10, train_pretrained=True),),
        ),
        Architecture(
            name="glove_gru_attention",
            family="glove",
            description="GloVe -> GRU(128, seq) -> Dropout -> attention -> Dense 64",
            builder="build_glove_gru_attention",
            defaults={"units": 128, "attention_units": 64, "dropout": 0.4, **GLOVE_DEFAULTS},
            phases=(
                Phase("frozen_embeddings", 2e-3, 8, train_pretrained=False),
                Phase("all_trainable", 5e-4, 6, train_pretrained=True),
            ),
        ),
        Architecture(
            name="ngram_linear",
            family="ngram",
            description="word 1-2-grams + char_wb 2-5-grams, idf-weighted, L2-normalised -> "
            "softmax (hidden > 0: a linear hidden layer first)",
            builder="build_ngram",
            # l2 = 1 / (2 C n): the baseline's LogisticRegression(C=2) on 45k tweets.
            defaults={"hidden": 0, "dropout": 0.0, "l2": 5.6e-6, **NGRAM_DEFAULTS},
            phases=(Phase("all_trainable", 1e-2, 20, train_pretrained=True),),
        ),
        Architecture(
            name="ngram_svm",
            family="ngram",
            description="word 1-4-grams + char 1-6-grams, idf-weighted, L2-normalised -> "
            "one-vs-rest linear SVM (liblinear), pruned, temperature-calibrated softmax",
            builder="build_ngram",
            # The SemEval-2018 winner's features and C; chosen on Dev.csv (docs/results.md).
            defaults={
                **NGRAM_DEFAULTS,
                "word_ngrams": [1, 4],
                "char_ngrams": [1, 6],
                "char_analyzer": "char",
                "max_length": 2048,
                "C": 0.1,
                "loss": "squared_hinge",
                "max_features": 1_000_000,
                "hidden": 0,
                "dropout": 0.0,
                "l2": 0.0,
            },
            trainer="convex",
        ),
        Architecture(
            name="fine_tuned_bert",
            family="bert",
            description="BERT pooled [CLS] -> Dropout -> softmax; whole encoder fine-tuned",
            builder="build_fine_tuned_bert",
            defaults={"dropout": 0.1, **BERT_DEFAULTS},
            phases=(Phase("fine_tune", 3e-5, 4, train_pretrained=True),),
        ),
        Architecture(
            name="bert_classifier",
            family="bert",
            description="BERT [CLS] -> Dense 512 -> 256 -> 128 head (L2, BN); encoder trainable",
            builder="build_bert_classifier",
            defaults={"dropout": 0.3, "l2": 1e-4, **BERT_DEFAULTS},
            # The notebook fine-tuned everything at 4e-5 from the start; its random 3-layer
            # head barely moves at that rate (1 epoch: 16.7% accuracy on the 9 labels), so
            # the head first trains alone, as in bert_bilstm.
            phases=(
                Phase("frozen_encoder", 1e-3, 3, train_pretrained=False),
                Phase("fine_tune", 4e-5, 4, train_pretrained=True, linear_decay=True),
            ),
        ),
        Architecture(
            name="bert_bilstm",
            family="bert",
            description="BERT tokens -> BiLSTM(128) -> Dense 256 -> 128 head (L2, BN)",
            builder="build_bert_bilstm",
            defaults={"units": 128, "dropout": 0.3, "l2": 1e-4, **BERT_DEFAULTS},
            phases=(
                Phase("frozen_encoder", 1e-3, 3, train_pretrained=False),
                Phase("fine_tune", 2e-5, 3, train_pretrained=True),
            ),
        ),
    ]
}


def get_architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        known = ", ".join(sorted(ARCHITECTURES))
        raise InputError(f"unknown architecture {name!r}; known: {known}") from None
