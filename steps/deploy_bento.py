"""Step: deploy the Bento through the active stack's model deployer beside the running deployment, smoke-test it
over HTTP, and only then stop the previous one (pipelines.deployment_ops.release)."""

import os
from typing import Annotated

from zenml import get_step_context, log_metadata, step
from zenml.client import Client
from zenml.integrations.bentoml.services.bentoml_local_deployment import BentoMLLocalDeploymentConfig
from zenml.logger import get_logger

from bento.server import free_port
from bento.smoke import smoke_test
from har_core.config import DeploymentConfig
from har_core.runtime.settings import API_TOKEN_ENV
from pipelines.deployment_ops import release
from steps.deployment_plan import BentoRecord, DeploymentPlan, DeploymentRecord
from steps.names import DEPLOYMENT_ARTIFACT, PROJECT_SERVICE_NAME

logger = get_logger(__name__)


@step(enable_cache=False)
def deploy_bento(
    plan: DeploymentPlan, bento: BentoRecord, deployment: DeploymentConfig
) -> Annotated[DeploymentRecord, DEPLOYMENT_ARTIFACT]:
    """Replaces the deployment this pipeline made before once the new one passed its smoke test; a failed smoke
    test stops the new server and fails the step, and the previous deployment keeps serving (on its own URL: each
    deployment gets a port of its own unless `deployment.port` names one, which the previous one then holds)."""
    if Client().active_stack.model_deployer is None:
        raise RuntimeError(
            "The active stack has no model deployer. On the local stack run `python -m stacks.register local`; "
            "on a cluster, deploy the Bento's image with bento/k8s/har-clip.yaml (see README, Kubernetes)."
        )
    context = get_step_context()
    port = deployment.port or free_port()
    config = BentoMLLocalDeploymentConfig(
        model_name=plan.model_name,
        model_version=plan.model_version,
        model_uri=bento.bentoml_model_tag,
        bento_tag=bento.bento_tag,
        bento_uri=bento.bento_path,
        apis=["predict", "predict_batch", "classify", "metadata"],
        port=port,
        host=deployment.host,
        working_dir=os.getcwd(),
        pipeline_name=PROJECT_SERVICE_NAME,  # the same for every run, so a new deployment replaces the last one
        pipeline_step_name=context.step_run.name,
        run_name=context.pipeline_run.name,
    )
    url = f"http://{deployment.host}:{port}"
    token = os.environ.get(API_TOKEN_ENV)
    service, result = release(
        config, deployment.ready_timeout_s, lambda: smoke_test(url, plan.model_version, plan.format, token=token)
    )
    record = DeploymentRecord(
        url=url, bento_tag=bento.bento_tag, model_version=plan.model_version, format=plan.format,
        service_id=str(service.uuid), smoke_test=result,
    )  # fmt: skip
    log_metadata(metadata={"deployment": record.model_dump()}, model_version_id=plan.model_version_id)
    logger.info("Deployed %s at %s; smoke test passed (top-1 %s)", bento.bento_tag, url, result["top1"])
    return record
