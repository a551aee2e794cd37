"""Where the predict page gets its answers: a running Bento service over HTTP, or a local `Predictor`.

Both answer the same questions in the shapes the Bento returns: top-k labels for one image, optionally over the
user's own labels (`/predict`: `{"predictions": [{"label", "score"}], "model": {...}, "inference_ms"}`, with the
verdict's flat fields `abstained`, `confidence`, `ood_score`, `out_of_distribution` and the `calibration` that judged
them), and the action segments of a video (`/predict_video`), scored locally with the Bento's default video settings.
A Bento older than calibration sends no verdict: its answers read as uncalibrated (never "no action").
"""

from __future__ import annotations

import json
import logging
import mimetypes
import time
from collections.abc import Sequence
from typing import Protocol

import requests
from PIL import Image
from pydantic import BaseModel, ValidationError

from har_core.runtime.confidence import Calibration, Verdict
from har_core.runtime.predictor import Prediction, Predictor
from har_core.runtime.settings import ServingConfig, VideoConfig
from har_core.runtime.video import VideoError, VideoReader
from har_core.runtime.video_scoring import VideoPrediction, score_video

logger = logging.getLogger(__name__)


class BackendUnavailableError(RuntimeError):
    """The backend cannot answer at all (Bento unreachable, no model at the stage, no export)."""


class PredictionRequestError(ValueError):
    """The backend refused one request (its message says why)."""


class Answer(BaseModel):
    """One image's ranked labels and the verdict on them (abstained, calibrated confidence, out-of-distribution)."""

    predictions: list[Prediction]
    verdict: Verdict
    calibrated: bool  # False: a model without calibration (raw softmax; nothing abstains, no OOD score)
    threshold: float | None = None  # the confidence below which this answer would be "no action", when known
    model: dict[str, str]
    inference_ms: float

    @property
    def abstained(self) -> bool:
        return self.verdict.abstained


class VideoAnswer(VideoPrediction):
    """A video's segments and frame scores, with the model that scored them (the Bento's `/predict_video` shape)."""

    model: dict[str, str]
    inference_ms: float


class Backend(Protocol):
    description: str
    labels: list[str]
    supports_custom_labels: bool
    calibration: Calibration | None  # the model's thresholds, when the backend tells them (the live camera's)
    needs_encoded_image: bool  # whether `predict` reads `data` (the encoded file) rather than the decoded image

    def predict(
        self, image: Image.Image, data: bytes, name: str, top_k: int, labels: Sequence[str] | None = None
    ) -> Answer: ...

    def predict_video(self, data: bytes, name: str, top_k: int) -> VideoAnswer: ...


class LocalBackend:
    """A `Predictor` on an export directory, in this process."""

    needs_encoded_image = False

    def __init__(self, predictor: Predictor, model: dict[str, str], video: VideoConfig | None = None) -> None:
        self.predictor = predictor
        self.video = video or ServingConfig().video  # what a Bento accepts and how it samples
        self.model = {**model, "format": predictor.format}
        self.description = f"local {predictor.format} export of {model.get('name')} version {model.get('version')}"
        self.labels = predictor.labels
        self.supports_custom_labels = predictor.supports_custom_labels
        self.calibration = predictor.calibration

    def predict(
        self, image: Image.Image, data: bytes, name: str, top_k: int, labels: Sequence[str] | None = None
    ) -> Answer:
        started = time.perf_counter()
        try:
            answer = self.predictor.classify([image], top_k=top_k, labels=labels or None)[0]
        except ValueError as error:  # bad custom labels
            raise PredictionRequestError(str(error)) from error
        return Answer(
            predictions=answer.predictions,
            verdict=answer.verdict,
            calibrated=self.calibration is not None,
            threshold=_threshold(self.calibration, labels, self.labels),
            model=self.model,
            inference_ms=(time.perf_counter() - started) * 1000,
        )

    def predict_video(self, data: bytes, name: str, top_k: int) -> VideoAnswer:
        started = time.perf_counter()
        resize = self.predictor.manifest.preprocess.resize_shortest_edge
        try:
            with VideoReader(data, self.video, name=name, resize=resize) as reader:
                result = score_video(self.predictor, reader, top_k=top_k)
        except VideoError as error:
            raise PredictionRequestError(str(error)) from error
        elapsed = (time.perf_counter() - started) * 1000
        return VideoAnswer(**result.model_dump(), model=self.model, inference_ms=elapsed)


class BentoBackend:
    """The har-clip Bento service's HTTP API (`/readyz`, `/metadata`, `/predict`, `/classify`, `/predict_video`)."""

    needs_encoded_image = True

    def __init__(self, url: str, token: str | None = None, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        metadata = self._metadata()
        self.model = {key: str(value) for key, value in metadata.get("model", {}).items()}
        self.labels = list(metadata.get("labels", []))
        self.supports_custom_labels = bool(metadata.get("supports_custom_labels"))
        self.calibration = _calibration(metadata.get("calibration"))
        self.description = f"Bento service at {self.url} ({self.model.get('format', '?')} export, version " + (
            f"{self.model.get('version', '?')})"
        )

    def _metadata(self) -> dict:
        try:
            ready = self.session.get(f"{self.url}/readyz", timeout=min(self.timeout_s, 5))
            if ready.status_code != 200:
                raise BackendUnavailableError(
                    f"The Bento service at {self.url} is not ready (/readyz answered {ready.status_code})."
                )
            response = self.session.post(f"{self.url}/metadata", json={}, timeout=self.timeout_s)
        except requests.RequestException as error:
            raise BackendUnavailableError(
                f"The Bento service at {self.url} is unreachable ({type(error).__name__}). Start it with "
                "`bentoml serve bento.service:HarClipService`, or clear the Bento URL to use a local model."
            ) from error
        if response.status_code == 401:
            raise BackendUnavailableError(
                f"The Bento service at {self.url} wants a bearer token: set HAR_CLIP_API_TOKEN for the viewer."
            )
        if response.status_code != 200:
            raise BackendUnavailableError(f"{self.url}/metadata answered {response.status_code}: {response.text[:200]}")
        return response.json()

    def predict(
        self, image: Image.Image, data: bytes, name: str, top_k: int, labels: Sequence[str] | None = None
    ) -> Answer:
        form: dict[str, str] = {"top_k": str(top_k)}
        route = "/predict"
        if labels:
            route, form["labels"] = "/classify", json.dumps(list(labels))
        try:
            response = self.session.post(
                f"{self.url}{route}", files={"image": (name, data)}, data=form, timeout=self.timeout_s
            )
        except requests.RequestException as error:
            raise BackendUnavailableError(f"The Bento service at {self.url} stopped answering: {error}") from error
        if response.status_code != 200:
            raise PredictionRequestError(f"The Bento service refused {name!r}: {_error_text(response)}")
        return bento_answer(response.json())

    def predict_video(self, data: bytes, name: str, top_k: int) -> VideoAnswer:
        media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        try:
            response = self.session.post(
                f"{self.url}/predict_video",
                files={"video": (name, data, media_type)},
                data={"top_k": str(top_k)},
                timeout=self.timeout_s,
            )
        except requests.RequestException as error:
            raise BackendUnavailableError(f"The Bento service at {self.url} stopped answering: {error}") from error
        if response.status_code != 200:
            raise PredictionRequestError(f"The Bento service refused {name!r}: {_error_text(response)}")
        return VideoAnswer.model_validate(response.json())


VERDICT_FIELDS = tuple(Verdict.model_fields)  # abstained, confidence, ood_score, out_of_distribution


def bento_answer(body: dict) -> Answer:
    """An `Answer` from `/predict`'s or `/classify`'s JSON: the ranked labels, the verdict's flat fields and which
    calibration judged them (`calibration`: own-labels or zero-shot, with its `abstain_below`). A Bento older than
    calibration sends none of these: its answer is uncalibrated, the top score its confidence, never "no action"."""
    predictions = [Prediction.model_validate(item) for item in body["predictions"]]
    if "confidence" in body:
        verdict = Verdict.model_validate({key: body[key] for key in VERDICT_FIELDS if key in body})
    else:
        verdict = Verdict(confidence=predictions[0].score)
    return Answer(
        predictions=predictions,
        verdict=verdict,
        calibrated=body.get("calibration") is not None,
        threshold=body.get("abstain_below"),
        model={key: str(value) for key, value in body.get("model", {}).items()},
        inference_ms=body.get("inference_ms", 0.0),
    )


def _threshold(calibration: Calibration | None, labels: Sequence[str] | None, own: Sequence[str]) -> float | None:
    """The abstention threshold for an answer over `labels` (None or the model's own: its own labels')."""
    if calibration is None:
        return None
    return calibration.threshold_for(custom_labels=bool(labels) and list(labels) != list(own))


def _calibration(record) -> Calibration | None:
    """The served model's calibration from `/metadata`, when the Bento is new enough to tell it."""
    if not isinstance(record, dict):
        return None
    try:
        return Calibration.model_validate(record)
    except ValidationError as error:
        logger.warning("The Bento's /metadata calibration is not one this viewer reads: %s", error)
        return None


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code} {response.text[:200]}"
    return f"HTTP {response.status_code}: {body.get('error') or body.get('detail') or body}"


FORMAT_PREFERENCE = ("onnx", "onnx-int8", "torchscript", "pytorch", "tensorrt")


def deployable_formats(bundle) -> list[str]:
    """The bundle's formats that passed their parity gate, in the viewer's order of preference."""
    formats = set(bundle.deployable_formats())
    return [name for name in FORMAT_PREFERENCE if name in formats] + sorted(formats - set(FORMAT_PREFERENCE))


def local_backend(bundle, export_format: str, model: dict[str, str]) -> LocalBackend:
    """A `LocalBackend` on one format of an `ExportBundle` (files are checked against their sha256 on load)."""
    predictor = Predictor.from_export(bundle.directory(export_format), device="cpu")
    return LocalBackend(predictor, model)
