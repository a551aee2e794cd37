"""Step: the model version (a stage or a number) and export format a batch inference run scores with."""

from typing import Annotated

from zenml import step
from zenml.logger import get_logger

from har_core.config import InferenceConfig
from har_zenml.deployment_plan import DeploymentRefusedError
from har_zenml.inference_plan import InferencePlan, choose_inference_format, deployed_format
from har_zenml.model_exports import ModelExportNotFoundError, find_model_version, load_version_exports
from har_zenml.names import BENCHMARK_ARTIFACT, INFERENCE_PLAN_ARTIFACT, ZENML_MODEL_NAME

logger = get_logger(__name__)


@step(enable_cache=False)  # stages move: `production` is another version tomorrow
def select_inference_model(inference: InferenceConfig) -> Annotated[InferencePlan, INFERENCE_PLAN_ARTIFACT]:
    try:
        version = find_model_version(inference.model_version)
        bundle = load_version_exports(version)
    except ModelExportNotFoundError as error:
        raise DeploymentRefusedError(str(error)) from error
    artifact = version.get_artifact(BENCHMARK_ARTIFACT)
    table = artifact.load() if artifact is not None else None
    rows, machine = ([], "unknown machine") if table is None else (table.rows, table.machine)
    deployed = deployed_format(version.run_metadata)
    choice = choose_inference_format(bundle.formats, rows, inference.format, deployed, machine)
    logger.info("Scoring with %s version %s as %s: %s", ZENML_MODEL_NAME, version.number, choice.format, choice.reason)
    return InferencePlan(
        model_name=ZENML_MODEL_NAME,
        model_version=str(version.number),
        model_version_id=str(version.id),
        stage=version.stage,
        format=choice.format,
        reason=choice.reason,
    )
