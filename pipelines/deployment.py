"""The deployment pipeline: model version + format -> BentoML model + Bento -> model deployer -> smoke test."""

from zenml import pipeline

from har_core.config import DeploymentConfig
from har_core.runtime.settings import ServingConfig
from steps.build_bento import build_bento
from steps.deploy_bento import deploy_bento
from steps.select_deployment import select_deployment


@pipeline(enable_cache=False)
def deployment_pipeline(deployment: DeploymentConfig, serving: ServingConfig) -> None:
    """Wiring only; settings come from the run config's `parameters:` block (configs/deployment.yaml)."""
    plan = select_deployment(deployment=deployment)
    bento = build_bento(plan=plan, deployment=deployment, serving=serving)
    deploy_bento(plan=plan, bento=bento, deployment=deployment)
