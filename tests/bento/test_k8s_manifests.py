"""The Kubernetes manifests under bento_ops/k8s/ are valid against the API schemas and wire up as intended."""

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.conftest import PROJECT_ROOT

K8S_DIR = PROJECT_ROOT / "bento_ops" / "k8s"
K8S_VERSION = "1.30.0"
MANIFESTS = {"cpu": K8S_DIR / "har-clip.yaml", "gpu": K8S_DIR / "har-clip-gpu.yaml"}


def _documents(path: Path) -> dict[str, dict]:
    return {document["kind"]: document for document in yaml.safe_load_all(path.read_text())}


@pytest.mark.parametrize("variant", sorted(MANIFESTS))
def test_every_document_passes_strict_schema_validation(variant):
    documents = _documents(MANIFESTS[variant])
    assert set(documents) == {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    for document in documents.values():
        kubernetes_validate.validate(document, K8S_VERSION, strict=True)


def test_the_validator_rejects_a_misspelt_field():
    deployment = _documents(MANIFESTS["cpu"])["Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/readyz"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


@pytest.mark.parametrize("variant", sorted(MANIFESTS))
def test_probes_service_and_autoscaler_point_at_the_bento(variant):
    documents = _documents(MANIFESTS[variant])
    deployment, service, hpa = documents["Deployment"], documents["Service"], documents["HorizontalPodAutoscaler"]
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] in ("/livez", "/healthz")
    assert container["ports"][0]["containerPort"] == 3000 and "3000" in container["args"]
    scrape = pod["metadata"]["annotations"]  # Prometheus's pod discovery (bento_ops/monitoring/prometheus.yml)
    assert scrape == {"prometheus.io/scrape": "true", "prometheus.io/port": "3000", "prometheus.io/path": "/metrics"}
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    token = next(env for env in container["env"] if env["name"] == "HAR_CLIP_API_TOKEN")
    assert token["valueFrom"]["secretKeyRef"]["optional"] is True
    gpu_limit = container["resources"]["limits"].get("nvidia.com/gpu")
    assert gpu_limit == (1 if variant == "gpu" else None)


@pytest.mark.parametrize("variant", sorted(MANIFESTS))
def test_pods_run_non_root_read_only_and_drain_within_their_grace_period(variant):
    """Non-root (BentoML's uid 1034), no privilege escalation, read-only root with emptyDirs where BentoML writes,
    a grace period that covers the preStop pause plus the serving timeout, and a PDB over the same pods."""
    from bento.serving_config import load_serving_config

    documents = _documents(MANIFESTS[variant])
    pod = documents["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 1034
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False and security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    assert set(mounts) == {"/tmp", "/home/bentoml/bentoml", "/home/bentoml/.cache", "/home/bentoml/records"}
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["BENTOML_HOME"] == "/home/bentoml/bentoml"  # the image's own is /home/bentoml/, which holds the Bento
    assert {volume["name"] for volume in pod["volumes"] if "emptyDir" in volume} == set(mounts.values())
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + load_serving_config().timeout_s
    pdb = documents["PodDisruptionBudget"]
    labels = documents["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


def _mebibytes(quantity: str) -> float:
    return float(quantity.removesuffix("Mi")) if quantity.endswith("Mi") else float(quantity.removesuffix("Gi")) * 1024


@pytest.mark.parametrize("variant", sorted(MANIFESTS))
def test_records_have_a_volume_they_fit_and_a_sidecar_ships_them(variant):
    """The server writes its records (bento/records.py) to a volume of their own, larger than their cap; a native
    sidecar (an init container that restarts, so it outlives the server) mounts it read-only and copies the closed
    files every minute and everything when it is stopped; it runs as locked down as the server."""
    from bento.serving_config import load_serving_config

    pod = _documents(MANIFESTS[variant])["Deployment"]["spec"]["template"]["spec"]
    (server,) = pod["containers"]
    env = {item["name"]: item.get("value") for item in server["env"]}
    mounts = {mount["name"]: mount["mountPath"] for mount in server["volumeMounts"]}
    assert env["HAR_CLIP_RECORDS_DIR"] == mounts["records"]
    volume = next(volume for volume in pod["volumes"] if volume["name"] == "records")
    records = load_serving_config().records
    assert records.max_total_mb + 64 <= _mebibytes(volume["emptyDir"]["sizeLimit"])
    (shipper,) = pod["initContainers"]
    assert shipper["restartPolicy"] == "Always"
    assert shipper["volumeMounts"] == [{"name": "records", "mountPath": "/records", "readOnly": True}]
    script = shipper["args"][0]
    assert "/records/predictions" in script and "--exclude 'live.*'" in script and "trap 'ship; exit 0' TERM" in script
    assert shipper["securityContext"] == server["securityContext"]
