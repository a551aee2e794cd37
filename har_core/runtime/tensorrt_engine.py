"""TensorRT engine from the exported ONNX graph (TensorRT 10 Python API), and a backend that runs it.

TensorRT is imported lazily: where it or a CUDA device is missing, `tensorrt_unavailable_reason` says why and the
export step records that message and carries on with the other formats. Written against the TensorRT 10 API
(`build_serialized_network`, named I/O tensors, `execute_async_v3`); the engine's I/O lives in torch CUDA tensors.
TensorRT 11 removed the weakly typed fp16 switch used here (`BuilderFlag.FP16`, `platform_has_fast_fp16`), so the
pin stays on 10.x: its CUDA 13 build, the CUDA major of PyPI's torch 2.13 and onnxruntime-gpu 1.31 (each brings its
CUDA 13 runtime as nvidia-* wheels). Exact, because TensorRT's wheels cannot be hash-locked (docs/install.md).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from har_core.runtime.manifest import ExportError, ExportManifest

logger = logging.getLogger(__name__)

# The TensorRT this module speaks: the `gpu` extra in pyproject.toml and GPU Bentos ask for exactly this.
TENSORRT_REQUIREMENT = "tensorrt-cu13==10.16.1.11"
INPUT_NAME = "pixel_values"
OUTPUT_NAMES = ("image_embeddings", "logits")


class TensorRTUnavailableError(ExportError):
    """TensorRT or a CUDA device is missing on this machine."""


def tensorrt_unavailable_reason() -> str | None:
    """None when TensorRT and a CUDA device are usable here; otherwise what is missing, in words."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return (
            "TensorRT is not installed (the `tensorrt` Python package comes with the `gpu` extra on a CUDA "
            "machine); the TensorRT engine was skipped, the other formats were exported."
        )
    try:
        import torch
    except ImportError:
        return "torch is needed to run a TensorRT engine's CUDA buffers and is not installed."
    if not torch.cuda.is_available():
        return "TensorRT is installed but no CUDA device is available; the TensorRT engine was skipped."
    return None


def build_engine(onnx_path: Path, engine_path: Path, crop: int, max_batch: int, fp16: bool, workspace_mib: int) -> Path:
    """Parse the ONNX graph and build a serialized engine for batch sizes 1..max_batch (optimised for max/2)."""
    reason = tensorrt_unavailable_reason()
    if reason:
        raise TensorRTUnavailableError(reason)
    import tensorrt as trt

    trt_logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(trt_logger)
    network = builder.create_network(0)  # TensorRT 10: networks are always explicit-batch
    parser = trt.OnnxParser(network, trt_logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
    if fp16:
        if not builder.platform_has_fast_fp16:
            logger.warning("This GPU has no fast fp16; building the TensorRT engine in fp32.")
        else:
            config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    optimum = max(1, max_batch // 2)
    profile.set_shape(INPUT_NAME, (1, 3, crop, crop), (optimum, 3, crop, crop), (max_batch, 3, crop, crop))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(f"TensorRT failed to build an engine from {onnx_path} (see the TensorRT log above).")
    Path(engine_path).write_bytes(bytes(serialized))
    return Path(engine_path)


class TensorRTBackend:
    """Runs a serialized engine; inputs and outputs are torch CUDA tensors bound by name."""

    def __init__(self, engine_path: Path, max_batch: int | None) -> None:
        reason = tensorrt_unavailable_reason()
        if reason:
            raise TensorRTUnavailableError(reason)
        import tensorrt as trt
        import torch

        self._torch = torch
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self.runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
        if self.engine is None:
            raise ExportError(f"TensorRT could not deserialize {engine_path} (built for another GPU or version?).")
        self.context = self.engine.create_execution_context()
        self.max_batch = max_batch

    def run(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        torch = self._torch
        inputs = torch.from_numpy(pixels).cuda().contiguous()
        self.context.set_input_shape(INPUT_NAME, tuple(inputs.shape))
        self.context.set_tensor_address(INPUT_NAME, inputs.data_ptr())
        outputs = {}
        for name in OUTPUT_NAMES:
            outputs[name] = torch.empty(tuple(self.context.get_tensor_shape(name)), dtype=torch.float32, device="cuda")
            self.context.set_tensor_address(name, outputs[name].data_ptr())
        stream = torch.cuda.current_stream()
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise ExportError("TensorRT execution failed.")
        stream.synchronize()
        return tuple(outputs[name].cpu().numpy() for name in OUTPUT_NAMES)


def load_tensorrt_backend(
    manifest: ExportManifest, model_path: Path, device: str, threads: int | None
) -> TensorRTBackend:
    """The Predictor's loader for the TensorRT format (a CUDA engine: `device` and `threads` do not apply)."""
    return TensorRTBackend(model_path, manifest.max_batch_size)
