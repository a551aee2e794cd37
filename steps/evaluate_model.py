"""Step: score a classifier on a split; reused with `id=` for the zero-shot and the fine-tuned model."""

import tempfile
from typing import Annotated

from PIL import Image
from zenml import get_step_context, log_metadata, step
from zenml.types import MarkdownString

from har_core.config import EvaluationConfig
from har_core.data.dataset import DatasetManifest
from har_core.evaluation.metrics import (
    EvaluationPredictions,
    EvaluationReport,
    evaluate_with_predictions,
    per_class_rows,
    report_markdown,
    write_report_files,
)
from har_core.evaluation.plots import confusion_matrix_image, per_class_image, reliability_diagram_image
from har_core.model.classifier import HarClipClassifier
from har_core.runtime.confidence import Calibration, OodStatistics
from har_zenml import (
    materializers,  # noqa: F401  (registers the materializer of the statistics input)
    tracking,
)
from har_zenml.names import (
    CONFUSION_MATRIX_ARTIFACT,
    EVALUATION_PREDICTIONS_ARTIFACT,
    EVALUATION_REPORT_ARTIFACT,
    RELIABILITY_DIAGRAM_ARTIFACT,
    REPORT_MARKDOWN_ARTIFACT,
)


@step
def evaluate_model(
    model: HarClipClassifier,
    dataset: DatasetManifest,
    evaluation: EvaluationConfig,
    calibration: Calibration | None = None,
    ood_statistics: OodStatistics | None = None,
) -> tuple[
    Annotated[EvaluationReport, EVALUATION_REPORT_ARTIFACT],
    Annotated[Image.Image, CONFUSION_MATRIX_ARTIFACT],
    Annotated[MarkdownString, REPORT_MARKDOWN_ARTIFACT],
    Annotated[EvaluationPredictions, EVALUATION_PREDICTIONS_ARTIFACT],
    Annotated[Image.Image, RELIABILITY_DIAGRAM_ARTIFACT],
]:
    """Metrics, confusion-matrix image, a markdown summary (also logged to every experiment tracker of the stack),
    every image's prediction (the viewer's mistakes page reads them) and the reliability diagram: before the
    temperature, and after it when a `calibration` is given (the fine-tuned model's)."""
    name = get_step_context().step_run.name
    report, predictions = evaluate_with_predictions(
        model, dataset.split(evaluation.split), evaluation, dataset.labels, calibration, ood_statistics=ood_statistics
    )
    image = confusion_matrix_image(report, title=f"{name}: {evaluation.split} accuracy {report.accuracy:.3f}")
    reliability = reliability_diagram_image(report, title=f"{name}: {evaluation.split} reliability")
    summary = report_markdown(report, title=f"{name} ({model.backbone_name})")
    tracking.log_metrics(report.headline_metrics(), prefix=f"{name}/")
    tracking.log_metrics(report.calibration.metrics, prefix=f"{name}/calibration/")
    tracking.log_image(image, f"{name}/confusion_matrix.png")
    tracking.log_image(reliability, f"{name}/reliability.png")
    tracking.log_image(per_class_image(report, title=f"{name}: per-class scores"), f"{name}/per_class.png")
    tracking.log_table(per_class_rows(report), f"{name}/per_class_table")
    tracking.log_text(summary, f"{name}/summary.md")
    with tempfile.TemporaryDirectory() as directory:
        for path in write_report_files(report, directory).values():
            tracking.log_text(path.read_text(), f"{name}/{path.name}")
    tracking.record_run_locations()
    log_metadata(
        metadata={"metrics": report.headline_metrics(), "calibration": report.calibration.metrics},
        infer_artifact=True,
        artifact_name=EVALUATION_REPORT_ARTIFACT,
    )
    return report, image, MarkdownString(summary), predictions, reliability
