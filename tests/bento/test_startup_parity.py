"""The service re-runs the export's parity gate at startup on the parity set its Bento model carries.

A model whose reference outputs were perturbed (what a host whose kernels disagree with training's would see)
keeps `bentoml serve` not ready under `startup_parity: require`, and serves with the failure reported under
`warn`; the result is in /metadata and in the log either way. (A good model's passing check: test_service.py's
metadata test, on the module's server.)
"""

from __future__ import annotations

import shutil
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import requests

from bento.serving_config import write_serving_config
from bento_ops.server import BentoServer, free_port, serve_command, start_server
from har_core.runtime.manifest import PARITY_SET_ROLE, ExportManifest, describe_file
from har_core.runtime.parity import load_parity_set, save_parity_set
from har_core.training.process_tree import stop_process_tree

SERVICE = "bento.service:HarClipService"


@pytest.fixture(scope="module")
def perturbed_model_tag(onnx_export_dir, tmp_path_factory) -> str:
    """The ONNX export with its reference logits rotated by one label (top-1 never agrees), re-hashed."""
    from bento_ops.packaging import save_bento_model

    directory = tmp_path_factory.mktemp("perturbed") / "onnx"
    shutil.copytree(onnx_export_dir, directory)
    manifest = ExportManifest.load(directory)
    path = manifest.path(directory, PARITY_SET_ROLE)
    pixels, (embeddings, logits) = load_parity_set(path)
    path.unlink()  # a new file, not a write through a hard link into the session's export
    save_parity_set(path, pixels, (embeddings, np.roll(logits, 1, axis=1)))
    files = {**manifest.files, PARITY_SET_ROLE: describe_file(directory, manifest.files[PARITY_SET_ROLE].path)}
    manifest.model_copy(update={"files": files}).save(directory)
    return str(save_bento_model(directory, model_name="har_clip_classifier", model_version="8").tag)


def _env(model_tag: str, serving_config, policy: str, directory) -> dict[str, str]:
    config = write_serving_config(serving_config.model_copy(update={"startup_parity": policy}), directory / "s.yaml")
    return {"HAR_CLIP_BENTO_MODEL": model_tag, "HAR_CLIP_SERVING_CONFIG": str(config)}


def _status(url: str, route: str) -> int | None:
    try:
        with urllib.request.urlopen(f"{url}{route}", timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def test_a_failed_parity_check_keeps_the_service_not_ready(perturbed_model_tag, serving_config, tmp_path):
    port, log = free_port(), tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}"
    env = _env(perturbed_model_tag, serving_config, "require", tmp_path)
    process = start_server(serve_command(SERVICE, port), log, env)
    try:
        deadline = time.monotonic() + 180
        while "Parity on this host" not in log.read_text(errors="replace") and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            time.sleep(0.5)
        time.sleep(2)  # the worker's app is up once it logged the check
        assert _status(url, "/livez") == 200
        assert [_status(url, "/readyz") for _ in range(3)] == [503, 503, 503]
        metadata = requests.post(f"{url}/metadata", json={}, timeout=30).json()["startup_parity"]
        assert metadata["checked"] and metadata["passed"] is False and metadata["policy"] == "require"
        assert any("top-1 agreement 0.0000" in failure for failure in metadata["result"]["failures"])
        assert "Parity on this host FAILED (NOT READY)" in log.read_text()
    finally:
        stop_process_tree(process)


def test_warn_serves_with_the_failure_reported(perturbed_model_tag, serving_config, tmp_path):
    log = tmp_path / "serve.log"
    with BentoServer(SERVICE, log, _env(perturbed_model_tag, serving_config, "warn", tmp_path)) as server:
        metadata = requests.post(f"{server.url}/metadata", json={}, timeout=30).json()["startup_parity"]
        assert metadata["passed"] is False and metadata["policy"] == "warn"
        files = {"image": ("x.jpg", _jpeg(), "image/jpeg")}
        assert requests.post(f"{server.url}/predict", files=files, timeout=60).status_code == 200
    assert "Parity on this host FAILED (serving anyway (startup_parity: warn))" in log.read_text()


def _jpeg() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (20, 120, 200)).save(buffer, "JPEG")
    return buffer.getvalue()
