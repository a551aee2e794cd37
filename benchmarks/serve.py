"""Served throughput of the Bento vs in-process inference, on the ViT-B/16 architecture (random init, no download).

    python benchmarks/serve.py                       # ONNX and int8, concurrency 1/8/32, one table
    python benchmarks/serve.py --requests 48 --formats onnx

Builds CLIP ViT-B/16 at its real sizes through the tiny-backbone path, exports ONNX and int8 ONNX like the pipeline,
then for each format: `bentoml serve` of a Bento built from it (adaptive batching on), JPEG uploads to /predict at
concurrency 1, 8 and 32 (img/s, p50/p99 latency per request); in-process onnxruntime at batch 8 (`Predictor.run`)
and torch eager at batch 8 are the references. Goals: served >= 0.9x in-process ORT, >= 1.2x torch eager.
Served numbers include JPEG decode, preprocessing and HTTP; in-process ones start from preprocessed pixels.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import io
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


VIT_B16 = dict(image_size=224, patch_size=16, hidden_size=768, num_layers=12, num_heads=12, projection_dim=512)
CONCURRENCY = (1, 8, 32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--formats", nargs="+", default=["onnx", "onnx-int8"])
    parser.add_argument("--requests", type=int, default=64, help="requests per concurrency level (c=1 uses 1/4)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--log-dir", default=".cache/har-clip/bench", help="where the servers' logs are kept")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    Path(args.log_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="har-clip-serve-bench-") as workdir:
        os.environ["BENTOML_HOME"] = str(Path(workdir) / "bentoml")  # before bentoml is imported
        os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
        rows = run(Path(workdir), args)
    print_table(rows, args)


def run(workdir: Path, args) -> list[dict]:
    import torch

    from har_core.config import ClassifierConfig, ExportConfig, TinyBackboneConfig
    from har_core.export.bundle import export_bundle
    from har_core.model.classifier import build_classifier
    from har_core.model.serving_graph import ImageModel
    from har_core.runtime.labels import HAR_LABELS
    from har_core.runtime.manifest import ModelSource
    from har_core.runtime.predictor import Predictor
    from har_core.runtime.settings import ParityThresholds

    classifier = build_classifier(
        ClassifierConfig(tiny_backbone=TinyBackboneConfig(**VIT_B16), cache_dir=workdir / "backbones"), HAR_LABELS
    )
    pixels = np.random.default_rng(0).standard_normal((args.batch_size, 3, 224, 224), dtype=np.float32)
    gates = dict(ExportConfig().gates)  # random init: only int8's embedding cosine means anything
    gates["onnx-int8"] = ParityThresholds(min_top1_agreement=0.0, max_abs_logit_diff=None, min_embedding_cosine=0.99)
    config = ExportConfig(formats=tuple(args.formats), text_tower=False, gates=gates)
    bundle = export_bundle(classifier, pixels, workdir / "exports", config, ModelSource(backbone="ViT-B/16"), "cpu")

    eager = ImageModel(classifier).eval()

    def run_eager(batch: np.ndarray) -> None:
        with torch.inference_mode():
            eager(torch.from_numpy(batch))

    rows = [{"name": "torch eager, in-process", "ips": _throughput(run_eager, pixels, args.iterations)}]
    print(rows[-1], flush=True)
    images = _jpegs(8)
    for name in args.formats:
        predictor = Predictor.from_export(bundle.directory(name), device="cpu")
        rows.append({"name": f"{name}, in-process ORT", "ips": _throughput(predictor.run, pixels, args.iterations)})
        print(rows[-1], flush=True)
        del predictor
        rows.extend(_served(bundle.directory(name), name, images, workdir, args))
    return rows


def _served(export_dir: Path, name: str, images: list[bytes], workdir: Path, args) -> list[dict]:
    import requests

    from bento.packaging import build_bento, save_bento_model
    from bento.server import BentoServer
    from har_core.runtime.settings import ServingConfig

    model = save_bento_model(export_dir, model_version="bench")
    # A generous batching deadline: BentoML cancels (503) queued requests once its own latency estimate for them
    # passes it, and that estimate is noisy while it is still being fitted.
    serving = ServingConfig(max_batch_size=32, max_latency_ms=600_000, timeout_s=900)
    bento = build_bento(str(model.tag), name, serving)
    rows = []
    with BentoServer(str(bento.tag), Path(args.log_dir) / f"serve-{name}.log") as server, requests.Session() as session:

        def one(index: int) -> float:
            start = time.perf_counter()
            files = {"image": (f"{index}.jpg", images[index % len(images)], "image/jpeg")}
            response = session.post(f"{server.url}/predict", files=files, timeout=600)
            response.raise_for_status()
            return time.perf_counter() - start

        for _ in range(2):
            one(0)  # warm-up, untimed
        for concurrency in CONCURRENCY:
            count = max(8, args.requests // 4) if concurrency == 1 else args.requests
            start = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
                latencies = np.array(list(pool.map(one, range(count))))
            elapsed = time.perf_counter() - start
            row = {
                "name": f"{name}, served, concurrency {concurrency}",
                "ips": count / elapsed,
                "p50": np.percentile(latencies, 50) * 1000,
                "p99": np.percentile(latencies, 99) * 1000,
            }
            print(row, flush=True)
            rows.append(row)
    return rows


def _throughput(call, pixels: np.ndarray, iterations: int) -> float:
    call(pixels)  # warm-up
    start = time.perf_counter()
    for _ in range(iterations):
        call(pixels)
    return len(pixels) * iterations / (time.perf_counter() - start)


def _jpegs(count: int) -> list[bytes]:
    from PIL import Image

    rng = np.random.default_rng(1)
    encoded = []
    for _ in range(count):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (360, 480, 3), dtype=np.uint8)).save(buffer, "JPEG", quality=90)
        encoded.append(buffer.getvalue())
    return encoded


def print_table(rows: list[dict], args) -> None:
    eager = rows[0]["ips"]
    in_process = {row["name"].split(",")[0]: row["ips"] for row in rows if "in-process ORT" in row["name"]}
    print(f"\nViT-B/16 (random init), {os.cpu_count()} CPUs; in-process at batch {args.batch_size}")
    print("| path | img/s | × torch eager | × in-process ORT | p50 ms | p99 ms |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        ort = in_process.get(row["name"].split(",")[0])
        versus_ort = f"{row['ips'] / ort:.2f}" if ort and "served" in row["name"] else "—"
        p50 = f"{row['p50']:.0f}" if "p50" in row else "—"
        p99 = f"{row['p99']:.0f}" if "p99" in row else "—"
        print(f"| {row['name']} | {row['ips']:.2f} | {row['ips'] / eager:.2f} | {versus_ort} | {p50} | {p99} |")


if __name__ == "__main__":
    main()
