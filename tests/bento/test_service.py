"""The Bento built from the tiny model's ONNX export, served over real HTTP on a free 127.0.0.1 port: by
`bentoml serve`, and (marked `container`) by its podman image with host networking. The same checks run on both.

The servers are the session's (tests/bento/conftest.py, bearer-token auth on).
"""

from __future__ import annotations

import concurrent.futures
import io
import re
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from har_core.runtime.images import open_image
from har_core.runtime.labels import HAR_LABELS
from har_core.runtime.predictor import Predictor
from tests.bento.conftest import AUTH
from tests.conftest import PROJECT_ROOT


@pytest.fixture(scope="module")
def predictor(onnx_export_dir):
    return Predictor.from_export(onnx_export_dir, device="cpu")


@pytest.fixture(scope="module")
def verdict_images(predictor, synthetic_root, tmp_path_factory) -> list[Path]:
    """A synthetic image the served calibration answers "no action" (the one the model is least sure of; checked),
    two it answers, and a noise image."""
    paths = sorted(synthetic_root.glob("*/*.jpg"))
    answers = predictor.classify([open_image(path) for path in paths], top_k=1)
    ranked = sorted(zip(paths, answers, strict=True), key=lambda pair: pair[1].verdict.confidence)
    assert ranked[0][1].abstained and not ranked[-1][1].abstained
    noise = tmp_path_factory.mktemp("noise") / "noise.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)).save(noise)
    return [ranked[0][0], ranked[-1][0], ranked[len(ranked) // 2][0], noise]


def _post(server, route: str, **kwargs) -> requests.Response:
    return requests.post(f"{server.url}{route}", headers=kwargs.pop("headers", AUTH), timeout=60, **kwargs)


def _jpeg_bytes(size=(40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(buffer, "JPEG")
    return buffer.getvalue()


def test_predictions_equal_the_in_process_predictor(client, predictor, sample_images):
    for path in sample_images:
        served = client.predict(image=path, top_k=len(HAR_LABELS))
        expected = predictor.predict([open_image(path)], top_k=len(HAR_LABELS))[0]
        assert [p["label"] for p in served["predictions"]] == [p.label for p in expected]
        assert [p["score"] for p in served["predictions"]] == pytest.approx([p.score for p in expected], abs=1e-5)
        assert served["model"] == {"name": "har_clip_classifier", "version": "7", "format": "onnx"}
        assert served["inference_ms"] > 0


def test_top_k_defaults_to_five_and_is_honoured(client, sample_images):
    assert len(client.predict(image=sample_images[0])["predictions"]) == 5
    ranked = client.predict(image=sample_images[0], top_k=2)["predictions"]
    assert len(ranked) == 2 and ranked[0]["score"] >= ranked[1]["score"]


def test_an_answer_carries_its_verdict_by_the_served_calibration(client, predictor, verdict_images):
    """`abstained` is the calibrated top-1 (`confidence`) below the threshold /metadata states; the ranked labels are
    returned all the same; the out-of-distribution score is the in-process predictor's."""
    calibration = client.metadata()["calibration"]
    assert calibration == predictor.calibration.model_dump(mode="json")
    answers = [client.predict(image=path, top_k=3) for path in verdict_images]
    for path, served in zip(verdict_images, answers, strict=True):
        assert served["confidence"] == served["predictions"][0]["score"] and len(served["predictions"]) == 3
        assert served["abstained"] == (served["confidence"] < calibration["abstain_below"]), path.name
        assert (served["calibration"], served["abstain_below"]) == ("own-labels", calibration["abstain_below"])
        assert served["out_of_distribution"] == (served["ood_score"] > calibration["ood_above"])
        expected = predictor.classify([open_image(path)], top_k=3)[0].verdict
        assert served["ood_score"] == pytest.approx(expected.ood_score, rel=1e-5)
    assert [served["abstained"] for served in answers][:2] == [True, False]  # one of each, at least


def test_custom_labels_are_judged_by_the_zero_shot_calibration(client, verdict_images):
    """/classify says it used the zero-shot temperature and threshold. (At most 8 labels on this server, so a top-1
    is at least 1/8, above the fitted zero-shot threshold: nothing abstains here.)"""
    calibration = client.metadata()["calibration"]
    for path in verdict_images:
        served = client.classify(image=path, labels=["juggling", "rowing a boat", "painting a wall"])
        assert (served["calibration"], served["abstain_below"]) == ("zero-shot", calibration["zero_shot_abstain_below"])
        assert served["confidence"] == served["predictions"][0]["score"]
        assert served["abstained"] == (served["confidence"] < calibration["zero_shot_abstain_below"])
        own = client.predict(image=path, top_k=1)  # the OOD score reads the model's own outputs, whatever the labels
        assert served["ood_score"] == pytest.approx(own["ood_score"], rel=1e-6)


def test_batch_endpoint_matches_single_predictions(client, sample_images, verdict_images):
    images = [*verdict_images, *sample_images]
    batch = client.predict_batch(images=images, top_k=3)
    assert len(batch["predictions"]) == len(batch["verdicts"]) == len(images)
    assert (batch["calibration"], batch["abstain_below"]) == (
        "own-labels",
        client.metadata()["calibration"]["abstain_below"],
    )
    for path, ranked, verdict in zip(images, batch["predictions"], batch["verdicts"], strict=True):
        single = client.predict(image=path, top_k=3)
        assert [p["label"] for p in ranked] == [p["label"] for p in single["predictions"]]
        assert [p["score"] for p in ranked] == pytest.approx([p["score"] for p in single["predictions"]], abs=1e-5)
        assert verdict["abstained"] == single["abstained"] and verdict["confidence"] == ranked[0]["score"]
        assert verdict["ood_score"] == pytest.approx(single["ood_score"], rel=1e-5)
    assert [verdict["abstained"] for verdict in batch["verdicts"]][:2] == [True, False]  # in upload order


def test_open_vocabulary_labels_change_the_answer(client, predictor, sample_images):
    labels = ["juggling", "rowing a boat", "painting a wall"]
    served = client.classify(image=sample_images[0], labels=labels)
    assert {p["label"] for p in served["predictions"]} == set(labels)
    expected = predictor.predict([open_image(sample_images[0])], top_k=3, labels=labels)[0]
    assert [p["score"] for p in served["predictions"]] == pytest.approx([p.score for p in expected], abs=1e-5)
    assert sum(p["score"] for p in served["predictions"]) == pytest.approx(1.0, abs=1e-4)
    again = client.classify(image=sample_images[0], labels=labels[:2], top_k=1)["predictions"]
    assert len(again) == 1 and again[0]["label"] in labels[:2]


def test_metadata_names_model_labels_and_limits(client, bento_model):
    metadata = client.metadata()
    assert metadata["labels"] == list(HAR_LABELS)
    assert metadata["model"]["format"] == "onnx" and metadata["bento_model"] == str(bento_model.tag)
    assert metadata["supports_custom_labels"] is True and metadata["auth_required"] is True
    assert metadata["limits"]["max_request_bytes"] == 1024 * 1024
    assert metadata["calibration"]["coverage"] == 0.95 and "calibration_metrics" in metadata
    startup = metadata["startup_parity"]  # the export's gate, re-run where this server runs
    assert startup["checked"] and startup["passed"] is True and startup["result"]["top1_agreement"] == 1.0


def _bad_requests(tmp: Path) -> dict[str, tuple[dict, int, str]]:
    good = _jpeg_bytes()
    bomb = io.BytesIO()
    Image.new("L", (9000, 9000)).save(bomb, "PNG")  # 81 Mpx in ~80 kB: over the pixel limit
    return {
        "non-image bytes": ({"files": {"image": ("a.jpg", b"not an image at all", "image/jpeg")}}, 422, "a.jpg"),
        "truncated jpeg": ({"files": {"image": ("cut.jpg", good[: len(good) // 2], "image/jpeg")}}, 422, "cut.jpg"),
        "zero-byte upload": ({"files": {"image": ("empty.jpg", b"", "image/jpeg")}}, 422, "empty"),
        "over the pixel limit": ({"files": {"image": ("bomb.png", bomb.getvalue(), "image/png")}}, 413, "pixel limit"),
        "text file part": ({"files": {"image": ("a.txt", b"hello", "text/plain")}}, 415, "not an image"),
        "json body": ({"json": {"image": "http://127.0.0.1:1/x.jpg"}}, 415, "multipart/form-data"),
        "text field for the file": ({"files": {"image": (None, "http://127.0.0.1:1/x.jpg")}}, 400, "uploaded file"),
        "missing file": ({"files": {"top_k": (None, "3")}}, 400, "missing"),
        "top_k twice": (
            {"files": [("image", ("a.jpg", good, "image/jpeg")), ("top_k", (None, "3")), ("top_k", (None, "2"))]},
            400,
            "more than once",
        ),
        "top_k zero": ({"files": {"image": ("a.jpg", good, "image/jpeg")}, "data": {"top_k": "0"}}, 400, "top_k"),
        "top_k too big": ({"files": {"image": ("a.jpg", good, "image/jpeg")}, "data": {"top_k": "99"}}, 400, "top_k"),
        "top_k not a number": (
            {"files": {"image": ("a.jpg", good, "image/jpeg")}, "data": {"top_k": "x"}},
            400,
            "top_k",
        ),
        "body over the size limit": (
            {"files": {"image": ("big.jpg", b"\xff" * (1024 * 1024 + 10), "image/jpeg")}},
            413,
            "limit",
        ),
    }


def _bad_label_requests() -> dict[str, tuple[dict, int, str]]:
    good = _jpeg_bytes()

    def form(labels: str) -> dict:
        return {"files": {"image": ("a.jpg", good, "image/jpeg")}, "data": {"labels": labels}}

    return {
        "empty label list": (form("[]"), 400, "empty"),
        "blank label": (form('["running", "  "]'), 400, "blank"),
        "too many labels": (form(str([f"label {i}" for i in range(9)]).replace("'", '"')), 400, "limit is 8"),
        "duplicate labels": (form('["running", "running"]'), 400, "twice"),
        "labels not a list": (form("running"), 400, "labels"),
    }


def test_every_bad_input_is_a_4xx_json_error_and_the_server_keeps_answering(server, tmp_path, sample_images):
    cases = {
        **{f"/predict: {name}": ("/predict", case) for name, case in _bad_requests(tmp_path).items()},
        **{f"/classify: {name}": ("/classify", case) for name, case in _bad_label_requests().items()},
        "/predict_batch: one bad image among good": (
            "/predict_batch",
            (
                {
                    "files": [
                        ("images", ("ok.jpg", _jpeg_bytes(), "image/jpeg")),
                        ("images", ("b.jpg", b"xx", "image/jpeg")),
                    ]
                },
                422,
                "b.jpg",
            ),
        ),
        "/raw_outputs: internal route": ("/raw_outputs", ({"json": {"crops": ["AAAA"]}}, 404, "internal")),
    }
    outcomes = {}
    for name, (route, (kwargs, _, _)) in cases.items():
        response = _post(server, route, **kwargs)
        assert "error" in response.json(), (name, response.text)  # JSON; BentoML's own 400s add a `detail` list
        outcomes[name] = (response.status_code, response.text)
    wrong = {
        name: outcome
        for name, outcome in outcomes.items()
        if outcome[0] != cases[name][1][1] or cases[name][1][2] not in str(outcome[1])
    }
    assert not wrong, wrong
    assert all(400 <= status < 500 for status, _ in outcomes.values())
    assert requests.get(f"{server.url}/readyz", timeout=10).status_code == 200
    assert _post(server, "/predict", files={"image": ("ok.jpg", sample_images[0].read_bytes())}).status_code == 200


def test_bearer_token_is_required_for_api_calls_but_not_probes(server):
    files = {"image": ("a.jpg", _jpeg_bytes(), "image/jpeg")}
    missing = _post(server, "/predict", headers={}, files=files)
    assert missing.status_code == 401 and "Bearer" in missing.json()["error"]
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert _post(server, "/predict", headers={"Authorization": "Bearer wrong"}, files=files).status_code == 401
    assert _post(server, "/metadata", headers={}).status_code == 401
    for probe in ("/readyz", "/livez", "/healthz", "/metrics"):
        assert requests.get(f"{server.url}{probe}", timeout=10).status_code == 200


def _model_calls(server) -> tuple[float, float, float]:
    """(images the batchable API saw, batches it ran) from BentoML's adaptive batch-size histogram, and the images
    /predict ran without the batcher (the service's own counter)."""
    text = requests.get(f"{server.url}/metrics", timeout=10).text
    total = sum(
        float(v) for v in re.findall(r'adaptive_batch_size_sum\{[^}]*method_name="raw_outputs"[^}]*\} (\S+)', text)
    )
    count = sum(
        float(v) for v in re.findall(r'adaptive_batch_size_count\{[^}]*method_name="raw_outputs"[^}]*\} (\S+)', text)
    )
    direct = sum(float(v) for v in re.findall(r"^har_clip_direct_model_calls_total(?:\{[^}]*\})? (\S+)", text, re.M))
    return total, count, direct


def test_a_request_alone_skips_the_batcher(server, sample_images):
    before = _model_calls(server)
    for path in sample_images:  # one after the other: each is alone in the model's path
        files = {"image": (path.name, path.read_bytes(), "image/jpeg")}
        assert _post(server, "/predict", files=files).status_code == 200
    after = _model_calls(server)
    assert after[2] - before[2] == len(sample_images)
    assert after[:2] == before[:2]  # nothing went through the batcher


def test_200_concurrent_requests_succeed_and_are_batched(server, verdict_images):
    """Batched answers are the direct ones: the batcher hands back raw outputs, calibrated and judged per request."""
    payloads = [path.read_bytes() for path in verdict_images]
    alone = [_post(server, "/predict", files={"image": ("a.jpg", data, "image/jpeg")}).json() for data in payloads]
    before = _model_calls(server)

    def one(index: int) -> requests.Response:
        files = {"image": (f"{index}.jpg", payloads[index % len(payloads)], "image/jpeg")}
        return _post(server, "/predict", files=files)

    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:  # bounded: 32 in flight at most
        responses = list(pool.map(one, range(200)))
    assert [response.status_code for response in responses] == [200] * 200
    for index, response in enumerate(responses):
        body, expected = response.json(), alone[index % len(payloads)]
        assert [p["label"] for p in body["predictions"]] == [p["label"] for p in expected["predictions"]]
        assert body["confidence"] == pytest.approx(expected["confidence"], abs=1e-5)  # batch sizes differ in float
        assert body["abstained"] == expected["abstained"]
        assert body["ood_score"] == pytest.approx(expected["ood_score"], rel=1e-5)
    after = _model_calls(server)
    images, batches, direct = (now - then for now, then in zip(after, before, strict=True))
    print(f"200 requests -> {batches:.0f} batches (mean {images / max(batches, 1):.1f} images), {direct:.0f} direct")
    assert images + direct == 200
    assert batches < images  # some calls carried more than one image: adaptive batching happened


def test_the_bento_packages_no_torch_for_onnx(onnx_bento):
    requirements = (Path(onnx_bento.path) / "env" / "python" / "requirements.txt").read_text()
    assert "onnxruntime==" in requirements and "bentoml==" in requirements
    assert not re.search(r"^(torch|transformers|zenml|mlflow|wandb|dvc)\b", requirements, re.M)


def test_a_bento_ships_the_service_folder_and_the_runtime_only(onnx_bento):
    """bento/ is what ships (its tooling is bento_ops/); of the library, har_core.runtime, not the ZenML side."""
    source = Path(onnx_bento.path) / "src"
    shipped = {str(path.relative_to(source)) for path in source.rglob("*.py")}
    service = {f"bento/{path.name}" for path in (PROJECT_ROOT / "bento").glob("*.py")}
    assert service <= shipped and "bento/service.py" in service
    assert not any(name.startswith(("bento_ops/", "har_zenml/", "steps/", "pipelines/", "cli/")) for name in shipped)
    library = {name for name in shipped if name.startswith("har_core/")}
    assert library == {"har_core/__init__.py"} | {
        f"har_core/runtime/{path.name}" for path in (PROJECT_ROOT / "har_core" / "runtime").glob("*.py")
    }
