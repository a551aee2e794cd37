"""The Bento's podman image (marked `container`): ONNX serving holds no torch; its size is printed.

The HTTP behaviour of the running container is checked by tests/bento/test_service.py's `container` parameter.
"""

import pytest

pytestmark = pytest.mark.container


def test_the_onnx_image_has_no_torch_and_says_its_size(container_image, tmp_path):
    from bento.podman import ContainerServer, image_size_bytes

    size = image_size_bytes(container_image)
    print(f"{container_image}: {size / 1e9:.2f} GB")
    with ContainerServer(container_image, tmp_path / "container.log") as server:
        probe = server.exec("/app/.venv/bin/python", "-c", "import onnxruntime, bentoml; import torch")
        assert probe.returncode != 0 and "No module named 'torch'" in probe.stderr, probe.stderr
        packages = set(server.exec("ls", "/app/.venv/lib/python3.11/site-packages").stdout.split())
    assert {"onnxruntime", "bentoml", "har_core"} & packages == {"onnxruntime", "bentoml"}  # har_core is in src/
    assert not {"torch", "zenml", "mlflow", "wandb", "dvc", "transformers"} & packages
    assert size < 2e9


def test_the_kubernetes_deployment_runs_under_podman_kube_play(container_image, tmp_path):
    """bento/k8s/har-clip.yaml's Deployment with the test image. Ports are dropped (probes use the number) so
    nothing is published on the host: the check runs inside the pod. podman turns httpGet probes into `curl`
    health checks, which this curl-less image cannot run, so their state is not asserted (kubelet needs no curl)."""
    import subprocess

    import yaml

    from bento.podman import podman_env
    from tests.conftest import PROJECT_ROOT

    deployment = next(yaml.safe_load_all((PROJECT_ROOT / "bento" / "k8s" / "har-clip.yaml").read_text()))
    name = f"har-clip-kube-{container_image.rsplit(':', 1)[1][:8]}"
    deployment["metadata"]["name"] = name
    deployment["spec"]["replicas"] = 1
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container.update(image=f"localhost/{container_image}", imagePullPolicy="Never", env=[])
    container.pop("ports")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        container[probe]["httpGet"]["port"] = 3000
    manifest = tmp_path / "deployment.yaml"
    manifest.write_text(yaml.safe_dump(deployment))
    env = podman_env()
    played = subprocess.run(["podman", "kube", "play", str(manifest)], env=env, capture_output=True, text=True)
    try:
        assert played.returncode == 0, played.stderr
        pod_container = f"{name}-pod-0-{container['name']}"
        probe = "import time, urllib.request as u\n" + (
            "for _ in range(120):\n"
            "    try:\n"
            "        print(u.urlopen('http://127.0.0.1:3000/readyz').status); break\n"
            "    except OSError:\n"
            "        time.sleep(1)\n"
        )
        ready = subprocess.run(
            ["podman", "exec", pod_container, "/app/.venv/bin/python", "-c", probe],
            env=env, capture_output=True, text=True, timeout=200,
        )  # fmt: skip
        assert ready.stdout.strip() == "200", ready.stderr
        health = subprocess.run(
            ["podman", "inspect", "--format", "{{.Config.Healthcheck.Test}}", pod_container],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert "/livez" in health.stdout  # the liveness probe became the container's health check
    finally:
        subprocess.run(["podman", "kube", "down", str(manifest)], env=env, capture_output=True)
