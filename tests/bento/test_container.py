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
