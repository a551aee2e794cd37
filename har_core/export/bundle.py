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
from har_core.export.formats import EXPORTERS, ExportJob, FormatFiles
from har_core.export.graphs import (
    CLASS_EMBEDDINGS_FILE,
    IMAGE_INPUT,
    IMAGE_OUTPUTS,
    TEXT_INPUTS,
    TEXT_OUTPUT,
    export_onnx_text_model,
    reference_outputs,
)
from har_core.model.classifier import HarClipClassifier
from har_core.model.serving_graph import serving_modules
from har_core.runtime.confidence import OOD_STATISTICS_FILE, Calibration, OodStatistics
from har_core.runtime.manifest import (
    CLASS_EMBEDDINGS_ROLE,
    MODEL_CARD_ROLE,
    OOD_STATISTICS_ROLE,
    PARITY_SET_ROLE,
    REFERENCE_ROLE,
    TEXT_MODEL_ROLE,
    TOKENIZER_ROLE,
    ExportBundle,
    ExportFormat,
    ExportManifest,
    FormatStatus,
    ModelSource,
    TensorSpec,
    TextTowerSpec,
    describe_file,
)
from har_core.runtime.model_card import MODEL_CARD_FILE
from har_core.runtime.parity import PARITY_SET_FILE, describe_parity, run_parity_gate, save_parity_set
from har_core.runtime.reference import REFERENCE_FILE, MonitoringReference
from har_core.runtime.tensorrt_engine import TensorRTUnavailableError

logger = logging.getLogger(__name__)

SHARED_DIR = "_shared"
TEXT_MODEL_FILE = "text_model.onnx"
TOKENIZER_FILE = "tokenizer.json"


def export_bundle(
    classifier: HarClipClassifier,
    parity_pixels: np.ndarray,
    root: str | Path,
    config: ExportConfig,
    source: ModelSource,
    device: str = "auto",
    parity_labels: np.ndarray | None = None,
    calibration: Calibration | None = None,
    calibration_metrics: dict[str, float] | None = None,
    ood_statistics: OodStatistics | None = None,
    monitoring_reference: MonitoringReference | None = None,
) -> ExportBundle:
    """Write `<root>/<format>/` for each configured format plus `exports.json`; return the bundle.

    `parity_labels` (the class index of each parity image, in `classifier.labels`) lets a gate judge accuracy lost;
    a gate with `max_accuracy_drop` fails its format without them. `calibration` goes into every format's model
    card, so every format serves the same calibrated probabilities (and its gate compares calibrated logits);
    `calibration_metrics` are its figures on the test split, recorded beside it; `ood_statistics` (the Mahalanobis
    score's) and the `monitoring_reference` are files of every format."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    classifier = classifier.eval().cpu()
    image_model, text_model = serving_modules(classifier, text_tower=config.text_tower)
    card = classifier.model_card().model_copy(
        update={"calibration": calibration, "calibration_metrics": calibration_metrics}
    )
    job = ExportJob(classifier, image_model, text_model, card, config)
    reference = reference_outputs(image_model, parity_pixels)
    shared = _write_shared_files(job, root / SHARED_DIR)
    if ood_statistics is not None:
        shared[OOD_STATISTICS_ROLE] = ood_statistics.save(root / SHARED_DIR / OOD_STATISTICS_FILE)
    if monitoring_reference is not None:
        shared[REFERENCE_ROLE] = monitoring_reference.save(root / SHARED_DIR / REFERENCE_FILE)
    if config.serving_parity_images:  # re-checked by the service where it runs (har_core.runtime.parity.recheck_parity)
        count = config.serving_parity_images
        subset = (reference[0][:count], reference[1][:count])
        shared[PARITY_SET_ROLE] = save_parity_set(root / SHARED_DIR / PARITY_SET_FILE, parity_pixels[:count], subset)
    statuses: dict[str, FormatStatus] = {}
    for export_format in config.formats:
        directory = root / export_format
        try:
            _export_format(job, export_format, directory, shared, source)
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


def _write_shared_files(job: ExportJob, directory: Path) -> dict[str, Path]:
    """Files every format carries: class embeddings, model card, and (optionally) the ONNX text tower."""
    directory.mkdir(parents=True, exist_ok=True)
    classifier = job.classifier
    save_file(
        {"class_embeddings": np.ascontiguousarray(job.image_model.class_embeddings.numpy())},
        str(directory / CLASS_EMBEDDINGS_FILE),
        metadata={"labels": "\n".join(classifier.labels), "templates": "\n".join(classifier.templates)},
    )
    job.model_card.save(directory)
    shared = {CLASS_EMBEDDINGS_ROLE: directory / CLASS_EMBEDDINGS_FILE, MODEL_CARD_ROLE: directory / MODEL_CARD_FILE}
    if job.text_model is not None:
        text_model_path = directory / TEXT_MODEL_FILE
        export_onnx_text_model(job.text_model, classifier.tokenizer, text_model_path, job.config.opset)
        shared[TEXT_MODEL_ROLE] = text_model_path
        tokenizer_dir = directory / "tokenizer"
        classifier.tokenizer.save_pretrained(tokenizer_dir)
        shutil.copyfile(tokenizer_dir / TOKENIZER_FILE, directory / TOKENIZER_FILE)
        shared[TOKENIZER_ROLE] = directory / TOKENIZER_FILE
    return shared


def _export_format(
    job: ExportJob, export_format: ExportFormat, directory: Path, shared: dict[str, Path], source: ModelSource
) -> ExportManifest:
    """The format's exporter (`EXPORTERS`) into a fresh directory beside the shared files, then its manifest."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    relative: dict[str, str] = {}
    for role, path in shared.items():
        _link_or_copy(path, directory / path.name)
        relative[role] = path.name
    written = EXPORTERS[export_format](job, directory)
    manifest = _manifest(job, export_format, directory, relative, written, shared, source)
    manifest.save(directory)
    return manifest


def _manifest(
    job: ExportJob,
    export_format: ExportFormat,
    directory: Path,
    shared_files: dict[str, str],
    written: FormatFiles,
    shared: dict[str, Path],
    source: ModelSource,
) -> ExportManifest:
    classifier = job.classifier
    files = {**shared_files, **written.files}
    crop = job.image_model.crop_size
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
        logit_scale=float(job.image_model.logit_scale),
        embedding_dim=dim,
        inputs=(TensorSpec(name=IMAGE_INPUT, dtype="float32", shape=("batch", 3, crop, crop)),),
        outputs=(
            TensorSpec(name=IMAGE_OUTPUTS[0], dtype="float32", shape=("batch", dim)),
            TensorSpec(name=IMAGE_OUTPUTS[1], dtype="float32", shape=("batch", len(classifier.labels))),
        ),
        max_batch_size=written.max_batch_size,
        files={role: describe_file(directory, path) for role, path in files.items()},
        text_tower=text_tower,
        source=source,
        model_card=job.model_card,
        notes=written.notes,
        graph=written.graph,
    )


def _link_or_copy(source: Path, target: Path) -> None:
    """Hard-link shared files (the text tower is large) where the filesystem allows, else copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
