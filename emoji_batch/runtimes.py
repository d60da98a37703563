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
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

import numpy as np

from emoji_batch.device import stderr_silenced, tensorflow

Runtime = Callable[[np.ndarray], np.ndarray]
# Name prefix of an int8 model input that takes rows of a float embedding table: the
# table stays in the bundle's weights file instead of a second copy in the flatbuffer.
TABLE_INPUT = "table:"
# An int8 model's signatures: ``width_<n>`` takes ids of that many tokens (at the fixed
# number of rows of its ``ids`` input).
WIDTH_SIGNATURE = "width_"
IDS = "ids"


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
    """Runs a TensorFlow Lite model on int32 id batches.

    A model written by :func:`emoji_batch.quantize.convert_int8` has one signature per
    width (``width_<n>``) at a fixed number of rows: a batch is padded (id 0) up to the
    next width and cut into those rows. Fixed shapes let XNNPACK take the whole graph;
    with the batch and width unknown, the shape arithmetic TensorFlow writes into every
    reshape stays outside it, on slower kernels. A model with a single signature of
    unknown shapes (what earlier versions wrote, such as the shipped ``glove_cnn``'s) is
    resized to each batch instead, in one interpreter of ``num_threads`` threads.

    The fixed-shape pieces of a batch run side by side on several interpreters, each
    taking its share: a 16-row piece is too small to share well between threads (see
    benchmarks/int8_threads.py). There are as many interpreters as a batch of
    ``batch_size`` rows has pieces (or ``interpreters``), at most one per thread, the
    threads divided between them; each holds its own packed copy of the weights.

    Inputs named ``table:<weight name>`` get ``tables[<weight name>][ids]``: the float
    rows of an embedding table the flatbuffer does not carry.

    Calls are serialized: one runtime may be shared by threads (the demo page's sessions,
    Spark tasks, a prefetching scorer).
    """

    def __init__(
        self,
        model_content: bytes,
        tables: Callable[[str], np.ndarray] | None = None,
        num_threads: int | None = None,
        batch_size: int | None = None,
        interpreters: int | None = None,
    ) -> None:
        from ai_edge_litert.interpreter import Interpreter

        n_threads = num_threads or threads()
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._copies: list[_FixedShapes] = []
        self._wanted = 1
        with stderr_silenced():  # the XNNPACK delegate announces itself on stderr

            def interpreter(n: int) -> Any:
                return Interpreter(model_content=model_content, num_threads=n)

            first = interpreter(1)
            if any(_is_width(key) for key in first.get_signature_list()):
                probe = _FixedShapes(first)
                pieces = n_threads if batch_size is None else -(-batch_size // probe.rows)
                self._wanted = max(1, min(interpreters or pieces, n_threads))
                each = n_threads // self._wanted
                self._new_copy = lambda: _FixedShapes(interpreter(each))
                self._copies.append(probe if each == 1 else self._new_copy())
                if self._wanted > 1:
                    self._pool = ThreadPoolExecutor(self._wanted - 1, "emoji-batch-int8")
                names = self._copies[0].table_names
            else:
                self._interpreter = first if n_threads == 1 else interpreter(n_threads)
                inputs = self._interpreter.get_input_details()
                self._ids = inputs[0]["index"]
                names = [detail["name"] for detail in inputs[1:]]
                self._indexes = [detail["index"] for detail in inputs[1:]]
                self._output = self._interpreter.get_output_details()[0]["index"]
                self._shape: tuple[int, ...] | None = None
            self._tables: list[tuple[str, np.ndarray]] = []
            for name in names:
                if not name.startswith(TABLE_INPUT) or tables is None:
                    raise ValueError(f"int8 model input {name!r} has no table to read from")
                table = np.asarray(tables(name.removeprefix(TABLE_INPUT)), dtype=np.float32)
                self._tables.append((name, table))
            self(np.ones((1, 8), dtype=np.int32))

    @property
    def widths(self) -> list[int]:
        """The widths it runs at fixed shapes (none for a model of unknown shapes)."""
        return self._copies[0].widths if self._copies else []

    @property
    def interpreters(self) -> int:
        """How many interpreters share out a batch's pieces (each made when a batch first
        has a piece for it, so scoring a few tweets holds one copy of the weights)."""
        return self._wanted

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with self._lock:
            if self._copies:
                return self._fixed(batch)
            return self._resized(batch)

    def _fixed(self, batch: np.ndarray) -> np.ndarray:
        rows, width = batch.shape
        fits = [w for w in self.widths if w >= width]
        if not fits:
            raise ValueError(
                f"a batch of {width} tokens is wider than this int8 model's widest input "
                f"({max(self.widths)})"
            )
        step = self._copies[0].rows
        padded = np.zeros((-(-rows // step) * step, fits[0]), dtype=np.int32)
        padded[:rows, :width] = batch
        pieces = [padded[start : start + step] for start in range(0, len(padded), step)]
        n = min(self._wanted, len(pieces))
        while len(self._copies) < n:
            with stderr_silenced():
                self._copies.append(self._new_copy())

        def share(i: int) -> list[np.ndarray]:
            return [self._copies[i].run(ids, self._tables) for ids in pieces[i::n]]

        others = [self._pool.submit(share, i) for i in range(1, n)] if self._pool else []
        try:
            mine = share(0)
        finally:  # no interpreter may still run once the lock is let go
            wait(others)
        shares = [mine, *(future.result() for future in others)]
        out = np.concatenate([shares[i % n][i // n] for i in range(len(pieces))])
        return out[:rows]

    def _resized(self, batch: np.ndarray) -> np.ndarray:
        if batch.shape != self._shape:  # a handful of widths per chunk: length-sorted
            self._interpreter.resize_tensor_input(self._ids, batch.shape)
            for index, (_, table) in zip(self._indexes, self._tables, strict=True):
                self._interpreter.resize_tensor_input(index, (*batch.shape, table.shape[1]))
            self._interpreter.allocate_tensors()
            self._shape = batch.shape
        self._interpreter.set_tensor(self._ids, batch)
        for index, (_, table) in zip(self._indexes, self._tables, strict=True):
            self._interpreter.set_tensor(index, table[batch])
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output).copy()


class _FixedShapes:
    """One interpreter of a model with a signature per width, at a fixed number of rows."""

    def __init__(self, interpreter: Any) -> None:
        keys = interpreter.get_signature_list()
        widths = {int(k.removeprefix(WIDTH_SIGNATURE)): k for k in keys if _is_width(k)}
        self.runners = {w: interpreter.get_signature_runner(widths[w]) for w in sorted(widths)}
        self.widths = list(self.runners)
        inputs = self.runners[self.widths[0]].get_input_details()
        self.rows = int(inputs[IDS]["shape"][0])
        self.table_names = [name for name in inputs if name != IDS]
        self._allocated: set[int] = set()

    def run(self, ids: np.ndarray, tables: list[tuple[str, np.ndarray]]) -> np.ndarray:
        """Probabilities for ``rows`` ids of one of its widths."""
        width = ids.shape[1]
        feed = {IDS: ids} | {name: table[ids] for name, table in tables}
        if width in self._allocated:
            return _invoke_allocated(self.runners[width], feed)
        self._allocated.add(width)
        return next(iter(self.runners[width](**feed).values()))


def _invoke_allocated(runner: Any, feed: dict[str, np.ndarray]) -> np.ndarray:
    """``runner(**feed)`` without the resize and allocation it repeats on every call,
    which is wasted work: the shapes are fixed, and this
    signature was allocated by its first call. Uses the runner's own interpreter handles
    (ai-edge-litert is pinned; tests cover both calls)."""
    wrapper, graph = runner._interpreter_wrapper, runner._subgraph_index
    for name, value in feed.items():
        wrapper.SetTensor(runner._inputs[name], value, graph)
    wrapper.Invoke(graph)
    ((_, output),) = runner._outputs
    return wrapper.GetTensor(output, graph)


def _is_width(key: str) -> bool:
    return key.startswith(WIDTH_SIGNATURE) and key.removeprefix(WIDTH_SIGNATURE).isdigit()


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
    """A linear n-gram model (``ngram_svm``; ``ngram_linear`` with ``hidden`` 0) in NumPy:
    the same sums as :class:`emoji_batch.networks.NgramBag` then a softmax, a gather and
    a dot product that TensorFlow would only add seconds of import to."""

    def __init__(self, table: np.ndarray, idf: np.ndarray, bias: np.ndarray, n_words: int):
        self.table, self.idf, self.bias, self.n_words = table, idf, bias, n_words

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        weights = np.where(batch != 0, self.idf[batch], np.float32(0))
        is_word = batch <= self.n_words
        squares = np.square(weights)
        word_norm = np.sqrt(np.where(is_word, squares, 0).sum(axis=1, keepdims=True))
        char_norm = np.sqrt(np.where(is_word, 0, squares).sum(axis=1, keepdims=True))
        weights /= np.maximum(np.where(is_word, word_norm, char_norm), np.float32(1e-12))
        # optimize=True makes it a batched matrix product (about twice as fast here).
        gathered = np.take(self.table, batch, axis=0)
        logits = np.einsum("bl,bld->bd", weights, gathered, optimize=True) + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)
