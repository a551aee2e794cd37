"""A video's actions: sampled frames scored in batches through a `Predictor`, smoothed, cut into segments.

Frames stream from the reader into batches of `VideoConfig.batch_size`; only each batch's pixels and every frame's
probabilities (one row of label scores) are held, so memory does not grow with the video beyond that row each.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from har_core.runtime.predictor import Prediction, Predictor
from har_core.runtime.preprocess import preprocess
from har_core.runtime.timeline import ActionSegment, segments, smooth
from har_core.runtime.video import VideoInfo, VideoReader

logger = logging.getLogger(__name__)


class FrameScores(BaseModel):
    """One sampled frame: its time, its own top-k (raw) and the smoothed label the segments are cut from."""

    model_config = ConfigDict(frozen=True)

    time_s: float
    predictions: list[Prediction]
    smoothed_label: str
    smoothed_score: float


class VideoPrediction(BaseModel):
    """The segments of a video and the scores of every sampled frame."""

    segments: list[ActionSegment]
    frames: list[FrameScores]
    duration_s: float
    sample_fps: float
    video: VideoInfo
    scoring_s: float  # decode + model time


def score_video(
    predictor: Predictor, reader: VideoReader, top_k: int = 5, labels: Sequence[str] | None = None
) -> VideoPrediction:
    """Score `reader`'s sampled frames (the reader's `VideoConfig` says how); raises the reader's `VideoError`s."""
    config = reader.config
    started = time.perf_counter()
    times: list[float] = []
    rows: list[np.ndarray] = []
    names: list[str] = list(labels) if labels else predictor.labels
    batch: list[np.ndarray] = []
    for frame in reader.frames():
        times.append(frame.time_s)
        batch.append(preprocess(frame.image, predictor.manifest.preprocess))
        frame.image.close()
        if len(batch) == config.batch_size:
            names, scores = predictor.probabilities(np.stack(batch), labels)
            rows.append(scores)
            batch = []
    if batch:
        names, scores = predictor.probabilities(np.stack(batch), labels)
        rows.append(scores)
    probabilities = np.concatenate(rows)
    smoothed = smooth(probabilities, config.smoothing_window)
    frame_gap = 1.0 / (reader.info.frame_rate or config.sample_fps)
    duration = max(reader.info.duration_s or 0.0, times[-1] + frame_gap)
    reach = config.smoothing_window // 2
    found = segments(times, probabilities, smoothed, names, config.min_segment_s, duration, refine=reach)
    top_k = max(1, min(top_k, len(names)))
    frames = [
        FrameScores(
            time_s=round(moment, 6),
            predictions=_ranked(names, raw, top_k),
            smoothed_label=names[int(even.argmax())],
            smoothed_score=float(even.max()),
        )
        for moment, raw, even in zip(times, probabilities, smoothed, strict=True)
    ]
    elapsed = time.perf_counter() - started
    logger.info("Scored %d frames of %s in %.2f s: %d segment(s)", len(frames), reader.name, elapsed, len(found))
    return VideoPrediction(
        segments=found,
        frames=frames,
        duration_s=round(duration, 6),
        sample_fps=config.sample_fps,
        video=reader.info,
        scoring_s=elapsed,
    )


def _ranked(names: list[str], row: np.ndarray, top_k: int) -> list[Prediction]:
    order = np.argsort(-row, kind="stable")[:top_k]
    return [Prediction(label=names[i], score=float(row[i])) for i in order]
