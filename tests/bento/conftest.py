"""Serving tests: the bearer token, and one real server per way of serving for the whole session (the Bento and
image fixtures live in tests/conftest.py): `bentoml serve` of the Bento, and (marked `container`) its podman image
with host networking, restarted by podman when it exits (`--restart on-failure`). Every serving module uses these
two, so a session starts each server once; each is stopped with its whole process tree (or container) at the end.
"""

from __future__ import annotations

from pathlib import Path

import bentoml
import pytest

API_TOKEN = "test-token-for-har-clip"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture(scope="session", params=["bentoml-serve", pytest.param("container", marks=pytest.mark.container)])
def server(request, tmp_path_factory):
    from bento_ops.server import BentoServer

    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {"HAR_CLIP_API_TOKEN": API_TOKEN}
    if request.param == "container":
        from bento_ops.podman import ContainerServer

        running = ContainerServer(request.getfixturevalue("container_image"), log, env=env)
    else:
        running = BentoServer(str(request.getfixturevalue("onnx_bento").tag), log, env=env)
    with running:
        yield running


@pytest.fixture(scope="session")
def client(server):
    with bentoml.SyncHTTPClient(server.url, token=API_TOKEN) as http_client:
        yield http_client


@pytest.fixture(scope="session")
def sample_images(synthetic_root) -> list[Path]:
    from har_core.runtime.labels import HAR_LABELS

    return [sorted((synthetic_root / label).glob("*.jpg"))[0] for label in HAR_LABELS[:4]]
