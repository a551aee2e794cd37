"""A video's actions: sampled frames scored in batches through a `Predictor`, smoothed, cut into segments.

Frames stream from the reader into batches of `VideoConfig.batch_size`; only each batch's pixels and every frame's
probabilities (one row of label scores) and verdict are held, so memory does not grow with the video beyond that.
Probabilities are the export's calibrated ones; where the smoothed top-1 is below the calibration's threshold the
frame reads "no action", and such stretches become "no action" segments (`har_core.runtime.timeline`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from har_core.runtime.confidence import NO_ACTION, Verdict
from har_core.runtime.predictor import Prediction, Predictor, rank
from har_core.runtime.preprocess import preprocess
from har_core.runtime.settings import VideoConfig
from har_core.runtime.timeline import ActionSegment, segments, smooth, smoothed_confidence
from har_core.runtime.video import VideoInfo, VideoReader

logger = logging.getLogger(__name__)


class FrameScores(BaseModel):
    """One sampled frame: its time, its own top-k (raw) and verdict, and the label of the segment it falls in."""

    model_config = ConfigDict(frozen=True)

    time_s: float
    predictions: list[Prediction]
    smoothed_label: str = Field(
        description="The label of the segment this frame falls in: the top label of the smoothed probabilities once "
        f'runs shorter than min_segment_s are merged; "{NO_ACTION}" where the smoothed confidence is below the '
        "threshold."
    )
    smoothed_score: float = Field(
        description=f'The smoothed probability of smoothed_label (for "{NO_ACTION}", the smoothed confidence: the '
        "frames' own top-1 averaged over the smoothing window)."
    )
    abstained: bool = Field(False, description="This frame alone: its own top-1 below the threshold, as /predict says.")
    ood_score: float | None = Field(None, description=Verdict.model_fields["ood_score"].description)


class VideoPrediction(BaseModel):
    """The segments of a video and the scores of every sampled frame."""

    segments: list[ActionSegment]
    frames: list[FrameScores]
    duration_s: float
    sample_fps: float
    video: VideoInfo
    scoring_s: float  # decode + model time
    abstain_below: float | None = Field(
        None, description="The threshold smoothed confidences are held to; null: the model has no calibration."
    )


def score_video(
    predictor: Predictor, reader: VideoReader, top_k: int = 5, labels: Sequence[str] | None = None
) -> VideoPrediction:
    """Score `reader`'s sampled frames (the reader's `VideoConfig` says how); raises the reader's `VideoError`s."""
    config = reader.config
    started = time.perf_counter()
    times: list[float] = []
    rows: list[np.ndarray] = []
    judged: list[Verdict] = []
    names: list[str] = list(labels) if labels else predictor.labels
    batch: list[np.ndarray] = []
    for frame in reader.frames():
        times.append(frame.time_s)
        batch.append(preprocess(frame.image, predictor.manifest.preprocess))
        frame.image.close()
        if len(batch) == config.batch_size:
            names = _score_batch(predictor, batch, labels, rows, judged)
            batch = []
    if batch:
        names = _score_batch(predictor, batch, labels, rows, judged)
    probabilities = np.concatenate(rows)
    calibration = predictor.calibration
    threshold = calibration.threshold_for(custom_labels=names != predictor.labels) if calibration else None
    frame_gap = 1.0 / (reader.info.frame_rate or config.sample_fps)
    duration = max(reader.info.duration_s or 0.0, times[-1] + frame_gap)
    found, frames = _timeline(times, probabilities, judged, names, config, duration, threshold, top_k)
    elapsed = time.perf_counter() - started
    logger.info("Scored %d frames of %s in %.2f s: %d segment(s)", len(frames), reader.name, elapsed, len(found))
    return VideoPrediction(
        segments=found,
        frames=frames,
        duration_s=round(duration, 6),
        sample_fps=config.sample_fps,
        video=reader.info,
        scoring_s=elapsed,
        abstain_below=threshold,
    )


def _score_batch(
    predictor: Predictor,
    batch: list[np.ndarray],
    labels: Sequence[str] | None,
    rows: list[np.ndarray],
    judged: list[Verdict],
) -> list[str]:
    """Score one batch of frames: its calibrated probabilities go to `rows`, its verdicts to `judged` (the OOD score
    reads the raw outputs over the model's own labels); returns the label names."""
    embeddings, logits = predictor.run(np.stack(batch))
    names, probabilities = predictor.calibrated(embeddings, logits, labels)
    rows.append(probabilities)
    scores = predictor.ood_scores(embeddings, logits)
    judged.extend(predictor.verdicts(probabilities, scores, custom_labels=names != predictor.labels))
    return names


def _timeline(
    times: list[float],
    probabilities: np.ndarray,
    judged: list[Verdict],
    names: list[str],
    config: VideoConfig,
    duration: float,
    threshold: float | None,
    top_k: int,
) -> tuple[list[ActionSegment], list[FrameScores]]:
    """The segments, and every frame with its own top-k and verdict and the label of the segment it falls in."""
    smoothed = smooth(probabilities, config.smoothing_window)
    confidence = smoothed_confidence(probabilities, config.smoothing_window)
    found = segments(
        times, probabilities, smoothed, names, config.min_segment_s, duration,
        refine=config.smoothing_window // 2, abstain_below=threshold, confidence=confidence,
    )  # fmt: skip
    labels_at = [segment.label for segment in found for _ in range(segment.frames)]
    top_k = max(1, min(top_k, len(names)))
    frames = []
    for moment, raw, even, sure, label, verdict in zip(
        times, probabilities, smoothed, confidence, labels_at, judged, strict=True
    ):
        frames.append(
            FrameScores(
                time_s=round(moment, 6),
                predictions=rank(names, raw, top_k),
                smoothed_label=label,
                smoothed_score=float(sure if label == NO_ACTION else even[names.index(label)]),
                abstained=verdict.abstained,
                ood_score=verdict.ood_score,
            )
        )
    return found, frames
