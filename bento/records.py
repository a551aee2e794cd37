"""What the service records of every answer, through `bentoml.monitor`, for monitoring to compare with the model's
reference: one row per image answered and one per video (the schema: `har_core.runtime.serve_records.PredictionRecord`).

The service's `monitoring` config names `RecordsMonitor`, a BentoML monitor type that writes each row as a JSON line
into capped files (bento/capped_log.py): BentoML's default monitor never deletes a file. A deployment may name
another type in its BentoML configuration (`services.har_clip.monitoring`, e.g. `type: otlp`) and the same rows go
there instead. Rows are written on a thread of their own, before the answer leaves: a slow disk delays answers
instead of queueing rows without bound, and a failed write is logged, never the request's failure.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import json
import logging
import os
import random
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bentoml
import numpy as np
from bentoml._internal.context import server_context, trace_context  # what BentoML's own DefaultMonitor reads
from bentoml.monitoring import MonitorBase

from bento.capped_log import CappedLog
from har_core.runtime.confidence import NO_ACTION
from har_core.runtime.predictor import Classification
from har_core.runtime.serve_records import RECORDS_NAME, SCHEMA_FILE, Route
from har_core.runtime.settings import RECORDS_DIR_ENV, RecordsConfig
from har_core.runtime.video_scoring import VideoPrediction

logger = logging.getLogger(__name__)

Rows = list[dict[str, Any]]
MB = 1024 * 1024
REQUEST_ID_FORMAT = "016x"  # BentoML's X-BentoML-Request-ID header (api_server.logging.access.format.span_id)
WARN_EVERY_S = 60.0
# Each column's role and type, as bentoml.monitor names them (its schema file lists them).
COLUMNS: dict[str, tuple[str, str]] = {
    "route": ("feature", "categorical"),
    "image_index": ("feature", "numerical"),
    "model_name": ("feature", "categorical"),
    "model_version": ("feature", "categorical"),
    "model_format": ("feature", "categorical"),
    "calibration": ("feature", "categorical"),
    "top_label": ("prediction", "categorical"),
    "confidence": ("prediction", "numerical"),
    "abstained": ("prediction", "categorical"),
    "margin": ("prediction", "numerical"),
    "ood_score": ("prediction", "numerical"),
    "out_of_distribution": ("prediction", "categorical"),
    "latency_ms": ("feature", "numerical"),
    "inference_ms": ("feature", "numerical"),
    "frames_scored": ("feature", "numerical"),
    "segments": ("prediction", "categorical"),
    "embedding": ("feature", "numerical_sequence"),
    "image": ("feature", "categorical"),
}


def records_directory(config: RecordsConfig) -> Path:
    """`$HAR_CLIP_RECORDS_DIR`, else `records.directory`, else `<BentoML home>/records` (`$BENTOML_HOME`, default
    `~/bentoml`): never outside the user's own folders unless told."""
    chosen = os.environ.get(RECORDS_DIR_ENV) or config.directory
    if chosen:
        return Path(chosen).expanduser().absolute()
    return Path(os.environ.get("BENTOML_HOME") or Path.home() / "bentoml").expanduser().absolute() / "records"


def monitoring_settings(config: RecordsConfig) -> dict[str, Any]:
    """The service's BentoML `monitoring` config: `RecordsMonitor` in the records directory, within the caps."""
    return {
        "enabled": config.enabled,
        "type": f"{RecordsMonitor.__module__}.{RecordsMonitor.__qualname__}",
        "options": {
            "log_path": str(records_directory(config)),
            "max_file_bytes": int(config.max_file_mb * MB),
            "max_total_bytes": int(config.max_total_mb * MB),
        },
    }


class RecordsMonitor(MonitorBase[Any]):
    """A BentoML monitor type: rows as JSON lines in `<log_path>/<name>/`, rotated and capped; the columns in
    `schema.json`. Adds what BentoML's default monitor adds, the time (UTC here) and the request id (as the response
    header spells it)."""

    PRESERVED_COLUMNS = ("timestamp", "request_id")

    def __init__(self, name: str, log_path: str, max_file_bytes: int, max_total_bytes: int, **_: Any) -> None:
        super().__init__(name)
        self.folder = Path(log_path) / name
        self.max_file_bytes, self.max_total_bytes = max_file_bytes, max_total_bytes
        self._log: CappedLog | None = None  # opened by the first row, in the worker that writes it

    def export_schema(self, columns_schema: dict[str, dict[str, str]]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        schema = {
            "bento": {"name": server_context.bento_name, "version": server_context.bento_version},
            "columns": [
                {"name": "timestamp", "role": "time", "type": "datetime"},
                {"name": "request_id", "role": "request_id", "type": "string"},
                *columns_schema.values(),
            ],
        }
        staged = self.folder / f".{SCHEMA_FILE}.{os.getpid()}"
        staged.write_text(json.dumps(schema, indent=1))
        staged.replace(self.folder / SCHEMA_FILE)  # every worker writes the same; readers never see half a file

    def export_data(self, datas: dict[str, deque[Any]]) -> None:
        request_id = trace_context.request_id
        extra = {
            "timestamp": datetime.now(UTC).isoformat(),
            "request_id": None if request_id is None else format(request_id, REQUEST_ID_FORMAT),
        }
        names = list(datas)
        lines = [
            json.dumps({**extra, **dict(zip(names, values, strict=True))}, separators=(",", ":"))
            for values in zip(*datas.values(), strict=True)
        ]
        if self._log is None:
            worker = server_context.worker_index or 0
            self._log = CappedLog(self.folder, worker, self.max_file_bytes, self.max_total_bytes)
        self._log.write(lines)


class EmbeddingSampler:
    """Which image rows carry their embedding: each one independently, with probability `rate`."""

    def __init__(self, rate: float, seed: int | None = None) -> None:
        self.rate = rate
        self._random = random.Random(seed)

    def take(self) -> bool:
        return self.rate >= 1 or (self.rate > 0 and self._random.random() < self.rate)


class PredictionRecorder:
    """Turns the service's answers into rows and writes them through `bentoml.monitor`, one request at a time."""

    def __init__(
        self,
        config: RecordsConfig,
        model: dict[str, str],
        ood_above: float | None,
        sampler: EmbeddingSampler | None = None,
    ) -> None:
        self.config = config
        self.model = {f"model_{key}": model[key] for key in ("name", "version", "format")}
        self.ood_above = ood_above  # the calibration's out-of-distribution threshold (videos' mean score)
        self.sampler = sampler or EmbeddingSampler(config.embedding_sample_rate)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="har-clip-records")  # one at a time, in order
        self._warned_at = -WARN_EVERY_S
        if config.enabled:
            logger.info("Recording every answer in %s (embeddings of %.0f%% of images; images %s)",
                        records_directory(config), 100 * config.embedding_sample_rate,
                        "kept" if config.keep_images else "not kept")  # fmt: skip

    async def images(
        self,
        route: Route,
        answers: Sequence[Classification],
        uploads: Sequence[Path],
        calibration: str | None,
        inference_ms: float,
        received: float,
    ) -> None:
        """Record one row per image answer (`uploads` in the same order); `received`: the handler's perf_counter."""
        if self.config.enabled:
            await self._write(self._image_rows, route, answers, uploads, calibration, inference_ms, received)

    async def video(
        self, result: VideoPrediction, calibration: str | None, inference_ms: float, received: float
    ) -> None:
        """Record one row for a video's answer, its frames summarised (`PredictionRecord` says how)."""
        if self.config.enabled:
            await self._write(self._video_rows, result, calibration, inference_ms, received)

    def close(self) -> None:
        """Let the rows already handed over be written."""
        self._writer.shutdown(wait=True)

    async def _write(self, make_rows: Callable[..., Rows], *args: Any) -> None:
        context = contextvars.copy_context()  # the request's id, read by the monitor in the writer thread
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer, context.run, self._record, make_rows, args)

    def _record(self, make_rows: Callable[..., Rows], args: tuple[Any, ...]) -> None:
        try:
            rows = make_rows(*args)
            with bentoml.monitor(RECORDS_NAME) as monitor:
                for name, (role, kind) in COLUMNS.items():
                    monitor.log_batch([row[name] for row in rows], name, role, kind)
        except Exception as error:  # a full or missing disk must not fail the answer
            now = time.monotonic()
            if now - self._warned_at >= WARN_EVERY_S:
                self._warned_at = now
                logger.warning("Could not record an answer (%s: %s); serving goes on.", type(error).__name__, error)

    def _image_rows(
        self,
        route: Route,
        answers: Sequence[Classification],
        uploads: Sequence[Path],
        calibration: str | None,
        inference_ms: float,
        received: float,
    ) -> Rows:
        latency_ms = (time.perf_counter() - received) * 1000
        rows = []
        for index, (answer, upload) in enumerate(zip(answers, uploads, strict=True)):
            verdict = answer.verdict
            rows.append(
                {
                    "route": route,
                    "image_index": index,
                    **self.model,
                    "calibration": calibration,
                    "top_label": answer.predictions[0].label,
                    "confidence": verdict.confidence,
                    "abstained": verdict.abstained,
                    "margin": answer.margin,
                    "ood_score": verdict.ood_score,
                    "out_of_distribution": verdict.out_of_distribution,
                    "latency_ms": latency_ms,
                    "inference_ms": inference_ms,
                    "frames_scored": None,
                    "segments": None,
                    "embedding": _float32s(answer.embedding) if self.sampler.take() else None,
                    "image": self._kept_image(upload),
                }
            )
        return rows

    def _video_rows(
        self, result: VideoPrediction, calibration: str | None, inference_ms: float, received: float
    ) -> Rows:
        return [
            {
                "route": "/predict_video",
                "image_index": None,
                **self.model,
                "calibration": calibration,
                **_video_summary(result, self.ood_above),
                "latency_ms": (time.perf_counter() - received) * 1000,
                "inference_ms": inference_ms,
                "frames_scored": len(result.frames),
                "segments": [
                    {"label": segment.label, "duration_s": round(segment.end_s - segment.start_s, 6)}
                    for segment in result.segments
                ],
                "embedding": None,
                "image": None,
            }
        ]

    def _kept_image(self, upload: Path) -> str | None:
        """The upload's bytes, base64, with `keep_images` and up to `max_image_kb`; None otherwise."""
        if not self.config.keep_images or upload.stat().st_size > self.config.max_image_kb * 1024:
            return None
        return base64.b64encode(upload.read_bytes()).decode("ascii")


def _video_summary(result: VideoPrediction, ood_above: float | None) -> dict[str, Any]:
    """A video's answer-level fields: the label its segments give the most time, and its frames' mean confidence,
    margin (when they carry a runner-up) and out-of-distribution score (judged by the calibration's threshold)."""
    frames = result.frames
    lasting: dict[str, float] = defaultdict(float)
    for segment in result.segments:
        lasting[segment.label] += segment.end_s - segment.start_s
    top_label = max(lasting, key=lasting.__getitem__, default=NO_ACTION)  # ties: the first to appear
    gaps = [frame.predictions[0].score - frame.predictions[1].score for frame in frames if len(frame.predictions) > 1]
    scores = [frame.ood_score for frame in frames if frame.ood_score is not None]
    ood_score = _mean(scores) if scores and len(scores) == len(frames) else None
    return {
        "top_label": top_label,
        "confidence": _mean([frame.predictions[0].score for frame in frames]),
        "abstained": top_label == NO_ACTION,
        "margin": _mean(gaps) if gaps and len(gaps) == len(frames) else None,
        "ood_score": ood_score,
        "out_of_distribution": ood_score is not None and ood_above is not None and ood_score > ood_above,
    }


def _float32s(values: list[float] | None) -> list[float] | None:
    """float32 values as the shortest decimals that read back to the same float32 (~11 characters, not 20)."""
    if values is None:
        return None
    return [float(str(value)) for value in np.asarray(values, dtype=np.float32)]


def _mean(values: list[float]) -> float:
    return float(sum(values) / len(values)) if values else 0.0
