"""Step: fit the fine-tuned model's temperatures, abstention thresholds and out-of-distribution score."""

import random
from typing import Annotated

from zenml import log_metadata, step

from har_core.config import EvaluationConfig
from har_core.data.dataset import DatasetManifest
from har_core.evaluation.calibration import fit_calibration, fit_ood_statistics
from har_core.evaluation.metrics import check_label_order, record_outputs
from har_core.model.classifier import HarClipClassifier
from har_core.runtime.confidence import Calibration, OodStatistics, softmax
from har_core.runtime.reference import MonitoringReference, build_reference
from har_zenml import (
    materializers,  # noqa: F401  (registers the materializers of this step's outputs)
    tracking,
)
from har_zenml.names import CALIBRATION_ARTIFACT, MONITORING_REFERENCE_ARTIFACT, OOD_STATISTICS_ARTIFACT


@step
def calibrate_model(
    model: HarClipClassifier, dataset: DatasetManifest, evaluation: EvaluationConfig
) -> tuple[
    Annotated[Calibration, CALIBRATION_ARTIFACT],
    Annotated[OodStatistics, OOD_STATISTICS_ARTIFACT],
    Annotated[MonitoringReference, MONITORING_REFERENCE_ARTIFACT],
]:
    """Temperatures and thresholds on `evaluation.calibration_split` (val by default, never the evaluated split);
    the Mahalanobis statistics on a seeded sample of the train split (its images are what "in distribution"
    means); and, from the same held-out images at the fitted temperature, the reference monitoring compares served
    answers with. The export carries all three to every format; the evaluation reports what they do on the
    evaluated split."""
    settings, split = evaluation.calibration, evaluation.calibration_split
    check_label_order(model.labels, dataset.labels)
    held_out, train = dataset.split(split), dataset.split("train")
    if not held_out or not train:
        empty = split if not held_out else "train"
        raise ValueError(f"The {empty} split is empty: calibration needs its images (evaluation.calibration).")
    sample = random.Random(settings.seed).sample(train, min(len(train), settings.ood_fit_images))
    train_labels, train_embeddings, _ = record_outputs(model, sample, evaluation)
    statistics = fit_ood_statistics(train_embeddings, train_labels, len(model.labels))
    labels, embeddings, logits = record_outputs(model, held_out, evaluation)
    scale = float(model.logit_scale().detach())
    calibration = fit_calibration(logits, labels, scale, settings, split, embeddings=embeddings, statistics=statistics)
    reference = build_reference(
        tuple(model.labels), split, embeddings, softmax(logits, calibration.temperature), settings.seed
    )
    figures = calibration.model_dump(include={"temperature", "zero_shot_temperature", "abstain_below", "ood_above"})
    tracking.log_metrics(figures, prefix="calibration/")
    log_metadata(
        metadata={"calibration": calibration.model_dump(mode="json"), "monitoring_reference": reference.summary()},
        infer_model=True,
    )
    return calibration, statistics, reference
