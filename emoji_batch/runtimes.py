"""What runs a model on one padded batch of token ids, per precision.

fp32 and bf16 run a Keras model inside one ``tf.function`` (one trace, whatever the
batch shapes); int8 runs a TensorFlow Lite flatbuffer (see :mod:`emoji_batch.quantize`,
which builds it) in the LiteRT interpreter, which imports in 0.1 s where TensorFlow takes
about 4, and its near-tie fallback for BERT in ONNX Runtime (see
:mod:`emoji_batch.bert_onnx`); a linear n-gram model runs in NumPy on the CPU, without
TensorFlow at all. Each
runtime is a callable ``ids (batch, width) int32 -> probs``.
"""

import os
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from emoji_batch.device import stderr_silenced, tensorflow

Runtime = Callable[[np.ndarray], np.ndarray]
# Name prefix of an int8 model input that takes rows of a float embedding table: the
# table stays in the bundle's weights file instead of a second copy in the flatbuffer.
TABLE_INPUT = "table:"


def threads() -> int:
    return len(os.sched_getaffinity(0))


class KerasRuntime:
    """A Keras model in one ``tf.function`` with a shape-agnostic signature, on ``device``."""

    def __init__(self, model: Any, device: str) -> None:
        tf = tensorflow()
        self.device = device
        spec = tf.TensorSpec([None, None], tf.int32)
        self.function = tf.function(lambda ids: model(ids, training=False), input_signature=[spec])
        # Trace once now, and keep the C++ notices of the first run out of the caller's log.
        with stderr_silenced(), tf.device(device):
            self.function(tf.ones([1, 8], tf.int32))

    @property
    def traces(self) -> int:
        return int(self.function.experimental_get_tracing_count())

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        tf = tensorflow()
        with tf.device(self.device):
            return self.function(tf.constant(batch)).numpy()


class Int8Runtime:
    """Runs a TensorFlow Lite model on int32 id batches, resizing its inputs per shape.

    Inputs named ``table:<weight name>`` get ``tables[<weight name>][ids]``: the float
    rows of an embedding table the flatbuffer does not carry.

    An interpreter holds one set of tensors, so calls are serialized: one runtime may be
    shared by threads (the demo page's sessions, Spark tasks, a prefetching scorer). The
    interpreter runs its own threads inside ``invoke``.
    """

    def __init__(
        self,
        model_content: bytes,
        tables: Callable[[str], np.ndarray] | None = None,
        num_threads: int | None = None,
    ) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._lock = threading.Lock()
        with stderr_silenced():  # the XNNPACK delegate announces itself on stderr
            self._interpreter = Interpreter(
                model_content=model_content, num_threads=num_threads or threads()
            )
            inputs = self._interpreter.get_input_details()
            self._ids = inputs[0]["index"]
            self._tables: list[tuple[int, np.ndarray]] = []
            for detail in inputs[1:]:
                name = detail["name"]
                if not name.startswith(TABLE_INPUT) or tables is None:
                    raise ValueError(f"int8 model input {name!r} has no table to read from")
                table = np.asarray(tables(name.removeprefix(TABLE_INPUT)), dtype=np.float32)
                self._tables.append((detail["index"], table))
            self._output = self._interpreter.get_output_details()[0]["index"]
            self._shape: tuple[int, ...] | None = None
            self(np.ones((1, 8), dtype=np.int32))

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with self._lock:
            if batch.shape != self._shape:  # a handful of widths per chunk: length-sorted
                self._interpreter.resize_tensor_input(self._ids, batch.shape)
                for index, table in self._tables:
                    self._interpreter.resize_tensor_input(index, (*batch.shape, table.shape[1]))
                self._interpreter.allocate_tensors()
                self._shape = batch.shape
            self._interpreter.set_tensor(self._ids, batch)
            for index, table in self._tables:
                self._interpreter.set_tensor(index, table[batch])
            self._interpreter.invoke()
            return self._interpreter.get_tensor(self._output).copy()


class OnnxRuntime:
    """An ONNX model of BERT (see :mod:`emoji_batch.bert_onnx`) in ONNX Runtime on the CPU:
    ``ids`` and the rows of the word-embedding ``table`` they index go in, label
    probabilities come out. A session may be shared by threads.
    """

    def __init__(self, model: bytes, table: np.ndarray) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # its shape-merge notices are not the user's business
        self._session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self._table = np.ascontiguousarray(table, dtype=np.float32)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        feed = {"ids": batch, "word_embeddings": self._table[batch]}
        return self._session.run(["probs"], feed)[0]


class NgramRuntime:
    """A linear n-gram model (``ngram_linear`` with ``hidden`` 0) in NumPy: the same sums
    as :class:`emoji_batch.networks.NgramBag` then a softmax, a gather and a dot product
    that TensorFlow would only add seconds of import to."""

    def __init__(self, table: np.ndarray, idf: np.ndarray, bias: np.ndarray, n_words: int):
        self.table, self.idf, self.bias, self.n_words = table, idf, bias, n_words

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        weights = np.where(batch != 0, self.idf[batch], np.float32(0))
        is_word = batch <= self.n_words
        squares = np.square(weights)
        word_norm = np.sqrt(np.where(is_word, squares, 0).sum(axis=1, keepdims=True))
        char_norm = np.sqrt(np.where(is_word, 0, squares).sum(axis=1, keepdims=True))
        weights /= np.maximum(np.where(is_word, word_norm, char_norm), np.float32(1e-12))
        logits = np.einsum("bl,bld->bd", weights, self.table[batch]) + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)
