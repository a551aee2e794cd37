"""Resident memory of a serving process tree for the ViT-B/16 architecture (random init, no download): the figure
the Kubernetes memory limits in bento_ops/k8s/ are derived from (README, Kubernetes).

    python -m benchmarks.serving.serve_memory                    # onnx and onnx-int8, with the text tower
    python -m benchmarks.serving.serve_memory --formats onnx

For each format: `bentoml serve` of the service pinned to the export (one worker, as the manifests run it); the
RSS of its whole process tree (arbiter + worker) once ready, and its peak while 64 /predict requests run at
concurrency 8 and then 4 /predict_batch requests of 32 images each run side by side (480×360 JPEGs), and then 4
/predict_video requests of a 10 s 1280×720 MPEG-4 clip side by side (the video route's pool of 2, and 2 waiting);
the peak of each phase is printed. Model files' sizes are printed beside it. Peak RSS under hostile uploads
(decompression bombs, lying video headers) is bounded by the serving config's pixel budgets and FFmpeg's pixel limit,
measured separately (benchmarks/serving/serve_faults.py).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import logging
import os
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.serving.serve_bench import VIT_B16, _jpegs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--formats", nargs="+", default=["onnx", "onnx-int8"])
    parser.add_argument("--log-dir", default=".cache/har-clip/bench", help="where the servers' logs are kept")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    Path(args.log_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="har-clip-memory-bench-") as workdir:
        os.environ["BENTOML_HOME"] = str(Path(workdir) / "bentoml")  # before bentoml is imported
        os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
        rows = [measure(directory, name, Path(args.log_dir)) for name, directory in export(Path(workdir), args)]
    print(f"\nViT-B/16 (random init), text tower included, 1 worker, {os.cpu_count()} CPUs")
    print("| format | model files MiB | tree RSS ready MiB | peak, images MiB | peak, with 4 videos MiB |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        cells = (row["files"], row["ready"], row["peak_images"], row["peak"])
        print(f"| {row['format']} | " + " | ".join(f"{value:.0f}" for value in cells) + " |")


def export(workdir: Path, args) -> list[tuple[str, Path]]:
    import numpy as np

    from har_core.config import ClassifierConfig, ExportConfig, TinyBackboneConfig
    from har_core.export.bundle import export_bundle
    from har_core.model.classifier import build_classifier
    from har_core.runtime.labels import HAR_LABELS
    from har_core.runtime.manifest import ModelSource
    from har_core.runtime.settings import ParityThresholds

    classifier = build_classifier(
        ClassifierConfig(tiny_backbone=TinyBackboneConfig(**VIT_B16), cache_dir=workdir / "backbones"), HAR_LABELS
    )
    pixels = np.random.default_rng(0).standard_normal((8, 3, 224, 224), dtype=np.float32)
    gates = dict(ExportConfig().gates)  # random init: only int8's embedding cosine means anything
    gates["onnx-int8"] = ParityThresholds(min_top1_agreement=0.0, max_abs_logit_diff=None, min_embedding_cosine=0.99)
    config = ExportConfig(formats=tuple(args.formats), gates=gates)
    bundle = export_bundle(classifier, pixels, workdir / "exports", config, ModelSource(backbone="ViT-B/16"), "cpu")
    return [(name, bundle.directory(name)) for name in bundle.deployable_formats()]


def measure(export_dir: Path, name: str, log_dir: Path) -> dict:
    import requests

    from bento.serving_config import write_serving_config
    from bento_ops.packaging import save_bento_model
    from bento_ops.server import BentoServer
    from har_core.runtime.settings import ServingConfig

    model = save_bento_model(export_dir, model_version="bench")
    files = sum(path.stat().st_size for path in export_dir.iterdir() if path.is_file()) / 2**20
    images = _jpegs(8)
    # A generous batching deadline and timeout: on a loaded host queued requests would otherwise be answered 503/504
    # before they ran, and this measures memory, not latency.
    serving = write_serving_config(
        ServingConfig(max_latency_ms=600_000, timeout_s=900), log_dir / f"memory-{name}-serving.yaml"
    )
    env = {"HAR_CLIP_BENTO_MODEL": str(model.tag), "HAR_CLIP_SERVING_CONFIG": str(serving)}
    with BentoServer("bento.service:HarClipService", log_dir / f"memory-{name}.log", env) as server:
        time.sleep(2)
        ready = tree_rss_mib(server.process.pid)
        print(f"{name}: model files {files:.0f} MiB, tree RSS once ready {ready:.0f} MiB", flush=True)
        peak, stop = [ready], threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak.append(tree_rss_mib(server.process.pid))
                time.sleep(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()

        def one(index: int) -> None:
            upload = {"image": (f"{index}.jpg", images[index % len(images)], "image/jpeg")}
            requests.post(f"{server.url}/predict", files=upload, timeout=600).raise_for_status()

        def batch(index: int) -> None:
            uploads = [("images", (f"{i}.jpg", images[i % len(images)], "image/jpeg")) for i in range(32)]
            requests.post(f"{server.url}/predict_batch", files=uploads, timeout=600).raise_for_status()

        clip = _clip()

        def video(index: int) -> None:
            upload = {"video": (f"{index}.mp4", clip, "video/mp4")}
            requests.post(f"{server.url}/predict_video", files=upload, timeout=900).raise_for_status()

        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(one, range(64)))
            list(pool.map(batch, range(4)))
            images_peak = max(peak)
            list(pool.map(video, range(4)))
        stop.set()
        sampler.join()
    row = {"format": name, "files": files, "ready": ready, "peak_images": images_peak, "peak": max(peak)}
    print(row, flush=True)
    return row


def _clip(seconds: int = 10, fps: int = 25) -> bytes:
    """A 1280x720 MPEG-4 clip of moving noise blocks (hard to compress, so the decoder works)."""
    import io

    import av
    import numpy as np

    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 255, (90, 160, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt, stream.bit_rate = 1280, 720, "yuv420p", 4_000_000
        for index in range(seconds * fps):
            pixels = np.roll(blocks, index, axis=1).repeat(8, axis=0).repeat(8, axis=1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def tree_rss_mib(pid: int) -> float:
    """Summed resident memory of `pid` and its descendants (shared pages counted per process: an upper bound)."""
    from har_core.training.process_tree import tree_rss_bytes

    return tree_rss_bytes(pid) / 1024 / 1024


if __name__ == "__main__":
    main()
