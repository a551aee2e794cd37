"""`/predict_video` on the session's real server (tests/bento/conftest.py): segments of a two-label video, and a
4xx naming the problem for every bad video. The server's video limits are the small ones of tests/conftest.py's
`serving_config` (512 KiB, 30 s, 20 sampled frames, 320x240 frames, 7.68 Mpx and 2,000 frames decoded)."""

from __future__ import annotations

import pytest
import requests

from har_core.runtime.labels import HAR_LABELS
from tests.bento.conftest import AUTH
from tests.har_core.runtime.test_video import gradient_frames, jpeg_bytes
from tests.videos import encode_video, two_label_frames


def _post(server, files, data=None, headers=AUTH) -> requests.Response:
    return requests.post(f"{server.url}/predict_video", files=files, data=data, headers=headers, timeout=120)


def test_a_two_label_video_is_answered_with_its_segments_and_frame_scores(server, video_images):
    first, second = video_images
    frames = two_label_frames(first.frame(), second.frame(), 10, 6.0, 3.2)
    response = _post(server, {"video": ("two.webm", encode_video(frames, 10, "libvpx"), "video/webm")}, {"top_k": "2"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [segment["label"] for segment in body["segments"]] == [first.label, second.label]
    assert abs(body["segments"][0]["end_s"] - 3.2) <= 0.5  # one sampling step at the default 2 fps
    assert len(body["frames"]) == 12 and all(len(frame["predictions"]) == 2 for frame in body["frames"])
    assert {p["label"] for frame in body["frames"] for p in frame["predictions"]} <= set(HAR_LABELS)
    assert body["model"] == {"name": "har_clip_classifier", "version": "7", "format": "onnx"}
    assert body["video"]["codec"] == "vp8" and body["sample_fps"] == 2.0 and body["inference_ms"] > 0
    assert body["abstain_below"] > 0 and all(frame["ood_score"] is not None for frame in body["frames"])
    assert all(
        frame["abstained"] == (frame["predictions"][0]["score"] < body["abstain_below"]) for frame in body["frames"]
    )


def test_metadata_states_the_video_limits(client):
    limits = client.metadata()["limits"]["video"]
    assert limits["max_frames"] == 20 and limits["max_bytes"] == 512 * 1024


def _bad_videos() -> dict[str, tuple[dict, dict | None, int, str]]:
    small = encode_video(gradient_frames(10), 10, "mjpeg")
    return {
        "not a video": ({"video": ("a.mp4", b"no video in here" * 20, "video/mp4")}, None, 422, "not a readable"),
        "an image": ({"video": ("a.mp4", jpeg_bytes(), "video/mp4")}, None, 422, "not a supported video container"),
        "empty": ({"video": ("a.mp4", b"", "video/mp4")}, None, 422, "empty"),
        "truncated": ({"video": ("cut.avi", small[: len(small) // 2], "video/x-msvideo")}, None, 422, "cut.avi: "),
        "too long": (
            {"video": ("long.avi", encode_video(gradient_frames(31, 16, 16), 1, "mjpeg"), "video/x-msvideo")},
            None,
            413,
            "max_duration_s",
        ),
        "too many frames": (
            {"video": ("many.avi", encode_video(gradient_frames(25, 16, 16), 2, "mjpeg"), "video/x-msvideo")},
            None,
            413,
            "max_frames",
        ),
        "frames too large": (
            {"video": ("big.avi", encode_video(gradient_frames(2, 400, 300), 2, "mjpeg"), "video/x-msvideo")},
            None,
            413,
            "max_frame_pixels",
        ),
        "too many decoded pixels": (
            {"video": ("busy.mp4", encode_video(gradient_frames(110, 320, 240), 30, "mpeg4"), "video/mp4")},
            None,
            413,
            "max_decoded_pixels",
        ),
        "over max_bytes": ({"video": ("huge.mp4", b"\x00" * (600 * 1024), "video/mp4")}, None, 413, "limit"),
        "a text part": ({"video": ("a.txt", b"hello", "text/plain")}, None, 415, "not one of video/"),
        "missing file": ({"top_k": (None, "3")}, None, 400, "missing"),
        "top_k too big": ({"video": ("a.avi", small, "video/x-msvideo")}, {"top_k": "99"}, 400, "top_k"),
    }


@pytest.mark.parametrize("case", list(_bad_videos()))
def test_every_bad_video_is_a_4xx_that_names_the_problem(server, case):
    files, data, status, words = _bad_videos()[case]
    response = _post(server, files, data)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]


def test_a_video_call_needs_the_token(server):
    response = _post(server, {"video": ("a.avi", b"x", "video/x-msvideo")}, headers={})
    assert response.status_code == 401


def _hostile(tmp_path) -> dict[str, tuple[str, bytes, int, str]]:
    """tests/hostile_media.py's corpus at this server's limits: {kind: (file name, bytes, status, words)}."""
    from tests import hostile_media

    whole = hostile_media.many_frames(tmp_path / "whole.mp4", 200, side=64)
    made = {
        "lying dimensions": (
            hostile_media.lying_dimensions(tmp_path / "lie.mov", real_side=6000),
            413,
            "max_frame_pixels",
        ),
        # 7.5 s: within the duration and sampled-frame limits, over the frames decoded
        "many frames": (hostile_media.many_frames(tmp_path / "many.mp4", 3000, fps=400), 413, "max_decoded_frames"),
        "truncated": (hostile_media.truncated(tmp_path / "cut.mp4", whole), 422, "cut.mp4: "),
        "hls playlist": (hostile_media.hls_playlist(tmp_path / "playlist.mp4"), 422, "playlist.mp4: "),
        "zero length": (hostile_media.empty(tmp_path / "zero.mp4"), 422, "empty"),
    }
    return {kind: (path.name, path.read_bytes(), status, words) for kind, (path, status, words) in made.items()}


def test_the_hostile_corpus_gets_a_4xx_naming_the_file_and_latin1_tags_are_scored(server, tmp_path):
    from tests import hostile_media

    for kind, (name, data, status, words) in _hostile(tmp_path).items():
        response = _post(server, {"video": (name, data, "video/mp4")})
        assert response.status_code == status, (kind, response.text)
        assert words in response.json()["error"], (kind, response.text)
    for container_format, suffix in (("matroska", "mkv"), ("mp4", "mp4")):  # a 500 before: UnicodeDecodeError
        video = hostile_media.tagged_video(tmp_path / f"camera.{suffix}", container_format, b"Caf\xe9 \xe0 la plage")
        response = _post(server, {"video": (video.name, video.read_bytes(), "video/mp4")})
        assert response.status_code == 200, response.text
    lie = hostile_media.lying_dimensions(tmp_path / "image.mov", real_side=6000)
    response = requests.post(
        f"{server.url}/predict", files={"image": ("clip.jpg", lie.read_bytes(), "image/jpeg")}, headers=AUTH, timeout=60
    )
    assert response.status_code == 422 and "clip.jpg" in response.json()["error"]  # a video in an image field


def test_h264_is_scored(server, video_images):
    frames = two_label_frames(*(known.frame() for known in video_images), 10, 4.0, 2.0)
    response = _post(server, {"video": ("phone.mp4", encode_video(frames, 10, "libx264"), "video/mp4")})
    assert response.status_code == 200, response.text
    assert response.json()["video"]["codec"] == "h264" and len(response.json()["frames"]) == 8
