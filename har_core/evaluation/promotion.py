"""The promotion rule: production only when the candidate beats the current production model on the same images.

Pure logic (no ZenML): the promote step gathers the two reports, this module decides and explains.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel

from har_core.config import PromotionConfig
from har_core.evaluation.metrics import EvaluationReport
from har_core.runtime.manifest import FormatStatus

# The lifecycle stages a model version moves through (ZenML's Model Control Plane stages carry these names).
PRODUCTION_STAGE = "production"
STAGING_STAGE = "staging"
ARCHIVED_STAGE = "archived"


class PromotionDecision(BaseModel):
    """What the promote step decided and why; recorded on the model version."""

    stage: Literal["production", "staging"]
    reason: str
    metric: str
    candidate_score: float
    production_score: float | None = None
    production_version: str | None = None
    forced: bool = False
    margin: float
    min_metric: float
    test_images: int
    git_commit: str | None = None
    data_version: str | None = None
    # Recorded, not gated (docs/confidence.md): the candidate's ECE on the test images at its fitted temperature
    # (ece) and before it; None when the report has no calibration figures.
    ece: float | None = None
    ece_before: float | None = None

    @property
    def promoted(self) -> bool:
        return self.stage == PRODUCTION_STAGE


def calibration_record(report: EvaluationReport) -> dict[str, float | None]:
    """The promotion record's ECE fields from the candidate's report (ECE after its temperature when it has one)."""
    metrics = report.calibration.metrics if report.calibration is not None else {}
    return {"ece": metrics.get("ece_after", metrics.get("ece_before")), "ece_before": metrics.get("ece_before")}


def label_set_mismatch(candidate_labels: Sequence[str], production_labels: Sequence[str]) -> str | None:
    """Why two models cannot be compared on one test set, or None when their labels match (same order)."""
    if list(candidate_labels) == list(production_labels):
        return None
    if sorted(candidate_labels) == sorted(production_labels):
        return "the production model orders its labels differently"
    return (
        f"the label sets differ (only in the candidate: {sorted(set(candidate_labels) - set(production_labels))}; "
        f"only in production: {sorted(set(production_labels) - set(candidate_labels))})"
    )


def no_deployable_format(statuses: Mapping[str, FormatStatus]) -> str | None:
    """Why none of a version's exports may be served, or None when at least one passed its parity gate."""
    if any(status.deployable for status in statuses.values()):
        return None
    details = "; ".join(f"{name}: {status.message or 'not exported'}" for name, status in statuses.items())
    return f"no export format passed its parity gate, so nothing could be deployed ({details or 'no exports'})"


def decide(
    candidate: EvaluationReport,
    production: EvaluationReport | None,
    config: PromotionConfig,
    production_version: str | None = None,
    refusal: str | None = None,
    undeployable: str | None = None,
) -> tuple[Literal["production", "staging"], str]:
    """(stage, reason). `refusal` says why production could not be re-scored (a different label set);
    `undeployable` why no export of the candidate may be served: such a version stays in staging even when
    forced, since the deployment pipeline would refuse it and production must always be deployable."""
    score = getattr(candidate, config.metric)
    name = config.metric
    if undeployable is not None:
        return STAGING_STAGE, f"not deployable: {undeployable}; {name} {score:.4f}"
    if config.force:
        return PRODUCTION_STAGE, f"forced (promotion.force: true); {name} {score:.4f}"
    if refusal is not None:
        return STAGING_STAGE, f"not compared with production version {production_version}: {refusal}"
    if score < config.min_metric:
        return STAGING_STAGE, f"{name} {score:.4f} is below the floor {config.min_metric}"
    if production is None:
        return PRODUCTION_STAGE, f"first model to pass the floor: {name} {score:.4f} >= {config.min_metric}"
    baseline = getattr(production, name)
    where = f"on the same {candidate.num_images} {candidate.split} images"
    if score >= baseline + config.margin:
        return PRODUCTION_STAGE, (
            f"{name} {score:.4f} beats production version {production_version} ({baseline:.4f}) by at least the "
            f"margin {config.margin} {where}"
        )
    return STAGING_STAGE, (
        f"{name} {score:.4f} does not beat production version {production_version} ({baseline:.4f}) by the margin "
        f"{config.margin} {where}"
    )
