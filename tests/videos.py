"""Videos the tests encode themselves with PyAV, from synthetic images, in codecs FFmpeg implements natively.

H.264 through libx264, which PyAV's wheels carry (`av.codecs_available`), beside the codecs FFmpeg implements itself.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
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
    return load_frame(sorted((synthetic_root / label).glob("*.jpg"))[0], size)


def load_frame(path: Path, size: int = 64) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB").resize((size, size))


@dataclass(frozen=True)
class KnownImage:
    """A synthetic image and the label a model gives it."""

    label: str
    path: Path

    def frame(self, size: int = 64) -> Image.Image:
        return load_frame(self.path, size)


def two_images_told_apart(predictor, synthetic_root: Path) -> tuple[KnownImage, KnownImage]:
    """The two images of different labels that `predictor` gives their own label by the widest margins.

    The random-init tiny model is near chance on synthetic images (margins around 0.01), so which images it tells
    apart depends on the drawn bytes: found here, not assumed."""
    paths = sorted(synthetic_root.glob("*/*.jpg"))
    best: dict[str, tuple[float, Path]] = {}
    for path, ranked in zip(paths, predictor.predict([load_frame(path) for path in paths]), strict=True):
        label, margin = path.parent.name, ranked[0].score - ranked[1].score
        if ranked[0].label == label and margin > best.get(label, (0.0, path))[0]:
            best[label] = (margin, path)
    assert len(best) >= 2, f"the model gives its own label to images of {len(best)} label(s) only"
    first, second = sorted(best, key=lambda label: best[label][0], reverse=True)[:2]
    return KnownImage(first, best[first][1]), KnownImage(second, best[second][1])
