"""Videos the tests encode themselves (tests/videos.py), read, sampled and scored by the tiny model's ONNX export."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from har_core.runtime.confidence import NO_ACTION
from har_core.runtime.manifest import EXPORT_MANIFEST_FILE
from har_core.runtime.predictor import Predictor
from har_core.runtime.settings import VideoConfig
from har_core.runtime.video import InvalidVideoError, VideoReader, VideoTooLargeError, is_video_name
from har_core.runtime.video_scoring import score_video
from tests.videos import CODECS, encode_video, load_frame, two_label_frames

FPS, SECONDS, CHANGE_S = 10, 8.0, 4.2
CONFIG = VideoConfig(sample_fps=2.0, smoothing_window=3, min_segment_s=1.0)


@pytest.fixture(scope="module")
def predictor(onnx_export_dir) -> Predictor:
    return Predictor.from_export(onnx_export_dir, device="cpu")


@pytest.fixture(scope="module")
def label_images(predictor, video_images) -> tuple[Image.Image, Image.Image]:
    """The two frames of the two-label videos, which this predictor tells apart (checked, not assumed)."""
    first, second = (known.frame() for known in video_images)
    assert [ranked[0].label for ranked in predictor.predict([first, second])] == [known.label for known in video_images]
    return first, second


def gradient_frames(count: int, width: int = 64, height: int = 48) -> list[Image.Image]:
    """A horizontal ramp whose blue channel changes per frame."""
    ramp = np.tile(np.linspace(0, 255, width, dtype=np.uint8), (height, 1))
    return [
        Image.fromarray(np.dstack([ramp, ramp, np.full((height, width), index * 7 % 255, np.uint8)]))
        for index in range(count)
    ]


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_a_two_label_video_gives_two_segments_changing_within_one_sampling_step(
    predictor, label_images, video_images, codec
):
    data = encode_video(two_label_frames(*label_images, FPS, SECONDS, CHANGE_S), FPS, codec)
    with VideoReader(data, CONFIG, name=f"two-labels{CODECS[codec][1]}") as reader:
        assert (reader.info.codec, reader.info.width) == ({"libvpx": "vp8", "libx264": "h264"}.get(codec, codec), 64)
        result = score_video(predictor, reader, top_k=3)
    step = 1 / CONFIG.sample_fps
    assert [segment.label for segment in result.segments] == [known.label for known in video_images]
    boundary = result.segments[0].end_s
    print(f"{codec}: boundary at {boundary:.3f} s, true change at {CHANGE_S} s, error {abs(boundary - CHANGE_S):.3f} s")
    assert abs(boundary - CHANGE_S) <= step
    assert result.segments[0].start_s == 0 and result.segments[1].end_s == pytest.approx(SECONDS, abs=0.11)
    assert [frame.time_s for frame in result.frames] == pytest.approx([i * step for i in range(16)], abs=0.01)
    assert all(len(frame.predictions) == 3 for frame in result.frames)
    assert result.segments[1].mean_score == pytest.approx(
        np.mean([f.predictions[0].score for f in result.frames if f.time_s > CHANGE_S])
    )


def test_a_short_flash_of_another_label_is_smoothed_away(predictor, label_images, video_images):
    first, second = label_images
    first_label, second_label = (known.label for known in video_images)
    frames = [second if 20 <= index < 22 else first for index in range(60)]  # 0.2 s of `second` at 2.0 s
    with VideoReader(encode_video(frames, FPS, "mjpeg"), CONFIG) as reader:
        result = score_video(predictor, reader)
    flash = next(frame for frame in result.frames if frame.time_s == pytest.approx(2.0))
    assert flash.predictions[0].label == second_label  # the raw frame sees it
    assert flash.smoothed_label == first_label
    assert [(s.label, s.start_s, s.end_s) for s in result.segments] == [(first_label, 0.0, 6.0)]


@pytest.fixture(scope="module")
def unnameable_image(predictor, synthetic_root) -> Image.Image:
    """The synthetic image this predictor is least sure of, which its fitted calibration answers "no action" (checked,
    not assumed)."""
    paths = sorted(synthetic_root.glob("*/*.jpg"))
    answers = predictor.classify([load_frame(path) for path in paths], top_k=1)
    path, answer = min(zip(paths, answers, strict=True), key=lambda pair: pair[1].verdict.confidence)
    assert answer.abstained, (answer, predictor.calibration)
    return load_frame(path)


def uncalibrated_copy(export_dir: Path, directory: Path) -> Predictor:
    """A copy of `export_dir` as an export made before calibration existed (its manifest's model card carries none;
    the manifest itself is not hashed), loaded."""
    shutil.copytree(export_dir, directory)
    manifest = json.loads((directory / EXPORT_MANIFEST_FILE).read_text())
    manifest["model_card"].pop("calibration")
    manifest["model_card"].pop("calibration_metrics", None)
    (directory / EXPORT_MANIFEST_FILE).write_text(json.dumps(manifest))
    return Predictor.from_export(directory, device="cpu")


@pytest.fixture(scope="module")
def uncalibrated_predictor(onnx_export_dir, tmp_path_factory) -> Predictor:
    return uncalibrated_copy(onnx_export_dir, tmp_path_factory.mktemp("uncalibrated") / "onnx")


def test_a_stretch_the_model_cannot_name_becomes_a_no_action_segment(
    predictor, uncalibrated_predictor, label_images, video_images, unnameable_image
):
    """The issue's test: a middle stretch of 3 s, longer than min_segment_s plus the smoothing window (1 + 1.5 s),
    that shows nothing the model can name gets a "no action" segment there, and its frames keep their ranked labels.

    Not a blank stretch: the random-init tiny model is surer of a uniform grey, white or black frame (top-1 0.10 to
    0.12) than of the median synthetic image (0.098), so no threshold fitted on the synthetic images at the default
    coverage sends a blank frame to "no action". The stretch shows the synthetic image the model is least sure of,
    which the session's calibration (tests/conftest.py `tiny_calibration`, fitted, not set) answers "no action"."""
    first, second = label_images
    first_label, second_label = (known.label for known in video_images)
    frames = [first] * 30 + [unnameable_image] * 30 + [second] * 30  # 3 s each at 10 fps
    data = encode_video(frames, FPS, "mjpeg")
    with VideoReader(data, CONFIG) as reader:
        result = score_video(predictor, reader, top_k=2)
    threshold = predictor.calibration.abstain_below
    assert result.abstain_below == threshold
    assert [segment.label for segment in result.segments] == [first_label, NO_ACTION, second_label]
    middle = result.segments[1]
    step = 1 / CONFIG.sample_fps
    assert abs(middle.start_s - 3.0) <= step and abs(middle.end_s - 6.0) <= step
    assert middle.mean_score < threshold  # the mean top-1 of its frames: why it is "no action"
    inside = [frame for frame in result.frames if middle.start_s < frame.time_s < middle.end_s]
    assert len(inside) == middle.frames == 6
    assert all(frame.smoothed_label == NO_ACTION and frame.abstained for frame in inside)
    assert all(len(frame.predictions) == 2 and frame.ood_score is not None for frame in inside)
    outside = [frame for frame in result.frames if frame not in inside]
    assert not any(frame.abstained for frame in outside)
    assert {frame.smoothed_label for frame in outside} == {first_label, second_label}

    with VideoReader(data, CONFIG) as reader:  # an export made before calibration: never "no action"
        old = score_video(uncalibrated_predictor, reader, top_k=2)
    assert NO_ACTION not in [segment.label for segment in old.segments] and old.abstain_below is None
    assert not any(frame.abstained or frame.ood_score is not None for frame in old.frames)


def test_frames_are_sampled_at_the_configured_rate_and_scaled_for_preprocessing(tmp_path):
    path = tmp_path / "gradient.mp4"
    path.write_bytes(encode_video(gradient_frames(25, 320, 240), fps=25))
    with VideoReader(path, VideoConfig(sample_fps=4), resize=32) as reader:
        frames = list(reader.frames())
    assert [frame.time_s for frame in frames] == pytest.approx([0, 0.28, 0.52, 0.76], abs=1e-6)  # first at/after k/4 s
    assert {frame.image.size for frame in frames} == {(85, 64)}  # short side 2 x 32: FFmpeg scaled it
    assert is_video_name("clip.MP4") and not is_video_name("photo.jpg")


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    gradient_frames(1)[0].save(buffer, format="JPEG")
    return buffer.getvalue()


def wav_bytes() -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: b"", "the file is empty"),
        (lambda: b"just some text, no video here" * 10, "not a readable video"),
        (jpeg_bytes, "not a supported video container"),
        (wav_bytes, "not a supported video container"),
        (lambda: (data := encode_video(gradient_frames(20)))[: len(data) // 2], "not a readable video"),
        (lambda: (data := encode_video(gradient_frames(20), codec="mjpeg"))[: len(data) // 2], "truncated"),
    ],
    ids=["empty", "text", "jpeg", "audio", "truncated-mp4", "truncated-avi"],
)
def test_what_is_not_a_readable_video_is_a_clear_error(make, message):
    with pytest.raises(InvalidVideoError, match=message) as caught, VideoReader(make(), CONFIG, "upload.mp4") as reader:
        list(reader.frames())
    assert str(caught.value).startswith("upload.mp4: ")


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(InvalidVideoError, match="cannot be read"):
        VideoReader(tmp_path / "absent.mp4", CONFIG)


@pytest.mark.parametrize(
    ("limits", "limit"),
    [
        ({"max_bytes": 2048}, "max_bytes"),
        ({"max_duration_s": 1.5}, "max_duration_s"),
        ({"max_frames": 3}, "max_frames"),
        ({"max_frame_pixels": 64 * 48 - 1}, "max_frame_pixels"),
        ({"max_decoded_pixels": 64 * 48 * 10}, "max_decoded_pixels"),
        ({"max_decoded_frames": 19}, "max_decoded_frames"),
    ],
)
def test_each_limit_refuses_a_video_over_it_before_decoding(limits, limit):
    data = encode_video(gradient_frames(20), fps=10, codec="mjpeg")  # 2 s, 20 frames of 64x48, ~ 20 kB
    with pytest.raises(VideoTooLargeError, match=limit), VideoReader(data, VideoConfig(**limits)) as reader:
        raise AssertionError(f"opened despite {limits}: {reader.info}")


def test_limits_hold_while_decoding_whatever_the_header_said():
    """A header may lack or misstate duration and frame count: the decoded frames are counted too. (The header is
    read under loose limits here, as if it had lied, and the frames under the strict ones.)"""
    data = encode_video(gradient_frames(20), fps=10, codec="libvpx")
    strict = [
        ({"max_decoded_frames": 5}, "max_decoded_frames"),
        ({"max_decode_s": 1e-9}, "max_decode_s"),
        ({"max_decoded_pixels": 64 * 48 * 10}, "max_decoded_pixels"),
        ({"max_frames": 3}, "max_frames"),
        ({"max_duration_s": 1.0}, "max_duration_s"),
    ]
    for limits, limit in strict:
        with VideoReader(data, VideoConfig(sample_fps=2)) as reader:
            reader.config = VideoConfig(sample_fps=2, **limits)
            with pytest.raises(VideoTooLargeError, match=limit):
                list(reader.frames())


PEAK_RSS_PROBE = """
import resource, sys
from har_core.runtime.settings import SERVING_VIDEO
from har_core.runtime.video import VideoError, VideoReader
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    with VideoReader(sys.argv[1], SERVING_VIDEO) as reader:
        list(reader.frames())
    print("read")
except VideoError as error:
    print(type(error).__name__, error)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_a_header_that_lies_about_the_frame_size_costs_no_memory(tmp_path):
    """64x64 in the header, 12000x12000 PNG frames inside (~0.8 MB on disk, 432 MB decoded): FFmpeg decodes the
    first frame while probing, so the refusal has to come from FFmpeg's own pixel limit. Measured in a fresh process
    (peak RSS: 417 MiB more before the limit was passed to FFmpeg, ~1 MiB after)."""
    import subprocess
    import sys

    from tests.conftest import PROJECT_ROOT
    from tests.hostile_media import lying_dimensions

    video = lying_dimensions(tmp_path / "lie.mov")
    result = subprocess.run(
        [sys.executable, "-c", PEAK_RSS_PROBE, str(video)], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    *message, grown_mib = result.stdout.strip().splitlines()
    assert result.returncode == 0 and message[0].startswith("VideoTooLargeError"), result.stdout + result.stderr
    assert "max_frame_pixels" in message[0] and int(grown_mib) < 64  # one frame of 2 Mpx is ~6 MB


@pytest.mark.parametrize("container_format", ["matroska", "mp4"])
def test_latin1_metadata_is_read_not_an_error(tmp_path, container_format):
    from tests.hostile_media import tagged_video

    video = tagged_video(tmp_path / f"tagged.{container_format}", container_format, b"Caf\xe9 \xe0 la plage")
    with pytest.raises(UnicodeDecodeError):  # what PyAV does by default, and what reached the service as a 500
        av.open(str(video)).close()
    with VideoReader(video, CONFIG) as reader:
        assert len(list(reader.frames())) >= 1 and reader.container.metadata["title"].startswith("Caf")


def test_any_error_of_the_demuxer_is_an_invalid_video(tmp_path, monkeypatch):
    """Not only FFmpeg's errors: whatever PyAV raises for a hostile file becomes a 4xx-shaped error naming it."""
    data = encode_video(gradient_frames(4), fps=4, codec="mjpeg")

    def broken_open(*args, **kwargs):
        raise RuntimeError("something PyAV never documented")

    monkeypatch.setattr(av, "open", broken_open)
    with pytest.raises(InvalidVideoError, match="upload.avi: not a readable video .something PyAV never"):
        VideoReader(data, CONFIG, "upload.avi")


@pytest.mark.parametrize("kind", ["truncated", "hls", "empty", "many-frames"])
def test_the_hostile_corpus_is_refused(tmp_path, kind):
    from har_core.runtime.settings import SERVING_VIDEO
    from har_core.runtime.video import VideoError
    from tests import hostile_media

    makers = {
        "truncated": lambda: hostile_media.truncated(
            tmp_path / "cut.mp4", hostile_media.many_frames(tmp_path / "whole.mp4", 200, side=64)
        ),
        "hls": lambda: hostile_media.hls_playlist(tmp_path / "playlist.mp4"),
        "empty": lambda: hostile_media.empty(tmp_path / "empty.mp4"),
        "many-frames": lambda: hostile_media.many_frames(tmp_path / "many.mp4", SERVING_VIDEO.max_decoded_frames + 1),
    }
    video = makers[kind]()
    with pytest.raises(VideoError, match=video.name), VideoReader(video, SERVING_VIDEO) as reader:
        list(reader.frames())
