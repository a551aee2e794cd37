"""The har-clip BentoML service: one class over har_core's `Predictor`.

    bentoml serve bento.service:HarClipService          # from the project root, serving <model>:latest
    bentoml serve har_clip:latest                        # a built Bento

It imports neither ZenML, MLflow, W&B nor DVC, and for ONNX exports not torch either (tests/bento checks it).
Single-image predictions go through BentoML's adaptive batching (`raw_outputs`, batchable) when other requests are
in the model's path, and straight to the model when none is (nothing to batch with, so no batching wait and no
hand-over); a request's decode, validation, calibration and top-k stay outside the batch, so one bad upload never
fails its neighbours. The batcher receives each image as its uint8 crop (150 KB at 224 px) and normalises the batch.

Every answer carries its verdict (`har_core.runtime.confidence`): the calibrated top-1 (`confidence`), whether it is
too low to name an action (`abstained`: show "no action"; the ranked labels are still returned), and how unlike the
training images the image is (`ood_score`, `out_of_distribution`), for monitoring to record. An export made before
calibration existed still serves: nothing abstains and `ood_score` is null.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any, Literal

import bentoml
import numpy as np
from prometheus_client import Counter
from pydantic import BaseModel, BeforeValidator, Field
from starlette.responses import JSONResponse

from bento.decoding import DecodeBusyError, PixelBudget, decode_crops, decode_uploads
from bento.drain import refuse_new_connections_on_sigterm
from bento.guard import RequestGuard
from bento.model_calls import SerialPredictor
from bento.openapi import VIDEO_ROUTE_ERRORS, published_spec
from bento.prometheus_metrics import record_answers, record_error_answer, record_video, reference_median, start_metrics
from bento.records import PredictionRecorder, monitoring_settings
from bento.serving_config import bento_model_tag, load_serving_config
from bento.video_route import VIDEO_MEDIA_TYPES, VideoLimitsError, VideoPredictResponse, score_upload, upload_limit
from bento.watchdog import record_clean_exit, start_watchdog
from har_core.runtime.confidence import NO_ACTION, Verdict
from har_core.runtime.images import ImageTooLargeError, InvalidImageError
from har_core.runtime.memory import return_large_frees_to_the_os
from har_core.runtime.parity import recheck_parity
from har_core.runtime.predictor import Classification, Prediction, Predictor
from har_core.runtime.preprocess import normalize
from har_core.runtime.settings import API_TOKEN_ENV, BENTO_SERVICE_NAME

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)  # BentoML's server logging keeps the root at WARNING; what is served belongs in the log

CONFIG = load_serving_config()
# /predict requests the model ran on their own, skipping the batcher (nothing else was in the model's path); the
# batched ones are BentoML's adaptive batch-size histogram of `raw_outputs`.
DIRECT_MODEL_CALLS = Counter("har_clip_direct_model_calls", "/predict images run without the batcher (none pending)")


def _not_a_bool(value: Any) -> Any:
    """pydantic's lax mode reads `true` as 1; a top_k of `true` is a client bug worth a 400."""
    if isinstance(value, bool):
        raise ValueError("top_k must be an integer, not a boolean")
    return value


PositiveInt = Annotated[int, BeforeValidator(_not_a_bool), Field(ge=1)]
TopK = Annotated[PositiveInt, Field(description="How many labels to return, best first (at most the label count).")]
ClassifyTopK = Annotated[
    PositiveInt | None,
    Field(description="Default: 5, or every label when fewer; more than the labels sent returns them all."),
]
INTERNAL_ROUTES = ("/raw_outputs",)
CustomLabels = Annotated[list[str], Field(description='Your own label set (open vocabulary): ["juggling", "rowing"].')]
_TEMP_PREFIX = re.compile(r"^tmp[a-z0-9_]{8}")
DECODE_THREADS = 8  # requests decoding (or waiting for pixel budget) at once; the model's threads are apart
# Videos decode in a pool of their own, so they can never hold the image routes' threads; more videos than that in
# flight (running and waiting) are answered 503 with Retry-After.
VIDEO_THREADS = 2
VIDEOS_IN_FLIGHT = 2 * VIDEO_THREADS
RETRY_AFTER_S = 5
# The video limits of a request: decoding stops at the request's timeout, when the client has had its 504.
VIDEO_LIMITS = CONFIG.video.model_copy(
    update={"max_decode_s": min(CONFIG.video.max_decode_s or CONFIG.timeout_s, CONFIG.timeout_s)}
)
Decoder = Callable[..., np.ndarray]  # bento.decoding's decode_uploads (float32 model input) or decode_crops (uint8)


class ModelInfo(BaseModel):
    name: str
    version: str
    format: str


CalibrationKind = Literal["own-labels", "zero-shot"]
CALIBRATION_FIELD = Field(
    description="Which fitted temperature and threshold made the probabilities and `abstained`: `own-labels` (the "
    "model's labels) or `zero-shot` (custom labels: the zero-shot temperature, and a threshold chosen on validation "
    "with the model's own labels); null: the export carries no calibration, so nothing abstains."
)
ABSTAIN_BELOW_FIELD = Field(description="The threshold `confidence` was held to; null without a calibration.")


class PredictResponse(Verdict):
    """The ranked labels and the verdict's flat fields (`abstained`, `confidence`, `ood_score`,
    `out_of_distribution`)."""

    predictions: list[Prediction] = Field(
        description=f'Calibrated probabilities, best first; returned also when `abstained` ("{NO_ACTION}").'
    )
    calibration: CalibrationKind | None = CALIBRATION_FIELD
    abstain_below: float | None = ABSTAIN_BELOW_FIELD
    model: ModelInfo
    inference_ms: float = Field(description="Model time for this request, batching wait included.")


class BatchPredictResponse(BaseModel):
    predictions: list[list[Prediction]] = Field(description="One ranked list per uploaded image, in upload order.")
    verdicts: list[Verdict] = Field(description="One verdict per uploaded image, in upload order.")
    calibration: CalibrationKind | None = CALIBRATION_FIELD
    abstain_below: float | None = ABSTAIN_BELOW_FIELD
    model: ModelInfo
    inference_ms: float


class BadRequest(ValueError):
    """A request the service refuses; `status` is the HTTP status it is answered with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@bentoml.service(
    name=BENTO_SERVICE_NAME,
    workers=CONFIG.workers,
    traffic={"timeout": CONFIG.timeout_s, "max_concurrency": CONFIG.max_concurrency},
    # BentoML 1.4's self-proxy closes its connection after `max_requests` (or `max_age`) even with requests in
    # flight on it, which fails them with 500 under load; the in-process connection never needs recycling.
    runner_connection={"max_requests": 2**31, "max_age": 10.0**9},
    monitoring=monitoring_settings(CONFIG.records),  # every answer recorded (bento/records.py)
)
class HarClipService:
    """Human-action predictions from the packaged export (labels, format and version: `/metadata`)."""

    bento_model = bentoml.models.BentoModel(bento_model_tag())

    def __init__(self) -> None:
        self.predictor = Predictor.from_export(self.bento_model.path, device=CONFIG.device, threads=CONFIG.threads)
        metadata = self.bento_model.info.metadata
        source = self.predictor.manifest.source
        self.model_info = ModelInfo(
            name=str(metadata.get("model_name") or source.model_name or self.bento_model.tag.name),
            version=str(metadata.get("model_version") or source.model_version or self.bento_model.tag.version),
            format=self.predictor.format,
        )
        if not return_large_frees_to_the_os():
            logger.warning("Not glibc: freed image memory may stay with the worker after large decodes")
        self.decode_budget = PixelBudget(CONFIG.max_decoding_pixels)
        self.model_lock = threading.Lock()  # one model call at a time: direct and batched calls never share the CPUs
        # every route's model calls one at a time (bento/model_calls.py), unless the config says parallel
        self.serial = (
            SerialPredictor(self.predictor, self.model_lock) if CONFIG.model_calls == "serial" else self.predictor
        )
        self.in_model_path = 0  # /predict requests between their decode and their answer (event loop only)
        self.decoders = ThreadPoolExecutor(DECODE_THREADS, thread_name_prefix="har-clip-decode")
        self.video_workers = ThreadPoolExecutor(VIDEO_THREADS, thread_name_prefix="har-clip-video")
        self.videos_in_flight = 0  # event loop only
        logger.info("Serving %s (%s)", self.model_info, self.bento_model.tag)
        self.startup_parity = _startup_parity(self.predictor)
        calibration = self.predictor.calibration
        self.records = PredictionRecorder(
            CONFIG.records, self.model_info.model_dump(), calibration.ood_above if calibration else None
        )
        start_metrics(self.model_info, reference_median(self.predictor))  # bento/prometheus_metrics.py: /metrics
        refuse_new_connections_on_sigterm()  # in-flight requests finish, new connections are refused

    def __is_ready__(self) -> bool:
        """BentoML's /readyz: not ready while the parity gate failed on this host (unless `startup_parity: warn`)."""
        return self.startup_parity["passed"] is not False or CONFIG.startup_parity == "warn"

    @bentoml.on_deployment
    def _watch_workers() -> None:
        """Runs once in the arbiter process: in a container, a dead worker ends the service (bento/watchdog.py)."""
        start_watchdog()

    @bentoml.on_shutdown
    def _shut_down(self) -> None:
        record_clean_exit()
        self.records.close()
        self.decoders.shutdown(wait=False, cancel_futures=True)
        self.video_workers.shutdown(wait=False, cancel_futures=True)

    @bentoml.api(batchable=True, max_batch_size=CONFIG.max_batch_size, max_latency_ms=CONFIG.max_latency_ms)
    def raw_outputs(self, crops: list[str]) -> list[list[list[float]]]:
        """Internal (the guard refuses outside calls): per image, [image embedding, raw logits over the model's
        labels], adaptively batched; the caller calibrates them (the out-of-distribution score reads both).

        Each item is one image's centre crop, uint8 (crop, crop, 3), base64: BentoML's self-proxy speaks JSON; the
        uint8 crop is a quarter of the float32 model input (200 KB of base64 at 224 px instead of 800 KB), and the
        batch is normalised here, equal bit for bit to normalising each image (`har_core.runtime.preprocess`).
        """
        crop = self.predictor.manifest.preprocess.crop_size
        batch = np.stack([np.frombuffer(base64.b64decode(item), np.uint8).reshape(crop, crop, 3) for item in crops])
        embeddings, logits = self._run_model(batch)
        return [[embedding, row] for embedding, row in zip(embeddings.tolist(), logits.tolist(), strict=True)]

    def _run_model(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings, raw logits) for uint8 crops; one call at a time, so a direct call and a batch never split
        the CPUs."""
        pixels = normalize(crops, self.predictor.manifest.preprocess)
        with self.model_lock:
            return self.predictor.run(pixels)

    @bentoml.api
    async def predict(self, image: Path, top_k: TopK = CONFIG.default_top_k) -> PredictResponse:
        """Rank the model's labels for one uploaded image (multipart field `image`)."""
        received = time.perf_counter()
        try:
            self._check_top_k(top_k, len(self.predictor.labels))
            crops = await self._decoded([image], decode_crops)
        except BadRequest as error:
            return _error(error)
        started = time.perf_counter()
        embeddings, logits = await self._batched_outputs(crops)
        # off the event loop: the Mahalanobis out-of-distribution score is milliseconds of numpy at 512 dimensions
        answers = await asyncio.to_thread(self.predictor.classify_outputs, embeddings, logits, top_k)
        elapsed = (time.perf_counter() - started) * 1000
        record_answers("/predict", answers, self.model_info)
        response = self._response(answers[0], False, elapsed)
        await self.records.images("/predict", answers, [image], response.calibration, elapsed, received)
        return response

    @bentoml.api
    async def predict_batch(self, images: list[Path], top_k: TopK = CONFIG.default_top_k) -> BatchPredictResponse:
        """Rank the model's labels for several uploaded images (repeated multipart field `images`); `verdicts` holds
        each image's abstention and out-of-distribution fields, in upload order."""
        received = time.perf_counter()
        try:
            if len(images) > CONFIG.max_batch_images:
                raise BadRequest(400, f"{len(images)} images sent; the limit is {CONFIG.max_batch_images} per call.")
            self._check_top_k(top_k, len(self.predictor.labels))
            pixels = await self._pixels(images)
        except BadRequest as error:
            return _error(error)
        started = time.perf_counter()
        answers = await asyncio.to_thread(self.serial.classify_pixels, pixels, top_k)
        elapsed = (time.perf_counter() - started) * 1000
        record_answers("/predict_batch", answers, self.model_info)
        kind, threshold = self._calibration_used(custom_labels=False)
        await self.records.images("/predict_batch", answers, images, kind, elapsed, received)
        return BatchPredictResponse(
            predictions=[answer.predictions for answer in answers],
            verdicts=[answer.verdict for answer in answers],
            calibration=kind,
            abstain_below=threshold,
            model=self.model_info,
            inference_ms=elapsed,
        )

    @bentoml.api
    async def classify(
        self,
        image: Path,
        labels: CustomLabels,
        top_k: ClassifyTopK = None,
    ) -> PredictResponse:
        """Rank labels given in the request for one image: the text tower embeds them (cached per label set).

        Custom labels are calibrated by the zero-shot temperature and abstain below a threshold chosen on validation
        with the model's own labels (`calibration: "zero-shot"`, `abstain_below` in the answer); the model's own
        labels, sent as they are, are answered as `/predict` answers them (`"own-labels"`)."""
        received = time.perf_counter()
        try:
            labels = self._check_labels(labels)
            self._check_top_k(top_k or 1, CONFIG.max_custom_labels)
            top_k = min(CONFIG.default_top_k if top_k is None else top_k, len(labels))
            pixels = await self._pixels([image])
        except BadRequest as error:
            return _error(error)
        started = time.perf_counter()
        answers = await asyncio.to_thread(self.serial.classify_pixels, pixels, top_k, labels)
        elapsed = (time.perf_counter() - started) * 1000
        record_answers("/classify", answers, self.model_info, custom_labels=labels != self.predictor.labels)
        response = self._response(answers[0], labels != self.predictor.labels, elapsed)
        await self.records.images("/classify", answers, [image], response.calibration, elapsed, received)
        return response

    @bentoml.api
    async def predict_video(self, video: Path, top_k: TopK = CONFIG.default_top_k) -> VideoPredictResponse:
        """Action segments and every sampled frame's top labels for one uploaded video (multipart field `video`;
        MP4/MOV, Matroska/WebM, AVI, MPEG or Ogg; limits and sampling: `/metadata`'s `limits.video`). Where the
        smoothed confidence is below `abstain_below`, segments (and their frames' `smoothed_label`) are "no action"."""
        if self.videos_in_flight >= VIDEOS_IN_FLIGHT:
            return _error(BadRequest(503, f"{VIDEOS_IN_FLIGHT} videos are being scored; retry later."), RETRY_AFTER_S)
        self.videos_in_flight += 1
        try:
            self._check_top_k(top_k, len(self.predictor.labels))
            started = received = time.perf_counter()
            result = await asyncio.get_running_loop().run_in_executor(
                self.video_workers, score_upload, self.serial, video, _upload_name(video), VIDEO_LIMITS,
                self.decode_budget, CONFIG.timeout_s, top_k,
            )  # fmt: skip
        except VideoLimitsError as error:
            return _error(BadRequest(error.status, str(error)))
        except DecodeBusyError as error:
            return _error(BadRequest(503, str(error)), RETRY_AFTER_S)
        except BadRequest as error:
            return _error(error)
        finally:
            self.videos_in_flight -= 1
        elapsed = (time.perf_counter() - started) * 1000
        record_video(len(result.frames), self.model_info)
        await self.records.video(result, self._calibration_used(custom_labels=False)[0], elapsed, received)
        return VideoPredictResponse(**result.model_dump(), model=self.model_info.model_dump(), inference_ms=elapsed)

    @bentoml.api
    def metadata(self) -> dict[str, Any]:
        """The served model: labels, prompt templates, version, format, preprocessing, parity, calibration (its
        temperatures and thresholds, and its figures on the test split; null for an export made before calibration)
        and request limits."""
        manifest = self.predictor.manifest
        calibration = self.predictor.calibration
        return {
            "model": self.model_info.model_dump(),
            "bento_model": str(self.bento_model.tag),
            "labels": self.predictor.labels,
            "templates": list(manifest.templates),
            "supports_custom_labels": self.predictor.supports_custom_labels,
            "preprocess": manifest.preprocess.model_dump(mode="json"),
            "parity": manifest.parity.model_dump(mode="json") if manifest.parity else None,
            "startup_parity": self.startup_parity,
            "calibration": calibration.model_dump(mode="json") if calibration else None,
            "calibration_metrics": manifest.model_card.calibration_metrics,
            "limits": CONFIG.model_dump(
                include={
                    "max_request_bytes",
                    "max_batch_images",
                    "max_request_pixels",
                    "max_decoding_pixels",
                    "max_custom_labels",
                    "max_label_chars",
                    "timeout_s",
                    "video",
                }
            ),
            "auth_required": bool(os.environ.get(API_TOKEN_ENV)),
        }

    def _response(self, answer: Classification, custom_labels: bool, elapsed_ms: float) -> PredictResponse:
        kind, threshold = self._calibration_used(custom_labels)
        return PredictResponse(
            **answer.verdict.model_dump(),
            predictions=answer.predictions,
            calibration=kind,
            abstain_below=threshold,
            model=self.model_info,
            inference_ms=elapsed_ms,
        )

    def _calibration_used(self, custom_labels: bool) -> tuple[CalibrationKind | None, float | None]:
        """Which calibration an answer over own or custom labels was judged by, and its threshold."""
        calibration = self.predictor.calibration
        if calibration is None:
            return None, None
        return ("zero-shot" if custom_labels else "own-labels"), calibration.threshold_for(custom_labels)

    async def _batched_outputs(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Alone in the model's path, straight to the model: there is nothing to batch with, and BentoML's batcher
        would add its wait and a JSON round trip through its self-proxy. Otherwise through the self-proxy, so
        concurrent requests share model calls (adaptive batching)."""
        client = getattr(self, "to_async", None)
        self.in_model_path += 1
        try:
            if self.in_model_path == 1 or client is None:  # None: the class used outside a server
                DIRECT_MODEL_CALLS.inc(len(crops))
                return await asyncio.to_thread(self._run_model, crops)
            encoded = [base64.b64encode(np.ascontiguousarray(crop).tobytes()).decode() for crop in crops]
            outputs = await client.raw_outputs(encoded)  # float32 values: exact through JSON
            embeddings = np.asarray([item[0] for item in outputs], dtype=np.float32)
            return embeddings, np.asarray([item[1] for item in outputs], dtype=np.float32)
        finally:
            self.in_model_path -= 1

    async def _pixels(self, paths: list[Path]) -> np.ndarray:
        """Model input for the uploads, decoded in the decode threads under the request's and the worker's pixel
        budgets (bento/decoding.py): a request never holds more than one decoded image at a time."""
        return await self._decoded(paths, decode_uploads)

    async def _decoded(self, paths: list[Path], decode: Decoder) -> np.ndarray:
        """`decode` (float32 model input or uint8 crops) of the uploads, in the decode threads, errors as 4xx."""
        if not paths:
            raise BadRequest(400, "No image was uploaded.")
        try:
            return await asyncio.get_running_loop().run_in_executor(self.decoders, self._decode, paths, decode)
        except ImageTooLargeError as error:
            raise BadRequest(413, str(error)) from error
        except InvalidImageError as error:
            raise BadRequest(422, str(error)) from error
        except DecodeBusyError as error:
            raise BadRequest(503, str(error)) from error

    def _decode(self, paths: list[Path], decode: Decoder = decode_uploads) -> np.ndarray:
        uploads = [(path.read_bytes(), _upload_name(path)) for path in paths]
        return decode(
            uploads, self.predictor.manifest.preprocess, CONFIG.max_request_pixels, self.decode_budget, CONFIG.timeout_s
        )

    def _check_labels(self, labels: list[str]) -> list[str]:
        if not self.predictor.supports_custom_labels:
            raise BadRequest(400, f"The {self.predictor.format} export has no text tower: custom labels are off.")
        if not labels:
            raise BadRequest(400, "labels is empty: send at least one label.")
        if len(labels) > CONFIG.max_custom_labels:
            raise BadRequest(400, f"{len(labels)} labels sent; the limit is {CONFIG.max_custom_labels}.")
        cleaned = [label.strip() for label in labels]
        if not all(cleaned):
            raise BadRequest(400, "labels holds an empty or blank label.")
        too_long = [label for label in cleaned if len(label) > CONFIG.max_label_chars]
        if too_long:
            raise BadRequest(400, f"labels longer than {CONFIG.max_label_chars} characters: {too_long[0][:40]!r}…")
        if len(set(cleaned)) != len(cleaned):
            raise BadRequest(400, "labels holds the same label twice.")
        return cleaned

    @staticmethod
    def _check_top_k(top_k: int, num_labels: int) -> None:
        if not 1 <= top_k <= num_labels:
            raise BadRequest(400, f"top_k must be between 1 and {num_labels}, got {top_k}.")


def _startup_parity(predictor: Predictor) -> dict[str, Any]:
    """The export's parity gate re-run on this host (the parity set the Bento carries), logged and summarised."""
    result = recheck_parity(predictor)
    summary: dict[str, Any] = {"checked": result is not None, "passed": None, "policy": CONFIG.startup_parity}
    if result is None:
        logger.warning("No parity set in this export: the parity gate was not re-run on this host.")
        return summary
    summary.update(passed=result.passed, result=result.model_dump(mode="json"))
    if result.passed:
        logger.info("Parity on this host passed on %d images (top-1 agreement %.4f, min embedding cosine %.6f).",
                    result.num_images, result.top1_agreement, result.min_embedding_cosine)  # fmt: skip
    else:
        consequence = "serving anyway (startup_parity: warn)" if CONFIG.startup_parity == "warn" else "NOT READY"
        logger.error("Parity on this host FAILED (%s): %s", consequence, "; ".join(result.failures))
    return summary


def _upload_name(path: Path) -> str:
    """The client's file name: BentoML stores uploads as `tmp<8 random chars><name>`."""
    return _TEMP_PREFIX.sub("", path.name) or "uploaded image"


def _error(error: BadRequest, retry_after_s: int | None = None) -> JSONResponse:
    headers = {"Retry-After": str(retry_after_s)} if retry_after_s is not None else None
    return JSONResponse({"error": str(error)}, status_code=error.status, headers=headers)


def _published_spec() -> dict[str, Any]:
    """The OpenAPI document, with the served model's label count as `top_k`'s maximum."""
    labels = len(bentoml.models.get(bento_model_tag()).info.metadata.get("labels") or [])
    custom_label = {"type": "string", "minLength": 1, "maxLength": CONFIG.max_label_chars, "pattern": r"\S"}
    constraints = {
        "/predict": {"top_k": {"maximum": labels}},
        "/predict_batch": {
            "top_k": {"maximum": labels},
            "images": {"minItems": 1, "maxItems": CONFIG.max_batch_images},
        },
        "/predict_video": {"top_k": {"maximum": labels}},
        "/classify": {
            "top_k": {"maximum": CONFIG.max_custom_labels, "nullable": True},
            "labels": {
                "minItems": 1,
                "maxItems": CONFIG.max_custom_labels,
                "uniqueItems": True,
                "items": custom_label,
                "description": 'One part holding a JSON list of your own labels: ["juggling", "rowing"].',
            },
        },
    }
    return published_spec(
        HarClipService.openapi_spec.asdict(), FILE_FIELDS, INTERNAL_ROUTES, constraints, VIDEO_ROUTE_ERRORS
    )


FILE_FIELDS = {
    "/predict": ("image",),
    "/predict_batch": ("images",),
    "/classify": ("image",),
    "/predict_video": ("video",),
}
HarClipService.add_asgi_middleware(
    RequestGuard,
    token=os.environ.get(API_TOKEN_ENV) or None,
    max_request_bytes=CONFIG.max_request_bytes,
    file_fields=FILE_FIELDS,
    internal_routes=INTERNAL_ROUTES,
    openapi=lambda: _published_spec(),
    form_fields={
        "/predict": ("top_k",),
        "/predict_batch": ("top_k",),
        "/classify": ("labels", "top_k"),
        "/predict_video": ("top_k",),
    },
    media_types={"/predict_video": VIDEO_MEDIA_TYPES},
    route_max_bytes={"/predict_video": upload_limit(CONFIG.video)},
    max_buffered_bytes=CONFIG.max_buffered_bytes,
    max_spooled_bytes=CONFIG.max_spooled_bytes,
    spool_above_bytes=CONFIG.spool_above_bytes,
    body_wait_s=CONFIG.body_wait_s,
    on_error=record_error_answer,  # refusals by reason on /metrics (bento/prometheus_metrics.py)
)
