"""The service's own Prometheus metrics, served with BentoML's at `/metrics`, and the reasons a request is refused.

BentoML starts every worker with `PROMETHEUS_MULTIPROC_DIR` in its environment (a folder its arbiter empties at
start, under `$BENTOML_HOME`), so the plain `prometheus_client` metrics below, created when a worker imports the
service, write to that folder, and BentoML's `/metrics` (`MultiProcessCollector`) sums them over the workers: a count
is the server's, whichever worker answered. The reference gauge takes the largest value any worker wrote (all write
the same one).

| metric | labels | what |
| --- | --- | --- |
| `har_clip_predictions_total` | route, label, model_version, format | images answered, by top-1 label |
| `har_clip_confidence` (histogram) | route, model_version | the calibrated top-1 of each answered image |
| `har_clip_abstentions_total` | route, model_version | images answered "no action" (`abstained`) |
| `har_clip_video_frames_scored_total` | model_version | sampled video frames scored by `/predict_video` |
| `har_clip_requests_refused_total` | route, reason | API calls refused, by `REASONS` |
| `har_clip_reference_confidence_median` (gauge) | model_version | the median top-1 of the export's reference |

`label` is the top-1 label whether or not the answer abstained (the monitoring reference's `predicted` counts the
same way); `/classify` with a label set of its own counts as `CUSTOM_LABEL`: the client's labels are not series
names. A route outside `ROUTES` (a scanner's guess) is counted as `other`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import numpy as np
from prometheus_client import Counter, Gauge, Histogram

from har_core.runtime.manifest import PARITY_SET_ROLE
from har_core.runtime.parity import load_parity_set
from har_core.runtime.predictor import Classification, Predictor

logger = logging.getLogger(__name__)

IMAGE_ROUTES = ("/predict", "/predict_batch", "/classify")
VIDEO_ROUTE = "/predict_video"
ROUTES = (*IMAGE_ROUTES, VIDEO_ROUTE, "/metadata")
OTHER_ROUTE = "other"
CUSTOM_LABEL = "(custom)"
# Why a request was refused (`har_clip_requests_refused_total{reason}`), from its status and who answered it:
REASONS = {
    "auth": "401: no or a wrong bearer token",
    "body_limit": "413 from the guard: the body is over max_request_bytes (or the video route's limit)",
    "budget": "503 or 429: the worker's body, pixel or video budget is taken, or max_concurrency is reached",
    "pixel_limit": "413 from an image route: an image over max_request_pixels",
    "video_limit": "413 from /predict_video: a video over the video limits (bytes, duration, frames, frame size)",
    "bad_request": "any other 4xx: a malformed or unreadable upload, a wrong field, top_k or labels out of range",
}
# 0.025 wide from 0 to 1: `histogram_quantile` interpolates within a bucket, so a median is off by 0.025 at most.
CONFIDENCE_BUCKETS = tuple(round(0.025 * step, 3) for step in range(1, 41))

PREDICTIONS = Counter(
    "har_clip_predictions", "Images answered, by top-1 label", ["route", "label", "model_version", "format"]
)
CONFIDENCE = Histogram(
    "har_clip_confidence", "Calibrated top-1 probability of each answered image", ["route", "model_version"],
    buckets=CONFIDENCE_BUCKETS,
)  # fmt: skip
ABSTENTIONS = Counter("har_clip_abstentions", 'Images answered "no action" (abstained)', ["route", "model_version"])
VIDEO_FRAMES = Counter("har_clip_video_frames_scored", "Sampled video frames scored", ["model_version"])
REFUSED = Counter("har_clip_requests_refused", "API calls refused, by reason", ["route", "reason"])
REFERENCE_MEDIAN = Gauge(
    "har_clip_reference_confidence_median", "Median calibrated top-1 on the export's reference images",
    ["model_version"], multiprocess_mode="max",
)  # fmt: skip


class ServedModel(Protocol):
    version: str
    format: str


def start_metrics(model: ServedModel, reference_median: float | None) -> None:
    """Every fixed series at zero (so a rate over the first answers counts them all, and the no-traffic alert has a
    series to read), and the reference median when there is one."""
    for route in IMAGE_ROUTES:
        CONFIDENCE.labels(route, model.version)
        ABSTENTIONS.labels(route, model.version)
    VIDEO_FRAMES.labels(model.version)
    for route in (*ROUTES, OTHER_ROUTE):
        for reason in REASONS:
            REFUSED.labels(route, reason)
    if reference_median is not None:
        REFERENCE_MEDIAN.labels(model.version).set(reference_median)


def record_answers(
    route: str, answers: Sequence[Classification], model: ServedModel, custom_labels: bool = False
) -> None:
    """Count answered images: their top-1 label, calibrated top-1 and abstentions."""
    for answer in answers:
        label = CUSTOM_LABEL if custom_labels else answer.predictions[0].label
        PREDICTIONS.labels(route, label, model.version, model.format).inc()
        CONFIDENCE.labels(route, model.version).observe(answer.verdict.confidence)
        if answer.verdict.abstained:
            ABSTENTIONS.labels(route, model.version).inc()


def record_video(frames: int, model: ServedModel) -> None:
    VIDEO_FRAMES.labels(model.version).inc(frames)


def record_error_answer(route: str, status: int, by_guard: bool) -> None:
    """The guard's hook for every API call answered with an error: refusals are counted by reason, server errors
    (500, 504) are not refusals (BentoML's `bentoml_service_request_total` counts them by status)."""
    reason = refusal_reason(route, status, by_guard)
    if reason is not None:
        REFUSED.labels(route if route in ROUTES else OTHER_ROUTE, reason).inc()


def refusal_reason(route: str, status: int, by_guard: bool) -> str | None:
    """The `REASONS` key of an error answer; None for a server error."""
    if status == 401:
        return "auth"
    if status in (429, 503):
        return "budget"
    if status == 413:
        if by_guard:
            return "body_limit"
        return "video_limit" if route == VIDEO_ROUTE else "pixel_limit"
    if 400 <= status < 500:
        return "bad_request"
    return None


def reference_median(predictor: Predictor) -> float | None:
    """The median calibrated top-1 the confidence-collapse alert compares with: on the export's monitoring reference
    (its validation images), else on its parity set (PyTorch's outputs on a few dozen held-out images, calibrated as
    served), else None (an export with neither: the alert has nothing to compare with and stays silent)."""
    reference = predictor.reference
    if reference is not None:
        median, source = reference.median_confidence(), f"the monitoring reference ({reference.split})"
    elif PARITY_SET_ROLE in predictor.manifest.files:
        _, (embeddings, logits) = load_parity_set(predictor.manifest.path(predictor.directory, PARITY_SET_ROLE))
        _, probabilities = predictor.calibrated(embeddings, logits)
        median, source = float(np.median(probabilities.max(axis=1))), "the parity set (no monitoring reference)"
    else:
        logger.warning("No monitoring reference or parity set: har_clip_reference_confidence_median is not set.")
        return None
    logger.info("Reference median confidence %.4f, from %s", median, source)
    return median
