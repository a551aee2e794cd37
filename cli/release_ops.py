"""Undeploying and rolling back: the two commands around the deployment pipeline's release
(`run.py --command undeploy|rollback`; commands, not ZenML pipelines: they record no run).

Rollback finds the production version that the current one replaced
(the promotion decision on the current version names it; else the newest archived version before it), deploys it
with the deployment pipeline, and moves the stages only once that deployment passed its smoke test.
"""

from __future__ import annotations

from zenml.client import Client
from zenml.enums import ModelStages

from har_core.evaluation.promotion import ARCHIVED_STAGE, PRODUCTION_STAGE
from har_zenml.deployment_plan import DeploymentRefusedError
from har_zenml.model_exports import ModelExportNotFoundError, find_model_version
from har_zenml.names import EXPORTS_ARTIFACT, PROJECT_SERVICE_NAME, ZENML_MODEL_NAME


def undeploy() -> list[str]:
    """Stop and delete every deployment the deployment pipeline made; returns what was removed."""
    deployer = Client().active_stack.model_deployer
    if deployer is None:
        raise DeploymentRefusedError("The active stack has no model deployer, so nothing was deployed through it.")
    removed = []
    for service in deployer.find_model_server(pipeline_name=PROJECT_SERVICE_NAME):
        deployer.delete_model_server(service.uuid, force=True)
        removed.append(f"{service.config.bento_tag} (service {service.uuid})")
    return removed


def rollback_plan() -> tuple[int, int]:
    """(current production version, the version to restore); changes nothing."""
    try:
        current = Client().get_model_version(ZENML_MODEL_NAME, ModelStages.PRODUCTION)
    except KeyError as error:
        raise DeploymentRefusedError(f"{ZENML_MODEL_NAME} has no production version to roll back from.") from error
    return current.number, _previous_production(current).number


def apply_rollback(current: int, restored: int) -> None:
    """Once `restored` is deployed and passed its smoke test: it becomes production, `current` is archived."""
    client = Client()
    client.get_model_version(ZENML_MODEL_NAME, restored).set_stage(PRODUCTION_STAGE, force=True)
    client.get_model_version(ZENML_MODEL_NAME, current).set_stage(ARCHIVED_STAGE, force=True)


def _previous_production(current):
    client = Client()
    promotion = current.run_metadata.get("promotion") or {}
    recorded = promotion.get("production_version") if isinstance(promotion, dict) else None
    if recorded:
        return client.get_model_version(ZENML_MODEL_NAME, int(recorded))
    archived = [
        version
        for version in client.list_model_versions(ZENML_MODEL_NAME, stage=ARCHIVED_STAGE, size=100).items
        if version.number < current.number
    ]
    if not archived:
        raise DeploymentRefusedError(
            f"Version {current.number} is the first production version of {ZENML_MODEL_NAME}: nothing to roll back to."
        )
    return max(archived, key=lambda version: version.number)


def check_requested_format(model_version: str | int, export_format: str | None) -> None:
    """Refuse a gate-failed format before the pipeline starts, with the reason recorded at export.

    Reads the export artifact's metadata only (cheap); `select_deployment` checks the artifact itself again.
    """
    if export_format is None:
        return
    try:
        version = find_model_version(model_version)
    except ModelExportNotFoundError as error:
        raise DeploymentRefusedError(str(error)) from error
    exports = version.get_artifact(EXPORTS_ARTIFACT)
    if exports is None:
        return  # select_deployment says so with its own message
    metadata = exports.run_metadata
    deployable = [name.strip() for name in str(metadata.get("deployable_formats", "")).split(",")]
    if export_format in deployable:
        return
    reason = metadata.get(f"format/{export_format}", "it was not exported")
    raise DeploymentRefusedError(
        f"Format {export_format!r} of {ZENML_MODEL_NAME} version {version.number} cannot be deployed: {reason}. "
        f"Deployable formats: {metadata.get('deployable_formats', 'none')}."
    )
