"""``fine_tuned_bert`` in fp32 as an ONNX graph: the int8 path's near-tie fallback
without TensorFlow.

int8 scoring runs the LiteRT flatbuffer; the rows whose two best emoji are nearly tied
are redone in fp32. Through Keras that would mean importing TensorFlow and building the
model for a few percent of the rows, a large share of an int8 run's time. This
graph is written from the bundle's own weights with the ``onnx`` helpers
(no torch, no TensorFlow) and runs in ONNX Runtime: the same computation as the Keras
model (Hugging Face's TF BERT: post-norm layers, exact GELU, a -10000 attention bias on
padding, the tanh pooler, a softmax head), within about 1e-6 of its probabilities.

The word-embedding table (30,522 x 384 for MiniLM) is not in the graph: the runtime looks
its rows up in the bundle's weights and feeds them as ``word_embeddings``.
"""

from collections.abc import Callable
from typing import Any

import numpy as np

from emoji_batch.bundle import Bundle
from emoji_batch.runtimes import OnnxRuntime

# The graph reproduces the encoder, its pooler and one Dense softmax: the architectures
# the BERT family's entry in emoji_batch.families lists as its ``onnx_fallback``.
WORD_TABLE = "encoder/0:weight"
IDS, WORDS, PROBS = "ids", "word_embeddings", "probs"
OPSET = 17  # LayerNormalization
# Weights per encoder layer in the bundle's order (see bundle._named_weights), after the
# five embedding weights: q, k, v, attention out (kernel, bias each), its LayerNorm, the
# intermediate and output denses, the output LayerNorm.
_PER_LAYER = 16
_FIRST_LAYER = 5


def bert_graph(weight: Callable[[str], np.ndarray], config: dict[str, Any]) -> Any:
    """The fp32 ONNX model of a ``fine_tuned_bert`` bundle; ``weight(name)`` returns a
    bundle weight (by its name in ``weights.safetensors``) as float32. (Not passed
    through ``onnx.checker`` here, which would cost every int8 run that falls back: the
    tests check it.)"""
    from onnx import TensorProto, helper

    enc = config["encoder"]
    hidden, heads = int(enc["hidden_size"]), int(enc["num_attention_heads"])
    layers, eps = int(enc["num_hidden_layers"]), float(enc["layer_norm_eps"])
    g = _Graph(weight, eps)
    consts = _constants(g, hidden, heads)
    x = _embeddings(g)
    mask = _attention_mask(g)
    for layer in range(layers):
        x = _encoder_layer(g, consts, x, mask, layer)
    _head(g, x, layers)
    n_labels = int(weight("probs/1:bias").shape[0])
    graph = helper.make_graph(
        g.nodes,
        "fine_tuned_bert",
        [
            helper.make_tensor_value_info(IDS, TensorProto.INT32, ["batch", "width"]),
            helper.make_tensor_value_info(WORDS, TensorProto.FLOAT, ["batch", "width", hidden]),
        ],
        [helper.make_tensor_value_info(PROBS, TensorProto.FLOAT, ["batch", n_labels])],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    return model


def _w(index: int, leaf: str, prefix: str = "encoder") -> str:
    """A bundle weight's name: ``encoder/3:gamma``."""
    return f"{prefix}/{index}:{leaf}"


class _Graph:
    """The nodes and initializers of the graph being built, in the order they are made."""

    def __init__(self, weight: Callable[[str], np.ndarray], eps: float) -> None:
        self.weight, self.eps = weight, eps
        self.nodes: list[Any] = []
        self.inits: list[Any] = []

    def const(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def c(self, index: int, leaf: str) -> str:
        """The encoder weight ``index``/``leaf`` as a constant."""
        name = _w(index, leaf)
        return self.const(name, self.weight(name))

    def op(self, kind: str, inputs: list[str], out: str, **attrs: Any) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(kind, inputs, [out], name=out, **attrs))
        return out

    def dense(self, x: str, kernel: str, bias: str, out: str) -> str:
        """``x @ kernel + bias`` (kernel and bias are bundle weight names)."""
        matmul = self.op("MatMul", [x, self.const(kernel, self.weight(kernel))], f"{out}/matmul")
        return self.op("Add", [matmul, self.const(bias, self.weight(bias))], out)

    def norm(self, x: str, gamma: str, beta: str, out: str) -> str:
        inputs = [x, self.const(gamma, self.weight(gamma)), self.const(beta, self.weight(beta))]
        return self.op("LayerNormalization", inputs, out, axis=-1, epsilon=self.eps)


def _constants(g: _Graph, hidden: int, heads: int) -> dict[str, str]:
    """The shapes and numbers every layer uses, by name."""
    dh = hidden // heads
    return {
        "split": g.const("shape/heads", np.array([0, 0, heads, dh], dtype=np.int64)),
        "merge": g.const("shape/hidden", np.array([0, 0, hidden], dtype=np.int64)),
        "scale": g.const("scale", np.array(1 / np.sqrt(dh), dtype=np.float32)),
        "half": g.const("half", np.array(0.5, np.float32)),
        "one": g.const("one", np.array(1, np.float32)),
        "root2": g.const("sqrt2", np.array(np.sqrt(2), dtype=np.float32)),
        "zero_1d": g.const("zero_1d", np.array([0])),
        "one_1d": g.const("one_1d", np.array([1])),
    }


def _embeddings(g: _Graph) -> str:
    """Words (fed) + positions 0..S-1 + token type 0, then LayerNorm."""
    width = g.op("Shape", [IDS], "width", start=1, end=2)
    pos = g.op("Slice", [g.c(2, "embeddings"), "zero_1d", width], "pos_emb")
    token_type = g.const("token_type_0", g.weight("encoder/1:embeddings")[0])
    x = g.op("Add", [g.op("Add", [WORDS, pos], "emb/pos"), token_type], "emb/sum")
    return g.norm(x, _w(3, "gamma"), _w(4, "beta"), "emb")


def _attention_mask(g: _Graph) -> str:
    """Padding (id 0) gets -10000 before the softmax, as TF BERT's extended attention mask."""
    from onnx import TensorProto

    pad = g.op(
        "Cast",
        [g.op("Equal", [IDS, g.const("pad", np.array(0, np.int32))], "is_pad")],
        "pad_f",
        to=TensorProto.FLOAT,
    )
    bias = g.op("Mul", [pad, g.const("neg", np.array(-10000.0, np.float32))], "mask_bias2d")
    return g.op("Unsqueeze", [bias, g.const("axes12", np.array([1, 2], np.int64))], "mask_bias")


def _encoder_layer(g: _Graph, k: dict[str, str], x: str, mask: str, layer: int) -> str:
    """One post-norm encoder layer: self-attention, then the exact-GELU feed-forward."""
    b = _FIRST_LAYER + _PER_LAYER * layer
    p = f"layer{layer}"

    def heads_of(i: int, name: str, perm: list[int]) -> str:
        t = g.dense(x, _w(b + i, "kernel"), _w(b + i + 1, "bias"), f"{p}/{name}")
        return g.op(
            "Transpose",
            [g.op("Reshape", [t, k["split"]], f"{p}/{name}/split")],
            f"{p}/{name}/t",
            perm=perm,
        )

    q = heads_of(0, "q", [0, 2, 1, 3])
    key = heads_of(2, "k", [0, 2, 3, 1])
    v = heads_of(4, "v", [0, 2, 1, 3])
    qk = g.op("MatMul", [q, key], f"{p}/qk")
    scores = g.op("Add", [g.op("Mul", [qk, k["scale"]], f"{p}/scaled"), mask], f"{p}/masked")
    attn = g.op("Softmax", [scores], f"{p}/attn", axis=-1)
    ctx = g.op(
        "Transpose", [g.op("MatMul", [attn, v], f"{p}/ctx")], f"{p}/ctx/t", perm=[0, 2, 1, 3]
    )
    ctx = g.op("Reshape", [ctx, k["merge"]], f"{p}/ctx/merged")
    out = g.dense(ctx, _w(b + 6, "kernel"), _w(b + 7, "bias"), f"{p}/attn_out")
    res1 = g.op("Add", [out, x], f"{p}/res1")
    x = g.norm(res1, _w(b + 8, "gamma"), _w(b + 9, "beta"), f"{p}/ln1")
    inner = g.dense(x, _w(b + 10, "kernel"), _w(b + 11, "bias"), f"{p}/inner")
    erf = g.op("Erf", [g.op("Div", [inner, k["root2"]], f"{p}/inner/s")], f"{p}/erf")
    gelu = g.op(
        "Mul",
        [g.op("Mul", [inner, k["half"]], f"{p}/half"), g.op("Add", [erf, k["one"]], f"{p}/erf1")],
        f"{p}/gelu",
    )
    out = g.dense(gelu, _w(b + 12, "kernel"), _w(b + 13, "bias"), f"{p}/ffn_out")
    res2 = g.op("Add", [out, x], f"{p}/res2")
    return g.norm(res2, _w(b + 14, "gamma"), _w(b + 15, "beta"), f"{p}/ln2")


def _head(g: _Graph, x: str, layers: int) -> None:
    """The tanh pooler on the first token, then the Dense softmax: the ``probs`` output."""
    first = g.op("Slice", [x, "zero_1d", "one_1d", "one_1d"], "cls3d")  # x[:, 0:1]
    pooled_in = g.op("Squeeze", [first, "one_1d"], "cls")
    b = _FIRST_LAYER + _PER_LAYER * layers
    dense = g.dense(pooled_in, _w(b, "kernel"), _w(b + 1, "bias"), "pooler")
    pooled = g.op("Tanh", [dense], "pooled")
    logits = g.dense(pooled, _w(0, "kernel", "probs"), _w(1, "bias", "probs"), "logits")
    g.op("Softmax", [logits], PROBS, axis=-1)


def fp32_runtime(bundle: Bundle, word_table: np.ndarray | None = None) -> OnnxRuntime:
    """The bundle's model in fp32 in ONNX Runtime (built from its weights at load);
    ``word_table``: its ``WORD_TABLE`` in float32 where the caller already holds one."""
    model = bert_graph(bundle.weight, bundle.manifest.config)
    table = bundle.weight(WORD_TABLE) if word_table is None else word_table
    return OnnxRuntime(model.SerializeToString(), table)
