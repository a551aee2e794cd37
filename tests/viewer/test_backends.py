"""The viewer's local backend on hostile videos: a clear message for the page, never a traceback."""

from __future__ import annotations

import pytest

from har_core.runtime.predictor import Predictor
from tests import hostile_media
from viewer.backends import LocalBackend, PredictionRequestError


@pytest.fixture(scope="module")
def backend(onnx_export_dir) -> LocalBackend:
    return LocalBackend(Predictor.from_export(onnx_export_dir, device="cpu"), {"name": "tiny", "version": "1"})


def test_hostile_videos_are_a_message_and_latin1_tags_are_scored(backend, tmp_path):
    lie = hostile_media.lying_dimensions(tmp_path / "lie.mov")
    with pytest.raises(PredictionRequestError, match="lie.mov: the decoder refused its frames: over max_frame_pixels"):
        backend.predict_video(lie.read_bytes(), "lie.mov", top_k=3)
    playlist = hostile_media.hls_playlist(tmp_path / "playlist.mp4")
    with pytest.raises(PredictionRequestError, match="playlist.mp4: not a readable video"):
        backend.predict_video(playlist.read_bytes(), "playlist.mp4", top_k=3)
    tagged = hostile_media.tagged_video(tmp_path / "camera.mkv", "matroska", b"Caf\xe9")
    answer = backend.predict_video(tagged.read_bytes(), "camera.mkv", top_k=3)
    assert answer.frames and answer.segments
