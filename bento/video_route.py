"""`/predict_video`'s work: an uploaded video scored under the serving config's video limits and the worker's budget.

The upload stays on disk where BentoML wrote it; `har_core.runtime.video` reads it one frame at a time. While a
video decodes it holds `DECODER_FRAMES` frames' worth of the worker-wide `PixelBudget` (bento/decoding.py), so
videos and images share one bound on the pixels a worker decodes at once. The frames are scored in batches on the
request's own thread: a video is its own batch, and its frames never wait in the adaptive-batching queue of `/predict`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from bento.decoding import PixelBudget
from har_core.runtime.predictor import Predictor
from har_core.runtime.settings import VideoConfig
from har_core.runtime.video import InvalidVideoError, VideoReader, VideoTooLargeError
from har_core.runtime.video_scoring import VideoPrediction, score_video

# Frames a decoder holds while decoding (references, the frame being built, the RGB copy): what a video takes of the
# pixel budget, in frames of its size.
DECODER_FRAMES = 4
VIDEO_MEDIA_TYPES = ("video/", "application/octet-stream")
MULTIPART_OVERHEAD_BYTES = 64 * 1024  # boundaries, part headers and the top_k field around the video


class VideoPredictResponse(VideoPrediction):
    """Segments and per-frame scores (`VideoPrediction`), with the model that scored them."""

    model: dict[str, str] = Field(description="The served model: name, version and format (as /metadata says).")
    inference_ms: float = Field(description="Decoding and model time for the whole video.")


class VideoLimitsError(ValueError):
    """A video refused: `status` is 413 (over a limit) or 422 (not a readable video)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def score_upload(
    predictor: Predictor,
    path: Path,
    name: str,
    config: VideoConfig,
    budget: PixelBudget,
    wait_s: float,
    top_k: int,
) -> VideoPrediction:
    """The uploaded video's segments and frame scores; raises `VideoLimitsError` or the budget's `DecodeBusyError`."""
    resize = predictor.manifest.preprocess.resize_shortest_edge
    try:
        with (
            VideoReader(path, config, name=name, resize=resize) as reader,
            budget.hold(DECODER_FRAMES * reader.frame_pixels, wait_s),  # the header says how much to hold
        ):
            return score_video(predictor, reader, top_k=top_k)
    except VideoTooLargeError as error:
        raise VideoLimitsError(413, str(error)) from error
    except InvalidVideoError as error:
        raise VideoLimitsError(422, str(error)) from error


def upload_limit(config: VideoConfig) -> int:
    """The body size `/predict_video` accepts: the video's `max_bytes` and the multipart around it."""
    return config.max_bytes + MULTIPART_OVERHEAD_BYTES
