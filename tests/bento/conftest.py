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
