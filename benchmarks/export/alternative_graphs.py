"""ONNX graphs the export does not ship, built only to be measured beside it (benchmarks/export/formats_bench.py).

- The other fusion route: the older, TorchScript-based exporter (`dynamo=False`) fused by onnxruntime's transformer
  optimiser (`onnxruntime.transformers.optimizer`, model type `clip`), which matches that exporter's graphs.
- Static QDQ int8: the fused graph (q/k/v split out, as the int8 export does) quantised with activation scales
  calibrated on held-out pixels instead of computed per batch at run time (uint8 weights per channel and uint8
  activations, as the dynamic export).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from har_core.export.fusion import split_packed_attention
from har_core.export.graphs import IMAGE_INPUT, IMAGE_OUTPUTS
from har_core.model.classifier import HarClipClassifier
from har_core.model.serving_graph import ImageModel


def legacy_exporter_fused(classifier: HarClipClassifier, directory: Path) -> tuple[Path, dict[str, int]]:
    """TorchScript-based export fused by `onnxruntime.transformers.optimizer`; (path, its nonzero fusion counts)."""
    from onnxruntime.transformers import optimizer

    vision = classifier.clip.config.vision_config
    crop = classifier.preprocess_config.crop_size
    standard = directory / "legacy.onnx"
    with torch.no_grad(), _quiet():
        torch.onnx.export(
            ImageModel(classifier).eval().cpu(),
            (torch.zeros(2, 3, crop, crop),),
            str(standard),
            dynamo=False,
            opset_version=17,
            input_names=[IMAGE_INPUT],
            output_names=list(IMAGE_OUTPUTS),
            dynamic_axes={name: {0: "batch"} for name in (IMAGE_INPUT, *IMAGE_OUTPUTS)},
        )
        fused = optimizer.optimize_model(
            str(standard),
            model_type="clip",
            num_heads=vision.num_attention_heads,
            hidden_size=vision.hidden_size,
            opt_level=0,
            use_gpu=False,
        )
    path = directory / "legacy.fused.onnx"
    fused.save_model_to_file(str(path))
    standard.unlink()
    return path, {name: count for name, count in fused.get_fused_operator_statistics().items() if count}


def static_int8(fused_fp32: Path, calibration: Sequence[np.ndarray], directory: Path) -> Path:
    """Static QDQ int8 (uint8 weights per channel, uint8 activations, min/max calibration) of a fused fp32 graph."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Pixels(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter(calibration)

        def get_next(self) -> dict | None:
            batch = next(self._batches, None)
            return None if batch is None else {IMAGE_INPUT: batch}

    split = directory / "static.fp32.onnx"
    shutil.copyfile(fused_fp32, split)
    split_packed_attention(split)
    prepared = directory / "static.prep.onnx"
    quant_pre_process(str(split), str(prepared), skip_symbolic_shape=True)
    target = directory / "static.int8.onnx"
    with _quiet():
        quantize_static(
            str(prepared),
            str(target),
            Pixels(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QUInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul", "Gemm"],
        )
    split.unlink()
    prepared.unlink()
    return target


class _quiet:
    """Exporters and quantisers log every pass at INFO/WARNING; keep errors only while they run."""

    def __enter__(self) -> None:
        self._root = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)

    def __exit__(self, *exc) -> None:
        logging.getLogger().setLevel(self._root)
