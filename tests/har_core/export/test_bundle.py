"""Every format of the tiny model exported, gated against PyTorch, and served through the one Predictor."""

import copy
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from safetensors.numpy import load_file

from har_core.config import ExportConfig
from har_core.model.serving_graph import ImageModel
from har_core.runtime.manifest import (
    CLASS_EMBEDDINGS_ROLE,
    MODEL_ROLE,
    ExportBundle,
    ExportError,
    ExportManifest,
    ExportRejectedError,
)
from har_core.runtime.model_card import HarClipModelCard
from har_core.runtime.parity import run_parity_gate
from har_core.runtime.predictor import Predictor
from har_core.runtime.settings import ParityThresholds
from har_core.runtime.tensorrt_engine import TensorRTUnavailableError, build_engine, tensorrt_unavailable_reason
from har_core.runtime.text_encoder import TEXT_BATCH
from tests.conftest import PROJECT_ROOT, random_init_export_config

SERVABLE_HERE = ["pytorch", "torchscript", "onnx", "onnx-int8"]


def torch_logits(model, pixels):
    with torch.no_grad():
        return model(torch.from_numpy(pixels)).numpy()


def test_every_format_passes_its_gate_and_tensorrt_says_why_it_is_missing(tiny_exports):
    for name in tiny_exports.deployable_formats():
        print(name, tiny_exports.manifest(name).parity.model_dump(exclude={"thresholds"}))
    assert sorted(tiny_exports.deployable_formats()) == sorted(SERVABLE_HERE)
    if tensorrt_unavailable_reason() is not None:
        status = tiny_exports.formats["tensorrt"]
        assert not status.deployable and status.directory is None and "TensorRT" in status.message
        with pytest.raises(ExportError, match="TensorRT"):
            tiny_exports.directory("tensorrt")
    reloaded = ExportBundle.load(tiny_exports.root)
    assert reloaded.formats == tiny_exports.formats


@pytest.mark.parametrize("export_format", SERVABLE_HERE)
def test_round_trip_matches_the_pytorch_model(tiny_exports, tiny_model, parity_pixels, export_format):
    predictor = Predictor.from_export(tiny_exports.directory(export_format), device="cpu", threads=1)
    manifest = predictor.manifest
    assert predictor.format == export_format and predictor.labels == tiny_model.labels
    assert manifest.parity.passed and manifest.parity.num_images == len(parity_pixels)
    gate = manifest.parity.thresholds
    expected = torch_logits(tiny_model, parity_pixels)
    embeddings, logits = predictor.run(parity_pixels)
    assert (logits.argmax(1) == expected.argmax(1)).mean() >= gate.min_top1_agreement
    if gate.max_abs_logit_diff is not None:
        assert np.abs(logits - expected).max() <= gate.max_abs_logit_diff
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-4)
    for batch in (1, 5):  # dynamic batch axis
        assert predictor.run(parity_pixels[:batch])[1].shape == (batch, len(tiny_model.labels))


def test_onnx_files_are_checker_valid_with_a_dynamic_batch(tiny_exports):
    for export_format in ("onnx", "onnx-int8"):
        manifest = tiny_exports.manifest(export_format)
        path = manifest.path(tiny_exports.directory(export_format), MODEL_ROLE)
        onnx.checker.check_model(str(path))
        graph = onnx.load(str(path)).graph
        assert [i.name for i in graph.input] == ["pixel_values"]
        assert [o.name for o in graph.output] == ["image_embeddings", "logits"]
        assert graph.input[0].type.tensor_type.shape.dim[0].dim_param  # symbolic, not a fixed size
        assert manifest.files[MODEL_ROLE].sha256 and manifest.inputs[0].shape[0] == "batch"
        assert any(node.op_type in ("MatMulInteger", "DynamicQuantizeLinear") for node in graph.node) == (
            export_format == "onnx-int8"
        )


def test_predict_gives_probabilities_over_the_label_set(tiny_exports, tiny_model, synthetic_root):
    from har_core.data.dataset import load_image
    from tests.har_core.data.folders import image_records

    images = [load_image(record.path) for record in image_records(synthetic_root, tiny_model.labels)[:3]]
    predictor = Predictor.from_export(tiny_exports.directory("onnx"), device="cpu")
    full = predictor.predict(images, top_k=100)
    assert [len(row) for row in full] == [15, 15, 15]
    for row in full:
        assert sum(p.score for p in row) == pytest.approx(1.0, abs=1e-5)
        assert [p.score for p in row] == sorted((p.score for p in row), reverse=True)
    from har_core.runtime.preprocess import preprocess_batch

    temperature = predictor.calibration.temperature  # every format serves calibrated probabilities
    expected = torch.softmax(
        torch.from_numpy(torch_logits(tiny_model, preprocess_batch(images, tiny_model.preprocess_config)))
        / temperature,
        1,
    )
    top = predictor.predict(images, top_k=2)
    for row, probabilities in zip(top, expected, strict=True):
        assert row[0].label == tiny_model.labels[int(probabilities.argmax())]
        assert row[0].score == pytest.approx(float(probabilities.max()), abs=1e-4)


def test_an_answer_carries_its_margin_and_embedding_for_the_records(tiny_exports, parity_pixels):
    """The margin is over the whole label set, whatever `top_k` returns; the embedding is the model's own, kept out
    of the answer's dump (the Bento records it, bento/records.py)."""
    predictor = Predictor.from_export(tiny_exports.directory("onnx"), device="cpu")
    embeddings, logits = predictor.run(parity_pixels)
    answers = predictor.classify_pixels(parity_pixels, top_k=1)
    best_two = np.sort(predictor.calibrated(embeddings, logits)[1], axis=1)[:, -2:]
    assert [answer.margin for answer in answers] == pytest.approx(best_two[:, 1] - best_two[:, 0], abs=1e-6)
    assert np.array_equal(np.asarray([answer.embedding for answer in answers], np.float32), embeddings)
    assert answers == predictor.classify_outputs(embeddings, logits, top_k=1)
    assert set(answers[0].model_dump()) == {"predictions", "verdict", "margin"}


def test_open_vocabulary_labels_match_the_pytorch_text_tower(tiny_exports, tiny_model, parity_pixels):
    labels = ["running", "juggling", "sleeping on a bench"]
    predictor = Predictor.from_export(tiny_exports.directory("onnx-int8"), device="cpu")
    assert predictor.supports_custom_labels
    model = copy.deepcopy(tiny_model)
    model.set_labels(labels, model.templates)
    assert np.abs(predictor.class_embeddings(labels) - model.class_embeddings().detach().numpy()).max() < 1e-5
    rows = predictor.predict_pixels(parity_pixels[:4], top_k=3, labels=labels)
    assert {p.label for row in rows for p in row} <= set(labels)
    assert all(sum(p.score for p in row) == pytest.approx(1.0, abs=1e-5) for row in rows)


def test_many_custom_labels_are_embedded_in_batches_and_kept_in_order(tiny_exports, tiny_model):
    """70 labels x 4 templates = 280 prompts of several lengths: two runs of the text tower, in length order."""
    labels = [f"action {'number ' * (index % 3)}{index}" for index in range(70)]
    predictor = Predictor.from_export(tiny_exports.directory("onnx"), device="cpu")
    assert len(labels) * len(tiny_model.templates) > TEXT_BATCH
    model = copy.deepcopy(tiny_model)
    model.set_labels(labels, model.templates)
    assert np.abs(predictor.class_embeddings(labels) - model.class_embeddings().detach().numpy()).max() < 1e-5


def test_class_embeddings_are_saved_as_safetensors_with_their_labels(tiny_exports, tiny_model):
    directory = tiny_exports.directory("onnx")
    manifest = ExportManifest.load(directory)
    embeddings = load_file(str(manifest.path(directory, CLASS_EMBEDDINGS_ROLE)))["class_embeddings"]
    assert np.abs(embeddings - tiny_model.class_embeddings().detach().numpy()).max() < 1e-6
    card = HarClipModelCard.load(directory)  # read without backbone/ (there is none in an ONNX export)
    assert not (directory / "backbone").exists()
    assert list(card.labels) == tiny_model.labels and card.preprocess == tiny_model.preprocess_config


def test_a_perturbed_export_is_rejected_by_its_gate(tiny_exports, tiny_model, parity_pixels, tmp_path):
    directory = tmp_path / "onnx"
    shutil.copytree(tiny_exports.directory("onnx"), directory)
    path = directory / "model.onnx"
    graph = onnx.load(str(path))
    weight = max(graph.graph.initializer, key=lambda tensor: np.prod(tensor.dims))
    array = onnx.numpy_helper.to_array(weight)
    noise = np.random.default_rng(0).normal(0, array.std() * 2, array.shape).astype(array.dtype)
    weight.CopyFrom(onnx.numpy_helper.from_array(array + noise, weight.name))
    onnx.save(graph, str(path))
    with pytest.raises(ExportError, match="sha256"):  # changed after export: refused before anything runs
        Predictor.from_export(directory)
    manifest = ExportManifest.load(directory)
    files = dict(manifest.files)
    from har_core.runtime.manifest import describe_file

    files[MODEL_ROLE] = describe_file(directory, "model.onnx")
    manifest.model_copy(update={"files": files, "parity": None}).save(directory)
    reference = (None, None)
    from har_core.export.graphs import reference_outputs

    reference = reference_outputs(ImageModel(tiny_model), parity_pixels)
    result = run_parity_gate(directory, parity_pixels, reference, ExportConfig().gates["onnx"], device="cpu")
    assert not result.passed and result.failures
    with pytest.raises(ExportRejectedError, match="failed its parity gate"):
        Predictor.from_export(directory)
    assert Predictor.from_export(directory, require_parity=False).format == "onnx"


def test_gate_thresholds_come_from_config(tiny_exports, tiny_model, parity_pixels, tmp_path):
    directory = tmp_path / "int8"
    shutil.copytree(tiny_exports.directory("onnx-int8"), directory)
    from har_core.export.graphs import reference_outputs

    impossible = ParityThresholds(min_top1_agreement=1.0, max_abs_logit_diff=1e-9, min_embedding_cosine=1.0)
    result = run_parity_gate(
        directory, parity_pixels, reference_outputs(ImageModel(tiny_model), parity_pixels), impossible
    )
    assert not result.passed and any("logit diff" in failure for failure in result.failures)


def test_bad_pixels_are_a_clear_error(tiny_exports):
    predictor = Predictor.from_export(tiny_exports.directory("onnx"))
    with pytest.raises(ValueError, match=r"shape \(batch, 3, 64, 64\)"):
        predictor.predict_pixels(np.zeros((2, 3, 32, 32), np.float32))
    with pytest.raises(ValueError, match="no text tower|Duplicated"):
        predictor.predict_pixels(np.zeros((1, 3, 64, 64), np.float32), labels=["a", "a"])


def test_onnx_predictor_runs_where_torch_cannot_be_imported(tiny_exports, synthetic_root):
    script = f"""
import sys
class BlockTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, BlockTorch())
from pathlib import Path
from har_core.runtime.images import open_image
from har_core.runtime.predictor import Predictor
images = [open_image(p) for p in sorted(Path({str(synthetic_root)!r}).glob("*/*"))[:3]]
for fmt in ("onnx", "onnx-int8"):
    predictor = Predictor.from_export(Path({tiny_exports.root!r}) / fmt, threads=1)
    rows = predictor.predict(images, top_k=2)
    assert len(rows) == 3 and len(rows[0]) == 2, rows
    custom = predictor.predict(images, top_k=2, labels=["running", "juggling"])
    assert {{p.label for p in custom[0]}} == {{"running", "juggling"}}
assert not [m for m in sys.modules if m.split(".")[0] == "torch"]
print("ok without torch")
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ok without torch" in result.stdout


def test_torchscript_loads_without_the_python_class(tiny_exports, parity_pixels):
    script = f"""
import sys, numpy as np
from har_core.runtime.predictor import Predictor
predictor = Predictor.from_export({str(tiny_exports.directory("torchscript"))!r})
np.save(sys.argv[1], predictor.run(np.load(sys.argv[2]))[1])
assert "har_core.export.graphs" not in sys.modules and "transformers" not in sys.modules, "the class was imported"
"""
    pixels = tiny_exports.root + "/pixels.npy"
    np.save(pixels, parity_pixels)
    out = tiny_exports.root + "/logits.npy"
    result = subprocess.run(
        [sys.executable, "-c", script, out, pixels], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert np.allclose(
        np.load(out), Predictor.from_export(tiny_exports.directory("onnx")).run(parity_pixels)[1], atol=1e-4
    )


def test_tensorrt_absent_is_a_clear_error(tmp_path):
    if tensorrt_unavailable_reason() is None:
        pytest.skip("TensorRT and a GPU are present; the engine is built by test_tensorrt_engine_round_trip")
    with pytest.raises(TensorRTUnavailableError, match="TensorRT"):
        build_engine(tmp_path / "model.onnx", tmp_path / "model.engine", 64, 4, True, 256)


@pytest.mark.gpu
def test_tensorrt_engine_round_trip(tiny_model, parity_pixels, tmp_path):
    reason = tensorrt_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    from har_core.export.bundle import export_bundle
    from har_core.runtime.manifest import ModelSource

    config = random_init_export_config(formats=("tensorrt",))
    bundle = export_bundle(tiny_model, parity_pixels, tmp_path, config, ModelSource(backbone="tiny"))
    assert bundle.deployable_formats() == ["tensorrt"], bundle.formats
    predictor = Predictor.from_export(bundle.directory("tensorrt"), device="cuda")
    assert predictor.run(parity_pixels[:3])[1].shape == (3, 15)
