"""Stack registration against a real (clean) ZenML store."""

import click
import pytest
import yaml
from zenml.enums import StackComponentType
from zenml.models import FlavorFilter

from stacks.register import (
    WANDB_PLACEHOLDER_KEY,
    ComponentSpec,
    StackSpec,
    expand,
    load_stack_spec,
    register_stack,
)
from tests.conftest import PROJECT_ROOT


def test_local_stack_is_registered_idempotently(zenml_client):
    spec = load_stack_spec("local")
    register_stack(spec, activate=True)
    register_stack(spec, activate=True)
    stack = zenml_client.get_stack("local")
    names = {kind.value: sorted(c.name for c in found) for kind, found in stack.components.items()}
    assert names == {
        "orchestrator": ["local_orchestrator"],
        "artifact_store": ["local_artifact_store"],
        "experiment_tracker": ["mlflow_local", "wandb_local"],
        "model_deployer": ["bentoml_local"],
        "step_operator": ["local_process"],
    }
    assert stack.components[StackComponentType.STEP_OPERATOR][0].flavor_name == "local_process"
    assert stack.components[StackComponentType.MODEL_DEPLOYER][0].flavor_name == "har_bentoml"
    assert len(zenml_client.zen_store.list_flavors(FlavorFilter(name="har_bentoml")).items) == 1
    assert zenml_client.active_stack_model.name == "local"
    assert [component.flavor_name for component in stack.components[next(iter(stack.components))]]
    assert len(zenml_client.list_stacks(name="local").items) == 1


def test_a_conflicting_component_is_an_error_not_an_overwrite(zenml_client):
    spec = StackSpec(
        name="conflict",
        components={
            "experiment_tracker": [
                ComponentSpec(
                    name="mlflow_local", flavor="mlflow", configuration={"tracking_uri": "http://127.0.0.1:1"}
                )
            ]
        },
    )
    with pytest.raises(click.ClickException, match="already exists"):
        register_stack(spec, activate=False)
    assert (
        zenml_client.get_stack_component("experiment_tracker", "mlflow_local").configuration.get("tracking_uri") is None
    )


def test_unknown_stack_name_lists_the_known_ones():
    with pytest.raises(click.ClickException, match="local"):
        load_stack_spec("no-such-stack")


def _wandb_only_spec(suffix: str) -> StackSpec:
    """The local stack file's W&B secret and tracker, renamed so the session's `local` stack is left alone."""
    text = (PROJECT_ROOT / "stacks" / "local.yaml").read_text()
    for old in ("name: wandb", "{{wandb."):
        text = text.replace(old, old.replace("wandb", f"wandb{suffix}"))
    spec = StackSpec(**yaml.safe_load(text))
    return spec.model_copy(update={"name": f"keytest{suffix}"})


def test_wandb_key_lives_in_a_secret_offline_placeholder_without_one(zenml_client, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    register_stack(_wandb_only_spec("_a"), activate=False)
    secret = zenml_client.get_secret_by_name_and_private_status("wandb_a")
    assert secret.secret_values == {"api_key": WANDB_PLACEHOLDER_KEY}
    tracker = zenml_client.get_stack_component("experiment_tracker", "wandb_a_local")
    assert tracker.configuration["api_key"] == "{{wandb_a.api_key}}" and tracker.environment == {
        "WANDB_MODE": "offline"
    }

    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    register_stack(_wandb_only_spec("_a"), activate=False)
    assert zenml_client.get_secret_by_name_and_private_status("wandb_a").secret_values == {"api_key": "k" * 40}
    tracker = zenml_client.get_stack_component("experiment_tracker", "wandb_a_local")
    assert tracker.environment == {"WANDB_MODE": "online"} and "k" * 40 not in str(tracker.configuration)

    monkeypatch.delenv("WANDB_API_KEY")
    register_stack(_wandb_only_spec("_a"), activate=False)  # the stored key is kept, never replaced by a placeholder
    assert zenml_client.get_secret_by_name_and_private_status("wandb_a").secret_values == {"api_key": "k" * 40}


def test_stack_files_hold_no_credentials():
    for path in (PROJECT_ROOT / "stacks").glob("*.yaml"):
        spec = load_stack_spec(str(path))
        for components in spec.components.values():
            for component in components:
                for key, value in component.configuration.items():
                    if any(word in key for word in ("key", "secret", "token", "password", "username")):
                        assert str(value).startswith("{{") and str(value).endswith("}}"), (path.name, key)


def test_a_missing_environment_variable_is_named():
    with pytest.raises(click.ClickException, match="HAR_NO_SUCH_VARIABLE"):
        expand({"endpoint": "${HAR_NO_SUCH_VARIABLE}"}, {})
    assert expand(["${A:-x}", "${B}"], {"B": "y"}) == ["x", "y"]


def test_gpu_cluster_registers_offline_with_every_component_and_no_credentials(zenml_client):
    from click.testing import CliRunner
    from zenml.cli.cli import cli

    register_stack(load_stack_spec("gpu-cluster"), activate=False)
    stack = zenml_client.get_stack("gpu-cluster")
    flavors = {kind.value: sorted(c.flavor_name for c in found) for kind, found in stack.components.items()}
    assert flavors == {
        "orchestrator": ["kubernetes"],
        "step_operator": ["kubernetes"],
        "artifact_store": ["s3"],
        "experiment_tracker": ["mlflow", "wandb"],
        "container_registry": ["default"],
        "image_builder": ["kaniko"],
    }
    mlflow_tracker = zenml_client.get_stack_component("experiment_tracker", "mlflow_cluster")
    assert mlflow_tracker.configuration["tracking_password"] == "{{mlflow_cluster.password}}"
    assert zenml_client.active_stack_model.name == "local"
    described = CliRunner().invoke(cli, ["stack", "describe", "gpu-cluster"])
    assert described.exit_code == 0 and "k8s_gpu_step_operator" in described.output
