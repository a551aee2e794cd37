"""Stack registration against a real (clean) ZenML store."""

import click
import pytest
from zenml.enums import StackComponentType
from zenml.models import FlavorFilter

from stacks.register import ComponentSpec, StackSpec, load_stack_spec, register_stack


def test_local_stack_is_registered_idempotently(zenml_client):
    spec = load_stack_spec("local")
    register_stack(spec, activate=True)
    register_stack(spec, activate=True)
    stack = zenml_client.get_stack("local")
    names = {kind.value: sorted(c.name for c in found) for kind, found in stack.components.items()}
    assert names == {
        "orchestrator": ["local_orchestrator"],
        "artifact_store": ["local_artifact_store"],
        "experiment_tracker": ["mlflow_local"],
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
