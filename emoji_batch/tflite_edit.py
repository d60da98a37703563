"""Edits to a converted int8 TensorFlow Lite flatbuffer (see :mod:`emoji_batch.quantize`):
embedding tables put back in float32 or moved out of the file, constants that repeat
along the batch stored once, and the inner tensors' names dropped.
"""

from collections import Counter
from typing import Any

import numpy as np

from emoji_batch.errors import ModelError
from emoji_batch.runtimes import TABLE_INPUT


def float_embedding_tables(
    flat: bytes, candidates: dict[str, np.ndarray], external_size: int
) -> bytes:
    """Keep embedding tables (read by GATHER) in float, and out of the file if large.

    Each table is matched to the named ``candidates`` array of its shape (for int8 ones:
    whose per-tensor quantization gives the stored values). A table of at least
    ``external_size`` entries that the model's token ids index directly, and that
    is a weight of the bundle, leaves the flatbuffer: its lookup becomes an input named
    ``table:<weight name>`` that :class:`~emoji_batch.runtimes.Int8Runtime` fills from
    the bundle's own weights (a vocabulary-sized table would otherwise be stored twice).
    Other int8 tables are put back in float32 and their DEQUANTIZE op is dropped. The
    signatures (subgraphs) share each table's buffer, so each buffer is decided once.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flat))
    edits = _GraphEdits(model.subgraphs)
    for buffer, uses in _embedding_lookups(model, schema).items():
        _float_table(model, schema, buffer, uses, candidates, external_size, edits)
    edits.apply(model, schema)
    _broadcast_repeated_constants(model, schema)
    for graph in model.subgraphs:
        # Each signature repeats TensorFlow's long tensor names; only the inputs' and
        # outputs' are ever read.
        named = {int(i) for i in (*graph.inputs, *graph.outputs)}
        for index, tensor in enumerate(graph.tensors):
            if index not in named:
                tensor.name = None
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _opcode(model: Any, op: Any) -> int:
    """The builtin operator code of ``op`` (old files keep it in the deprecated field)."""
    opcode = model.operatorCodes[op.opcodeIndex]
    return max(opcode.builtinCode, opcode.deprecatedBuiltinCode)


# An embedding lookup: (graph, its GATHER, the GATHER's DEQUANTIZE or None, whether the
# table could leave the file as far as this graph goes).
_Lookup = tuple[Any, Any, Any, bool]


def _embedding_lookups(model: Any, schema: Any) -> dict[int, list[_Lookup]]:
    """Each GATHER of a stored float32 table, or of an int8 table that is dequantized
    right after, grouped by the table's buffer."""
    lookups: dict[int, list[_Lookup]] = {}
    for graph in model.subgraphs:
        consumers: dict[int, list[Any]] = {}
        for op in graph.operators:
            for i in op.inputs:
                consumers.setdefault(int(i), []).append(op)
        gathers = [
            op for op in graph.operators if _opcode(model, op) == schema.BuiltinOperator.GATHER
        ]
        for gather in gathers:
            params = graph.tensors[gather.inputs[0]]
            after = consumers.get(int(gather.outputs[0]), [])
            dequantize = (
                after[0]
                if len(after) == 1 and _opcode(model, after[0]) == schema.BuiltinOperator.DEQUANTIZE
                else None
            )
            if model.buffers[params.buffer].data is None or params.type not in (
                schema.TensorType.INT8,
                schema.TensorType.FLOAT32,
            ):
                continue
            if params.type == schema.TensorType.INT8 and dequantize is None:
                continue
            direct = int(gather.inputs[1]) == int(graph.inputs[0]) and (
                len(consumers[int(gather.inputs[0])]) == 1
            )
            lookups.setdefault(int(params.buffer), []).append((graph, gather, dequantize, direct))
    return lookups


class _GraphEdits:
    """The rewiring decided table by table, applied to every graph at the end: tensors
    renamed (a dropped DEQUANTIZE's output to its GATHER's), ops dropped, inputs added."""

    def __init__(self, graphs: list[Any]) -> None:
        self.renamed: dict[int, dict[int, int]] = {id(graph): {} for graph in graphs}
        self.dropped: list[Any] = []
        self.new_inputs: dict[int, list[int]] = {id(graph): [] for graph in graphs}

    def apply(self, model: Any, schema: Any) -> None:
        for graph in model.subgraphs:
            names = self.renamed[id(graph)]
            graph.operators = [
                op for op in graph.operators if all(op is not d for d in self.dropped)
            ]
            for op in graph.operators:
                op.inputs = np.array([names.get(int(i), int(i)) for i in op.inputs], np.int32)
            graph.outputs = np.array([names.get(int(i), int(i)) for i in graph.outputs], np.int32)
            graph.inputs = np.array([*graph.inputs, *self.new_inputs[id(graph)]], np.int32)
        for signature in model.signatureDefs or []:
            graph = model.subgraphs[signature.subgraphIndex]
            for index in self.new_inputs[id(graph)]:
                entry = schema.TensorMapT()
                entry.name, entry.tensorIndex = graph.tensors[index].name, index
                signature.inputs.append(entry)
            renamed = self.renamed[id(graph)]
            for entry in signature.outputs:
                entry.tensorIndex = renamed.get(int(entry.tensorIndex), entry.tensorIndex)


def _float_table(
    model: Any,
    schema: Any,
    buffer: int,
    uses: list[_Lookup],
    candidates: dict[str, np.ndarray],
    external_size: int,
    edits: _GraphEdits,
) -> None:
    """Decide one table's buffer: out of the file (its lookups become inputs), or back
    to float32 (its DEQUANTIZE dropped), recording the rewiring in ``edits``."""
    first = uses[0][0].tensors[uses[0][1].inputs[0]]
    raw = bytes(model.buffers[buffer].data)
    if first.type == schema.TensorType.INT8:
        stored = np.frombuffer(raw, dtype=np.int8).reshape(first.shape)
        scale = float(first.quantization.scale[0])

        def matches(c: np.ndarray) -> bool:
            return np.abs(np.round(c / scale) - stored).max(initial=0) <= 1
    else:
        stored = np.frombuffer(raw, dtype="<f4").reshape(first.shape)

        def matches(c: np.ndarray) -> bool:
            return bool(np.array_equal(c, stored))

    name = next((k for k, c in candidates.items() if c.shape == stored.shape and matches(c)), None)
    external = (
        name is not None
        and stored.size >= external_size
        and ":full_table" not in name
        and all(direct for *_, direct in uses)
    )
    if external:
        model.buffers[buffer].data = None
    elif first.type == schema.TensorType.INT8:
        if name is None:
            raise ModelError("int8 export: cannot find the float table of an embedding lookup")
        data = np.ascontiguousarray(candidates[name], dtype="<f4").view(np.uint8).ravel()
        model.buffers[buffer].data = data
    for graph, gather, dequantize, _ in uses:
        if external:
            last = dequantize or gather
            looked_up, ids = graph.tensors[last.outputs[0]], graph.tensors[graph.inputs[0]]
            looked_up.name = (TABLE_INPUT + str(name)).encode()
            if ids.shapeSignature is not None:  # a signature of any shape
                looked_up.shape = np.array([*ids.shape, stored.shape[1]], np.int32)
                looked_up.shapeSignature = np.array(
                    [*ids.shapeSignature, stored.shape[1]], np.int32
                )
            edits.new_inputs[id(graph)].append(int(last.outputs[0]))
            edits.dropped += [op for op in (gather, dequantize) if op is not None]
        elif dequantize is not None:
            for tensor in (graph.tensors[gather.inputs[0]], graph.tensors[gather.outputs[0]]):
                tensor.type = schema.TensorType.FLOAT32
                tensor.quantization = None
            edits.renamed[id(graph)][int(dequantize.outputs[0])] = int(gather.outputs[0])
            edits.dropped.append(dequantize)


def _broadcast_repeated_constants(model: Any, schema: Any) -> None:
    """Store a float constant that an elementwise op broadcasts against a full batch,
    and that repeats along the batch, as one row: a fixed-shape signature folds the
    position and token-type embeddings into a (rows, width, hidden) constant, repeated in
    every width's signature, where (1, width, hidden) computes the same."""
    elementwise = {schema.BuiltinOperator.ADD, schema.BuiltinOperator.MUL}
    uses = Counter(int(t.buffer) for graph in model.subgraphs for t in graph.tensors)
    for graph in model.subgraphs:
        for op in graph.operators:
            if _opcode(model, op) not in elementwise:
                continue
            if len(op.inputs) != 2:
                continue
            out_shape = list(graph.tensors[op.outputs[0]].shape)
            for this, other in ((0, 1), (1, 0)):
                tensor = graph.tensors[op.inputs[this]]
                data = model.buffers[tensor.buffer].data
                shape = list(tensor.shape)
                if (
                    data is None
                    or uses[int(tensor.buffer)] != 1
                    or tensor.type != schema.TensorType.FLOAT32
                    or len(shape) < 2
                    or shape[0] < 2
                    or shape != out_shape
                    or list(graph.tensors[op.inputs[other]].shape) != out_shape
                ):
                    continue
                values = np.frombuffer(bytes(data), dtype="<f4").reshape(shape)
                if np.array_equal(values, np.broadcast_to(values[:1], values.shape)):
                    model.buffers[tensor.buffer].data = values[:1].view(np.uint8).ravel()
                    tensor.shape = np.array([1, *shape[1:]], dtype=np.int32)
