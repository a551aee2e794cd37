"""The Bento under hostile input and faults: decode-memory amplification, a killed worker, mixed good and bad traffic.

    python -m benchmarks.serving.serve_faults                      # all three against `bentoml serve` of the tiny model
    python -m benchmarks.serving.serve_faults --only memory --source /tmp/before  # the service code of another checkout

Serves a Bento of the tiny CLIP's ONNX export (built here, nothing downloaded) with the tests' limits (1 MiB body)
and prints each figure; tests/bento/test_faults.py asserts the same measurements against the session's servers
(and the podman container). `--source DIR` serves `bento.service:HarClipService` from DIR instead (e.g. the code
before issue 14: `git archive 47cdf7d bento har_core | tar -x -C /tmp/before`).

- memory: concurrent /predict_batch requests of one-colour 7900x7900 RGB PNGs (~200 kB each, 187 MB decoded), some
  within `max_request_pixels` and some over it; the serve tree's RSS is sampled every 20 ms.
- crash: /predict at concurrency 8; the worker is SIGKILLed; seconds until /readyz and /predict answer again, and
  which requests failed (in flight at the kill, or sent while nothing listened).
- mixed: 1,000 requests at concurrency 8, 10 % bad (corrupt, oversized, wrong type, wrong field); statuses and the
  serve tree's RSS before and after.
- videos: 8 hostile videos at once (headers that lie about the frame size, many tiny frames) while /predict is
  called in a loop: every video's status, the serve tree's peak RSS over its RSS before, and /predict's p50 under
  that load against idle.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import io
import os
import signal
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import requests

MIB = 1024 * 1024
PNG_SIDE = 7900


def one_colour_png(side: int = PNG_SIDE) -> bytes:
    """A maximally compressible RGB PNG: side² pixels, ~200 kB at 7900 px (187 MB once decoded)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (180, 60, 30)).save(buffer, "PNG", compress_level=9)
    return buffer.getvalue()


def jpeg(seed: int, size: tuple[int, int] = (96, 72)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


class RssSampler:
    """Peak resident memory of a process tree, sampled from a thread (`root` is called each time: a restarted
    container has a new init pid)."""

    def __init__(self, root, interval_s: float = 0.02) -> None:
        self.root, self.interval_s, self.peak = root, interval_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from har_core.training.process_tree import tree_rss_bytes

        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_bytes(self.root()))
            time.sleep(self.interval_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


def amplification(url: str, root, headers: dict, within: int = 3, over: int = 2, within_images: int = 1) -> dict:
    """`within` requests of `within_images` PNGs (62 Mpx each) and `over` requests of 5 PNGs (312 Mpx, over
    `max_request_pixels`), all at once; the serve tree's peak RSS over its RSS before them."""
    from har_core.training.process_tree import tree_rss_bytes

    png = one_colour_png()
    base = tree_rss_bytes(root())

    def send(count: int) -> int:
        files = [("images", (f"flat{i}.png", png, "image/png")) for i in range(count)]
        return requests.post(f"{url}/predict_batch", files=files, headers=headers, timeout=300).status_code

    sizes = [within_images] * within + [5] * over
    started = time.perf_counter()
    with RssSampler(root) as sampler, concurrent.futures.ThreadPoolExecutor(len(sizes)) as pool:
        statuses = list(pool.map(send, sizes))
    elapsed = time.perf_counter() - started
    return {
        "base_mib": base / MIB,
        "peak_mib": sampler.peak / MIB,
        "growth_mib": (sampler.peak - base) / MIB,
        "statuses": statuses,
        "seconds": elapsed,
        "after_mib": tree_rss_bytes(root()) / MIB,
    }


def hostile_video_corpus(directory: Path, max_bytes: int) -> dict[str, tuple[str, bytes]]:
    """{kind: (file name, bytes)} of hostile videos small enough for `max_bytes` (tests/hostile_media.py)."""
    from tests import hostile_media

    small = max_bytes < 8 * MIB  # the tests' server (512 KiB) or the Bento's default (50 MiB)
    side = 6000 if small else 12000  # a one-colour PNG frame of side² pixels: ~100 kB or ~800 kB
    # 16x16 frames within the duration and sampled-frame limits (7.5 s; 115 s): ~40 kB or ~3.9 MB, all decoded
    frames, fps = (3000, 400) if small else (300_000, 2600)
    made = {
        "lying dimensions": hostile_media.lying_dimensions(directory / "lie.mov", real_side=side),
        "many frames": hostile_media.many_frames(directory / "many.mp4", frames, fps=fps),
    }
    return {kind: (path.name, path.read_bytes()) for kind, path in made.items()}


def hostile_videos(url: str, root, headers: dict, corpus: dict[str, tuple[str, bytes]], at_once: int = 8) -> dict:
    """`at_once` hostile videos sent together (the corpus in turn) while /predict is timed in a loop."""
    from har_core.training.process_tree import tree_rss_bytes

    image = jpeg(1)

    def predict() -> tuple[int, float]:
        started = time.perf_counter()
        files = {"image": ("idle.jpg", image, "image/jpeg")}
        status = requests.post(f"{url}/predict", files=files, headers=headers, timeout=120).status_code
        return status, time.perf_counter() - started

    idle = [predict() for _ in range(20)]
    videos = [corpus[kind] for kind in sorted(corpus)] * at_once
    videos = videos[:at_once]

    def send(video: tuple[str, bytes]) -> int:
        files = {"video": (video[0], video[1], "video/mp4")}
        return requests.post(f"{url}/predict_video", files=files, headers=headers, timeout=300).status_code

    base = tree_rss_bytes(root())
    loaded: list[tuple[int, float]] = []
    with RssSampler(root) as sampler, concurrent.futures.ThreadPoolExecutor(at_once) as pool:
        futures = [pool.submit(send, video) for video in videos]
        loaded.append(predict())  # at least once while the videos are in flight
        while not all(future.done() for future in futures):
            loaded.append(predict())
        statuses = Counter(future.result() for future in futures)
    return {
        "video_statuses": dict(statuses),
        "growth_mib": (sampler.peak - base) / MIB,
        "predict_statuses": dict(Counter(status for status, _ in loaded)),
        "predict_p50_idle_ms": 1000 * float(np.median([seconds for _, seconds in idle])),
        "predict_p50_loaded_ms": 1000 * float(np.median([seconds for _, seconds in loaded])) if loaded else None,
        "predict_calls_loaded": len(loaded),
    }


def kill_worker_under_load(url: str, root, headers: dict, concurrency: int = 8, settle_s: float = 3.0) -> dict:
    """SIGKILL the (first) BentoML worker under /predict load; time until /readyz and /predict answer again."""
    from bento.watchdog import worker_pids

    image = jpeg(0)
    outcomes: list[tuple[float, float, int | str]] = []  # (sent, answered, status or error)
    stop = threading.Event()

    def load() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                sent = time.monotonic()
                try:
                    files = {"image": ("a.jpg", image, "image/jpeg")}
                    status = session.post(f"{url}/predict", files=files, headers=headers, timeout=120).status_code
                except requests.RequestException as error:
                    status = type(error).__name__
                outcomes.append((sent, time.monotonic(), status))
                if status != 200:
                    time.sleep(0.1)  # a client backing off instead of spinning on a refused port

    threads = [threading.Thread(target=load, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    time.sleep(settle_s)
    victims = sorted(worker_pids(root()))
    if not victims:
        stop.set()
        import psutil

        tree = [(c.pid, c.cmdline()) for c in psutil.Process(root()).children(recursive=True)]
        raise RuntimeError(f"no BentoML worker found under the server {root()}: {tree}")
    killed_at = time.monotonic()
    os.kill(victims[0], signal.SIGKILL)
    ready_at = _poll_ready(url, killed_at, timeout_s=300)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not any(s == 200 and t0 > killed_at for t0, _, s in list(outcomes)):
        time.sleep(0.05)
    predict_at = min((t1 for t0, t1, s in list(outcomes) if s == 200 and t0 > killed_at), default=float("nan"))
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join(timeout=130)
    failed = [(t0, s) for t0, _, s in outcomes if s != 200]
    in_flight = [s for t0, s in failed if t0 <= killed_at]
    return {
        "worker": victims[0],
        "readyz_s": ready_at - killed_at,
        "predict_s": predict_at - killed_at,
        "requests": len(outcomes),
        "failed_in_flight": len(in_flight),
        "failed_after_kill": len(failed) - len(in_flight),
        "failures": dict(Counter(str(s) for _, s in failed)),
        "new_worker": sorted(worker_pids(root())),
    }


def _poll_ready(url: str, since: float, timeout_s: float) -> float:
    """The first moment after `since` at which /readyz answers 200 (polled every 0.1 s)."""
    deadline = since + timeout_s
    time.sleep(0.2)  # the dead worker's last answers may still be in the socket
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/readyz", timeout=1).status_code == 200:
                return time.monotonic()
        except requests.RequestException:
            pass
        time.sleep(0.1)
    return float("nan")


def mixed_requests(url: str, root, headers: dict, total: int = 1000, concurrency: int = 8, body_limit: int = MIB):
    """`total` /predict calls, every 10th bad (corrupt, oversized, wrong type, wrong field, in turn)."""
    from har_core.training.process_tree import tree_rss_bytes

    good = [jpeg(seed) for seed in range(8)]
    bad_kinds = {
        "corrupt": lambda: {"files": {"image": ("bad.jpg", good[0][:200] + b"\0" * 50, "image/jpeg")}},
        "oversized": lambda: {"files": {"image": ("big.jpg", b"\xff" * (body_limit + 1024), "image/jpeg")}},
        "wrong type": lambda: {"files": {"image": ("a.txt", b"plain text", "text/plain")}},
        "wrong field": lambda: {"files": {"picture": ("a.jpg", good[1], "image/jpeg")}},
    }
    kinds = list(bad_kinds)

    def one(index: int) -> tuple[str, int]:
        if index % 10 == 9:
            kind = kinds[(index // 10) % len(kinds)]
            kwargs = bad_kinds[kind]()
        else:
            kind, kwargs = "good", {"files": {"image": (f"{index}.jpg", good[index % len(good)], "image/jpeg")}}
        try:
            status = requests.post(f"{url}/predict", headers=headers, timeout=120, **kwargs).status_code
        except requests.RequestException as error:
            return kind, type(error).__name__
        return kind, status

    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(2 * concurrency)))  # warm-up: allocator pools, label cache, batching estimate
        before = tree_rss_bytes(root())
        started = time.perf_counter()
        results = list(pool.map(one, range(total)))
        elapsed = time.perf_counter() - started
    after = tree_rss_bytes(root())
    return {
        "by_kind": {kind: dict(Counter(s for k, s in results if k == kind)) for kind in ["good", *kinds]},
        "rss_before_mib": before / MIB,
        "rss_after_mib": after / MIB,
        "seconds": elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["memory", "crash", "mixed", "videos"], action="append")
    parser.add_argument("--source", type=Path, help="serve bento.service:HarClipService from this directory")
    parser.add_argument("--log-dir", default=".cache/har-clip/bench")
    args = parser.parse_args()
    Path(args.log_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="har-clip-faults-") as workdir:
        os.environ["BENTOML_HOME"] = str(Path(workdir) / "bentoml")  # before bentoml is imported
        os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
        run(Path(workdir), args)


def run(workdir: Path, args) -> None:
    from bento_ops.packaging import build_bento, save_bento_model
    from bento_ops.server import BentoServer, free_port, serve_command, start_server, wait_ready
    from har_core.config import ClassifierConfig, ExportConfig, TinyBackboneConfig
    from har_core.export.bundle import export_bundle
    from har_core.model.classifier import build_classifier
    from har_core.runtime.labels import HAR_LABELS
    from har_core.runtime.manifest import ModelSource
    from har_core.runtime.settings import ServingConfig
    from har_core.training.process_tree import stop_process_tree

    classifier = build_classifier(ClassifierConfig(tiny_backbone=TinyBackboneConfig(), cache_dir=workdir), HAR_LABELS)
    crop = classifier.preprocess_config.crop_size
    pixels = np.random.default_rng(0).standard_normal((4, 3, crop, crop), dtype=np.float32)
    source = ModelSource(model_name="har_clip_classifier", model_version="faults", backbone="tiny")
    bundle = export_bundle(classifier, pixels, workdir / "exports", ExportConfig(formats=("onnx",)), source, "cpu")
    model = save_bento_model(bundle.directory("onnx"), model_version="faults")
    serving = ServingConfig(max_request_bytes=MIB, max_latency_ms=20_000)
    args.corpus = hostile_video_corpus(workdir, serving.video.max_bytes)
    log = Path(args.log_dir) / "serve-faults.log"
    headers: dict = {}
    if args.source:
        config = workdir / "serving.yaml"
        import yaml

        config.write_text(yaml.safe_dump(serving.model_dump(mode="json", exclude_defaults=True)))  # older configs too
        env = {
            "HAR_CLIP_BENTO_MODEL": str(model.tag),
            "HAR_CLIP_SERVING_CONFIG": str(config),
            "PYTHONPATH": str(args.source.resolve()),
        }
        port = free_port()
        process = start_server(serve_command("bento.service:HarClipService", port), log, env, cwd=args.source)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, process, log)
            _report(url, lambda: process.pid, headers, args.only, args.corpus)
        finally:
            stop_process_tree(process)
        return
    bento = build_bento(str(model.tag), "onnx", serving)
    with BentoServer(str(bento.tag), log) as server:
        _report(server.url, lambda: server.pid, headers, args.only, args.corpus)


def _report(url: str, root, headers: dict, only: list[str] | None, corpus: dict) -> None:
    only = only or ["memory", "crash", "mixed", "videos"]
    if "videos" in only:
        print("videos:", hostile_videos(url, root, headers, corpus), flush=True)
    if "memory" in only:
        print("memory:", amplification(url, root, headers), flush=True)
    if "crash" in only:
        print("crash:", kill_worker_under_load(url, root, headers), flush=True)
    if "mixed" in only:
        print("mixed:", mixed_requests(url, root, headers), flush=True)


if __name__ == "__main__":
    main()
