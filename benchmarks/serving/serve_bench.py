"""Served inference against in-process inference, and /classify's cost against its label count.

    python -m benchmarks.serving.serve_bench                                   # both parts, ONNX and int8
    python -m benchmarks.serving.serve_bench --only predict --formats onnx --baseline-source /tmp/before
    python -m benchmarks.serving.serve_bench --only classify --labels 10 100 1000

`predict`: CLIP ViT-B/16 at its real sizes through the tiny-backbone path (random init, nothing downloaded), exported
to ONNX and int8 ONNX like the pipeline; for each format `bentoml serve` of a Bento built from it (adaptive batching
on) gets JPEG uploads (480x360) to /predict at concurrency 1, 8 and 32 (img/s, p50/p99 latency per request). The
references: in-process `Predictor` at batch 1 from the same JPEG bytes (decode + preprocess + model, the like-for-like
reference of concurrency 1; goal: served >= 0.9x), in-process onnxruntime at batch 8 on preprocessed pixels and torch
eager at batch 8 (goals from concurrency 8: served >= 0.9x in-process ORT, >= 1.2x eager). Concurrency 1 and its
reference run in alternating rounds, so a shared host's load hits both alike. `--baseline-source DIR` also serves
`bento.service:HarClipService` from another checkout at concurrency 1 (before/after in one run).

`fairness`: the ViT-B/16 ONNX export served twice, with `model_calls: serial` (one model call at a time per worker,
every route) and `parallel` (/predict_batch calls the model concurrently); 8 clients send /predict_batch requests of
4 JPEGs; p50/p95 latency and img/s of each.

`classify`: the quick model's export (configs/quickstart.yaml's sizes, text tower included) served with
`max_custom_labels` raised to the largest count; per label count, the first /classify request (the text tower
embeds the labels x templates prompts) and repeated ones (cached embeddings), against /predict and the in-process
text tower on the same prompts. Goals: the repeated cost stays flat up to 1,000 labels; the first grows only by
the text tower's time.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import io
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np

VIT_B16 = dict(image_size=224, patch_size=16, hidden_size=768, num_layers=12, num_heads=12, projection_dim=512)
QUICK = dict(image_size=64, patch_size=8, hidden_size=64, num_layers=2, num_heads=2, projection_dim=64)
CONCURRENCY = (1, 8, 32)
ROUNDS = 3  # alternating rounds of concurrency 1 and its in-process reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["predict", "classify", "fairness"], action="append")
    parser.add_argument("--formats", nargs="+", default=["onnx", "onnx-int8"])
    parser.add_argument("--requests", type=int, default=64, help="requests per concurrency level (c=1: 1/4)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--labels", type=int, nargs="+", default=[10, 100, 1000], help="/classify label counts")
    parser.add_argument("--repeats", type=int, default=5, help="repeated /classify requests per label count")
    parser.add_argument("--baseline-source", type=Path, help="also serve bento.service from this checkout (c=1)")
    parser.add_argument("--log-dir", default=".cache/har-clip/bench", help="where the servers' logs are kept")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    Path(args.log_dir).mkdir(parents=True, exist_ok=True)
    parts = args.only or ["predict", "classify"]
    print(f"load average at start: {', '.join(f'{value:.2f}' for value in os.getloadavg())}", flush=True)
    with tempfile.TemporaryDirectory(prefix="har-clip-serve-bench-") as workdir:
        os.environ["BENTOML_HOME"] = str(Path(workdir) / "bentoml")  # before bentoml is imported
        os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
        if "predict" in parts:
            print_predict_table(predict_rows(Path(workdir), args), args)
        if "classify" in parts:
            print_classify_table(classify_rows(Path(workdir), args))
        if "fairness" in parts:
            fairness_rows(Path(workdir), args)
    print(f"load average at end: {', '.join(f'{value:.2f}' for value in os.getloadavg())}")


def export(workdir: Path, sizes: dict, formats: list[str], text_tower: bool, name: str):
    """A random-init CLIP of `sizes` exported like the pipeline does (random init: only int8's cosine is gated)."""
    from har_core.config import ClassifierConfig, ExportConfig, TinyBackboneConfig
    from har_core.export.bundle import export_bundle
    from har_core.model.classifier import build_classifier
    from har_core.runtime.labels import HAR_LABELS
    from har_core.runtime.manifest import ModelSource
    from har_core.runtime.settings import ParityThresholds

    config = ClassifierConfig(tiny_backbone=TinyBackboneConfig(**sizes), cache_dir=workdir / "backbones")
    classifier = build_classifier(config, HAR_LABELS)
    crop = classifier.preprocess_config.crop_size
    pixels = np.random.default_rng(0).standard_normal((8, 3, crop, crop), dtype=np.float32)
    gates = dict(ExportConfig().gates)
    gates["onnx-int8"] = ParityThresholds(min_top1_agreement=0.0, max_abs_logit_diff=None, min_embedding_cosine=0.99)
    export_config = ExportConfig(formats=tuple(formats), text_tower=text_tower, gates=gates)
    source = ModelSource(backbone=name)
    bundle = export_bundle(classifier, pixels, workdir / f"exports-{name}", export_config, source, "cpu")
    return classifier, pixels, bundle


def predict_rows(workdir: Path, args) -> list[dict]:
    import torch

    from har_core.model.serving_graph import ImageModel
    from har_core.runtime.predictor import Predictor

    classifier, _, bundle = export(workdir, VIT_B16, args.formats, text_tower=False, name="ViT-B-16")
    pixels = np.random.default_rng(0).standard_normal((args.batch_size, 3, 224, 224), dtype=np.float32)
    eager = ImageModel(classifier).eval()

    def run_eager(batch: np.ndarray) -> None:
        with torch.inference_mode():
            eager(torch.from_numpy(batch))

    rows = [{"name": "torch eager, in-process, batch 8", "ips": _throughput(run_eager, pixels, args.iterations)}]
    print(rows[-1], flush=True)

    images = _jpegs(8)
    for name in args.formats:
        predictor = Predictor.from_export(bundle.directory(name), device="cpu")
        rows.append({"name": f"{name}, in-process ORT, batch 8", "ips": _throughput(predictor.run, pixels, 4)})
        print(rows[-1], flush=True)
        rows.extend(_served(bundle.directory(name), name, images, predictor, workdir, args))
        del predictor
    return rows


def _served(export_dir: Path, name: str, images: list[bytes], predictor, workdir: Path, args) -> list[dict]:
    from bento_ops.packaging import build_bento, save_bento_model
    from bento_ops.server import BentoServer
    from har_core.runtime.settings import ServingConfig

    model = save_bento_model(export_dir, model_version="bench")
    # A generous batching deadline: BentoML cancels (503) queued requests once its own latency estimate for them
    # passes it, and that estimate is noisy while it is still being fitted.
    serving = ServingConfig(max_batch_size=32, max_latency_ms=600_000, timeout_s=900)
    bento = build_bento(str(model.tag), name, serving)
    count = max(8, args.requests // 4)
    with BentoServer(str(bento.tag), Path(args.log_dir) / f"serve-{name}.log") as server:
        baseline = _baseline_server(args, export_dir, serving, workdir, name)
        try:
            single = {"in-process": [], "served": [], "baseline": []}
            for _ in range(ROUNDS):  # alternating, so the host's load changes both alike
                single["in-process"].append(_in_process_batch_1(predictor, images, count // ROUNDS + 1))
                single["served"].append(_load(server.url, images, 1, count // ROUNDS + 1))
                if baseline is not None:
                    single["baseline"].append(_load(baseline[1], images, 1, count // ROUNDS + 1))
            rows = [_merge(f"{name}, in-process Predictor, batch 1 from JPEG", single["in-process"])]
            rows.append(_merge(f"{name}, served, concurrency 1", single["served"]))
            if baseline is not None:
                rows.append(_merge(f"{name}, served (baseline), concurrency 1", single["baseline"]))
            for concurrency in CONCURRENCY[1:]:
                rows.append({"name": f"{name}, served, concurrency {concurrency}"})
                rows[-1].update(_load(server.url, images, concurrency, args.requests))
            for row in rows:
                print(row, flush=True)
            return rows
        finally:
            if baseline is not None:
                from har_core.training.process_tree import stop_process_tree

                stop_process_tree(baseline[0])


def fairness_rows(workdir: Path, args, concurrency: int = 8, images_per_request: int = 4) -> list[dict]:
    """/predict_batch at `concurrency` against the same export served with serial and with parallel model calls."""
    import requests

    from bento_ops.packaging import build_bento, save_bento_model
    from bento_ops.server import BentoServer
    from har_core.runtime.settings import ServingConfig

    _, _, bundle = export(workdir, VIT_B16, ["onnx"], text_tower=False, name="ViT-B-16-fairness")
    model = save_bento_model(bundle.directory("onnx"), model_version="fairness")
    images = _jpegs(8)
    count = max(concurrency, args.requests // 2)
    rows = []
    for mode in ("serial", "parallel"):
        serving = ServingConfig(max_latency_ms=600_000, timeout_s=900, model_calls=mode)
        bento = build_bento(str(model.tag), "onnx", serving)
        with (
            BentoServer(str(bento.tag), Path(args.log_dir) / f"serve-fairness-{mode}.log") as server,
            requests.Session() as session,
        ):
            session.mount("http://", requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=concurrency))

            def one(index: int) -> float:
                files = [
                    ("images", (f"{index}-{i}.jpg", images[(index + i) % 8], "image/jpeg"))
                    for i in range(images_per_request)
                ]
                start = time.perf_counter()
                session.post(f"{server.url}/predict_batch", files=files, timeout=900).raise_for_status()
                return time.perf_counter() - start

            one(0)
            started = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
                latencies = list(pool.map(one, range(count)))
            elapsed = time.perf_counter() - started
        rows.append({
            "model_calls": mode, "requests": count, "concurrency": concurrency,
            "ips": count * images_per_request / elapsed,
            "p50_ms": float(np.percentile(latencies, 50) * 1000), "p95_ms": float(np.percentile(latencies, 95) * 1000),
        })  # fmt: skip
        print(rows[-1], flush=True)
    return rows


def _baseline_server(args, export_dir: Path, serving, workdir: Path, name: str):
    """`bento.service:HarClipService` of the checkout at `--baseline-source`, serving the same model: (process, url).

    The same graph files, stored with a manifest the older checkout can read (`benchmarks.shared.baseline`)."""
    if args.baseline_source is None:
        return None
    import yaml

    from benchmarks.shared.baseline import for_baseline
    from bento_ops.packaging import save_bento_model
    from bento_ops.server import free_port, serve_command, start_server, wait_ready
    from har_core.training.process_tree import stop_process_tree

    readable = for_baseline(export_dir, workdir / f"export-{name}-baseline")
    model_tag = str(save_bento_model(readable, model_version="bench-baseline").tag)

    config = workdir / f"serving-{name}.yaml"
    config.write_text(yaml.safe_dump(serving.model_dump(mode="json", exclude_defaults=True)))
    source = args.baseline_source.resolve()
    env = {"HAR_CLIP_BENTO_MODEL": model_tag, "HAR_CLIP_SERVING_CONFIG": str(config), "PYTHONPATH": str(source)}
    port = free_port()
    log = Path(args.log_dir) / f"serve-{name}-baseline.log"
    process = start_server(serve_command("bento.service:HarClipService", port), log, env, cwd=source)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, log, timeout_s=600)
        _load(url, images=_jpegs(1), concurrency=1, count=2)  # warm-up, untimed
    except BaseException:
        stop_process_tree(process)  # a baseline that never became ready must not outlive the benchmark
        raise
    return process, url


def _in_process_batch_1(predictor, images: list[bytes], count: int) -> dict:
    """One image at a time from its JPEG bytes: decode, preprocess, model, top 5 (what one request does)."""
    from har_core.runtime.images import open_image

    predictor.predict([open_image(images[0])], top_k=5)  # warm-up
    latencies = []
    for index in range(count):
        start = time.perf_counter()
        predictor.predict([open_image(images[index % len(images)])], top_k=5)
        latencies.append(time.perf_counter() - start)
    return {"count": count, "seconds": sum(latencies), "latencies": latencies}


def _load(url: str, images: list[bytes], concurrency: int, count: int) -> dict:
    """`count` /predict requests, `concurrency` at a time, after two untimed ones."""
    import requests

    with requests.Session() as session:
        # One kept-alive connection per client thread (the default pool keeps 10 and reconnects the rest).
        session.mount("http://", requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=concurrency))

        def one(index: int) -> float:
            start = time.perf_counter()
            files = {"image": (f"{index}.jpg", images[index % len(images)], "image/jpeg")}
            response = session.post(f"{url}/predict", files=files, timeout=900)
            response.raise_for_status()
            return time.perf_counter() - start

        for _ in range(2):
            one(0)
        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
            latencies = list(pool.map(one, range(count)))
        elapsed = time.perf_counter() - start
    return {
        "count": count,
        "seconds": elapsed,
        "latencies": latencies,
        "ips": count / elapsed,
        "p50": float(np.percentile(latencies, 50) * 1000),
        "p99": float(np.percentile(latencies, 99) * 1000),
    }


def _merge(name: str, rounds: list[dict]) -> dict:
    latencies = [value for part in rounds for value in part["latencies"]]
    count, seconds = sum(part["count"] for part in rounds), sum(part["seconds"] for part in rounds)
    return {
        "name": name,
        "ips": count / seconds,
        "p50": float(np.percentile(latencies, 50) * 1000),
        "p99": float(np.percentile(latencies, 99) * 1000),
        "rounds": [round(part["count"] / part["seconds"], 3) for part in rounds],
    }


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


def print_predict_table(rows: list[dict], args) -> None:
    eager = rows[0]["ips"]
    print(f"\nViT-B/16 (random init), {os.cpu_count()} CPUs, 480x360 JPEG uploads")
    print("| path | img/s | × torch eager | × in-process ORT batch 8 | × in-process batch 1 | p50 ms | p99 ms |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        fmt = row["name"].split(",")[0]
        ort = next((r["ips"] for r in rows if r["name"] == f"{fmt}, in-process ORT, batch 8"), None)
        single = next((r["ips"] for r in rows if r["name"] == f"{fmt}, in-process Predictor, batch 1 from JPEG"), None)
        served = "served" in row["name"]
        versus_ort = f"{row['ips'] / ort:.2f}" if ort and served and "concurrency 1" not in row["name"] else "—"
        versus_single = f"{row['ips'] / single:.2f}" if single and served and "concurrency 1" in row["name"] else "—"
        p50 = f"{row['p50']:.0f}" if "p50" in row else "—"
        p99 = f"{row['p99']:.0f}" if "p99" in row else "—"
        print(f"| {row['name']} | {row['ips']:.2f} | {row['ips'] / eager:.2f} | {versus_ort} | {versus_single} | "
              f"{p50} | {p99} |")  # fmt: skip


def classify_rows(workdir: Path, args) -> list[dict]:
    """/classify at each label count: the first request, repeated ones, /predict, and the in-process text tower."""
    import requests

    from bento_ops.packaging import build_bento, save_bento_model
    from bento_ops.server import BentoServer
    from har_core.runtime.predictor import Predictor
    from har_core.runtime.settings import ServingConfig

    _, _, bundle = export(workdir, QUICK, ["onnx"], text_tower=True, name="quick")
    model = save_bento_model(bundle.directory("onnx"), model_version="bench-classify")
    serving = ServingConfig(max_custom_labels=max(args.labels), timeout_s=900, max_latency_ms=600_000)
    bento = build_bento(str(model.tag), "onnx", serving)
    image = _jpegs(1)[0]
    reference = Predictor.from_export(bundle.directory("onnx"), device="cpu")
    rows = []
    with BentoServer(str(bento.tag), Path(args.log_dir) / "serve-classify.log") as server, requests.Session() as http:

        def post(route: str, labels: list[str] | None = None) -> float:
            start = time.perf_counter()
            data = {"labels": json.dumps(labels)} if labels is not None else None
            response = http.post(f"{server.url}{route}", files={"image": ("a.jpg", image, "image/jpeg")}, data=data)
            response.raise_for_status()
            return (time.perf_counter() - start) * 1000

        for _ in range(3):
            post("/predict")
            post("/classify", _labels(3, "warm-up"))
        for count in args.labels:
            labels = _labels(count, f"set{count}")
            first = post("/classify", labels)
            repeated = [post("/classify", labels) for _ in range(args.repeats)]
            predict = [post("/predict") for _ in range(args.repeats)]
            start = time.perf_counter()
            reference.class_embeddings(_labels(count, f"ref{count}"))  # a label set it has not embedded yet
            tower = (time.perf_counter() - start) * 1000
            rows.append(
                {"labels": count, "prompts": count * len(reference.manifest.templates), "first": first,
                 "repeated": float(np.median(repeated)), "predict": float(np.median(predict)), "tower": tower}
            )  # fmt: skip
            print(rows[-1], flush=True)
    return rows


def _labels(count: int, prefix: str) -> list[str]:
    """`count` distinct labels of a few words each, like ones a user sends (the prefix keeps sets apart)."""
    words = ("juggling", "rowing", "painting", "climbing", "skating", "knitting", "diving", "boxing")
    return [f"{prefix} {words[index % len(words)]} {index}" for index in range(count)]


def print_classify_table(rows: list[dict]) -> None:
    print("\n/classify on the quick model's export (text tower included), one request at a time, median of repeats")
    print("| labels | prompts | first ms | repeated ms | /predict ms | repeated − /predict ms | first − repeated ms "
          "| in-process text tower ms |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['labels']:,} | {row['prompts']:,} | {row['first']:.0f} | {row['repeated']:.1f} | "
              f"{row['predict']:.1f} | {row['repeated'] - row['predict']:.1f} | {row['first'] - row['repeated']:.0f} | "
              f"{row['tower']:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
