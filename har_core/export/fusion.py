"""Transformer fusions for onnxruntime on the dynamo exporter's graph: attention and its bias fused into one op.

onnxruntime's own transformer optimiser (`onnxruntime.transformers.optimizer`) matches the graphs of the older,
TorchScript-based exporter and fuses nothing new in a `dynamo=True` graph; onnxscript's `optimize_for_ort` is
written for dynamo graphs (benchmarks/export/formats_bench.py measures both routes). The fused graph uses
`com.microsoft`
operators, which onnxruntime runs on CPU and CUDA; TensorRT builds from the standard graph.

`optimize_for_ort` also fuses each residual add + LayerNorm into `SkipLayerNormalization`; onnxruntime's CPU kernel
of it measured 2-4x slower than `Add` + `LayerNormalization` (onnxruntime 1.32, ViT-B/16's shapes), and the fully
fused ViT-B/16 no faster than the standard graph, so that fusion is reverted: the shipped graph keeps attention fused.

For int8, the packed q/k/v weight of each fused `Attention` node is split back into three MatMuls feeding a
`MultiHeadAttention`: onnxruntime's quantiser then reaches those weights (it skips `Attention` nodes with
`qkv_hidden_sizes`), while the attention scores stay fp32.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from har_core.export.graphs import quiet_onnx_exporter
from har_core.runtime.manifest import OnnxGraph

MS_DOMAIN = "com.microsoft"
FUSION_ROUTE = "onnxscript.rewriter.ort_fusions.optimize_for_ort"


def fused_operator_counts(model) -> dict[str, int]:
    """`com.microsoft` operator type -> nodes of that type in `model` (an `onnx.ModelProto`)."""
    return dict(sorted(Counter(node.op_type for node in model.graph.node if node.domain == MS_DOMAIN).items()))


def fuse_for_onnxruntime(source: Path, target: Path, keep_skip_layer_norm: bool = False) -> OnnxGraph:
    """Write the fused graph of `source` to `target` (`onnx.checker`-valid) and say what was fused (and reverted;
    `keep_skip_layer_norm` keeps the SkipLayerNormalization fusion, for the benchmark's comparison)."""
    import onnx
    import onnx_ir as ir
    import onnxscript
    from onnxscript.rewriter.ort_fusions import optimize_for_ort

    standard_nodes = len(onnx.load(str(source), load_external_data=False).graph.node)
    with quiet_onnx_exporter():
        model, counts = optimize_for_ort(ir.load(str(source)))
        ir.save(model, str(target))
    reverted = {"skip_layer_normalization": revert_skip_layer_norm(target)} if not keep_skip_layer_norm else {}
    onnx.checker.check_model(str(target))
    fused = onnx.load(str(target), load_external_data=False)
    return OnnxGraph(
        route=f"{FUSION_ROUTE} (onnxscript {onnxscript.__version__})",
        fusions={name: count for name, count in counts.items() if count and name not in reverted},
        reverted={name: count for name, count in reverted.items() if count},
        fused_nodes=fused_operator_counts(fused),
        nodes=len(fused.graph.node),
        standard_nodes=standard_nodes,
    )


def graph_of(path: Path, fused: OnnxGraph) -> OnnxGraph:
    """`fused`'s record with the operators of the graph at `path` (what the fused graph became, e.g. quantised)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return fused.model_copy(update={"fused_nodes": fused_operator_counts(model), "nodes": len(model.graph.node)})


def revert_skip_layer_norm(path: Path) -> int:
    """Rewrite each `SkipLayerNormalization` in `path` as `Add` (+ bias `Add`) and `LayerNormalization`, in place;
    returns how many. One whose mean or inverse-std output is read is left as it is."""
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    read = {name for node in graph.node for name in node.input} | {output.name for output in graph.output}
    rewritten, nodes = 0, []
    for node in graph.node:
        outputs = [*node.output, "", "", ""][:4]
        if (
            node.domain != MS_DOMAIN
            or node.op_type != "SkipLayerNormalization"
            or read & set(filter(None, outputs[1:3]))
        ):
            nodes.append(node)
            continue
        x, skip, gamma, beta, bias = [*node.input, "", "", ""][:5]
        epsilon = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-12)
        total = outputs[3] or f"{node.output[0]}_residual"
        if bias:
            nodes.append(onnx.helper.make_node("Add", [x, bias], [f"{total}_biased"], name=f"{node.name}_bias"))
            x = f"{total}_biased"
        nodes.append(onnx.helper.make_node("Add", [x, skip], [total], name=f"{node.name}_add"))
        norm = [total, gamma, *([beta] if beta else [])]
        nodes.append(
            onnx.helper.make_node(
                "LayerNormalization", norm, [node.output[0]], name=f"{node.name}_ln", axis=-1, epsilon=epsilon
            )
        )
        rewritten += 1
    if rewritten:
        del graph.node[:]
        graph.node.extend(nodes)
        onnx.save(model, str(path))
    return rewritten


def split_packed_attention(path: Path) -> int:
    """Rewrite each fused `Attention` (constant packed q/k/v weight, no mask) in `path` as three MatMuls and a
    `MultiHeadAttention`, in place; returns how many were rewritten. Others are left as they are."""
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    producers = {output: node for node in graph.node for output in node.output}
    rewritten, nodes = 0, []
    for node in graph.node:
        weights = _split_weights(node, graph, initializers, producers) if _is_packed_attention(node) else None
        if weights is None:
            nodes.append(node)
            continue
        heads = [a for a in node.attribute if a.name in ("num_heads", "scale")]
        projected = [f"{node.output[0]}_{name}" for name in ("q", "k", "v")]
        for weight, output in zip(weights, projected, strict=True):
            nodes.append(onnx.helper.make_node("MatMul", [node.input[0], weight], [output], name=f"{output}_matmul"))
        mha = onnx.helper.make_node(
            "MultiHeadAttention",
            [*projected, node.input[2]],
            [node.output[0]],
            name=f"{node.name}_mha",
            domain=MS_DOMAIN,
        )
        mha.attribute.extend(heads)
        nodes.append(mha)
        rewritten += 1
    if rewritten:
        del graph.node[:]
        graph.node.extend(nodes)
        _drop_unused(graph)
        onnx.checker.check_model(model, full_check=False)
        onnx.save(model, str(path))
    return rewritten


def _is_packed_attention(node) -> bool:
    if node.domain != MS_DOMAIN or node.op_type != "Attention":
        return False
    inputs = [name for name in node.input if name]
    attributes = {a.name: a for a in node.attribute}
    sizes = list(attributes["qkv_hidden_sizes"].ints) if "qkv_hidden_sizes" in attributes else []
    known = set(attributes) <= {"num_heads", "qkv_hidden_sizes", "scale"}
    return len(inputs) == 3 and len(node.input) == 3 and known and len(set(sizes)) <= 1


def _split_weights(node, graph, initializers: dict, producers: dict) -> list[str] | None:
    """Names of the q, k and v weights: the inputs of the Concat that packs them, or slices of a packed initializer
    (added to `graph`). None when the weight is neither."""
    from onnx import numpy_helper

    packed = node.input[1]
    concat = producers.get(packed)
    if concat is not None:
        axis = next((a.i for a in concat.attribute if a.name == "axis"), None)
        parts = list(concat.input)
        if concat.op_type == "Concat" and axis in (1, -1) and len(parts) == 3 and all(p in initializers for p in parts):
            return parts
        return None
    if packed not in initializers:
        return None
    weight = numpy_helper.to_array(initializers[packed])
    if weight.ndim != 2 or weight.shape[1] % 3:
        return None
    names = []
    for name, part in zip(("q", "k", "v"), np.split(weight, 3, axis=1), strict=True):
        tensor = numpy_helper.from_array(np.ascontiguousarray(part), f"{packed}_{name}")
        graph.initializer.append(tensor)
        initializers[tensor.name] = tensor
        names.append(tensor.name)
    return names


def _drop_unused(graph) -> None:
    """Remove nodes and initializers nothing reads any more (the Concats that packed q/k/v)."""
    used = {name for node in graph.node for name in node.input} | {output.name for output in graph.output}
    while True:
        dead = [node for node in graph.node if not any(output in used for output in node.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
        used = {name for node in graph.node for name in node.input} | {output.name for output in graph.output}
    kept = [tensor for tensor in graph.initializer if tensor.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
