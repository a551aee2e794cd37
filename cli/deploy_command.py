"""`run.py --pipeline deployment` and the commands `run.py --command undeploy|rollback`: run, print where the
deployment is, and say why that format."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click
import yaml

from har_zenml.deployment_plan import DeploymentRefusedError
from har_zenml.names import DEPLOY_STEP, DEPLOYMENT_ARTIFACT, DEPLOYMENT_PLAN_ARTIFACT, SELECT_DEPLOYMENT_STEP
from har_zenml.run_config import RunConfigError, check_zenml_run_settings, load_deployment_run_config


def run_deployment_command(command: str, config_path: Path) -> None:
    try:
        if command == "undeploy":
            return _undeploy()
        parameters = load_deployment_run_config(config_path)
        check_zenml_run_settings(config_path)
        if command == "rollback":
            return _rollback(config_path)
        from cli.release_ops import check_requested_format

        check_requested_format(parameters.deployment.model_version, parameters.deployment.format)
        _deploy(config_path)
    except (RunConfigError, DeploymentRefusedError) as error:
        raise click.ClickException(str(error)) from error


def _undeploy() -> None:
    from cli.release_ops import undeploy

    removed = undeploy()
    click.echo("Removed: " + ", ".join(removed) if removed else "No deployment to remove.")


def _rollback(config_path: Path) -> None:
    """Deploy the version to restore first; stages move only once its deployment passed the smoke test (a failed
    one leaves stages and the running deployment as they were)."""
    from cli.release_ops import apply_rollback, rollback_plan

    current, restored = rollback_plan()
    click.echo(f"Rolling back from version {current} to version {restored}: deploying version {restored} first.")
    config = yaml.safe_load(config_path.read_text()) or {}
    config.setdefault("parameters", {}).setdefault("deployment", {})["model_version"] = restored
    path = Path(tempfile.mkdtemp(prefix="har-clip-rollback-")) / "deployment.yaml"
    path.write_text(yaml.safe_dump(config))
    try:
        _deploy(path)
    except click.ClickException as error:
        error.message += f"\nRollback not applied: version {current} is still production and still deployed."
        raise
    apply_rollback(current, restored)
    click.echo(f"Rolled back: version {restored} is production again; version {current} is archived.")


def _deploy(config_path: Path) -> None:
    from zenml.client import Client

    from cli.run_summary import failure_lines, latest_run_id, run_since
    from pipelines.deployment import deployment_pipeline

    previous_run = latest_run_id(deployment_pipeline.name)
    try:
        run = deployment_pipeline.with_options(config_path=str(config_path))()
    except RuntimeError as error:  # a failed step: its own message is the useful part
        failed = run_since(deployment_pipeline.name, previous_run)
        raise click.ClickException("\n".join(failure_lines(failed)) if failed else str(error)) from error
    run = Client().get_pipeline_run(run.id)
    plan = run.steps[SELECT_DEPLOYMENT_STEP].outputs[DEPLOYMENT_PLAN_ARTIFACT][0].load()
    deployed = run.steps[DEPLOY_STEP].outputs[DEPLOYMENT_ARTIFACT][0].load()
    click.echo(f"\nDeployed {plan.model_name} version {plan.model_version} as {plan.format}: {plan.reason}.")
    click.echo(f"Bento {deployed.bento_tag} at {deployed.url} (smoke test passed: {deployed.smoke_test['top1']}).")
    click.echo(f"Try: curl -F image=@photo.jpg {deployed.url}/predict")
