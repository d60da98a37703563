"""The Keras side of every architecture: its layers and build functions.

:mod:`emoji_batch.architectures` names each architecture and its settings without
importing TensorFlow; it calls a build function here only when a model is built, so
models that never need Keras (an n-gram model scored in NumPy, an int8 model) start
without TensorFlow's seconds of import.
"""

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from emoji_batch.device import tensorflow

tf = tensorflow()
import tf_keras as keras  # noqa: E402  (after TensorFlow's quiet import)


@contextlib.contextmanager
def dtype_policy(name: str | None) -> Iterator[None]:
    """Build models under the Keras dtype policy ``name`` (None: leave it as it is)."""
    if name is None:
        yield
        return
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


class GloveEmbedding(keras.layers.Layer):
    """Embedding whose pretrained GloVe rows can be frozen while the other rows train.

    Rows ``[0, n_trainable)`` (padding, unknown, words GloVe lacks) always train; the
    GloVe rows after them train only while ``pretrained.trainable`` is True. With
    ``extra_dim`` > 0 every word also gets that many always-trainable columns after its
    GloVe columns: small GloVe files (25d) are too narrow to tell 20k words apart.
    """

    def __init__(
        self,
        vocab_size: int,
        n_trainable: int,
        dim: int,
        extra_dim: int = 0,
        mask_zero: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.vocab_size, self.n_trainable, self.dim = vocab_size, n_trainable, dim
        self.mask_zero = mask_zero
        self.own = _Table(n_trainable, dim, name="own")
        self.pretrained = _Table(vocab_size - n_trainable, dim, name="pretrained")
        self.extra = (
            _Table(vocab_size, extra_dim, name="extra", initializer="uniform")
            if extra_dim
            else None
        )

    def full_table(self) -> tf.Tensor:
        """The table lookups read: own and GloVe rows, then the extra columns."""
        table = tf.concat([self.own.table, self.pretrained.table], axis=0)
        if self.extra is not None:
            table = tf.concat([table, self.extra.table], axis=1)
        return table

    def call(self, ids: tf.Tensor) -> tf.Tensor:
        table = self.full_table()
        # Padding embeds as exact zeros, so convolutions cannot tell how much there is.
        real = tf.expand_dims(tf.cast(tf.not_equal(ids, 0), table.dtype), -1)
        return tf.gather(table, ids) * real

    def compute_mask(self, ids: tf.Tensor, mask: tf.Tensor | None = None) -> tf.Tensor | None:
        return tf.not_equal(ids, 0) if self.mask_zero else None

    def assign(self, matrix: np.ndarray) -> None:
        self.own.table.assign(matrix[: self.n_trainable])
        self.pretrained.table.assign(matrix[self.n_trainable :])


class MaskedGlobalMaxPool(keras.layers.Layer):
    """Max over real tokens only, so the amount of padding never changes the result."""

    def call(self, inputs: list[tf.Tensor]) -> tf.Tensor:
        h, ids = inputs
        real = tf.expand_dims(tf.not_equal(ids, 0), -1)
        return tf.reduce_max(tf.where(real, h, tf.constant(-1e9, h.dtype)), axis=1)


class AttentionPooling(keras.layers.Layer):
    """Learned additive attention over time steps, ignoring padding.

    The notebook's "attention" was softmax(tanh(h)) per feature with no weights; this
    scores each step with ``v . tanh(W h + b)`` and returns the weighted sum of steps.
    """

    def __init__(self, units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.supports_masking = True

    def build(self, input_shape: tf.TensorShape) -> None:
        dim = int(input_shape[-1])
        self.w = self.add_weight(name="w", shape=(dim, self.units), initializer="glorot_uniform")
        self.b = self.add_weight(name="b", shape=(self.units,), initializer="zeros")
        self.v = self.add_weight(name="v", shape=(self.units, 1), initializer="glorot_uniform")
        super().build(input_shape)

    def call(self, h: tf.Tensor, mask: tf.Tensor | None = None) -> tf.Tensor:
        scores = tf.tensordot(tf.tanh(tf.tensordot(h, self.w, 1) + self.b), self.v, 1)
        if mask is not None:
            scores = tf.where(tf.expand_dims(mask, -1), scores, tf.constant(-1e9, scores.dtype))
        weights = tf.nn.softmax(scores, axis=1)
        return tf.reduce_sum(weights * h, axis=1)

    def compute_mask(self, h: tf.Tensor, mask: tf.Tensor | None = None) -> None:
        return None


class MaskedGlobalMeanPool(keras.layers.Layer):
    """Mean over real tokens only."""

    def call(self, inputs: list[tf.Tensor]) -> tf.Tensor:
        h, ids = inputs
        real = tf.expand_dims(tf.cast(tf.not_equal(ids, 0), h.dtype), -1)
        return tf.reduce_sum(h * real, axis=1) / tf.maximum(tf.reduce_sum(real, axis=1), 1.0)


class PaddingMask(keras.layers.Layer):
    """1 for real tokens, 0 for padding (id 0): BERT's attention mask, derived from the ids."""

    def call(self, ids: tf.Tensor) -> tf.Tensor:
        return tf.cast(tf.not_equal(ids, 0), tf.int32)


class TokenMask(keras.layers.Layer):
    """Boolean mask of real tokens, for recurrent layers over BERT outputs."""

    def call(self, ids: tf.Tensor) -> tf.Tensor:
        return tf.not_equal(ids, 0)


class FirstToken(keras.layers.Layer):
    """The [CLS] position of a sequence output."""

    def call(self, h: tf.Tensor) -> tf.Tensor:
        return h[:, 0]


class NgramBag(keras.layers.Layer):
    """A text's n-gram feature rows, summed with tf-idf weights.

    Each distinct id weighs its idf (binary tf) and padding (id 0) nothing. Word n-grams
    (ids 1 to ``n_words``) and character n-grams are L2-normalised each on their own, as
    two scikit-learn tf-idf vectorizers side by side are: normalised together, the ~200
    character n-grams of a tweet would drown its ~20 words. With ``dim`` equal to the
    number of labels and a bias, this is a tf-idf logistic regression. The idf is fitted
    on the training text and never trained; as a weight it lands in
    ``weights.safetensors`` beside the table. ``dropout`` drops whole features while
    training, before the normalisation.
    """

    def __init__(
        self,
        n_features: int,
        n_words: int,
        dim: int,
        dropout: float,
        use_bias: bool,
        l2: float = 0.0,
        initializer: str = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.n_words = n_words
        self.table = self.add_weight(
            name="table",
            shape=(n_features, dim),
            initializer=initializer,
            regularizer=keras.regularizers.L2(l2) if l2 else None,
        )
        self.bias = (
            self.add_weight(name="bias", shape=(dim,), initializer="zeros") if use_bias else None
        )
        self.idf = self.add_weight(
            name="idf", shape=(n_features,), initializer="ones", trainable=False
        )
        self.dropout = keras.layers.Dropout(dropout)

    def call(self, ids: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        weights = tf.where(tf.not_equal(ids, 0), tf.gather(self.idf, ids), 0.0)
        weights = self.dropout(weights, training=training)
        is_word = ids <= self.n_words
        squares = tf.square(weights)
        norms = [
            tf.sqrt(tf.reduce_sum(tf.where(block, squares, 0.0), axis=1, keepdims=True))
            for block in (is_word, ~is_word)
        ]
        weights /= tf.maximum(tf.where(is_word, norms[0], norms[1]), 1e-12)
        x = tf.einsum("bl,bld->bd", weights, tf.gather(self.table, ids))
        return x if self.bias is None else x + self.bias


class _Table(keras.layers.Layer):
    def __init__(self, rows: int, dim: int, initializer: str = "zeros", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.table = self.add_weight(
            name="table", shape=(max(rows, 0), dim), initializer=initializer, trainable=True
        )

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return inputs


def _probs(x: tf.Tensor, n_labels: int) -> tf.Tensor:
    """The softmax output layer, in float32 even when the rest runs in bfloat16."""
    return keras.layers.Dense(n_labels, activation="softmax", dtype="float32", name="probs")(x)


def _glove_input(config: dict[str, Any], mask_zero: bool = True) -> tuple[keras.Input, tf.Tensor]:
    ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    emb = GloveEmbedding(
        config["vocab_size"],
        config["n_trainable"],
        config["embedding_dim"],
        extra_dim=config["extra_dim"],
        mask_zero=mask_zero,
        name="embedding",
    )(ids)
    if config["embedding_dropout"]:
        emb = keras.layers.SpatialDropout1D(config["embedding_dropout"], name="embedding_dropout")(
            emb
        )
    return ids, emb


def build_glove_bilstm(config: dict[str, Any], n_labels: int) -> keras.Model:
    """The notebook's GloVe BiLSTM: BiLSTM(128, seq) -> BiLSTM(64) -> BN -> Dense 64 -> 32."""
    l2 = keras.regularizers.L2(config["l2"]) if config["l2"] else None
    ids, x = _glove_input(config)
    x = keras.layers.Bidirectional(
        keras.layers.LSTM(config["units"], return_sequences=True), name="bilstm_1"
    )(x)
    x = keras.layers.Bidirectional(keras.layers.LSTM(config["units"] // 2), name="bilstm_2")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Dropout(config["dropout"], name="dropout")(x)
    x = keras.layers.Dense(64, activation="relu", kernel_regularizer=l2, name="dense_64")(x)
    x = keras.layers.Dense(32, activation="relu", kernel_regularizer=l2, name="dense_32")(x)
    out = _probs(x, n_labels)
    return keras.Model(ids, out, name="glove_bilstm")


def build_glove_cnn(config: dict[str, Any], n_labels: int) -> keras.Model:
    """The notebook's CNN: Conv1D(128, 5) -> global max pool -> BN -> Dropout -> Dense 64.

    Settings widen it without a second definition: several ``kernel_sizes``, mean as
    well as max pooling (plus the mean word vector), and no BN/dense head.
    """
    ids, emb = _glove_input(config, mask_zero=False)
    features = []
    for k in config["kernel_sizes"]:
        h = keras.layers.Conv1D(
            config["filters"], k, padding="same", activation="relu", name=f"conv_{k}"
        )(emb)
        features.append(MaskedGlobalMaxPool(name=f"max_pool_{k}")([h, ids]))
        if config["mean_pool"]:
            features.append(MaskedGlobalMeanPool(name=f"mean_pool_{k}")([h, ids]))
    if config["mean_pool"]:
        features.append(MaskedGlobalMeanPool(name="mean_embedding")([emb, ids]))
    x = keras.layers.Concatenate(name="features")(features) if len(features) > 1 else features[0]
    if config["batch_norm"]:
        x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Dropout(config["dropout"], name="dropout")(x)
    if config["dense_units"]:
        x = keras.layers.Dense(config["dense_units"], activation="relu", name="dense")(x)
    out = _probs(x, n_labels)
    return keras.Model(ids, out, name="glove_cnn")


def _attention_head(
    x: tf.Tensor, ids: keras.Input, config: dict[str, Any], name: str, n_labels: int
) -> keras.Model:
    x = keras.layers.Dropout(config["dropout"], name="dropout")(x)
    x = AttentionPooling(config["attention_units"], name="attention")(x)
    x = keras.layers.Dense(64, activation="relu", name="dense_64")(x)
    out = _probs(x, n_labels)
    return keras.Model(ids, out, name=name)


def build_glove_lstm_attention(config: dict[str, Any], n_labels: int) -> keras.Model:
    """GloVe -> BiLSTM(128, seq) -> Dropout -> attention pooling -> Dense 64."""
    ids, x = _glove_input(config)
    x = keras.layers.Bidirectional(
        keras.layers.LSTM(config["units"], return_sequences=True), name="bilstm"
    )(x)
    return _attention_head(x, ids, config, "glove_lstm_attention", n_labels)


def build_glove_gru_attention(config: dict[str, Any], n_labels: int) -> keras.Model:
    """GloVe -> GRU(128, seq) -> Dropout -> attention pooling -> Dense 64."""
    ids, x = _glove_input(config)
    x = keras.layers.GRU(config["units"], return_sequences=True, name="gru")(x)
    return _attention_head(x, ids, config, "glove_gru_attention", n_labels)


def _bert_input(config: dict[str, Any]) -> tuple[keras.Input, Any]:
    import transformers
    from transformers import BertConfig, TFBertModel

    # Its TensorFlow deprecation notice would break --log-format json on stderr.
    transformers.logging.set_verbosity_error()

    ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    encoder = TFBertModel(BertConfig(**config["encoder"]), name="encoder")
    return ids, encoder(input_ids=ids, attention_mask=PaddingMask(name="attention_mask")(ids))


def build_fine_tuned_bert(config: dict[str, Any], n_labels: int) -> keras.Model:
    """BERT for sequence classification: pooled [CLS] -> Dropout -> softmax, all fine-tuned."""
    ids, bert = _bert_input(config)
    x = keras.layers.Dropout(config["dropout"], name="dropout")(bert.pooler_output)
    out = _probs(x, n_labels)
    return keras.Model(ids, out, name="fine_tuned_bert")


def build_bert_classifier(config: dict[str, Any], n_labels: int) -> keras.Model:
    """[CLS] -> Dropout .3 -> Dense 512 (L2) -> BN -> Dropout -> Dense 256 (L2) -> BN ->
    Dense 128 -> Dropout -> softmax."""
    l2 = keras.regularizers.L2(config["l2"])
    ids, bert = _bert_input(config)
    x = FirstToken(name="cls")(bert.last_hidden_state)
    x = keras.layers.Dropout(0.3, name="dropout_in")(x)
    x = keras.layers.Dense(512, activation="relu", kernel_regularizer=l2, name="dense_512")(x)
    x = keras.layers.BatchNormalization(name="bn_512")(x)
    x = keras.layers.Dropout(config["dropout"], name="dropout_512")(x)
    x = keras.layers.Dense(256, activation="relu", kernel_regularizer=l2, name="dense_256")(x)
    x = keras.layers.BatchNormalization(name="bn_256")(x)
    x = keras.layers.Dense(128, activation="relu", name="dense_128")(x)
    x = keras.layers.Dropout(config["dropout"], name="dropout_128")(x)
    out = _probs(x, n_labels)
    return keras.Model(ids, out, name="bert_classifier")


def build_bert_bilstm(config: dict[str, Any], n_labels: int) -> keras.Model:
    """BERT tokens -> BiLSTM(128) -> Dense 256 (L2) -> BN -> Dropout -> Dense 128 (L2) ->
    BN -> Dropout -> softmax."""
    l2 = keras.regularizers.L2(config["l2"])
    ids, bert = _bert_input(config)
    mask = TokenMask(name="token_mask")(ids)
    x = keras.layers.Bidirectional(keras.layers.LSTM(config["units"]), name="bilstm")(
        bert.last_hidden_state, mask=mask
    )
    x = keras.layers.Dense(256, activation="relu", kernel_regularizer=l2, name="dense_256")(x)
    x = keras.layers.BatchNormalization(name="bn_256")(x)
    x = keras.layers.Dropout(config["dropout"], name="dropout_256")(x)
    x = keras.layers.Dense(128, activation="relu", kernel_regularizer=l2, name="dense_128")(x)
    x = keras.layers.BatchNormalization(name="bn_128")(x)
    x = keras.layers.Dropout(config["dropout"], name="dropout_128")(x)
    out = _probs(x, n_labels)
    return keras.Model(ids, out, name="bert_bilstm")


def build_ngram(config: dict[str, Any], n_labels: int) -> keras.Model:
    """idf-weighted, L2-normalised bag of n-grams -> softmax: a tf-idf logistic
    regression, or with ``hidden`` > 0 a fastText-style linear hidden layer first."""
    ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    hidden = config["hidden"]
    x = NgramBag(
        config["n_features"],
        config["n_word_features"],
        hidden or n_labels,
        config["dropout"],
        use_bias=not hidden,
        l2=config["l2"],
        initializer="uniform" if hidden else "zeros",
        name="ngrams",
    )(ids)
    if hidden:
        out = _probs(x, n_labels)
    else:
        out = keras.layers.Activation("softmax", dtype="float32", name="probs")(x)
    return keras.Model(ids, out, name="ngram")


def set_pretrained_trainable(model: keras.Model, trainable: bool) -> None:
    """Freeze or unfreeze the pretrained part of a model: GloVe rows or the BERT encoder."""
    for layer in model.layers:
        if isinstance(layer, GloveEmbedding):
            layer.pretrained.trainable = trainable
        elif layer.name == "encoder":
            layer.trainable = trainable
