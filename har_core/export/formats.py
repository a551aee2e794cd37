"""One exporter per format, in a table (`EXPORTERS`) the way the Predictor's `BACKEND_LOADERS` holds one loader each.

An exporter writes its format's model files into the format's directory from the serving module that
`har_core.export.bundle` builds once per export, and says what it wrote; the bundle adds the shared files, the
manifest and the parity gate, which are the same for every format.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from har_core.config import ExportConfig
from har_core.export.fusion import fuse_for_onnxruntime, graph_of, split_packed_attention
from har_core.export.graphs import INT8_WEIGHTS, export_onnx_image_model, export_torchscript, quantize_onnx_int8
from har_core.model.classifier import HarClipClassifier
from har_core.model.serving_graph import ImageModel, TextModel
from har_core.runtime.manifest import MODEL_ROLE, ExportFormat, OnnxGraph
from har_core.runtime.model_card import MODEL_CARD_FILE, HarClipModelCard
from har_core.runtime.tensorrt_engine import build_engine

PYTORCH_DIR = "model"


@dataclass(frozen=True)
class ExportJob:
    """What every exporter reads: the classifier, what is built from it once per export, and the settings."""

    classifier: HarClipClassifier
    image_model: ImageModel
    text_model: TextModel | None  # None: the export carries no text tower
    model_card: HarClipModelCard
    config: ExportConfig


@dataclass(frozen=True)
class FormatFiles:
    """What an exporter wrote: its files by manifest role (paths relative to the format's directory) and notes."""

    files: dict[str, str]
    graph: OnnxGraph | None = None
    notes: tuple[str, ...] = ()
    max_batch_size: int | None = None


Exporter = Callable[[ExportJob, Path], FormatFiles]


def onnx_image_graph(job: ExportJob, path: Path) -> tuple[Path, OnnxGraph | None]:
    """The image model as ONNX at `path`: fused for onnxruntime (with what was fused) or standard."""
    config = job.config
    if config.onnx_graph == "standard":
        return export_onnx_image_model(job.image_model, path, config.opset), None
    standard = export_onnx_image_model(job.image_model, path.with_name("model.standard.onnx"), config.opset)
    try:
        graph = fuse_for_onnxruntime(standard, path)
    finally:
        standard.unlink()
    return path, graph


def export_onnx(job: ExportJob, directory: Path) -> FormatFiles:
    path, graph = onnx_image_graph(job, directory / "model.onnx")
    return FormatFiles(files={MODEL_ROLE: path.name}, graph=graph)


def export_onnx_int8(job: ExportJob, directory: Path) -> FormatFiles:
    """Dynamic int8 quantisation of the fp32 graph (the fp32 file is not kept)."""
    fp32, graph = onnx_image_graph(job, directory / "model.fp32.onnx")
    if graph is not None:  # the quantiser skips packed attention: give it the q/k/v MatMuls
        split_packed_attention(fp32)
    weight_type, reduce_range = INT8_WEIGHTS[job.config.int8_weights]
    int8 = quantize_onnx_int8(fp32, directory / "model.int8.onnx", weight_type, reduce_range)
    fp32.unlink()
    note = f"int8 weights: {job.config.int8_weights} (dynamic quantisation, per channel, uint8 activations)"
    return FormatFiles(
        files={MODEL_ROLE: int8.name}, graph=graph_of(int8, graph) if graph is not None else None, notes=(note,)
    )


def export_torchscript_format(job: ExportJob, directory: Path) -> FormatFiles:
    return FormatFiles(files={MODEL_ROLE: export_torchscript(job.image_model, directory / "model.pt").name})


def export_pytorch(job: ExportJob, directory: Path) -> FormatFiles:
    """The classifier's own safetensors directory; every file is listed (and hashed) in the manifest."""
    model_dir = directory / PYTORCH_DIR
    job.classifier.save(model_dir)
    job.model_card.save(model_dir)  # the export's card: with the calibration the classifier itself does not carry
    files = {
        f"{PYTORCH_DIR}:{path.relative_to(model_dir)}": str(path.relative_to(directory))
        for path in sorted(model_dir.rglob("*"))
        if path.is_file()
    }
    return FormatFiles(files={**files, MODEL_ROLE: f"{PYTORCH_DIR}/{MODEL_CARD_FILE}"})


def export_tensorrt(job: ExportJob, directory: Path) -> FormatFiles:
    """An engine built from the standard ONNX graph (raises `TensorRTUnavailableError` where TensorRT is not)."""
    config = job.config
    onnx_path = export_onnx_image_model(job.image_model, directory / "model.onnx", config.opset)
    engine = build_engine(
        onnx_path,
        directory / "model.engine",
        job.image_model.crop_size,
        config.tensorrt_max_batch,
        config.tensorrt_fp16,
        config.tensorrt_workspace_mib,
    )
    return FormatFiles(
        files={MODEL_ROLE: engine.name, "onnx_source": onnx_path.name}, max_batch_size=config.tensorrt_max_batch
    )


EXPORTERS: dict[ExportFormat, Exporter] = {
    "onnx": export_onnx,
    "onnx-int8": export_onnx_int8,
    "torchscript": export_torchscript_format,
    "pytorch": export_pytorch,
    "tensorrt": export_tensorrt,
}
