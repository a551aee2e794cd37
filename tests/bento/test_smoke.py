"""The release smoke test calls every route with real media, so a release with one broken route never replaces a
working deployment (it used to call /metadata and /predict only)."""

from __future__ import annotations

import pytest
import yaml

from bento_ops.smoke import SmokeTestError, smoke_test
from tests.bento.conftest import API_TOKEN

pytestmark = pytest.mark.slow


def test_a_working_server_passes_on_every_route(server):
    result = smoke_test(server.url, "7", "onnx", token=API_TOKEN)
    assert result["routes"] == ["metadata", "predict", "predict_batch", "predict_video", "classify"]


def test_a_release_whose_video_route_refuses_every_clip_fails_naming_the_route(onnx_bento, serving_config, tmp_path):
    """The same Bento, served with a video limit no clip fits: /predict still answers, the release must not pass."""
    from bento_ops.server import BentoServer

    broken = serving_config.model_copy(update={"video": serving_config.video.model_copy(update={"max_bytes": 1024})})
    config = tmp_path / "serving.yaml"
    config.write_text(yaml.safe_dump(broken.model_dump(mode="json")))
    env = {"HAR_CLIP_SERVING_CONFIG": str(config)}
    with (
        BentoServer(str(onnx_bento.tag), tmp_path / "serve.log", env=env) as running,
        pytest.raises(SmokeTestError, match=r"/predict_video answered 413"),
    ):
        smoke_test(running.url, "7", "onnx")
