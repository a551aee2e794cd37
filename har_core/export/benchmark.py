"""Latency and throughput of each exported format, measured through the same `Predictor` that serves it.

Warm-up calls are never timed. Every timed call returns numpy arrays, so GPU work is synchronised (copied back)
inside the timing, as a client would see it.
"""

from __future__ import annotations

import platform
import time

import numpy as np
from pydantic import BaseModel

from har_core.config import BenchmarkConfig
from har_core.runtime.manifest import ExportBundle
from har_core.runtime.predictor import Predictor, default_threads


class BenchmarkRow(BaseModel):
    format: str
    deployable: bool
    p50_ms: float | None = None  # batch 1
    p95_ms: float | None = None
    throughput_ips: float | None = None  # images/s at `batch_size`
    batch_size: int
    device: str = ""
    note: str = ""


class BenchmarkTable(BaseModel):
    machine: str
    threads: int
    rows: list[BenchmarkRow]

    def metrics(self) -> dict[str, float]:
        """Flat numbers for experiment trackers and model-version metadata."""
        flat = {}
        for row in self.rows:
            for name in ("p50_ms", "p95_ms", "throughput_ips"):
                if getattr(row, name) is not None:
                    flat[f"{row.format}/{name}"] = float(getattr(row, name))
        return flat

    def markdown(self) -> str:
        batch = self.rows[0].batch_size if self.rows else "-"
        lines = [
            f"# Export benchmark ({self.machine}, {self.threads} threads)",
            "",
            f"| format | deployable | p50 ms (batch 1) | p95 ms (batch 1) | img/s (batch {batch}) | device | note |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for row in self.rows:
            cells = [_fmt(row.p50_ms, ".2f"), _fmt(row.p95_ms, ".2f"), _fmt(row.throughput_ips, ".1f")]
            deployable = "yes" if row.deployable else "no"
            lines.append(f"| {row.format} | {deployable} | {' | '.join(cells)} | {row.device} | {row.note} |")
        return "\n".join(lines) + "\n"


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def time_calls(call, pixels: np.ndarray, warmup: int, iterations: int) -> np.ndarray:
    """Seconds per call, after `warmup` untimed calls."""
    for _ in range(warmup):
        call(pixels)
    timings = np.empty(iterations)
    for index in range(iterations):
        start = time.perf_counter()
        call(pixels)
        timings[index] = time.perf_counter() - start
    return timings


def benchmark_predictor(predictor: Predictor, config: BenchmarkConfig) -> BenchmarkRow:
    """p50/p95 latency at batch 1 and throughput at `config.batch_size` on random pixels of the right shape."""
    crop = predictor.manifest.preprocess.crop_size
    rng = np.random.default_rng(0)
    single = rng.standard_normal((1, 3, crop, crop), dtype=np.float32)
    batch = rng.standard_normal((config.batch_size, 3, crop, crop), dtype=np.float32)
    latency = time_calls(predictor.run, single, config.warmup, config.latency_iterations) * 1000
    throughput = time_calls(predictor.run, batch, config.warmup, config.throughput_iterations)
    return BenchmarkRow(
        format=predictor.format,
        deployable=predictor.manifest.deployable,
        p50_ms=float(np.percentile(latency, 50)),
        p95_ms=float(np.percentile(latency, 95)),
        throughput_ips=float(config.batch_size * len(throughput) / throughput.sum()),
        batch_size=config.batch_size,
        device=_device_of(predictor),
    )


def benchmark_bundle(bundle: ExportBundle, config: BenchmarkConfig) -> BenchmarkTable:
    """One row per requested format; formats that were not exported or failed their gate say why and are not timed."""
    threads = config.threads or default_threads()
    rows = []
    for name, status in bundle.formats.items():
        if not status.deployable:
            rows.append(BenchmarkRow(format=name, deployable=False, batch_size=config.batch_size, note=status.message))
            continue
        predictor = Predictor.from_export(bundle.directory(name), device=config.device, threads=threads)
        rows.append(benchmark_predictor(predictor, config))
    machine = f"{platform.machine()} {platform.processor() or platform.system()}"
    return BenchmarkTable(machine=machine, threads=threads, rows=rows)


def _device_of(predictor: Predictor) -> str:
    session = getattr(predictor.backend, "session", None)
    if session is not None:
        return "cuda" if session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
    device = getattr(predictor.backend, "device", None)
    return str(device) if device is not None else "cuda"
