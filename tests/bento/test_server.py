"""Starting `bentoml serve`: a service that cannot start is reported at once, with its error, not after the timeout.

BentoML's process manager restarts a worker whose service constructor raised, so the serve process itself lives on;
`wait_ready` reads the failure from the log.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import bentoml
import pytest

from bento_ops.server import BentoServer, ServerError


@pytest.fixture
def unreadable_model_tag(onnx_export_dir, tmp_path) -> str:
    """A stored model whose manifest gained a key this code does not know (an export from a newer version)."""
    from bento_ops.packaging import save_bento_model

    directory = tmp_path / "onnx"
    shutil.copytree(onnx_export_dir, directory)
    tag = str(save_bento_model(directory, model_name="har_clip_classifier", model_version="from-the-future").tag)
    stored = Path(bentoml.models.get(tag).path_of("export_manifest.json"))
    manifest = json.loads(stored.read_text())
    manifest["a_key_from_a_newer_version"] = 1
    stored.write_text(json.dumps(manifest))
    return tag


def test_a_service_that_fails_to_start_is_an_error_with_its_cause(unreadable_model_tag, tmp_path):
    env = {"HAR_CLIP_BENTO_MODEL": unreadable_model_tag}
    with pytest.raises(ServerError) as error:
        BentoServer("bento.service:HarClipService", tmp_path / "serve.log", env=env, ready_timeout_s=600)
    assert "failed to start" in str(error.value)  # not "did not answer 200 within 600 s"
    assert "a_key_from_a_newer_version" in str(error.value)  # the cause, from the log's tail
