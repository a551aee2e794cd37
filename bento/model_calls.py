"""One model call at a time per worker, whichever route makes it.

onnxruntime already spreads one call over every core of the worker, so two calls at once only split the same cores
(and thrash their caches): /predict's batcher, /predict_batch, /classify and the frames of /predict_video each take
the worker's one lock for their model call, and decode (their own threads) outside it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from har_core.runtime.predictor import Classification, Prediction, Predictor


class SerialPredictor:
    """`predictor` with its model calls under `lock`; everything else (labels, manifest) read through."""

    def __init__(self, predictor: Predictor, lock: threading.Lock) -> None:
        self._predictor, self._lock = predictor, lock

    def __getattr__(self, name: str) -> Any:
        return getattr(self._predictor, name)

    def run(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            return self._predictor.run(pixels)

    def probabilities(self, pixels: np.ndarray, labels: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
        with self._lock:
            return self._predictor.probabilities(pixels, labels)

    def calibrated(
        self, embeddings: np.ndarray, logits: np.ndarray, labels: Sequence[str] | None = None
    ) -> tuple[list[str], np.ndarray]:
        """Under the lock too: custom labels run the text tower (once per label set)."""
        with self._lock:
            return self._predictor.calibrated(embeddings, logits, labels)

    def predict_pixels(self, pixels: np.ndarray, top_k: int = 5, labels: Sequence[str] | None = None):
        with self._lock:
            return self._predictor.predict_pixels(pixels, top_k, labels)

    def classify_pixels(
        self, pixels: np.ndarray, top_k: int = 5, labels: Sequence[str] | None = None
    ) -> list[Classification]:
        with self._lock:
            return self._predictor.classify_pixels(pixels, top_k, labels)


__all__ = ["Classification", "Prediction", "SerialPredictor"]
