"""The viewer's backends: hostile videos are a clear message for the page, never a traceback; every answer carries
its calibrated verdict (or reads as uncalibrated from a Bento older than calibration)."""

from __future__ import annotations

import json

import pytest

from har_core.runtime.predictor import Predictor
from tests import hostile_media
from tests.viewer.unsure_images import judged_image
from viewer.backends import LocalBackend, PredictionRequestError, bento_answer


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


def test_the_local_answer_carries_the_exports_verdict_and_threshold(backend, synthetic_root):
    """The calibrated export's own verdict on an image it abstains on and one it answers, and the threshold each
    answer was held to (the zero-shot one for custom labels)."""
    predictor, calibration = backend.predictor, backend.predictor.calibration
    extra = sorted(synthetic_root.glob("*/*.jpg"))
    for abstained in (True, False):
        image = judged_image(predictor, abstained, extra)
        answer = backend.predict(image, b"", "image.png", top_k=3)
        expected = predictor.classify([image], top_k=3)[0]
        assert answer.abstained is abstained and answer.calibrated
        assert answer.verdict == expected.verdict and answer.predictions == expected.predictions
        assert answer.threshold == calibration.abstain_below
        assert (answer.verdict.confidence < answer.threshold) is abstained
        assert answer.verdict.confidence == answer.predictions[0].score and answer.verdict.ood_score is not None
    custom = backend.predict(image, b"", "image.png", top_k=2, labels=["juggling", "rowing"])
    assert custom.threshold == calibration.zero_shot_abstain_below


def test_bento_answers_are_read_with_their_verdict_and_older_ones_as_uncalibrated(backend, synthetic_root):
    """`/predict`'s JSON as the Bento sends it (the verdict's flat fields, `calibration`, `abstain_below`), and as a
    Bento older than calibration sent it: no verdict, so the top score is the confidence and nothing abstains."""
    predictor = backend.predictor
    image = judged_image(predictor, abstained=True, extra=sorted(synthetic_root.glob("*/*.jpg")))
    answer = predictor.classify([image], top_k=3)[0]
    older = {
        "predictions": [p.model_dump() for p in answer.predictions],
        "model": {"name": "tiny", "version": "1", "format": "onnx"},
        "inference_ms": 4.2,
    }
    current = {
        **older,
        **answer.verdict.model_dump(),
        "calibration": "own-labels",
        "abstain_below": predictor.calibration.abstain_below,
    }
    read = bento_answer(json.loads(json.dumps(current)))
    assert read.verdict == answer.verdict and read.abstained and read.calibrated
    assert read.threshold == predictor.calibration.abstain_below and read.predictions == answer.predictions
    old = bento_answer(json.loads(json.dumps(older)))
    assert not old.calibrated and not old.abstained and old.threshold is None
    assert old.verdict.confidence == answer.predictions[0].score and old.verdict.ood_score is None
    assert old.model == {"name": "tiny", "version": "1", "format": "onnx"} and old.inference_ms == 4.2
