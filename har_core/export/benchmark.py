"""One table per model, one row per format: status, size, accuracy through the format, latency and throughput.

The columns users of export tools expect (Ultralytics' `benchmark` mode is the anchor): whether the format passed
its parity gate (or was exported but failed it, or could not be exported, with the reason), its file size, top-1
accuracy on the evaluation split computed through that format (not only its agreement with PyTorch), latency at
batch 1 split into preprocess / inference / end to end, and throughput at batch N. Everything runs through the same
`Predictor` that serves the format. Warm-up calls are never timed; every timed call returns numpy arrays, so GPU
work is synchronised (copied back) inside the timing, as a client would see it.
"""

from __future__ import annotations

import io
import platform
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, model_validator

from har_core.config import BenchmarkConfig
from har_core.data.dataset import DatasetManifest
from har_core.runtime.images import open_image
from har_core.runtime.manifest import (
    CLASS_EMBEDDINGS_ROLE,
    MODEL_CARD_ROLE,
    OOD_STATISTICS_ROLE,
    PARITY_SET_ROLE,
    REFERENCE_ROLE,
    TEXT_MODEL_ROLE,
    TOKENIZER_ROLE,
    ExportBundle,
    ExportManifest,
)
from har_core.runtime.predictor import Predictor, default_threads
from har_core.runtime.preprocess import preprocess_batch

FormatStatusName = Literal["passed", "failed its gate", "export failed"]
# Files every format carries (or that only describe it): left out of a format's size.
SHARED_ROLES = frozenset(
    {
        CLASS_EMBEDDINGS_ROLE, MODEL_CARD_ROLE, TEXT_MODEL_ROLE, TOKENIZER_ROLE, PARITY_SET_ROLE, OOD_STATISTICS_ROLE,
        REFERENCE_ROLE,
    }
)  # fmt: skip
TENSORRT_ONNX_SOURCE_ROLE = "onnx_source"  # the ONNX graph a TensorRT engine was built from
LabelledImage = tuple[str | Path, str]  # (image file, its label)


def labelled_images(dataset: DatasetManifest, split: Literal["val", "test"]) -> list[LabelledImage]:
    """(image file, label name) of every record of `split`: what accuracy through a format is measured on."""
    return [(record.path, dataset.labels[record.label]) for record in dataset.split(split)]


class BenchmarkRow(BaseModel):
    format: str
    status: FormatStatusName | None = None  # None in tables from before it was recorded
    deployable: bool
    size_mb: float | None = None  # the image model's files (shared files every format carries left out)
    accuracy: float | None = None  # top-1 on `accuracy_images` images of the evaluation split, through this format
    accuracy_images: int | None = None
    preprocess_ms: float | None = None  # batch 1, p50: image file bytes -> pixels (decode, resize, crop, normalise)
    p50_ms: float | None = None  # batch 1 inference, p50: pixels -> (embeddings, logits)
    p95_ms: float | None = None  # batch 1 inference, p95
    end_to_end_ms: float | None = None  # batch 1, p50: image file bytes -> top-5 labels
    throughput_ips: float | None = None  # images/s at `batch_size`, inference only
    batch_size: int
    device: str = ""
    note: str = ""

    @model_validator(mode="after")
    def _status_of_old_tables(self) -> BenchmarkRow:
        if self.status is None and self.deployable:
            self.status = "passed"
        return self


class BenchmarkTable(BaseModel):
    machine: str
    threads: int
    rows: list[BenchmarkRow]
    model: str = ""  # e.g. "har_clip_classifier version 3"
    split: str | None = None  # the evaluation split accuracy is measured on

    def metrics(self) -> dict[str, float]:
        """Flat numbers for experiment trackers and model-version metadata."""
        names = ("size_mb", "accuracy", "preprocess_ms", "p50_ms", "p95_ms", "end_to_end_ms", "throughput_ips")
        flat = {}
        for row in self.rows:
            for name in names:
                if getattr(row, name) is not None:
                    flat[f"{row.format}/{name}"] = float(getattr(row, name))
        return flat

    def markdown(self) -> str:
        batch = self.rows[0].batch_size if self.rows else "-"
        images = next((row.accuracy_images for row in self.rows if row.accuracy_images), None)
        accuracy = f"top-1 on {images} images of the {self.split} split" if images else "not measured (no images)"
        lines = [
            f"# Export benchmark{f' of {self.model}' if self.model else ''} ({self.machine}, {self.threads} threads)",
            "",
            f"Accuracy: {accuracy}, through each format. Latency: batch 1, p50. Throughput: batch {batch}.",
            "",
            "| format | status | size (MB) | accuracy | preprocess ms | inference ms | end-to-end ms "
            f"| img/s (batch {batch}) | device | note |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for row in self.rows:
            cells = [
                row.format,
                row.status or "not deployable",
                _fmt(row.size_mb, ".1f"),
                _fmt(row.accuracy, ".4f"),
                _fmt(row.preprocess_ms, ".2f"),
                _fmt(row.p50_ms, ".2f"),
                _fmt(row.end_to_end_ms, ".2f"),
                _fmt(row.throughput_ips, ".1f"),
                row.device,
                row.note,
            ]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def time_calls(call: Callable, argument, warmup: int, iterations: int) -> np.ndarray:
    """Seconds per `call(argument)`, after `warmup` untimed calls."""
    for _ in range(warmup):
        call(argument)
    timings = np.empty(iterations)
    for index in range(iterations):
        start = time.perf_counter()
        call(argument)
        timings[index] = time.perf_counter() - start
    return timings


def accuracy_on(predictor: Predictor, images: Sequence[LabelledImage], batch_size: int) -> tuple[float | None, int]:
    """(top-1 accuracy, images scored) of `predictor` on labelled image files, decoded as evaluation decodes them."""
    if not images:
        return None, 0
    labels = predictor.labels
    correct = 0
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        pixels = preprocess_batch([open_image(path) for path, _ in chunk], predictor.manifest.preprocess)
        predicted = predictor.run(pixels)[1].argmax(axis=1)
        correct += sum(labels[index] == label for index, (_, label) in zip(predicted, chunk, strict=True))
    return correct / len(images), len(images)


def benchmark_predictor(
    predictor: Predictor, config: BenchmarkConfig, images: Sequence[LabelledImage] = ()
) -> BenchmarkRow:
    """Size, accuracy on `images`, batch-1 latency (preprocess / inference / end to end) and batch-N throughput.

    Latency starts from the bytes of the first image (a generated photo-sized JPEG when there are none)."""
    images = images[: config.max_accuracy_images] if config.max_accuracy_images else images
    accuracy, scored = accuracy_on(predictor, images, config.batch_size)
    data = Path(images[0][0]).read_bytes() if images else sample_jpeg()
    preprocess = predictor.manifest.preprocess
    crop = preprocess.crop_size
    rng = np.random.default_rng(0)
    single = rng.standard_normal((1, 3, crop, crop), dtype=np.float32)
    batch = rng.standard_normal((config.batch_size, 3, crop, crop), dtype=np.float32)

    def prepare(encoded: bytes) -> np.ndarray:
        return preprocess_batch([open_image(encoded)], preprocess)

    prepare_ms = time_calls(prepare, data, config.warmup, config.latency_iterations) * 1000
    latency = time_calls(predictor.run, single, config.warmup, config.latency_iterations) * 1000
    end_to_end = time_calls(
        lambda encoded: predictor.predict([open_image(encoded)], top_k=5),
        data,
        config.warmup,
        config.latency_iterations,
    )
    throughput = time_calls(predictor.run, batch, config.warmup, config.throughput_iterations)
    return BenchmarkRow(
        format=predictor.format,
        status="passed" if predictor.manifest.deployable else "failed its gate",
        deployable=predictor.manifest.deployable,
        size_mb=model_size_mb(predictor.manifest),
        accuracy=accuracy,
        accuracy_images=scored or None,
        preprocess_ms=float(np.percentile(prepare_ms, 50)),
        p50_ms=float(np.percentile(latency, 50)),
        p95_ms=float(np.percentile(latency, 95)),
        end_to_end_ms=float(np.percentile(end_to_end, 50) * 1000),
        throughput_ips=float(config.batch_size * len(throughput) / throughput.sum()),
        batch_size=config.batch_size,
        device=_device_of(predictor),
    )


def benchmark_bundle(
    bundle: ExportBundle,
    config: BenchmarkConfig,
    images: Sequence[LabelledImage] = (),
    formats: Iterable[str] | None = None,
    split: str | None = None,
    model: str = "",
) -> BenchmarkTable:
    """One row per exported format (or per format of `formats`). A format that failed its gate is measured too (its
    note says why it failed); one that could not be exported says why and is not measured."""
    threads = config.threads or default_threads()
    wanted = set(formats) if formats is not None else set(bundle.formats)
    rows = []
    for name, status in bundle.formats.items():
        if name not in wanted:
            continue
        if status.directory is None:
            rows.append(
                BenchmarkRow(
                    format=name,
                    status="export failed",
                    deployable=False,
                    batch_size=config.batch_size,
                    note=status.message,
                )
            )
            continue
        predictor = Predictor.from_export(
            bundle.directory(name), device=config.device, threads=threads, require_parity=False
        )
        row = benchmark_predictor(predictor, config, images)
        gate = "passed" if status.deployable else "failed its gate"
        rows.append(row.model_copy(update={"status": gate, "deployable": status.deployable, "note": status.message}))
    machine = f"{platform.machine()} {platform.processor() or platform.system()}"
    model = model or _model_of(bundle)
    return BenchmarkTable(machine=machine, threads=threads, rows=rows, model=model, split=split if images else None)


def _model_of(bundle: ExportBundle) -> str:
    """ "<model name> version <n>" from an exported format's manifest; "" when unknown."""
    for name, status in bundle.formats.items():
        if status.directory is not None:
            source = bundle.manifest(name).source
            return f"{source.model_name} version {source.model_version}" if source.model_name else ""
    return ""


def accuracy_floor_failures(table: BenchmarkTable, floor: float) -> list[str]:
    """Why each row misses `floor` (accuracy below it, or no accuracy at all); empty when every row reaches it."""
    failures = []
    for row in table.rows:
        if row.accuracy is None:
            failures.append(f"{row.format}: no accuracy ({row.status or 'not measured'}: {row.note or 'no images'})")
        elif row.accuracy < floor:
            failures.append(f"{row.format}: accuracy {row.accuracy:.4f} < {floor}")
    return failures


def model_size_mb(manifest: ExportManifest) -> float:
    """Megabytes of the format's own files: the image model's graph, weights or engine."""
    own = [entry for role, entry in manifest.files.items() if role not in SHARED_ROLES | {TENSORRT_ONNX_SOURCE_ROLE}]
    return sum(entry.size_bytes for entry in own) / 1e6


def sample_jpeg(width: int = 640, height: int = 480) -> bytes:
    """A photo-sized JPEG (smooth gradients plus noise, quality 90) for latency when no image is at hand."""
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack([xs * 255 / width, ys * 255 / height, (xs + ys) * 255 / (width + height)], axis=-1)
    pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _device_of(predictor: Predictor) -> str:
    session = getattr(predictor.backend, "session", None)
    if session is not None:
        return "cuda" if session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
    device = getattr(predictor.backend, "device", None)
    return str(device) if device is not None else "cuda"
