"""Packaging an export as a BentoML model and a Bento: what is stored, what is refused, which packages."""

import shutil

import bentoml
import numpy as np
import pytest
from packaging.requirements import Requirement

from bento_ops.packaging import runtime_packages, save_bento_model
from har_core.runtime.manifest import ExportManifest, ExportRejectedError


def test_every_gated_onnx_format_becomes_a_bentoml_model_with_labels_and_metadata(tiny_exports):
    for export_format in ("onnx", "onnx-int8"):  # int8's gate leaves a threshold unset (None)
        model = save_bento_model(
            tiny_exports.directory(export_format), model_name="har_clip_classifier", model_version="3"
        )
        stored = bentoml.models.get(model.tag)
        assert stored.info.labels["format"] == export_format and stored.info.labels["model_version"] == "3"
        assert stored.info.metadata["parity"]["passed"] is True and len(stored.info.metadata["labels"]) == 15
        ExportManifest.load(stored.path).verify_files(stored.path)  # the files, unchanged


def test_a_gate_failed_export_is_refused(tiny_exports, tmp_path):
    failed = tmp_path / "onnx"
    shutil.copytree(tiny_exports.directory("onnx"), failed)
    manifest = ExportManifest.load(failed)
    parity = manifest.parity.model_copy(update={"passed": False, "failures": ("top-1 agreement 0.5 < 0.99",)})
    manifest.model_copy(update={"parity": parity}).save(failed)
    with pytest.raises(ExportRejectedError, match="top-1 agreement 0.5"):
        save_bento_model(failed)


def test_runtime_packages_follow_the_format():
    onnx = runtime_packages("onnx")
    assert any(p.startswith("onnxruntime==") for p in onnx) and not any(p.startswith("torch") for p in onnx)
    assert any(p.startswith("torch==") for p in runtime_packages("torchscript"))
    gpu = runtime_packages("onnx", gpu=True)
    assert any(p.startswith("onnxruntime-gpu") for p in gpu) and not any(p.startswith("onnxruntime==") for p in gpu)


def test_the_tensorrt_format_asks_for_the_tensorrt_the_engine_code_speaks():
    packages = runtime_packages("tensorrt", gpu=True)
    (tensorrt,) = [Requirement(item) for item in packages if item.startswith("tensorrt")]
    assert tensorrt.name == "tensorrt-cu13"  # the CUDA 13 build, the CUDA major of torch and onnxruntime-gpu
    assert tensorrt.specifier.contains("10.16.1.11") and not tensorrt.specifier.contains("11.4.0.106")
    assert any(item.startswith("torch") for item in packages)  # the engine's buffers are torch CUDA tensors


def test_a_gpu_bento_asks_for_cuda_and_onnxruntime_gpu(bento_model, serving_config):
    from pathlib import Path

    import yaml

    from bento_ops.packaging import build_bento

    bento = build_bento(str(bento_model.tag), "onnx", serving_config, gpu=True)
    requirements = (Path(bento.path) / "env" / "python" / "requirements.txt").read_text()
    assert "onnxruntime-gpu" in requirements and "\nonnxruntime==" not in requirements
    info = yaml.safe_load((Path(bento.path) / "bento.yaml").read_text())
    assert str(info["docker"]["cuda_version"]).startswith("12.")


def test_the_bento_model_carries_the_monitoring_reference_and_the_calibration(bento_model, tiny_reference):
    """Monitoring needs nothing from the training side: the served model's own files hold its reference."""
    from har_core.runtime.predictor import Predictor

    predictor = Predictor.from_export(bento_model.path, device="cpu")
    reference = predictor.reference
    assert reference is not None and reference.labels == tuple(predictor.labels)
    assert np.array_equal(reference.predicted, tiny_reference.predicted)
    assert np.array_equal(reference.embeddings, tiny_reference.embeddings)
    assert predictor.calibration is not None
