"""Step: the model version to deploy (a stage or a number) and its format (requested, or the fastest gated one)."""

from typing import Annotated

from zenml import step
from zenml.client import Client
from zenml.logger import get_logger

from har_core.config import DeploymentConfig
from har_core.constants import BENCHMARK_ARTIFACT, DEPLOYMENT_PLAN_ARTIFACT, EXPORTS_ARTIFACT, ZENML_MODEL_NAME
from har_core.deployment import DeploymentPlan, DeploymentRefusedError, choose_format

logger = get_logger(__name__)


@step(enable_cache=False)
def select_deployment(deployment: DeploymentConfig) -> Annotated[DeploymentPlan, DEPLOYMENT_PLAN_ARTIFACT]:
    """Refuses a format that failed its parity gate, naming the reason recorded at export."""
    version = model_version(deployment.model_version)
    exports = version.get_artifact(EXPORTS_ARTIFACT)
    if exports is None:
        raise DeploymentRefusedError(f"{ZENML_MODEL_NAME} version {version.number} has no {EXPORTS_ARTIFACT} artifact.")
    bundle = exports.load()
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


def model_version(selector: str | int):
    """The model version at a stage or with a number; a clear error when there is none."""
    try:
        return Client().get_model_version(ZENML_MODEL_NAME, selector)
    except KeyError as error:
        raise DeploymentRefusedError(
            f"No {ZENML_MODEL_NAME} version {selector!r}: train one (python run.py --pipeline training) and promote "
            "it, or set deployment.model_version to a version number."
        ) from error


def _rows(table):
    return table.rows, table.machine
