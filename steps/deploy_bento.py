"""Step: deploy the Bento through the active stack's model deployer beside the running deployment, smoke-test it
over HTTP, and only then stop the previous one (`release`): a release never leaves nothing serving."""

import os
from collections.abc import Callable
from typing import Annotated, Any

from zenml import get_step_context, log_metadata, step
from zenml.client import Client
from zenml.integrations.bentoml.services.bentoml_local_deployment import BentoMLLocalDeploymentConfig
from zenml.logger import get_logger

from bento_ops.server import free_port
from bento_ops.smoke import smoke_test
from har_core.config import DeploymentConfig
from har_core.runtime.settings import API_TOKEN_ENV
from har_zenml.deployment_plan import BentoRecord, DeploymentPlan, DeploymentRecord, DeploymentRefusedError
from har_zenml.names import DEPLOYMENT_ARTIFACT, PROJECT_SERVICE_NAME

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
            "on a cluster, deploy the Bento's image with bento_ops/k8s/har-clip.yaml (see README, Kubernetes)."
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


def release(
    config: BentoMLLocalDeploymentConfig, timeout_s: int, smoke_test: Callable[[], dict[str, Any]]
) -> tuple[Any, dict[str, Any]]:
    """Start a server for `config` beside the running deployment, smoke-test it, then stop the previous one(s).

    A failed start or smoke test stops the new server only, and raises: the previous deployment keeps serving.
    Returns (the new service, the smoke test's result).
    """
    from stacks.bentoml_deployer import FLAVOR_NAME, HarBentoMLModelDeployer

    deployer = Client().active_stack.model_deployer
    if not isinstance(deployer, HarBentoMLModelDeployer):
        raise DeploymentRefusedError(
            f"The active stack's model deployer is not the {FLAVOR_NAME!r} flavor, which releases a new server "
            "beside the running one: run `python -m stacks.register local`."
        )
    previous = deployer.find_model_server(pipeline_name=PROJECT_SERVICE_NAME)
    # Not ZenML's continuous deployment mode: it stops the running server before the new one has even started.
    service = deployer.deploy_beside(config, timeout_s)
    try:
        result = smoke_test()
    except BaseException:
        deployer.delete_model_server(service.uuid, force=True)
        raise
    for old in previous:
        if old.uuid != service.uuid:
            deployer.delete_model_server(old.uuid, force=True)
    return service, result
