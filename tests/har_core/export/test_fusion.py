"""The ONNX formats ship onnxruntime's fused transformer graph, record what was fused, and still pass their gates."""

import json
import logging
import shutil
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from har_core.export.fusion import fuse_for_onnxruntime, revert_skip_layer_norm, split_packed_attention
from har_core.export.graphs import export_onnx_image_model
from har_core.model.serving_graph import ImageModel
from har_core.runtime.manifest import EXPORT_MANIFEST_FILE, MODEL_ROLE, ExportManifest, ModelSource
from tests.conftest import random_init_export_config


def operators(path) -> Counter:
    return Counter(node.op_type for node in onnx.load(str(path)).graph.node)


def outputs(path, pixels):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"pixel_values": pixels})


def test_onnx_graphs_are_fused_and_the_manifest_counts_what_was_fused(tiny_exports, tiny_model):
    layers = tiny_model.clip.config.vision_config.num_hidden_layers
    for export_format, attention in (("onnx", "Attention"), ("onnx-int8", "MultiHeadAttention")):
        manifest = tiny_exports.manifest(export_format)
        path = manifest.path(tiny_exports.directory(export_format), MODEL_ROLE)
        onnx.checker.check_model(str(path))
        counted = operators(path)
        graph = manifest.graph
        assert graph is not None and "optimize_for_ort" in graph.route
        assert graph.fusions["attention"] == layers and "skip_layer_normalization" not in graph.fusions
        assert graph.reverted["skip_layer_normalization"] == 2 * layers - 1  # measured slower on CPU: undone
        assert graph.fused_nodes == {attention: layers} == {name: counted[name] for name in (attention,)}
        assert counted["SkipLayerNormalization"] == 0 and graph.nodes == sum(counted.values())
        assert manifest.parity.passed
    fp32 = tiny_exports.manifest("onnx").graph
    assert fp32.nodes < fp32.standard_nodes / 2  # reshapes, transposes and slices of attention fused away
    # int8: every linear layer is quantised, q/k/v included; no float MatMul is left.
    int8 = operators(tiny_exports.manifest("onnx-int8").path(tiny_exports.directory("onnx-int8"), MODEL_ROLE))
    assert int8["MatMul"] == 0 and int8["MatMulInteger"] == 6 * layers + 2  # + projection and class head


def test_the_standard_graph_option_ships_standard_operators_only(tiny_model, parity_pixels, tmp_path, caplog):
    from har_core.export.bundle import export_bundle
    from har_core.runtime.parity import describe_parity

    config = random_init_export_config(formats=("onnx",), text_tower=False, onnx_graph="standard")
    with caplog.at_level(logging.INFO, logger="har_core.export.bundle"):
        bundle = export_bundle(tiny_model, parity_pixels, tmp_path, config, ModelSource(backbone="tiny"), "cpu")
    manifest = bundle.manifest("onnx")
    model = onnx.load(str(manifest.path(bundle.directory("onnx"), MODEL_ROLE)))
    assert manifest.graph is None and manifest.parity.passed
    # the export's line names every figure the gate judged, beside its threshold
    assert f"onnx export: parity gate passed [{describe_parity(manifest.parity)}]" in caplog.text
    assert f"top-1 agreement 1.0000 on {len(parity_pixels)} images (>= 0.99)" in caplog.text
    assert {node.domain for node in model.graph.node} <= {"", "ai.onnx"}


def pack_weights_with_concat(path) -> None:
    """Make each Attention read its q/k/v weight through a Concat of three initializers, as in ViT-B/16's fused
    graph (the optimiser folds the Concat only for small weights, as in the tiny model's)."""
    model = onnx.load(str(path))
    initializers = {tensor.name: tensor for tensor in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        if node.op_type == "Attention":
            packed = onnx.numpy_helper.to_array(initializers[node.input[1]])
            parts = [f"{node.input[1]}_{index}" for index in range(3)]
            for name, part in zip(parts, np.split(packed, 3, axis=1), strict=True):
                model.graph.initializer.append(onnx.numpy_helper.from_array(np.ascontiguousarray(part), name))
            nodes.append(onnx.helper.make_node("Concat", parts, [node.input[1] + "_concat"], axis=1))
            node.input[1] = node.input[1] + "_concat"
        nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.save(model, str(path))


@pytest.mark.parametrize("weight", ["packed initializer", "concat of q/k/v"])
def test_splitting_packed_attention_keeps_the_outputs(tiny_exports, parity_pixels, tmp_path, weight):
    source = tiny_exports.manifest("onnx").path(tiny_exports.directory("onnx"), MODEL_ROLE)
    path = tmp_path / "model.onnx"
    shutil.copyfile(source, path)
    if weight == "concat of q/k/v":
        pack_weights_with_concat(path)
    before = outputs(path, parity_pixels)
    attention = operators(path)["Attention"]
    assert split_packed_attention(path) == attention > 0
    after = onnx.load(str(path))
    counted = Counter(node.op_type for node in after.graph.node)
    assert counted["Attention"] == 0 and counted["MultiHeadAttention"] == attention
    assert counted["Concat"] == operators(source)["Concat"]  # the packing Concats are gone
    read = {name for node in after.graph.node for name in node.input}
    assert all(tensor.name in read for tensor in after.graph.initializer)  # and so are the packed weights
    onnx.checker.check_model(str(path))
    for expected, actual in zip(before, outputs(path, parity_pixels), strict=True):
        assert np.abs(expected - actual).max() < 1e-5
    assert split_packed_attention(path) == 0  # nothing left to split


def test_reverting_skip_layer_norm_keeps_the_outputs(tiny_model, parity_pixels, tmp_path):
    standard = export_onnx_image_model(ImageModel(tiny_model), tmp_path / "standard.onnx", opset=18)
    path = tmp_path / "fused.onnx"
    graph = fuse_for_onnxruntime(standard, path, keep_skip_layer_norm=True)
    fused = operators(path)["SkipLayerNormalization"]
    assert fused == graph.fused_nodes["SkipLayerNormalization"] == graph.fusions["skip_layer_normalization"] > 0
    before = outputs(path, parity_pixels)
    assert revert_skip_layer_norm(path) == fused
    after = operators(path)
    assert (
        after["SkipLayerNormalization"] == 0
        and after["LayerNormalization"] == operators(standard)["LayerNormalization"]
    )
    onnx.checker.check_model(str(path))
    for expected, actual in zip(before, outputs(path, parity_pixels), strict=True):
        assert np.abs(expected - actual).max() < 1e-5
    assert revert_skip_layer_norm(path) == 0


def test_manifests_written_before_graph_records_still_load(tiny_exports, tmp_path):
    directory = tmp_path / "onnx"
    shutil.copytree(tiny_exports.directory("onnx"), directory)
    data = json.loads((directory / EXPORT_MANIFEST_FILE).read_text())
    del data["graph"]
    (directory / EXPORT_MANIFEST_FILE).write_text(json.dumps(data))
    assert ExportManifest.load(directory).graph is None
