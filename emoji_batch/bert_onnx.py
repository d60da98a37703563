"""``fine_tuned_bert`` in fp32 as an ONNX graph: the int8 path's near-tie fallback
without TensorFlow.

int8 scoring runs the LiteRT flatbuffer; the rows whose two best emoji are nearly tied
are redone in fp32. Through Keras that meant importing TensorFlow and building the model
for a few percent of the rows (about 11 of 26 seconds of a 5,000-row run on an AVX2
machine). This graph is written from the bundle's own weights with the ``onnx`` helpers
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
    through ``onnx.checker`` here, which takes a fifth of a second of every int8 run
    that falls back: the tests check it.)"""
    from onnx import TensorProto, helper, numpy_helper

    enc = config["encoder"]
    hidden, heads = int(enc["hidden_size"]), int(enc["num_attention_heads"])
    layers, eps = int(enc["num_hidden_layers"]), float(enc["layer_norm_eps"])
    nodes: list[Any] = []
    inits: list[Any] = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def w(index: int, leaf: str, prefix: str = "encoder") -> str:
        return f"{prefix}/{index}:{leaf}"

    def c(index: int, leaf: str) -> str:
        name = w(index, leaf)
        return const(name, weight(name))

    def op(kind: str, inputs: list[str], out: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(kind, inputs, [out], name=out, **attrs))
        return out

    def dense(x: str, kernel: str, bias: str, out: str) -> str:
        """``x @ kernel + bias`` (kernel and bias are bundle weight names)."""
        matmul = op("MatMul", [x, const(kernel, weight(kernel))], f"{out}/matmul")
        return op("Add", [matmul, const(bias, weight(bias))], out)

    def norm(x: str, gamma: str, beta: str, out: str) -> str:
        inputs = [x, const(gamma, weight(gamma)), const(beta, weight(beta))]
        return op("LayerNormalization", inputs, out, axis=-1, epsilon=eps)

    dh = hidden // heads
    split = const("shape/heads", np.array([0, 0, heads, dh], dtype=np.int64))
    merge = const("shape/hidden", np.array([0, 0, hidden], dtype=np.int64))
    scale = const("scale", np.array(1 / np.sqrt(dh), dtype=np.float32))
    half, one = const("half", np.array(0.5, np.float32)), const("one", np.array(1, np.float32))
    root2 = const("sqrt2", np.array(np.sqrt(2), dtype=np.float32))
    zero, one_1d = const("zero_1d", np.array([0])), const("one_1d", np.array([1]))

    # Embeddings: words (fed) + positions 0..S-1 + token type 0, then LayerNorm.
    width = op("Shape", [IDS], "width", start=1, end=2)
    pos = op("Slice", [c(2, "embeddings"), zero, width], "pos_emb")
    token_type = const("token_type_0", weight("encoder/1:embeddings")[0])
    x = op("Add", [op("Add", [WORDS, pos], "emb/pos"), token_type], "emb/sum")
    x = norm(x, w(3, "gamma"), w(4, "beta"), "emb")
    # Padding (id 0) gets -10000 before the softmax, as TF BERT's extended attention mask.
    pad = op(
        "Cast",
        [op("Equal", [IDS, const("pad", np.array(0, np.int32))], "is_pad")],
        "pad_f",
        to=TensorProto.FLOAT,
    )
    bias = op("Mul", [pad, const("neg", np.array(-10000.0, np.float32))], "mask_bias2d")
    mask = op("Unsqueeze", [bias, const("axes12", np.array([1, 2], np.int64))], "mask_bias")

    for layer in range(layers):
        b = _FIRST_LAYER + _PER_LAYER * layer
        p = f"layer{layer}"

        def heads_of(i: int, name: str, perm: list[int], b: int = b, p: str = p, x: str = x) -> str:
            t = dense(x, w(b + i, "kernel"), w(b + i + 1, "bias"), f"{p}/{name}")
            return op(
                "Transpose",
                [op("Reshape", [t, split], f"{p}/{name}/split")],
                f"{p}/{name}/t",
                perm=perm,
            )

        q = heads_of(0, "q", [0, 2, 1, 3])
        k = heads_of(2, "k", [0, 2, 3, 1])
        v = heads_of(4, "v", [0, 2, 1, 3])
        scores = op(
            "Add",
            [op("Mul", [op("MatMul", [q, k], f"{p}/qk"), scale], f"{p}/scaled"), mask],
            f"{p}/masked",
        )
        attn = op("Softmax", [scores], f"{p}/attn", axis=-1)
        ctx = op(
            "Transpose", [op("MatMul", [attn, v], f"{p}/ctx")], f"{p}/ctx/t", perm=[0, 2, 1, 3]
        )
        ctx = op("Reshape", [ctx, merge], f"{p}/ctx/merged")
        out = dense(ctx, w(b + 6, "kernel"), w(b + 7, "bias"), f"{p}/attn_out")
        x = norm(op("Add", [out, x], f"{p}/res1"), w(b + 8, "gamma"), w(b + 9, "beta"), f"{p}/ln1")
        inner = dense(x, w(b + 10, "kernel"), w(b + 11, "bias"), f"{p}/inner")
        erf = op("Erf", [op("Div", [inner, root2], f"{p}/inner/s")], f"{p}/erf")
        gelu = op(
            "Mul",
            [op("Mul", [inner, half], f"{p}/half"), op("Add", [erf, one], f"{p}/erf1")],
            f"{p}/gelu",
        )
        out = dense(gelu, w(b + 12, "kernel"), w(b + 13, "bias"), f"{p}/ffn_out")
        x = norm(
            op("Add", [out, x], f"{p}/res2"), w(b + 14, "gamma"), w(b + 15, "beta"), f"{p}/ln2"
        )

    first = op("Slice", [x, zero, one_1d, one_1d], "cls3d")  # x[:, 0:1]
    pooled_in = op("Squeeze", [first, one_1d], "cls")
    b = _FIRST_LAYER + _PER_LAYER * layers
    pooled = op("Tanh", [dense(pooled_in, w(b, "kernel"), w(b + 1, "bias"), "pooler")], "pooled")
    logits = dense(pooled, w(0, "kernel", "probs"), w(1, "bias", "probs"), "logits")
    op("Softmax", [logits], PROBS, axis=-1)
    n_labels = int(weight("probs/1:bias").shape[0])
    graph = helper.make_graph(
        nodes,
        "fine_tuned_bert",
        [
            helper.make_tensor_value_info(IDS, TensorProto.INT32, ["batch", "width"]),
            helper.make_tensor_value_info(WORDS, TensorProto.FLOAT, ["batch", "width", hidden]),
        ],
        [helper.make_tensor_value_info(PROBS, TensorProto.FLOAT, ["batch", n_labels])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    return model


def fp32_runtime(bundle: Bundle, word_table: np.ndarray | None = None) -> OnnxRuntime:
    """The bundle's model in fp32 in ONNX Runtime (built in about half a second);
    ``word_table``: its ``WORD_TABLE`` in float32 where the caller already holds one."""
    model = bert_graph(bundle.weight, bundle.manifest.config)
    table = bundle.weight(WORD_TABLE) if word_table is None else word_table
    return OnnxRuntime(model.SerializeToString(), table)
