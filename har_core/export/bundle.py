"""Export every configured format of a classifier into one bundle, each format gated on parity.

A format that fails its gate stays in the bundle (for diagnosis) but is marked not deployable; TensorRT missing
on this machine is recorded with its reason and the other formats go on.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from har_core.config import ExportConfig
from har_core.export.fusion import fuse_for_onnxruntime, graph_of, split_packed_attention
from har_core.export.graphs import (
    CLASS_EMBEDDINGS_FILE,
    IMAGE_INPUT,
    IMAGE_OUTPUTS,
    INT8_WEIGHTS,
    TEXT_INPUTS,
    TEXT_OUTPUT,
    export_onnx_image_model,
    export_onnx_text_model,
    export_torchscript,
    quantize_onnx_int8,
    reference_outputs,
)
from har_core.model.classifier import HarClipClassifier
from har_core.model.serving_graph import ImageModel
from har_core.runtime.manifest import (
    CLASS_EMBEDDINGS_ROLE,
    MODEL_CARD_ROLE,
    MODEL_ROLE,
    PARITY_SET_ROLE,
    TEXT_MODEL_ROLE,
    TOKENIZER_ROLE,
    ExportBundle,
    ExportFormat,
    ExportManifest,
    FormatStatus,
    ModelSource,
    OnnxGraph,
    TensorSpec,
    TextTowerSpec,
    describe_file,
)
from har_core.runtime.model_card import MODEL_CARD_FILE
from har_core.runtime.parity import PARITY_SET_FILE, describe_parity, run_parity_gate, save_parity_set
from har_core.runtime.tensorrt_engine import TensorRTUnavailableError, build_engine

logger = logging.getLogger(__name__)

SHARED_DIR = "_shared"
TEXT_MODEL_FILE = "text_model.onnx"
TOKENIZER_FILE = "tokenizer.json"
PYTORCH_DIR = "model"


def export_bundle(
    classifier: HarClipClassifier,
    parity_pixels: np.ndarray,
    root: str | Path,
    config: ExportConfig,
    source: ModelSource,
    device: str = "auto",
    parity_labels: np.ndarray | None = None,
) -> ExportBundle:
    """Write `<root>/<format>/` for each configured format plus `exports.json`; return the bundle.

    `parity_labels` (the class index of each parity image, in `classifier.labels`) lets a gate judge accuracy lost;
    a gate with `max_accuracy_drop` fails its format without them."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    classifier = classifier.eval().cpu()
    reference = reference_outputs(classifier, parity_pixels)
    shared = _write_shared_files(classifier, root / SHARED_DIR, config)
    if config.serving_parity_images:  # re-checked by the service where it runs (har_core.runtime.parity.recheck_parity)
        count = config.serving_parity_images
        subset = (reference[0][:count], reference[1][:count])
        shared[PARITY_SET_ROLE] = save_parity_set(root / SHARED_DIR / PARITY_SET_FILE, parity_pixels[:count], subset)
    statuses: dict[str, FormatStatus] = {}
    for export_format in config.formats:
        directory = root / export_format
        try:
            _export_one(classifier, export_format, directory, config, shared, source)
        except TensorRTUnavailableError as error:
            logger.warning("%s", error)
            shutil.rmtree(directory, ignore_errors=True)
            statuses[export_format] = FormatStatus(format=export_format, message=str(error))
            continue
        gate = config.gates[export_format]
        result = run_parity_gate(directory, parity_pixels, reference, gate, device=device, labels=parity_labels)
        message = "parity gate passed" if result.passed else "parity gate failed: " + "; ".join(result.failures)
        log = logger.info if result.passed else logger.error
        log("%s export: %s [%s]", export_format, message, describe_parity(result))
        statuses[export_format] = FormatStatus(
            format=export_format, directory=export_format, deployable=result.passed, message=message
        )
    shutil.rmtree(root / SHARED_DIR, ignore_errors=True)
    bundle = ExportBundle(root=str(root), formats=statuses)
    bundle.save()
    return bundle


def _write_shared_files(classifier: HarClipClassifier, directory: Path, config: ExportConfig) -> dict[str, Path]:
    """Files every format carries: class embeddings, model card, and (optionally) the ONNX text tower."""
    directory.mkdir(parents=True, exist_ok=True)
    embeddings = classifier.class_embeddings().detach().float().cpu().numpy()
    save_file(
        {"class_embeddings": np.ascontiguousarray(embeddings)},
        str(directory / CLASS_EMBEDDINGS_FILE),
        metadata={"labels": "\n".join(classifier.labels), "templates": "\n".join(classifier.templates)},
    )
    classifier.model_card().save(directory)
    shared = {CLASS_EMBEDDINGS_ROLE: directory / CLASS_EMBEDDINGS_FILE, MODEL_CARD_ROLE: directory / MODEL_CARD_FILE}
    if config.text_tower:
        shared[TEXT_MODEL_ROLE] = export_onnx_text_model(classifier, directory / TEXT_MODEL_FILE, config.opset)
        tokenizer_dir = directory / "tokenizer"
        classifier.tokenizer.save_pretrained(tokenizer_dir)
        shutil.copyfile(tokenizer_dir / TOKENIZER_FILE, directory / TOKENIZER_FILE)
        shared[TOKENIZER_ROLE] = directory / TOKENIZER_FILE
    return shared


def _export_one(
    classifier: HarClipClassifier,
    export_format: ExportFormat,
    directory: Path,
    config: ExportConfig,
    shared: dict[str, Path],
    source: ModelSource,
) -> ExportManifest:
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    relative: dict[str, str] = {}
    for role, path in shared.items():
        _link_or_copy(path, directory / path.name)
        relative[role] = path.name
    max_batch = None
    notes: list[str] = []
    graph = None
    if export_format == "onnx":
        path, graph = _onnx_graph(classifier, directory, "model.onnx", config)
        relative[MODEL_ROLE] = path.name
    elif export_format == "onnx-int8":
        fp32, graph = _onnx_graph(classifier, directory, "model.fp32.onnx", config)
        if graph is not None:  # the quantiser skips packed attention: give it the q/k/v MatMuls
            split_packed_attention(fp32)
        weight_type, reduce_range = INT8_WEIGHTS[config.int8_weights]
        int8 = quantize_onnx_int8(fp32, directory / "model.int8.onnx", weight_type, reduce_range)
        fp32.unlink()
        relative[MODEL_ROLE] = int8.name
        if graph is not None:
            graph = graph_of(int8, graph)
        notes.append(f"int8 weights: {config.int8_weights} (dynamic quantisation, per channel, uint8 activations)")
    elif export_format == "torchscript":
        relative[MODEL_ROLE] = export_torchscript(classifier, directory / "model.pt").name
    elif export_format == "pytorch":
        classifier.save(directory / PYTORCH_DIR)
        for path in sorted((directory / PYTORCH_DIR).rglob("*")):
            if path.is_file():
                relative[f"{PYTORCH_DIR}:{path.relative_to(directory / PYTORCH_DIR)}"] = str(
                    path.relative_to(directory)
                )
        relative[MODEL_ROLE] = f"{PYTORCH_DIR}/{MODEL_CARD_FILE}"
    elif export_format == "tensorrt":
        onnx_path = export_onnx_image_model(classifier, directory / "model.onnx", config.opset)
        crop = classifier.preprocess_config.crop_size
        engine = build_engine(
            onnx_path,
            directory / "model.engine",
            crop,
            config.tensorrt_max_batch,
            config.tensorrt_fp16,
            config.tensorrt_workspace_mib,
        )
        relative[MODEL_ROLE] = engine.name
        relative["onnx_source"] = onnx_path.name
        max_batch = config.tensorrt_max_batch
    manifest = _manifest(classifier, export_format, directory, relative, shared, source, max_batch)
    manifest = manifest.model_copy(update={"notes": (*manifest.notes, *notes), "graph": graph})
    manifest.save(directory)
    return manifest


def _onnx_graph(
    classifier: HarClipClassifier, directory: Path, name: str, config: ExportConfig
) -> tuple[Path, OnnxGraph | None]:
    """The image model as ONNX at `directory/name`: fused for onnxruntime (with what was fused) or standard."""
    path = directory / name
    if config.onnx_graph == "standard":
        return export_onnx_image_model(classifier, path, config.opset), None
    standard = export_onnx_image_model(classifier, directory / "model.standard.onnx", config.opset)
    try:
        graph = fuse_for_onnxruntime(standard, path)
    finally:
        standard.unlink()
    return path, graph


def _manifest(classifier, export_format, directory, relative, shared, source, max_batch) -> ExportManifest:
    crop = classifier.preprocess_config.crop_size
    dim = int(classifier.clip.visual_projection.out_features)
    text_tower = None
    if TEXT_MODEL_ROLE in shared:
        text_tower = TextTowerSpec(
            inputs=tuple(TensorSpec(name=name, dtype="int64", shape=("batch", "sequence")) for name in TEXT_INPUTS),
            output=TensorSpec(name=TEXT_OUTPUT, dtype="float32", shape=("batch", dim)),
            max_length=int(classifier.tokenizer.model_max_length),
            pad_token_id=int(classifier.tokenizer.pad_token_id),
        )
    return ExportManifest(
        format=export_format,
        labels=tuple(classifier.labels),
        templates=tuple(classifier.templates),
        preprocess=classifier.preprocess_config,
        logit_scale=float(ImageModel(classifier).logit_scale),
        embedding_dim=dim,
        inputs=(TensorSpec(name=IMAGE_INPUT, dtype="float32", shape=("batch", 3, crop, crop)),),
        outputs=(
            TensorSpec(name=IMAGE_OUTPUTS[0], dtype="float32", shape=("batch", dim)),
            TensorSpec(name=IMAGE_OUTPUTS[1], dtype="float32", shape=("batch", len(classifier.labels))),
        ),
        max_batch_size=max_batch,
        files={role: describe_file(directory, path) for role, path in relative.items()},
        text_tower=text_tower,
        source=source,
        model_card=classifier.model_card(),
    )


def _link_or_copy(source: Path, target: Path) -> None:
    """Hard-link shared files (the text tower is large) where the filesystem allows, else copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
