"""Shared by the service, architecture and container tests: the tiny model's ONNX export as a BentoML model and a
Bento built from it (session-scoped: built once)."""

from __future__ import annotations

import pytest

API_TOKEN = "test-token-for-har-clip"


@pytest.fixture(scope="session")
def serving_config():
    from har_core.config import ServingConfig

    # Small limits so the limit tests send small bodies; a batching deadline long enough for 200 queued requests.
    return ServingConfig(max_batch_size=16, max_latency_ms=20_000, max_request_bytes=1024 * 1024, max_custom_labels=8)


@pytest.fixture(scope="session")
def onnx_export_dir(tiny_exports):
    return tiny_exports.directory("onnx")


@pytest.fixture(scope="session")
def bento_model(onnx_export_dir):
    from bento.packaging import save_bento_model

    return save_bento_model(onnx_export_dir, model_name="har_clip_classifier", model_version="7")


@pytest.fixture(scope="session")
def onnx_bento(bento_model, serving_config):
    from bento.packaging import build_bento

    return build_bento(str(bento_model.tag), "onnx", serving_config)


@pytest.fixture(scope="session")
def container_image(bento_model, serving_config, tmp_path_factory):
    """The Bento (on the local bookworm base image) containerised with podman; skipped where podman cannot run."""
    from bento.packaging import build_bento
    from bento.podman import containerize, ensure_base_image, missing_container_tools

    reason = missing_container_tools()
    if reason:
        pytest.skip(f"container path unavailable: {reason}")
    bento = build_bento(str(bento_model.tag), "onnx", serving_config, base_image=ensure_base_image())
    log = tmp_path_factory.mktemp("containerize") / "containerize.log"
    return containerize(str(bento.tag), f"har-clip-test:{bento.tag.version}", log)
