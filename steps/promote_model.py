"""Step: promote the run's model version to production when it beats production on the same test set and at least
one of its export formats passed its parity gate (else it stays in staging, with the reason)."""

from typing import Annotated

from zenml import get_step_context, log_metadata, step
from zenml.client import Client
from zenml.logger import get_logger

from har_core.config import EvaluationConfig, PromotionConfig
from har_core.data.dataset import DatasetManifest
from har_core.evaluation.metrics import EvaluationReport, evaluate_classifier
from har_core.evaluation.promotion import (
    PRODUCTION_STAGE,
    PromotionDecision,
    calibration_record,
    decide,
    label_set_mismatch,
    no_deployable_format,
)
from har_core.export.benchmark import BenchmarkTable
from har_core.model.classifier import HarClipClassifier
from har_core.runtime.manifest import ExportBundle
from har_core.training.run_facts import git_commit
from har_zenml.model_provenance import log_provenance
from har_zenml.names import PROMOTION_DECISION_ARTIFACT, TRAINED_MODEL_ARTIFACT

logger = get_logger(__name__)


@step(enable_cache=False)
def promote_model(
    model: HarClipClassifier,
    dataset: DatasetManifest,
    report: EvaluationReport,
    exports: ExportBundle,
    benchmark: BenchmarkTable,
    promotion: PromotionConfig,
) -> Annotated[PromotionDecision, PROMOTION_DECISION_ARTIFACT]:
    """Both models are scored on this run's test split; the decision and its reason go on the model version."""
    version = get_step_context().model_version
    evaluation = EvaluationConfig(split="test", batch_size=promotion.batch_size, device=promotion.device, num_workers=0)
    test = dataset.split("test")
    candidate = report if report.split == "test" else evaluate_classifier(model, test, evaluation, dataset.labels)
    test_metrics = candidate.headline_metrics()
    production, production_report, refusal = _current_production(version), None, None
    if production is not None:
        production_model: HarClipClassifier = production.get_artifact(TRAINED_MODEL_ARTIFACT).load()
        refusal = label_set_mismatch(dataset.labels, production_model.labels)
        if refusal is None:
            production_report = evaluate_classifier(production_model, test, evaluation, dataset.labels)
    production_number = production and str(production.number)
    undeployable = no_deployable_format(exports.formats)
    stage, reason = decide(candidate, production_report, promotion, production_number, refusal, undeployable)
    decision = PromotionDecision(
        stage=stage,
        reason=reason,
        metric=promotion.metric,
        candidate_score=getattr(candidate, promotion.metric),
        production_score=getattr(production_report, promotion.metric) if production_report else None,
        production_version=str(production.number) if production else None,
        forced=promotion.force,
        margin=promotion.margin,
        min_metric=promotion.min_metric,
        test_images=candidate.num_images,
        git_commit=git_commit(),
        data_version=dataset.version_label(),
        **calibration_record(candidate),
    )
    logger.info("Model version %s -> %s: %s", version.number, stage, reason)
    version.set_stage(stage, force=True)  # force: the previous production version becomes archived
    log_metadata(
        metadata={
            "promotion": decision.model_dump(mode="json"),
            "test_metrics": test_metrics,
            "deployable_formats": exports.deployable_formats(),
            "benchmark": benchmark.metrics(),
        },
        model_version_id=version.id,
    )
    if model.provenance is not None:  # again here: a run whose train step was cached gets a new version too
        log_provenance(model.provenance)
    return decision


def _current_production(candidate):
    """The model's production version other than the candidate, or None."""
    try:
        production = Client().get_model_version(candidate.model.id, PRODUCTION_STAGE)
    except KeyError:
        return None
    return None if production.id == candidate.id else production
