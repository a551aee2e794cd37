"""Videos the tests encode themselves (tests/videos.py), read, sampled and scored by the tiny model's ONNX export."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
from PIL import Image

from har_core.runtime.predictor import Predictor
from har_core.runtime.settings import VideoConfig
from har_core.runtime.video import InvalidVideoError, VideoReader, VideoTooLargeError, is_video_name
from har_core.runtime.video_scoring import score_video
from tests.videos import CODECS, FIRST_LABEL, SECOND_LABEL, encode_video, first_image, two_label_frames

FPS, SECONDS, CHANGE_S = 10, 8.0, 4.2
CONFIG = VideoConfig(sample_fps=2.0, smoothing_window=3, min_segment_s=1.0)


@pytest.fixture(scope="module")
def predictor(onnx_export_dir) -> Predictor:
    return Predictor.from_export(onnx_export_dir, device="cpu")


@pytest.fixture(scope="module")
def label_images(predictor, synthetic_root) -> tuple[Image.Image, Image.Image]:
    """The two images of the two-label videos; the tiny model must tell them apart (checked, not assumed)."""
    first, second = first_image(synthetic_root, FIRST_LABEL), first_image(synthetic_root, SECOND_LABEL)
    assert [ranked[0].label for ranked in predictor.predict([first, second])] == [FIRST_LABEL, SECOND_LABEL]
    return first, second


def gradient_frames(count: int, width: int = 64, height: int = 48) -> list[Image.Image]:
    """A horizontal ramp whose blue channel changes per frame."""
    ramp = np.tile(np.linspace(0, 255, width, dtype=np.uint8), (height, 1))
    return [
        Image.fromarray(np.dstack([ramp, ramp, np.full((height, width), index * 7 % 255, np.uint8)]))
        for index in range(count)
    ]


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_a_two_label_video_gives_two_segments_changing_within_one_sampling_step(predictor, label_images, codec):
    data = encode_video(two_label_frames(*label_images, FPS, SECONDS, CHANGE_S), FPS, codec)
    with VideoReader(data, CONFIG, name=f"two-labels{CODECS[codec][1]}") as reader:
        assert (reader.info.codec, reader.info.width) == ({"libvpx": "vp8"}.get(codec, codec), 64)
        result = score_video(predictor, reader, top_k=3)
    step = 1 / CONFIG.sample_fps
    assert [segment.label for segment in result.segments] == [FIRST_LABEL, SECOND_LABEL]
    boundary = result.segments[0].end_s
    print(f"{codec}: boundary at {boundary:.3f} s, true change at {CHANGE_S} s, error {abs(boundary - CHANGE_S):.3f} s")
    assert abs(boundary - CHANGE_S) <= step
    assert result.segments[0].start_s == 0 and result.segments[1].end_s == pytest.approx(SECONDS, abs=0.11)
    assert [frame.time_s for frame in result.frames] == pytest.approx([i * step for i in range(16)], abs=0.01)
    assert all(len(frame.predictions) == 3 for frame in result.frames)
    assert result.segments[1].mean_score == pytest.approx(
        np.mean([f.predictions[0].score for f in result.frames if f.time_s > CHANGE_S])
    )


def test_a_short_flash_of_another_label_is_smoothed_away(predictor, label_images):
    first, second = label_images
    frames = [second if 20 <= index < 22 else first for index in range(60)]  # 0.2 s of `second` at 2.0 s
    with VideoReader(encode_video(frames, FPS, "mjpeg"), CONFIG) as reader:
        result = score_video(predictor, reader)
    flash = next(frame for frame in result.frames if frame.time_s == pytest.approx(2.0))
    assert flash.predictions[0].label == SECOND_LABEL  # the raw frame sees it
    assert flash.smoothed_label == FIRST_LABEL
    assert [(s.label, s.start_s, s.end_s) for s in result.segments] == [(FIRST_LABEL, 0.0, 6.0)]


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
        ({"max_decoded_pixels": 64 * 48 * 10}, "max_decoded_pixels"),
        ({"max_frames": 3}, "max_frames"),
        ({"max_duration_s": 1.0}, "max_duration_s"),
    ]
    for limits, limit in strict:
        with VideoReader(data, VideoConfig(sample_fps=2)) as reader:
            reader.config = VideoConfig(sample_fps=2, **limits)
            with pytest.raises(VideoTooLargeError, match=limit):
                list(reader.frames())
