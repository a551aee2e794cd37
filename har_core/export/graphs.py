"""Export a trained classifier: image pixels -> (normalised image embedding, logits), dynamic batch.

The class embeddings are frozen into a slim head at export (and saved as safetensors, so the label set can change
without re-export); the text tower is exported to ONNX with its tokenizer for open-vocabulary labels. Every format
lands in its own directory with an `ExportManifest`, and is run against the PyTorch model by the parity gate.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from har_core.model.serving_graph import ImageModel, TextModel

logger = logging.getLogger(__name__)

IMAGE_INPUT = "pixel_values"
IMAGE_OUTPUTS = ("image_embeddings", "logits")
TEXT_INPUTS = ("input_ids", "attention_mask")
TEXT_OUTPUT = "text_embeddings"
CLASS_EMBEDDINGS_FILE = "class_embeddings.safetensors"
MAX_DYNAMIC_BATCH = 4096


@torch.no_grad()
def reference_outputs(module: ImageModel, pixels: np.ndarray, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """The serving module's (embeddings, logits) on `pixels`, in fp32 on the CPU: what every format must match."""
    module = module.eval().cpu()
    parts = [module(torch.from_numpy(pixels[i : i + batch_size])) for i in range(0, len(pixels), batch_size)]
    return torch.cat([p[0] for p in parts]).numpy(), torch.cat([p[1] for p in parts]).numpy()


@contextmanager
def quiet_onnx_exporter() -> Iterator[None]:
    """The exporter's graph passes log every rewrite at INFO; keep warnings and errors only while exporting."""
    loggers = [logging.getLogger(name) for name in ("onnx_ir", "onnxscript", "torch.onnx")]
    levels = [logger_.level for logger_ in loggers]
    for logger_ in loggers:
        logger_.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger_, level in zip(loggers, levels, strict=True):
            logger_.setLevel(level)


def export_onnx_image_model(module: ImageModel, path: Path, opset: int) -> Path:
    """torch.onnx (dynamo) export of the serving module with a dynamic batch axis, checked with `onnx.checker`."""
    import onnx

    module = module.eval().cpu()
    crop = module.crop_size
    example = torch.zeros(2, 3, crop, crop)
    batch = torch.export.Dim("batch", min=1, max=MAX_DYNAMIC_BATCH)
    with quiet_onnx_exporter():
        _onnx_export(
            module,
            (example,),
            str(path),
            opset_version=opset,
            input_names=[IMAGE_INPUT],
            output_names=list(IMAGE_OUTPUTS),
            dynamic_shapes={"pixel_values": {0: batch}},
            external_data=False,
        )
    onnx.checker.check_model(str(path))
    return path


def export_onnx_text_model(module: TextModel, tokenizer, path: Path, opset: int) -> Path:
    """The text tower with dynamic batch and sequence axes (up to the tokenizer's length), checked like the image's."""
    import onnx

    module = module.eval().cpu()
    tokens = tokenizer(["a photo of a person running.", "hi"], padding=True, return_tensors="pt")
    batch = torch.export.Dim("batch", min=1, max=MAX_DYNAMIC_BATCH)
    sequence = torch.export.Dim("sequence", min=2, max=int(tokenizer.model_max_length))
    with quiet_onnx_exporter():
        _onnx_export(
            module,
            (tokens["input_ids"], tokens["attention_mask"]),
            str(path),
            opset_version=opset,
            input_names=list(TEXT_INPUTS),
            output_names=[TEXT_OUTPUT],
            dynamic_shapes={"input_ids": {0: batch, 1: sequence}, "attention_mask": {0: batch, 1: sequence}},
            external_data=False,
        )
    onnx.checker.check_model(str(path))
    return path


def _onnx_export(module: nn.Module, args: tuple, path: str, **options) -> None:
    """torch's dynamo exporter (onnxscript) with a modern opset; weights inside the file (< 2 GB)."""
    torch.onnx.export(module, args, path, dynamo=True, verbose=False, **options)


# Dynamic quantisation's activations are always uint8. With int8 weights (U8S8) x86 CPUs without VNNI multiply
# through `vpmaddubsw`, whose int16 pair sums saturate, so the same file computes different (worse) logits on an
# AVX2-only host than on an AVX-512 VNNI one: the quick model's top-1 agreement fell to 0.95-0.97 there.
# uint8 weights (U8U8) are widened to int16 on every x86 path, so their integer sums are exact and the outputs are
# the same bit for bit on AVX2 and VNNI hosts (measured under `qemu-x86_64 -cpu EPYC-Rome`; see
# benchmarks/export/int8_settings.py). `reduce_range` (7-bit int8 weights) also avoids the saturation: faster, less
# accurate.
# The old U8S8 default stays reachable for that benchmark only.
INT8_WEIGHTS: dict[str, tuple[str, bool]] = {  # export.int8_weights -> (QuantType name, reduce_range)
    "uint8": ("QUInt8", False),
    "int8-reduce-range": ("QInt8", True),
}


def quantize_onnx_int8(source: Path, target: Path, weight_type: str = "QUInt8", reduce_range: bool = False) -> Path:
    """Dynamic int8 quantisation for CPU serving: MatMul/Gemm weights per output channel (uint8 by default: exact on
    every x86 CPU, see INT8_WEIGHTS), activations quantised per batch at run time (per-channel keeps the small
    trained models within their gate)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = target.with_suffix(".prep.onnx")
    try:
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantize_dynamic(
            str(prepared),
            str(target),
            weight_type=QuantType[weight_type],
            per_channel=True,
            reduce_range=reduce_range,
            op_types_to_quantize=["MatMul", "Gemm"],
        )
    finally:
        prepared.unlink(missing_ok=True)
    return target


def export_torchscript(module: ImageModel, path: Path) -> Path:
    """`torch.jit.trace` of the serving module; `torch.jit.load` rebuilds it without the Python class."""
    module = module.eval().cpu()
    crop = module.crop_size
    with torch.no_grad():
        traced = torch.jit.trace(module, torch.zeros(2, 3, crop, crop), check_trace=False)
    traced.save(str(path))
    return path
