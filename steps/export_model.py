"""Step: export the trained classifier to every configured format, each gated on parity with PyTorch."""

from pathlib import Path
from typing import Annotated

import numpy as np
from zenml import get_step_context, log_metadata, step

from har_core.config import ExportConfig
from har_core.data.dataset import DatasetManifest, load_image
from har_core.evaluation.metrics import EvaluationReport
from har_core.export.bundle import export_bundle
from har_core.model.classifier import HarClipClassifier
from har_core.runtime.confidence import Calibration, OodStatistics
from har_core.runtime.manifest import ExportBundle, ModelSource
from har_core.runtime.preprocess import preprocess_batch
from har_core.runtime.reference import MonitoringReference
from har_zenml import materializers  # noqa: F401  (registers the materializers of this step's outputs)
from har_zenml.names import EXPORTS_ARTIFACT
from har_zenml.project_paths import in_project


@step
def export_model(
    model: HarClipClassifier,
    dataset: DatasetManifest,
    export: ExportConfig,
    calibration: Calibration | None = None,
    report: EvaluationReport | None = None,
    ood_statistics: OodStatistics | None = None,
    reference: MonitoringReference | None = None,
) -> Annotated[ExportBundle, EXPORTS_ARTIFACT]:
    """Held-out images of `export.parity_split` are the parity set; a failed gate marks the format not deployable.

    `calibration` goes into every format's model card (every format serves the same calibrated probabilities), with
    its figures from the evaluation `report` (ECE before and after, coverage, selective accuracy), and the
    `ood_statistics` its out-of-distribution score reads, and the monitoring `reference` (so the Bento carries it)."""
    export, context = in_project(export), get_step_context()
    records = dataset.split(export.parity_split)[: export.parity_images]
    if not records:
        raise ValueError(f"The {export.parity_split} split is empty; the parity gate needs held-out images.")
    pixels = preprocess_batch([load_image(record.path) for record in records], model.preprocess_config)
    labels = np.array([model.labels.index(dataset.labels[record.label]) for record in records])
    version = context.model_version
    source = ModelSource(
        model_name=version.model.name if version else None,
        model_version=str(version.number) if version else None,
        pipeline_run=context.pipeline_run.name,
        backbone=model.backbone_name,
    )
    root = Path(export.output_dir) / context.pipeline_run.name
    figures = report.calibration.metrics if report is not None and report.calibration is not None else None
    bundle = export_bundle(
        model, pixels, root, export, source, device=export.device, parity_labels=labels,
        calibration=calibration, calibration_metrics=figures, ood_statistics=ood_statistics,
        monitoring_reference=reference,
    )  # fmt: skip
    parity = {name: bundle.manifest(name).parity.model_dump(mode="json") for name in bundle.deployable_formats()}
    log_metadata(
        metadata={"parity": parity, "formats": {n: s.message for n, s in bundle.formats.items()}}, infer_model=True
    )
    return bundle
