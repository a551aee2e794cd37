"""What the viewer reads from ZenML: training runs, their artifacts, and the model versions with their stages.

Plain functions over the ZenML client (no Streamlit), so the pages stay thin and the queries are testable alone.
A missing artifact is `None`, not an error: older runs (or steps not built yet) simply lack it and the page says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from har_zenml import model_exports
from har_zenml.names import (
    BENCHMARK_ARTIFACT,
    DATASET_ARTIFACT,
    EVALUATION_PREDICTIONS_ARTIFACT,
    EVALUATION_REPORT_ARTIFACT,
    FINE_TUNED_EVALUATION_STEP,
    PROMOTION_DECISION_ARTIFACT,
    PROVENANCE_METADATA_KEY,
    REPRODUCTION_METADATA_KEY,
    TRAIN_STEP,
    TRAINING_PIPELINE,
    TRAINING_RESULT_ARTIFACT,
    ZENML_MODEL_NAME,
)

logger = logging.getLogger(__name__)

LATEST = "latest"  # ZenML's ModelStages.LATEST: the newest version, whatever its stage


@dataclass(frozen=True)
class RunRow:
    """One training run, as the runs table shows it."""

    id: str
    name: str
    status: str
    started: datetime | None
    duration_s: float | None
    model_version: str | None
    stage: str | None


@dataclass(frozen=True)
class VersionRow:
    """One model version: stage, the run that made it, its test accuracy and why it has its stage."""

    number: int
    stage: str | None
    created: datetime
    run_name: str | None
    accuracy: float | None
    promotion: str | None


def client():
    """The ZenML client of the environment's store (`ZENML_CONFIG_PATH`); created on use, never at import."""
    from zenml.client import Client

    return Client()


def training_runs(limit: int = 50) -> list[RunRow]:
    """The newest training runs first."""
    runs = client().list_pipeline_runs(
        pipeline_name=TRAINING_PIPELINE, sort_by="desc:created", size=limit, hydrate=True
    )
    return [_run_row(run) for run in runs.items]


def get_run(run_id: str):
    return client().get_pipeline_run(run_id)


def _run_row(run) -> RunRow:
    version = run.model_version
    return RunRow(
        id=str(run.id),
        name=run.name,
        status=run.status.value,
        started=run.start_time,
        duration_s=_duration(run.start_time, run.end_time),
        model_version=version.name if version else None,
        stage=stage_of(version) if version else None,
    )


def _duration(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start and end else None


def run_parameters(run) -> dict[str, Any]:
    """The run config's `parameters:` block (data, classifier, training, evaluation, …)."""
    return dict(run.config.parameters or {})


def step_rows(run) -> list[dict[str, Any]]:
    return [
        {
            "step": name,
            "status": step.status.value,
            "duration_s": _duration(step.start_time, step.end_time),
        }
        for name, step in run.steps.items()
    ]


def step_output(run, step: str, artifact: str) -> Any | None:
    """The loaded output `artifact` of `step` in `run`, or None when the step or the output does not exist."""
    step_run = run.steps.get(step)
    if step_run is None or not step_run.outputs.get(artifact):
        return None
    return step_run.outputs[artifact][0].load()


def training_result(run):
    return step_output(run, TRAIN_STEP, TRAINING_RESULT_ARTIFACT)


def evaluation_report(run, step: str = FINE_TUNED_EVALUATION_STEP):
    return step_output(run, step, EVALUATION_REPORT_ARTIFACT)


def evaluation_predictions(run, step: str = FINE_TUNED_EVALUATION_STEP):
    """The run's per-image predictions, each path readable on this machine when the dataset still loads."""
    predictions = step_output(run, step, EVALUATION_PREDICTIONS_ARTIFACT)
    return None if predictions is None else with_local_images(run, predictions)


def with_local_images(run, predictions):
    """`predictions` with paths that exist here.

    They name the unpacked copy of the run's dataset, which the data cache drops when it makes room (it keeps the
    few most recently used datasets) and which another machine never had: loading the run's dataset artifact
    unpacks it again, verified, and each path moves to that copy (the part after the fingerprint is the image's
    path in the dataset).
    """
    if all(Path(image.path).is_file() for image in predictions.images):
        return predictions
    manifest = run_dataset(run)
    if manifest is None:
        return predictions
    marker = f"/{manifest.fingerprint()}/"
    images = [
        image.model_copy(update={"path": str(Path(manifest.root, image.path.split(marker, 1)[1]))})
        if marker in image.path
        else image
        for image in predictions.images
    ]
    return predictions.model_copy(update={"images": images})


def run_dataset(run):
    """The run's dataset, unpacked on this machine; None when the run has none or it no longer loads."""
    for step_run in run.steps.values():
        if step_run.outputs.get(DATASET_ARTIFACT):
            try:
                return step_run.outputs[DATASET_ARTIFACT][0].load()
            except Exception as error:  # an artifact store gone or unreachable: the page says the images are missing
                logger.warning("The dataset of run %s could not be loaded: %s", run.name, error)
                return None
    return None


def model_version(selector: str | int):
    """The version at a stage (`production`, `staging`, `latest`, …) or with a number; None when there is none."""
    try:
        return model_exports.find_model_version(selector)
    except model_exports.ModelExportNotFoundError:
        return None


def deployment_url(version) -> str | None:
    """Where the deployment pipeline last served `version` (its `deployment` metadata); None when it never did.

    A local release gets a new port (the new server starts beside the old one), so the viewer reads it here.
    """
    record = version.run_metadata.get("deployment") if version is not None else None
    url = record.get("url") if isinstance(record, dict) else None
    return url if isinstance(url, str) and url else None


def model_versions(limit: int = 50) -> list:
    try:
        return client().list_model_versions(ZENML_MODEL_NAME, sort_by="desc:number", size=limit, hydrate=True).items
    except KeyError:  # no model yet
        return []


def training_run_of(version):
    """The training run that created `version` (the first run linked to it)."""
    runs = client().list_pipeline_runs(
        model_version_id=version.id, pipeline_name=TRAINING_PIPELINE, sort_by="asc:created", size=1
    )
    return client().get_pipeline_run(runs.items[0].id) if runs.items else None


def version_artifact(version, name: str) -> Any | None:
    """The newest artifact `name` linked to `version`, loaded; None when the version has none."""
    artifact = version.get_artifact(name)
    return artifact.load() if artifact is not None else None


def version_exports(version):
    """The version's `ExportBundle` (one local directory per exported format), or None before export exists."""
    try:
        return model_exports.load_version_exports(version)
    except model_exports.ModelExportNotFoundError:
        return None


def benchmark_table(version) -> Any | None:
    return version_artifact(version, BENCHMARK_ARTIFACT)


def promotion_reason(version) -> str | None:
    """Why the version has its stage: the promotion decision's reason when it has one, else its metadata."""
    decision = version_artifact(version, PROMOTION_DECISION_ARTIFACT)
    if decision is not None:
        return str(getattr(decision, "reason", None) or decision)
    metadata = version.run_metadata or {}
    for key in ("promotion_reason", "promotion", "promotion_decision"):
        if key in metadata:
            return str(metadata[key])
    return None


def provenance(version):
    """How the version's model was made (`TrainingProvenance`), None for versions trained before it was recorded."""
    from har_core.runtime.provenance import TrainingProvenance

    record = (version.run_metadata or {}).get(PROVENANCE_METADATA_KEY)
    return TrainingProvenance.model_validate(record) if isinstance(record, dict) else None


def reproduction(version) -> dict[str, Any] | None:
    """A reproduction's outcome (`run.py --reproduce`): which run it re-made, what drifted, whether it matched."""
    record = (version.run_metadata or {}).get(REPRODUCTION_METADATA_KEY)
    return record if isinstance(record, dict) else None


def version_rows(limit: int = 50) -> list[VersionRow]:
    rows = []
    for version in model_versions(limit):
        run = training_run_of(version)
        report = evaluation_report(run) if run is not None else None
        rows.append(
            VersionRow(
                number=version.number,
                stage=stage_of(version),
                created=version.created,
                run_name=run.name if run is not None else None,
                accuracy=report.accuracy if report is not None else None,
                promotion=promotion_reason(version),
            )
        )
    return rows


def stage_of(version) -> str | None:
    stage = version.stage
    return stage.value if hasattr(stage, "value") else stage
