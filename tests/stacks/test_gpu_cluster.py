"""The gpu-cluster stack file and its run configs, checked with ZenML's and Kubernetes' own schemas.

No cluster is reachable here: the Kubernetes Job the step operator would submit is built with ZenML's
manifest builders from the config's settings and validated against the Kubernetes API schema.
"""

import kubernetes_validate
import pytest
import yaml
from kubernetes import client as k8s_client
from zenml.enums import StackComponentType
from zenml.integrations.kubernetes.flavors.kubernetes_step_operator_flavor import KubernetesStepOperatorSettings
from zenml.integrations.kubernetes.manifest_utils import (
    build_job_manifest,
    build_pod_manifest,
    pod_template_manifest_from_pod,
)
from zenml.stack import Flavor

from har_core.config import MultiNodeTrainingParameters, TrainingPipelineParameters
from har_zenml.run_config import load_training_run_config
from stacks.register import expand, expansion_context, load_stack_spec
from tests.conftest import PROJECT_ROOT

CLUSTER_CONFIGS = {
    "training_gpu_cluster.yaml": ("train_model", TrainingPipelineParameters),
    "training_multinode.yaml": ("train_on_nodes", MultiNodeTrainingParameters),
}


def test_every_gpu_cluster_component_is_valid_for_its_flavor(zenml_client):
    """Each component's configuration, with `${VAR:-default}` filled as registration fills it, validates against its
    flavor's config class (secret references stand in as plain values: their secrets exist only on a cluster)."""
    spec = load_stack_spec("gpu-cluster")
    assert spec.components["step_operator"][0].flavor == "kubernetes"
    context = expansion_context()
    for type_name, components in spec.components.items():
        for component in components:
            flavor = zenml_client.get_flavor_by_name_and_type(component.flavor, StackComponentType(type_name))
            configuration = {
                key: "secret-value" if isinstance(value, str) and value.startswith("{{") else value
                for key, value in expand(component.configuration, context).items()
            }
            Flavor.from_model(flavor).config_class(**configuration)


@pytest.mark.parametrize("name", sorted(CLUSTER_CONFIGS))
def test_the_train_pod_asks_for_gpus_and_shared_memory(name):
    step_name, schema = CLUSTER_CONFIGS[name]
    path = PROJECT_ROOT / "configs" / name
    parameters = load_training_run_config(path, schema=schema)
    assert parameters.training.distributed.strategy in ("ddp", "fsdp")
    step = yaml.safe_load(path.read_text())["steps"][step_name]
    assert step["step_operator"] is True
    settings = KubernetesStepOperatorSettings.model_validate(step["settings"]["step_operator.kubernetes"])
    if schema is MultiNodeTrainingParameters:
        assert settings.pod_count == parameters.nodes > 1
    pod = build_pod_manifest(
        pod_name=None,
        image_name="registry.example.com/har-clip:test",
        command=["python", "-m", "har_zenml.multinode_node"],
        args=[],
        privileged=False,
        pod_settings=settings.pod_settings,
    )
    job = build_job_manifest(
        job_name="har-clip-train", pod_template=pod_template_manifest_from_pod(pod), pod_count=settings.pod_count
    )
    manifest = {"apiVersion": "batch/v1", "kind": "Job", **k8s_client.ApiClient().sanitize_for_serialization(job)}
    kubernetes_validate.validate(manifest, "1.30", strict=True)
    spec = manifest["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "4"
    assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "32Gi"}} in spec["volumes"]
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"]
    assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
