"""configs/inference_gpu_cluster.yaml: the scoring step goes through the step operator into a one-GPU pod, as
train_model does in training; checked with ZenML's and Kubernetes' own schemas (no cluster here)."""

import kubernetes_validate
import yaml
from kubernetes import client as k8s_client
from zenml.integrations.kubernetes.flavors.kubernetes_step_operator_flavor import KubernetesStepOperatorSettings
from zenml.integrations.kubernetes.manifest_utils import build_pod_manifest

from har_zenml.names import PREDICT_FILES_STEP
from har_zenml.run_config import check_zenml_run_settings, load_inference_run_config
from tests.conftest import PROJECT_ROOT

CONFIG = PROJECT_ROOT / "configs" / "inference_gpu_cluster.yaml"


def test_the_scoring_step_runs_in_a_gpu_pod_through_the_step_operator():
    parameters = load_inference_run_config(CONFIG)
    check_zenml_run_settings(CONFIG)
    assert parameters.inference.device == "cuda" and parameters.inference.input.source == "artifact_store"
    step = yaml.safe_load(CONFIG.read_text())["steps"][PREDICT_FILES_STEP]
    assert step["step_operator"] is True
    settings = KubernetesStepOperatorSettings.model_validate(step["settings"]["step_operator.kubernetes"])
    pod = build_pod_manifest(
        pod_name="har-clip-inference",
        image_name="registry.example.com/har-clip:test",
        command=["python", "-m", "zenml.entrypoints.step_entrypoint"],
        args=[],
        privileged=False,
        pod_settings=settings.pod_settings,
    )
    manifest = k8s_client.ApiClient().sanitize_for_serialization(pod)
    kubernetes_validate.validate({"apiVersion": "v1", "kind": "Pod", **manifest}, "1.30", strict=True)
    container = manifest["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert manifest["spec"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
