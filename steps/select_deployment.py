"""Step: the model version to deploy (a stage or a number) and its format (requested, or the fastest gated one)."""

from typing import Annotated

from zenml import step
from zenml.logger import get_logger

from har_core.config import DeploymentConfig
from har_zenml.deployment_plan import DeploymentPlan, DeploymentRefusedError, choose_format
from har_zenml.model_exports import ModelExportNotFoundError, find_model_version, load_version_exports
from har_zenml.names import BENCHMARK_ARTIFACT, DEPLOYMENT_PLAN_ARTIFACT, ZENML_MODEL_NAME

logger = get_logger(__name__)


@step(enable_cache=False)
def select_deployment(deployment: DeploymentConfig) -> Annotated[DeploymentPlan, DEPLOYMENT_PLAN_ARTIFACT]:
    """Refuses a format that failed its parity gate, naming the reason recorded at export."""
    try:
        version = find_model_version(deployment.model_version)
        bundle = load_version_exports(version)
    except ModelExportNotFoundError as error:
        raise DeploymentRefusedError(str(error)) from error
    table = version.get_artifact(BENCHMARK_ARTIFACT)
    rows, machine = ([], "unknown machine") if table is None else _rows(table.load())
    choice = choose_format(bundle.formats, rows, deployment.format, machine)
    logger.info("Deploying %s version %s as %s: %s", ZENML_MODEL_NAME, version.number, choice.format, choice.reason)
    return DeploymentPlan(
        model_name=ZENML_MODEL_NAME,
        model_version=str(version.number),
        model_version_id=str(version.id),
        stage=version.stage,
        format=choice.format,
        reason=choice.reason,
    )


def _rows(table):
    return table.rows, table.machine
