"""Videos the tests encode themselves with PyAV, from synthetic images, in codecs FFmpeg implements natively.

H.264 through libx264, which PyAV's wheels carry (`av.codecs_available`), beside the codecs FFmpeg implements itself.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np
from PIL import Image

# codec -> (container format, file suffix, pixel format)
CODECS: dict[str, tuple[str, str, str]] = {
    "mpeg4": ("mp4", ".mp4", "yuv420p"),
    "mjpeg": ("avi", ".avi", "yuvj420p"),
    "libvpx": ("webm", ".webm", "yuv420p"),  # VP8
    "libx264": ("mp4", ".mp4", "yuv420p"),  # H.264, what phones and cameras record
}

# The two synthetic images of the two-label videos, and what the tiny random-init model predicts for them: it is
# near chance on synthetic images in general (margins under 0.02), but the first `calling` and the first `texting`
# image of the session's synthetic set are predicted as their own label (tests check it before relying on it).
FIRST_LABEL, SECOND_LABEL = "calling", "texting"


def encode_video(frames: Sequence[Image.Image], fps: int = 10, codec: str = "mpeg4") -> bytes:
    """`frames` (RGB, one size, even sides) as a video file in memory."""
    container_format, _, pixel_format = CODECS[codec]
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames[0].size
        stream.pix_fmt = pixel_format
        stream.bit_rate = 4_000_000
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.asarray(image.convert("RGB")), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def write_video(path: Path, frames: Sequence[Image.Image], fps: int = 10, codec: str = "mpeg4") -> Path:
    path.write_bytes(encode_video(frames, fps, codec))
    return path


def two_label_frames(first: Image.Image, second: Image.Image, fps: int, seconds: float, change_s: float):
    """`seconds` of video at `fps`: `first` until `change_s`, `second` after it."""
    count = round(seconds * fps)
    change = round(change_s * fps)
    return [first if index < change else second for index in range(count)]


def first_image(synthetic_root: Path, label: str, size: int = 64) -> Image.Image:
    with Image.open(sorted((synthetic_root / label).glob("*.jpg"))[0]) as image:
        return image.convert("RGB").resize((size, size))
