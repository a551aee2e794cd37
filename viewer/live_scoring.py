"""Scoring a live camera stream without ever holding it up: one frame at a time, the rest dropped.

WebRTC hands every camera frame to `LiveScorer.offer` on its event loop. A frame is taken only when the previous one
has been scored and the configured rate allows the next (`scoring_fps`); it is then scored on the scorer's own
thread through the page's backend (the running Bento or a local `Predictor`). Every other frame is dropped, never
queued, so a slow model lowers the scoring rate, not the video. Probabilities (calibrated, when the model has a
calibration) are smoothed over time (`har_core.runtime.timeline.RunningSmoother`), and so is each frame's own top-1:
the current action is the smoothed top label, or "no action" while that smoothed top-1 is below the calibration's
threshold (`current_action`, the rule a video's segments follow). `snapshot()` gives the page what to draw.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from har_core.runtime.confidence import NO_ACTION
from har_core.runtime.timeline import RunningSmoother, current_action
from viewer.backends import Backend, BackendUnavailableError, PredictionRequestError

logger = logging.getLogger(__name__)

THUMBNAIL_SIDE = 320  # the last scored frame is kept this small, to show it beside the readout
JPEG_QUALITY = 90  # frames sent to a Bento are JPEG-encoded, as a browser upload would be
RATE_WINDOW_S = 5.0  # achieved fps and latency are measured over the last seconds


# The failures a backend is expected to report; anything else is logged with its traceback, and shown too.
_EXPECTED = (BackendUnavailableError, PredictionRequestError, ValueError, OSError)


class LiveSettings(BaseModel):
    """How often frames are scored and how their probabilities are smoothed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scoring_fps: float = Field(4.0, gt=0, le=30)
    smoothing: Literal["ema", "window"] = "ema"
    alpha: float = Field(0.4, gt=0, le=1)  # ema: weight of the newest frame
    window: int = Field(5, ge=1, le=100)  # window: frames averaged
    history_s: float = Field(30.0, gt=0, le=600)  # the rolling chart's span


class LivePoint(BaseModel):
    time_s: float  # since the stream started
    probabilities: list[float]  # smoothed, in label order
    confidence: float  # each frame's own top-1, smoothed alike: what "no action" is judged by


class LiveState(BaseModel):
    """What the page shows: the current action, its smoothed probability, rates, and the recent history."""

    model_config = ConfigDict(arbitrary_types_allowed=True)  # the PIL thumbnail

    labels: list[str]
    label: str | None = None  # the current action: the smoothed top label, or "no action" below `threshold`
    best_label: str | None = None  # the smoothed top label, "no action" or not
    probability: float | None = None  # the label's smoothed probability; for "no action", the smoothed top-1
    threshold: float | None = None  # the calibration's abstention threshold; None: never "no action"
    calibrated: bool = False  # whether the backend's probabilities are calibrated (a Bento may not tell its threshold)
    camera_fps: float = 0.0  # frames arriving per second, over the last few seconds
    scoring_fps: float = 0.0  # frames scored per second, over the last few seconds
    latency_ms: float | None = None  # mean scoring time of those frames
    received: int = 0
    scored: int = 0
    dropped: int = 0
    error: str | None = None
    history: list[LivePoint] = []
    frame: Image.Image | None = None  # the frame scored last, as a thumbnail

    @property
    def abstained(self) -> bool:
        return self.label == NO_ACTION


class LiveScorer:
    """Thread-safe: `offer` is called from the WebRTC event loop, `snapshot` from the page, scoring on its thread."""

    def __init__(self, backend: Backend, settings: LiveSettings) -> None:
        self.backend = backend
        self.labels = list(backend.labels)
        calibration = backend.calibration
        self.threshold = calibration.abstain_below if calibration is not None else None  # over the model's labels
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="har-clip-live")
        self.configure(settings)

    def configure(self, settings: LiveSettings) -> None:
        """New settings start a new smoothing and history (the old ones were smoothed differently)."""
        with self._lock:
            self.settings = settings
            self._smoother = RunningSmoother(settings.smoothing, settings.alpha, settings.window)
            self._history: deque[LivePoint] = deque()
            self._recent: deque[tuple[float, float]] = deque()  # (finished at, latency s)
            self._arrivals: deque[float] = deque()
            self._busy = False
            self._next_due = 0.0
            self._started = time.monotonic()
            self._received = self._scored = self._dropped = 0
            self._error: str | None = None
            self._calibrated = False
            self._frame: Image.Image | None = None
            self._generation = getattr(self, "_generation", 0) + 1

    def offer(self, frame) -> bool:
        """Take `frame` (an `av.VideoFrame`) for scoring if the scorer is idle and the rate allows; else drop it."""
        now = time.monotonic()
        with self._lock:
            self._received += 1
            self._arrivals.append(now)
            while now - self._arrivals[0] > RATE_WINDOW_S:
                self._arrivals.popleft()
            if self._busy or now < self._next_due:
                self._dropped += 1
                return False
            self._busy = True
            self._next_due = now + 1.0 / self.settings.scoring_fps
            generation = self._generation
        self._executor.submit(self._score, frame, generation)
        return True

    def snapshot(self) -> LiveState:
        with self._lock:
            now = time.monotonic()
            recent = [latency for finished, latency in self._recent if now - finished <= RATE_WINDOW_S]
            span = min(RATE_WINDOW_S, max(now - self._started, 1e-9))
            latest = self._history[-1] if self._history else None
            label, probability, best = None, None, None
            if latest is not None:
                smoothed = np.asarray(latest.probabilities)
                label, probability = current_action(smoothed, self.labels, self.threshold, latest.confidence)
                best = self.labels[int(np.argmax(smoothed))]
            return LiveState(
                labels=self.labels,
                label=label,
                best_label=best,
                probability=probability,
                threshold=self.threshold,
                calibrated=self._calibrated,
                camera_fps=sum(1 for arrived in self._arrivals if now - arrived <= RATE_WINDOW_S) / span,
                scoring_fps=len(recent) / span,
                latency_ms=1000 * sum(recent) / len(recent) if recent else None,
                received=self._received,
                scored=self._scored,
                dropped=self._dropped,
                error=self._error,
                history=list(self._history),
                frame=self._frame,
            )

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _score(self, frame, generation: int) -> None:
        started = time.monotonic()
        try:
            image = frame.to_image()
            probabilities, calibrated = self._probabilities(image)
        except Exception as error:  # whatever the backend raised: shown on the page, and the next frame is scored
            message = str(error) if isinstance(error, _EXPECTED) else f"{type(error).__name__}: {error}"
            with self._lock:
                self._error, self._busy = message, False
            log = logger.warning if isinstance(error, _EXPECTED) else logger.exception
            log("Live frame not scored: %s", message)
            return
        finished = time.monotonic()
        with self._lock:
            self._busy = False
            if generation != self._generation:  # settings changed while this frame was scored
                return
            smoothed = self._smoother.update(probabilities)
            self._calibrated = calibrated
            self._scored += 1
            self._error = None
            self._recent.append((finished, finished - started))
            while self._recent and finished - self._recent[0][0] > RATE_WINDOW_S:
                self._recent.popleft()
            point = LivePoint(
                time_s=finished - self._started, probabilities=smoothed.tolist(), confidence=self._smoother.confidence
            )
            self._history.append(point)
            image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
            self._frame = image
            while self._history and self._history[-1].time_s - self._history[0].time_s > self.settings.history_s:
                self._history.popleft()

    def _probabilities(self, image: Image.Image) -> tuple[np.ndarray, bool]:
        """Every label's probability for one frame, in label order, from the backend; and whether it is calibrated."""
        data = b""
        if self.backend.needs_encoded_image:
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
            data = buffer.getvalue()
        answer = self.backend.predict(image, data, "webcam.jpg", top_k=len(self.labels))
        scores = {prediction.label: prediction.score for prediction in answer.predictions}
        return np.array([scores.get(label, 0.0) for label in self.labels]), answer.calibrated
