"""`/metrics` and the shipped alert rules (bento/prometheus_metrics.py, bento_ops/monitoring/).

- The refusal reasons, on the real guard in an ASGI stack.
- `promtool check rules` on alerts.yml and `promtool check config` on the example prometheus.yml.
- `bentoml serve` with `workers: 2` (its own BentoML home, so its own `prometheus_multiproc_dir`): predictions,
  confidences and refusals by reason equal the images and calls sent, whichever worker answers the scrape, once
  both workers have answered.
- A real Prometheus (Debian's `prometheus`) scrapes that server every second with the rules' windows and `for:`
  shortened (expressions and thresholds as shipped): confident traffic leaves the confidence-collapse alert silent,
  images the model cannot decide on fire it, read back from Prometheus's API.

The served model is the tiny one exported at a sharp temperature (`SHARP_TEMPERATURE`): the random-init model is
equally unsure of every image at temperature 1 (top-1 ~0.1 of 15 labels, noise included), so nothing could
collapse; sharpened, it answers its validation (synthetic) images with a median top-1 near 0.87, and the noise
images whose two best labels nearly tie (picked from seeded noise by the same export) well below 0.7 of that.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import requests
import yaml
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from bento.guard import RequestGuard
from bento.prometheus_metrics import REASONS, refusal_reason
from tests.bento.conftest import API_TOKEN, AUTH
from tests.conftest import PROJECT_ROOT, random_init_export_config
from tests.required import skip_without

MONITORING = PROJECT_ROOT / "bento_ops" / "monitoring"
ALERTS = MONITORING / "alerts.yml"
SERVICE = "bento.service:HarClipService"
SHARP_TEMPERATURE = 0.02
MAX_REQUEST_PIXELS = 200_000  # the test server's: 30 synthetic 64 px images pass, one 500 x 500 is refused
COLLAPSE = "HarClipConfidenceCollapse"


# ---- refusal reasons -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "status", "by_guard", "reason"),
    [
        ("/predict", 401, True, "auth"),
        ("/predict", 413, True, "body_limit"),
        ("/predict_video", 413, True, "body_limit"),
        ("/predict", 503, True, "budget"),
        ("/predict", 429, False, "budget"),
        ("/predict_batch", 413, False, "pixel_limit"),
        ("/predict_video", 413, False, "video_limit"),
        ("/predict", 415, True, "bad_request"),
        ("/classify", 422, False, "bad_request"),
        ("/predict", 500, False, None),
        ("/predict", 504, False, None),
    ],
)
def test_each_error_answer_has_its_reason(route, status, by_guard, reason):
    assert refusal_reason(route, status, by_guard) == reason
    assert reason is None or reason in REASONS


def test_the_guard_reports_its_own_refusals_and_the_services():
    reported: list[tuple[str, int, bool]] = []

    async def app(scope, receive, send) -> None:  # the service refusing an image over its pixel limit
        await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"error": "too many pixels"}'})

    guard = RequestGuard(
        app, token=API_TOKEN, max_request_bytes=1024, file_fields={}, on_error=lambda *args: reported.append(args)
    )

    async def scenario() -> list[int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=guard), base_url="http://test") as client:
            answers = [
                await client.post("/metadata", json={}),
                await client.post("/metadata", content=b"x" * 2048, headers=AUTH),
                await client.post("/metadata", json={}, headers=AUTH),
                await client.get("/metrics"),
            ]
        return [answer.status_code for answer in answers]

    assert asyncio.run(scenario()) == [401, 413, 413, 413]
    assert reported == [("/metadata", 401, True), ("/metadata", 413, True), ("/metadata", 413, False)]


# ---- promtool --------------------------------------------------------------------------------------------------


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        skip_without("prometheus", f"{name} (Debian package prometheus) is not installed; .ci/run installs it")
    return path


def test_promtool_accepts_the_rules_and_the_example_config():
    promtool = _tool("promtool")
    for command in (["check", "rules", str(ALERTS)], ["check", "config", str(MONITORING / "prometheus.yml")]):
        result = subprocess.run([promtool, *command], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
    names = [rule["alert"] for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]
    assert names == ["HarClipHighErrorRate", "HarClipHighLatencyP95", "HarClipNoTraffic", COLLAPSE]


def test_promtool_refuses_a_broken_rule(tmp_path):
    promtool = _tool("promtool")
    broken = tmp_path / "alerts.yml"
    broken.write_text(ALERTS.read_text().replace("histogram_quantile(0.5,", "histogram_quantile(0.5", 1))
    result = subprocess.run([promtool, "check", "rules", str(broken)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and COLLAPSE in result.stdout + result.stderr


# ---- a two-worker server ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def confident_export(tiny_model, synthetic_root, parity_pixels, tmp_path_factory) -> Path:
    """The tiny model's onnx export, calibrated at `SHARP_TEMPERATURE` on every synthetic image (its reference too)."""
    from har_core.config import CalibrationConfig, EvaluationConfig
    from har_core.evaluation.calibration import fit_calibration, fit_ood_statistics
    from har_core.evaluation.metrics import record_outputs
    from har_core.export.bundle import export_bundle
    from har_core.runtime.confidence import softmax
    from har_core.runtime.manifest import ModelSource
    from har_core.runtime.reference import build_reference
    from tests.har_core.data.folders import image_records

    records = image_records(synthetic_root, tiny_model.labels)
    labels, embeddings, logits = record_outputs(tiny_model, records, EvaluationConfig(device="cpu", num_workers=0))
    statistics = fit_ood_statistics(embeddings, labels, len(tiny_model.labels))
    calibration = fit_calibration(
        logits, labels, float(tiny_model.logit_scale().detach()), CalibrationConfig(), "val",
        temperature=SHARP_TEMPERATURE, embeddings=embeddings, statistics=statistics,
    )  # fmt: skip
    reference = build_reference(tuple(tiny_model.labels), "val", embeddings, softmax(logits, SHARP_TEMPERATURE))
    source = ModelSource(model_name="tiny", model_version="sharp", backbone=tiny_model.backbone_name)
    bundle = export_bundle(
        tiny_model, parity_pixels, tmp_path_factory.mktemp("sharp") / "exports",
        random_init_export_config(formats=["onnx"]), source, "cpu",
        calibration=calibration, ood_statistics=statistics, monitoring_reference=reference,
    )  # fmt: skip
    return bundle.directory("onnx")


@pytest.fixture(scope="module")
def two_workers(confident_export, serving_config, tmp_path_factory):
    """`bentoml serve` of the confident export with `workers: 2`, in a BentoML home of its own (the session's model
    store linked in): BentoML empties `<home>/prometheus_multiproc_dir` when a server starts, so a second server in
    the session's home would mix its counts with this one's. Yields (server, that folder)."""
    from bento.serving_config import write_serving_config
    from bento_ops.packaging import save_bento_model
    from bento_ops.server import BentoServer

    tag = save_bento_model(confident_export, model_name="har_clip_classifier", model_version="9").tag
    directory = tmp_path_factory.mktemp("two-workers")
    home = directory / "bentoml"
    home.mkdir()
    (home / "models").symlink_to(Path(os.environ["BENTOML_HOME"]) / "models")
    config = serving_config.model_copy(update={"workers": 2, "max_request_pixels": MAX_REQUEST_PIXELS})
    env = {
        "BENTOML_HOME": str(home),
        "HAR_CLIP_BENTO_MODEL": str(tag),
        "HAR_CLIP_SERVING_CONFIG": str(write_serving_config(config, directory / "serving.yaml")),
        "HAR_CLIP_API_TOKEN": API_TOKEN,
    }
    with BentoServer(SERVICE, directory / "serve.log", env=env) as server:
        yield server, home / "prometheus_multiproc_dir"


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def confident_images(synthetic_root) -> list[bytes]:
    """The synthetic images (the reference's own), as PNG."""
    return [_png(Image.open(path).convert("RGB")) for path in sorted(synthetic_root.rglob("*.jpg"))]


@pytest.fixture(scope="module")
def unsure_images(confident_export) -> list[bytes]:
    """The 60 of 2,000 seeded 64 px noise images the confident export is least sure of (their two best labels nearly
    tie), their median top-1 below 0.6 x the reference median; as PNG (lossless: served as scored here)."""
    from har_core.runtime.predictor import Predictor

    predictor = Predictor.from_export(confident_export, device="cpu")
    rng = np.random.default_rng(0)
    candidates = [Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for _ in range(2000)]
    confidence = np.array([answer.verdict.confidence for answer in predictor.classify(candidates)])
    chosen = np.argsort(confidence)[:60]
    assert np.median(confidence[chosen]) < 0.6 * predictor.reference.median_confidence()
    return [_png(candidates[index]) for index in chosen]


def _post(url: str, route: str, images: list[bytes], headers=AUTH, **data) -> int:
    field = "images" if route == "/predict_batch" else "image"
    files = [(field, (f"{index}.png", image, "image/png")) for index, image in enumerate(images)]
    return requests.post(f"{url}{route}", files=files, data=data, headers=headers, timeout=120).status_code


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value of one `/metrics` answer."""
    text = requests.get(f"{url}/metrics", timeout=30).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _total(samples, name: str, **labels: str) -> float:
    return sum(
        value for (sample, sample_labels), value in samples.items()
        if sample == name and labels.items() <= dict(sample_labels).items()
    )  # fmt: skip


def _images_by_worker(multiproc_dir: Path) -> dict[str, float]:
    """Images each worker answered, from its own counter file (`counter_<pid>.db`) alone: pid -> count."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    counts = {}
    for path in multiproc_dir.glob("counter_*.db"):
        with tempfile.TemporaryDirectory() as alone:
            shutil.copy(path, Path(alone) / path.name)
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=alone)
            counts[path.stem.removeprefix("counter_")] = sum(
                sample.value for family in registry.collect() for sample in family.samples
                if sample.name == "har_clip_predictions_total"
            )  # fmt: skip
    return counts


@pytest.mark.slow
def test_two_workers_count_every_image_and_refusal_once(two_workers, confident_images):
    server, multiproc_dir = two_workers
    before, by_worker = _scrape(server.url), _images_by_worker(multiproc_dir)
    assert len(by_worker) == 2, by_worker  # both workers started and write their own files

    def both_answered() -> bool:
        return all(count > by_worker[pid] for pid, count in _images_by_worker(multiproc_dir).items())

    singles = batches = 0
    with ThreadPoolExecutor(8) as pool:  # new connections side by side: the kernel hands them to both workers
        for _ in range(20):
            statuses = list(pool.map(lambda image: _post(server.url, "/predict", [image]), confident_images[:8]))
            statuses.append(_post(server.url, "/predict_batch", confident_images[8:11]))
            assert statuses == [200] * 9
            singles, batches = singles + 8, batches + 1
            if both_answered():
                break
    assert both_answered(), f"one worker answered every request: {_images_by_worker(multiproc_dir)}"
    big = _png(Image.new("RGB", (500, 500), (90, 40, 200)))
    refused = {
        "auth": [_post(server.url, "/predict", confident_images[:1], headers={"Authorization": "Bearer wrong"}),
                 _post(server.url, "/predict_batch", confident_images[:2], headers={})],
        "body_limit": [_post(server.url, "/predict", [b"\0" * (1024 * 1024 + 1)])],
        "pixel_limit": [_post(server.url, "/predict", [big])],
        "bad_request": [_post(server.url, "/predict", confident_images[:1], top_k="0"),  # the service's check
                        _post(server.url, "/predict", confident_images[:1], top_k="many")],  # BentoML's validation
    }  # fmt: skip
    assert refused == {"auth": [401, 401], "body_limit": [413], "pixel_limit": [413], "bad_request": [400, 400]}
    images = singles + 3 * batches
    batch_labels = {"route": "/predict_batch", "model_version": "9", "format": "onnx"}
    expected = [
        ("har_clip_predictions_total", {}, images),
        ("har_clip_predictions_total", {"route": "/predict"}, singles),
        ("har_clip_predictions_total", batch_labels, 3 * batches),
        ("har_clip_confidence_count", {}, images),
        ("har_clip_confidence_bucket", {"le": "+Inf"}, images),
        *(("har_clip_requests_refused_total", {"reason": r}, len(refused.get(r, []))) for r in REASONS),
    ]
    for _ in range(6):  # each scrape is answered by either worker; every one holds both workers' counts
        after = _scrape(server.url)
        added = [
            (name, labels, _total(after, name, **labels) - _total(before, name, **labels))
            for name, labels, _ in expected
        ]
        assert added == expected
    assert _total(after, "har_clip_reference_confidence_median", model_version="9") > 0.8
    for name, labels in _series_the_rules_read():  # BentoML's names and labels as the rules spell them
        assert any(sample == name and labels <= dict(found).keys() for sample, found in after), (name, labels)
    print(f"two workers: {images} images ({singles} /predict, {batches} /predict_batch of 3), {refused} counted once")


def _series_the_rules_read() -> set[tuple[str, frozenset[str]]]:
    """(metric, label names in its selector) of every selector in alerts.yml."""
    rules = [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]
    selectors = re.findall(r"\b((?:bentoml|har_clip)_\w+)(?:\{([^}]*)\})?", " ".join(rule["expr"] for rule in rules))
    return {(name, frozenset(re.findall(r"(\w+)\s*=", labels))) for name, labels in selectors}


# ---- a real Prometheus -----------------------------------------------------------------------------------------


def shortened_rules(window: str, hold: str) -> dict:
    """alerts.yml with every range window and `for:` replaced; the expressions are otherwise as shipped."""
    rules = yaml.safe_load(ALERTS.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            expr, count = re.subn(r"\[\d+[smh]\]", f"[{window}]", rule["expr"])
            assert count, rule["alert"]
            rule.update(expr=expr, **{"for": hold})
    return rules


@contextlib.contextmanager
def running_prometheus(target: str, directory: Path) -> Iterator[str]:
    """Prometheus scraping `target` every second with the shortened rules; yields its URL, always stopped."""
    from bento_ops.server import free_port
    from har_core.training.process_tree import stop_process_tree

    binary = _tool("prometheus")
    (directory / "alerts.yml").write_text(yaml.safe_dump(shortened_rules(window="20s", hold="2s")))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["alerts.yml"],
        "scrape_configs": [{"job_name": "har-clip", "static_configs": [{"targets": [target]}]}],
    }
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
    url = f"http://127.0.0.1:{free_port()}"
    command = [
        binary, f"--config.file={directory / 'prometheus.yml'}", f"--storage.tsdb.path={directory / 'data'}",
        f"--web.listen-address={url.removeprefix('http://')}", "--log.level=warn",
    ]  # fmt: skip
    with open(directory / "prometheus.log", "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not _answers(f"{url}/-/ready"):
            assert process.poll() is None and time.monotonic() < deadline, (directory / "prometheus.log").read_text()
            time.sleep(0.2)
        yield url
    finally:
        stop_process_tree(process)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _alert_states(url: str) -> dict[str, str]:
    alerts = requests.get(f"{url}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    return {alert["labels"]["alertname"]: alert["state"] for alert in alerts}


def _query(url: str, expression: str) -> list[dict]:
    return requests.get(f"{url}/api/v1/query", params={"query": expression}, timeout=10).json()["data"]["result"]


SERVED_MEDIAN = (
    'histogram_quantile(0.5, sum by (le) (rate(har_clip_confidence_bucket{route=~"/predict|/predict_batch"}[20s])))'
)


def _served_median(url: str) -> str:
    """The median the collapse rule reads and its reference, for the messages."""
    values = [sample["value"][1] for sample in _query(url, SERVED_MEDIAN)]
    reference = [sample["value"][1] for sample in _query(url, "har_clip_reference_confidence_median")]
    return f"median {json.dumps(values)} against reference {json.dumps(reference)}"


@pytest.mark.slow
def test_prometheus_fires_the_confidence_collapse_alert_on_unsure_images(
    two_workers, confident_images, unsure_images, tmp_path
):
    server, _ = two_workers
    started = time.monotonic()
    with running_prometheus(server.url.removeprefix("http://"), tmp_path) as prometheus:
        deadline = time.monotonic() + 60
        while not _query(prometheus, 'increase(har_clip_confidence_count{route="/predict_batch"}[20s]) >= 50'):
            assert time.monotonic() < deadline, "Prometheus never saw the confident answers"
            for start in range(0, 60, 30):
                assert _post(server.url, "/predict_batch", confident_images[start : start + 30]) == 200
            time.sleep(1)
        time.sleep(4)  # the rule evaluated on them for longer than its shortened `for:`
        assert COLLAPSE not in _alert_states(prometheus), f"confident answers, median {_served_median(prometheus)}"
        deadline = time.monotonic() + 90
        while _alert_states(prometheus).get(COLLAPSE) != "firing":
            assert time.monotonic() < deadline, f"not firing: {_alert_states(prometheus)}, {_served_median(prometheus)}"
            for start in range(0, 60, 30):
                assert _post(server.url, "/predict_batch", unsure_images[start : start + 30]) == 200
            time.sleep(1)
        (alert,) = [a for a in requests.get(f"{prometheus}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
                    if a["labels"]["alertname"] == COLLAPSE]  # fmt: skip
        assert alert["labels"]["model_version"] == "9" and alert["labels"]["job"] == "har-clip"
        print(f"{COLLAPSE} firing after {time.monotonic() - started:.0f} s, served median {_served_median(prometheus)}")
