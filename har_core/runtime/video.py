"""Reading untrusted videos: one frame at a time, sampled on a time grid, every cost bounded before it is paid.

PyAV (FFmpeg's libraries in a wheel) demuxes and decodes. A video is refused, with a message naming its source and
the limit, when its container is not one of the common video containers (FFmpeg would otherwise read a JPEG, a
playlist or an audio file as a "video"), when it has no video stream or does not decode, and when it is over a
limit of `VideoConfig`: the header's duration, frame size and expected decode work are checked before any frame is
decoded, and the same limits are enforced while decoding, since a header may lie. FFmpeg itself is told the pixel
limit (`max_pixels`, on the probe's decoders and on the codec), so a frame larger than the header said is refused
before FFmpeg allocates it. Only one decoded frame is held at a time, scaled by FFmpeg straight to twice the
preprocessing resize (as bento/decoding.py does for JPEG), so memory stays near one frame of `max_frame_pixels`
whatever the video's length. Every failure of the demuxer or decoder (FFmpeg's errors, undecodable metadata,
anything else PyAV raises) is an `InvalidVideoError` naming the source: a bad file never escapes as another error.
"""

from __future__ import annotations

import io
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from pydantic import BaseModel, ConfigDict

from har_core.runtime.settings import VideoConfig

logger = logging.getLogger(__name__)

# FFmpeg demuxer names of the containers accepted: MP4/MOV, Matroska/WebM, AVI, MPEG-PS/TS, Ogg.
VIDEO_CONTAINERS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "avi", "mpeg", "mpegts", "ogg"})
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".ogv"})
# Decoded frames are scaled to at least this multiple of the preprocessing resize, so the final bicubic resize still
# downsamples by >= 2, as it does for a full-size image (bento/decoding.py, DRAFT_FACTOR).
SCALE_FACTOR = 2


class VideoError(ValueError):
    """A video that cannot be scored; the message names its source."""


class InvalidVideoError(VideoError):
    """Not a readable video: empty, corrupt, an unsupported container, or no video stream (answered 422)."""


class VideoTooLargeError(VideoError):
    """Over one of the `VideoConfig` limits; the message names the limit (answered 413)."""


class VideoInfo(BaseModel):
    """What the header says (duration, frame rate and frame count may be unknown: None)."""

    model_config = ConfigDict(frozen=True)

    container: str
    codec: str
    width: int
    height: int
    duration_s: float | None
    frame_rate: float | None
    frames: int | None


@dataclass(frozen=True)
class SampledFrame:
    """One sampled frame: its time from the start of the video, and the frame scaled for preprocessing."""

    time_s: float
    image: Image.Image


VideoSource = str | Path | bytes


def is_video_name(name: str) -> bool:
    """Whether a file name has the suffix of a video container this module reads."""
    return Path(name).suffix.lower() in VIDEO_SUFFIXES


class VideoReader:
    """An open video, checked against `config`'s limits; iterate `frames()` once. Use it as a context manager."""

    def __init__(self, source: VideoSource, config: VideoConfig, name: str | None = None, resize: int = 224) -> None:
        import av  # deferred: the image-only paths of the runtime never load FFmpeg's libraries

        self._av = av
        self.config = config
        self.name = name or (str(source) if not isinstance(source, bytes) else "uploaded video")
        self.min_side = SCALE_FACTOR * resize
        self._check_size(source)
        self._started = time.monotonic()
        limit = {"max_pixels": str(config.max_frame_pixels)}  # FFmpeg refuses larger frames before allocating them
        try:
            self.container = av.open(
                io.BytesIO(source) if isinstance(source, bytes) else str(source),
                mode="r",
                options=limit,  # the decoders that probe the streams while opening
                metadata_errors="replace",  # Latin-1 tags of old cameras: not an error
            )
        except Exception as error:  # FFmpeg's errors, and whatever else a hostile file makes PyAV raise
            raise InvalidVideoError(f"{self.name}: not a readable video ({_reason(error)}).") from error
        try:
            self.stream = self._video_stream()
            self.stream.codec_context.options = {**self.stream.codec_context.options, **limit}
            self.info = self._read_info()
            self._check_header()
        except VideoError:
            self.container.close()
            raise
        except Exception as error:
            self.container.close()
            raise InvalidVideoError(f"{self.name}: not a readable video ({_reason(error)}).") from error

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.container.close()

    @property
    def frame_pixels(self) -> int:
        return self.info.width * self.info.height

    def frames(self) -> Iterator[SampledFrame]:
        """The first decoded frame at or after each multiple of 1/`sample_fps` s, times counted from the first
        frame. Raises `VideoTooLargeError` past a limit and `InvalidVideoError` where decoding fails."""
        step = 1.0 / self.config.sample_fps
        next_time, start, decoded_pixels, sampled, index = 0.0, None, 0, 0, 0
        frame_rate = self.info.frame_rate or self.config.sample_fps
        try:
            for frame in self.container.decode(self.stream):
                index += 1
                self._check_progress(index)
                pixels = frame.width * frame.height
                self._check_frame_pixels(frame.width, frame.height)
                decoded_pixels += pixels
                if decoded_pixels > self.config.max_decoded_pixels:
                    raise VideoTooLargeError(
                        f"{self.name}: decoding it takes more than {self.config.max_decoded_pixels:,} pixels "
                        f"(max_decoded_pixels; {index:,} frames of {frame.width}x{frame.height} so far)."
                    )
                absolute = frame.time if frame.time is not None else (index - 1) / frame_rate
                start = absolute if start is None else start
                time_s = absolute - start
                if time_s > self.config.max_duration_s:
                    raise VideoTooLargeError(
                        f"{self.name}: runs past {self.config.max_duration_s:g} s (max_duration_s)."
                    )
                if time_s + 1e-6 < next_time:
                    continue
                sampled += 1
                if sampled > self.config.max_frames:
                    raise VideoTooLargeError(
                        f"{self.name}: more than {self.config.max_frames} frames at {self.config.sample_fps:g} fps "
                        "(max_frames)."
                    )
                next_time = (math.floor(time_s / step + 1e-6) + 1) * step
                yield SampledFrame(time_s, self._scaled_image(frame))
        except VideoError:
            raise
        except Exception as error:  # FFmpeg's errors (a frame over max_pixels among them), or anything PyAV raises
            raise InvalidVideoError(f"{self.name}: decoding failed after {index} frames ({_reason(error)}).") from error
        if sampled == 0:
            raise InvalidVideoError(f"{self.name}: the video stream holds no decodable frame.")
        expected = self.info.frames
        if expected and expected - index > max(2, expected // 100):  # FFmpeg conceals a cut file: count
            raise InvalidVideoError(
                f"{self.name}: truncated or corrupt: its header announces {expected} frames, {index} decoded."
            )

    def _check_progress(self, index: int) -> None:
        """The frame cap and the deadline, at every decoded frame: a video stops costing the moment it is over."""
        if index > self.config.max_decoded_frames:
            raise VideoTooLargeError(
                f"{self.name}: more than {self.config.max_decoded_frames:,} frames to decode (max_decoded_frames)."
            )
        elapsed = time.monotonic() - self._started
        if self.config.max_decode_s is not None and elapsed > self.config.max_decode_s:
            raise VideoTooLargeError(
                f"{self.name}: still decoding after {self.config.max_decode_s:g} s, {index:,} frames in (max_decode_s)."
            )

    def _check_size(self, source: VideoSource) -> None:
        if isinstance(source, bytes):
            size = len(source)
        else:
            try:
                size = Path(source).stat().st_size
            except OSError as error:
                raise InvalidVideoError(f"{self.name}: cannot be read ({error.strerror or error}).") from error
        if size == 0:
            raise InvalidVideoError(f"{self.name}: the file is empty (0 bytes).")
        if size > self.config.max_bytes:
            raise VideoTooLargeError(f"{self.name}: {size:,} bytes, over max_bytes {self.config.max_bytes:,}.")

    def _video_stream(self):
        container_format = self.container.format.name
        if container_format not in VIDEO_CONTAINERS:
            raise InvalidVideoError(
                f"{self.name}: {self.container.format.long_name or container_format} is not a supported video "
                "container (MP4/MOV, Matroska/WebM, AVI, MPEG-PS/TS or Ogg)."
            )
        if not self.container.streams.video:
            raise InvalidVideoError(f"{self.name}: the {container_format} container holds no video stream.")
        stream = self.container.streams.video[0]
        if stream.codec_context is None or not stream.codec_context.name:
            raise InvalidVideoError(f"{self.name}: its video codec is not supported by this FFmpeg build.")
        return stream

    def _read_info(self) -> VideoInfo:
        stream, context = self.stream, self.stream.codec_context
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif self.container.duration is not None:
            duration = self.container.duration / 1_000_000
        rate = stream.average_rate or stream.guessed_rate
        return VideoInfo(
            container=self.container.format.name,
            codec=context.name,
            width=context.width,
            height=context.height,
            duration_s=duration,
            frame_rate=float(rate) if rate else None,
            frames=stream.frames or None,
        )

    def _check_header(self) -> None:
        info, config = self.info, self.config
        if info.width <= 0 or info.height <= 0:  # FFmpeg's probe refused the frame under max_pixels (or it has none)
            raise VideoTooLargeError(
                f"{self.name}: the decoder refused its frames: over max_frame_pixels {config.max_frame_pixels:,} "
                "(refused before decoding, whatever the header says), or the stream has no frame size."
            )
        self._check_frame_pixels(info.width, info.height)
        if info.duration_s is not None and info.duration_s > config.max_duration_s:
            raise VideoTooLargeError(
                f"{self.name}: {info.duration_s:.1f} s long, over max_duration_s {config.max_duration_s:g}."
            )
        if info.duration_s is not None and math.ceil(info.duration_s * config.sample_fps - 1e-6) > config.max_frames:
            raise VideoTooLargeError(
                f"{self.name}: {info.duration_s:.1f} s at {config.sample_fps:g} fps is more than max_frames "
                f"{config.max_frames} frames to score."
            )
        frames = info.frames or (
            math.ceil(info.duration_s * info.frame_rate) if info.duration_s and info.frame_rate else None
        )
        if frames is not None and frames > config.max_decoded_frames:
            raise VideoTooLargeError(
                f"{self.name}: {frames:,} frames to decode, over max_decoded_frames {config.max_decoded_frames:,}."
            )
        if frames is not None and frames * self.frame_pixels > config.max_decoded_pixels:
            raise VideoTooLargeError(
                f"{self.name}: {frames:,} frames of {info.width}x{info.height} decode to "
                f"{frames * self.frame_pixels:,} pixels, over max_decoded_pixels {config.max_decoded_pixels:,}."
            )

    def _check_frame_pixels(self, width: int, height: int) -> None:
        if width * height > self.config.max_frame_pixels:
            raise VideoTooLargeError(
                f"{self.name}: frames of {width}x{height} ({width * height:,} pixels) are over max_frame_pixels "
                f"{self.config.max_frame_pixels:,}."
            )

    def _scaled_image(self, frame) -> Image.Image:
        """RGB at the frame's size, or scaled by FFmpeg (area averaging) to a short side of `min_side`."""
        short = min(frame.width, frame.height)
        if short <= self.min_side:
            return frame.to_image()
        scale = self.min_side / short
        width, height = max(1, round(frame.width * scale)), max(1, round(frame.height * scale))
        return frame.to_image(width=width, height=height, interpolation="AREA")


def _reason(error: Exception) -> str:
    """FFmpeg's message without the file name PyAV appends (`'<none>'` for in-memory data)."""
    return getattr(error, "strerror", None) or str(error)
