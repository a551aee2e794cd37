"""The parity set every export carries: plain tensors (no pickle), and the gate re-run from it where it loads."""

import numpy as np
from safetensors import safe_open

from har_core.runtime.manifest import PARITY_SET_ROLE, ExportManifest
from har_core.runtime.parity import load_parity_set, recheck_parity
from har_core.runtime.predictor import Predictor


def test_every_export_carries_a_parity_set_of_plain_float32_tensors(tiny_exports, parity_pixels):
    for name in tiny_exports.deployable_formats():
        directory = tiny_exports.directory(name)
        manifest = ExportManifest.load(directory)
        path = manifest.path(directory, PARITY_SET_ROLE)
        with safe_open(str(path), "numpy") as tensors:  # safetensors: no code runs when it is read
            assert sorted(tensors.keys()) == ["image_embeddings", "logits", "pixels"]
        pixels, (embeddings, logits) = load_parity_set(path)
        count = min(32, len(parity_pixels))
        assert pixels.dtype == np.float32 and pixels.shape == (count, *parity_pixels.shape[1:])
        np.testing.assert_array_equal(pixels, parity_pixels[:count])
        assert embeddings.shape[0] == logits.shape[0] == count and logits.shape[1] == len(manifest.labels)


def test_the_gate_rerun_from_the_parity_set_passes_where_it_passed_at_export(onnx_export_dir):
    predictor = Predictor.from_export(onnx_export_dir, device="cpu")
    result = recheck_parity(predictor)
    assert result is not None and result.passed, result
    assert result.thresholds == predictor.manifest.parity.thresholds and result.top1_agreement == 1.0
