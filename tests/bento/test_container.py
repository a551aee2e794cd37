"""The Bento's podman image (marked `container`): ONNX serving holds no torch; its size is printed; it runs as
BentoML's non-root user, serves from the Kubernetes manifest's read-only root filesystem, and drains on SIGTERM.

The HTTP behaviour of the running container is checked by tests/bento/test_service.py's `container` parameter.
"""

import io
import socket
import subprocess
import time
import uuid

import pytest
import requests
import yaml
from PIL import Image

from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.container

BENTO_UID = 1034  # BentoML's Dockerfile: `useradd -u 1034 bentoml`, then `USER bentoml`
PREDICT_IN_POD = """
import urllib.request
head = b'--x\\r\\nContent-Disposition: form-data; name="image"; filename="a.jpg"\\r\\n\\r\\n'
body = head + IMAGE + b'\\r\\n--x--\\r\\n'
headers = {'Content-Type': 'multipart/form-data; boundary=x'}
request = urllib.request.Request('http://127.0.0.1:3000/predict', body, headers)
print(urllib.request.urlopen(request).status)
"""


def test_the_onnx_image_has_no_torch_and_says_its_size(container_image, tmp_path):
    from bento_ops.podman import ContainerServer, image_size_bytes

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
    """bento_ops/k8s/har-clip.yaml's Deployment with the test image: its securityContext (uid 1034, read-only root
    filesystem, emptyDirs where BentoML writes) is what the pod runs with, and a prediction succeeds in it. Ports
    are dropped (probes use the number) so nothing is published on the host: the check runs inside the pod.
    podman turns httpGet probes into `curl` health checks, which this curl-less image cannot run, so their state
    is not asserted (kubelet needs no curl)."""
    from bento_ops.podman import podman_env

    deployment = next(yaml.safe_load_all((PROJECT_ROOT / "bento_ops" / "k8s" / "har-clip.yaml").read_text()))
    name = f"har-clip-kube-{container_image.rsplit(':', 1)[1][:8]}"
    deployment["metadata"]["name"] = name
    deployment["spec"]["replicas"] = 1
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    deployment["spec"]["template"]["spec"].pop("initContainers")  # the records shipper needs a store to ship to
    env_vars = [item for item in container["env"] if "value" in item]  # BENTOML_HOME, the records; not the secret
    container.update(image=f"localhost/{container_image}", imagePullPolicy="Never", env=env_vars)
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
        with_image = f"IMAGE = bytes.fromhex('{_jpeg().hex()}')\n" + PREDICT_IN_POD
        predicted = subprocess.run(
            ["podman", "exec", pod_container, "/app/.venv/bin/python", "-c", with_image],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert predicted.stdout.strip() == "200", predicted.stderr
        files = "glob.glob('/home/bentoml/records/predictions/*.jsonl')"
        count_rows = f"import glob; print(sum(1 for path in {files} for _ in open(path)))"
        recorded = subprocess.run(
            ["podman", "exec", pod_container, "/app/.venv/bin/python", "-c", count_rows],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert recorded.stdout.strip() == "1", recorded.stderr  # the prediction's row, on the records volume
        writes = subprocess.run(
            ["podman", "exec", pod_container, "/app/.venv/bin/python", "-c",
             "import os; print(os.getuid()); open('/home/bentoml/bento/x', 'w')"],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert writes.stdout.strip() == str(BENTO_UID) and "Read-only file system" in writes.stderr, writes.stderr
        health = subprocess.run(
            ["podman", "inspect", "--format", "{{.Config.Healthcheck.Test}}", pod_container],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert "/livez" in health.stdout  # the liveness probe became the container's health check
    finally:
        subprocess.run(["podman", "kube", "down", str(manifest)], env=env, capture_output=True)


def test_the_image_runs_as_bentomls_non_root_user(container_image):
    """What the manifests' `runAsUser: 1034` / `runAsNonRoot` rely on."""
    from bento_ops.podman import podman_env

    def inspect(field: str) -> str:
        result = subprocess.run(
            ["podman", "image", "inspect", "--format", field, container_image],
            env=podman_env(), capture_output=True, text=True, check=True,
        )  # fmt: skip
        return result.stdout.strip()

    assert inspect("{{.Config.User}}") == "bentoml"
    command = ["podman", "run", "--rm", "--entrypoint", "id", container_image]
    ids = subprocess.run(command, env=podman_env(), capture_output=True, text=True)
    assert ids.stdout.startswith(f"uid={BENTO_UID}(bentoml) gid={BENTO_UID}(bentoml)"), ids.stdout + ids.stderr
    manifest = next(yaml.safe_load_all((PROJECT_ROOT / "bento_ops" / "k8s" / "har-clip.yaml").read_text()))
    assert manifest["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == BENTO_UID


def test_sigterm_drains_the_request_in_flight_refuses_new_ones_and_exits_0(container_image, tmp_path):
    """`podman stop` (SIGTERM, as the kubelet sends) while a /predict request is in flight (its body half sent):
    that request still gets its 200, a new connection is refused, the container exits 0 well within the grace."""
    from bento_ops.podman import ContainerServer, podman_env

    server = ContainerServer(container_image, tmp_path / "container.log")
    try:
        body, content_type = _multipart(_jpeg())
        head = (
            f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        in_flight = socket.create_connection(("127.0.0.1", server.port), timeout=60)
        in_flight.sendall(head + body[: len(body) // 2])
        time.sleep(1.0)
        started = time.monotonic()
        stop = subprocess.Popen(
            ["podman", "stop", "-t", "45", server.name], env=podman_env(), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        time.sleep(3.0)  # SIGTERM delivered: the server is draining
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{server.url}/readyz", timeout=5)
        in_flight.sendall(body[len(body) // 2 :])
        answer = _read_all(in_flight)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
        assert b'"predictions"' in answer
        assert stop.wait(timeout=60) == 0, stop.stdout.read()
        stopped_after = time.monotonic() - started
        state = subprocess.run(
            ["podman", "inspect", "--format", "{{.State.ExitCode}}", server.name],
            env=podman_env(), capture_output=True, text=True, check=True,
        )  # fmt: skip
        print(f"SIGTERM -> container exited {state.stdout.strip()} after {stopped_after:.1f} s")
        assert state.stdout.strip() == "0" and stopped_after < 45
    finally:
        server.stop()


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (30, 160, 90)).save(buffer, "JPEG")
    return buffer.getvalue()


def _multipart(image: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + image
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def _read_all(connection: socket.socket) -> bytes:
    chunks = []
    while chunk := connection.recv(65536):
        chunks.append(chunk)
    connection.close()
    return b"".join(chunks)
