"""What a real `bentoml serve` records of its answers (bento/records.py): one row per image and per video, equal to
what the client was told, with sampled embeddings, uploaded bytes only when kept, and a disk cap that holds.

The session's server (records at its default place, <BentoML home>/records, embeddings of 10 % of images) for the
rows; a server of this module's own for the embeddings (rate 1), the kept images and a tiny cap.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
import requests
import yaml

from bento.records import records_directory
from bento_ops.server import BentoServer
from har_core.runtime.images import open_image
from har_core.runtime.predictor import Predictor
from har_core.runtime.serve_records import PredictionRecord, read_records, record_files
from har_core.runtime.settings import RecordsConfig
from tests.bento.conftest import API_TOKEN, AUTH
from tests.videos import encode_video, two_label_frames

REQUEST_ID = "X-BentoML-Request-ID"


def _post(url: str, route: str, files, data=None) -> tuple[str, dict]:
    response = requests.post(f"{url}{route}", files=files, data=data, headers=AUTH, timeout=120)
    assert response.status_code == 200, response.text
    return response.headers[REQUEST_ID], response.json()


def _image(path: Path, field: str = "image") -> tuple[str, tuple[str, bytes, str]]:
    return field, (path.name, path.read_bytes(), "image/jpeg")


def _rows(directory: Path, request_id: str) -> list[PredictionRecord]:
    return [record for record in read_records(directory) if record.request_id == request_id]


def _check_image_row(row: PredictionRecord, route: str, answer: dict, verdict: dict, index: int = 0) -> None:
    """A row holds what the answer said: its top label, verdict, calibration, timing and model."""
    ranked = answer["predictions"] if route != "/predict_batch" else answer["predictions"][index]
    assert (row.route, row.image_index, row.top_label) == (route, index, ranked[0]["label"])
    assert (row.confidence, row.abstained) == (verdict["confidence"], verdict["abstained"])
    assert (row.ood_score, row.out_of_distribution) == (verdict["ood_score"], verdict["out_of_distribution"])
    assert (row.calibration, row.inference_ms) == (answer["calibration"], answer["inference_ms"])
    assert answer["model"] == {"name": row.model_name, "version": row.model_version, "format": row.model_format}
    if len(ranked) > 1:
        assert row.margin == pytest.approx(ranked[0]["score"] - ranked[1]["score"], abs=1e-6)
    assert 0 <= row.margin <= row.confidence and row.latency_ms >= row.inference_ms
    assert row.frames_scored is None and row.segments is None and row.image is None  # no image kept by default


def test_every_answer_is_recorded_as_it_was_answered(server, sample_images, video_images):
    if not isinstance(server, BentoServer):
        pytest.skip("a container keeps its records inside it")
    directory = records_directory(RecordsConfig())  # the server's: same environment, default config
    url = server.url
    labels = ["juggling", "rowing a boat", "painting a wall"]
    first, second = video_images
    video = encode_video(two_label_frames(first.frame(), second.frame(), 10, 4.0, 2.0), 10, "mjpeg")
    answered = {
        "one": ("/predict", *_post(url, "/predict", [_image(sample_images[0])], {"top_k": "3"})),
        "top-1 only": ("/predict", *_post(url, "/predict", [_image(sample_images[1])], {"top_k": "1"})),
        "batch": ("/predict_batch", *_post(url, "/predict_batch", [_image(p, "images") for p in sample_images[:3]])),
        "custom": ("/classify", *_post(url, "/classify", [_image(sample_images[2])], {"labels": json.dumps(labels)})),
        "video": ("/predict_video", *_post(url, "/predict_video", [("video", ("v.avi", video, "video/x-msvideo"))])),
    }
    for name, (route, request_id, answer) in answered.items():
        rows = _rows(directory, request_id)
        if route == "/predict_batch":
            assert [row.image_index for row in rows] == [0, 1, 2], name
            for index, (row, verdict) in enumerate(zip(rows, answer["verdicts"], strict=True)):
                _check_image_row(row, route, answer, verdict, index)
        elif route == "/predict_video":
            (row,) = rows
            assert (row.route, row.image_index, row.frames_scored) == (route, None, len(answer["frames"]))
            assert [(s.label, s.duration_s) for s in row.segments] == [
                (s["label"], pytest.approx(s["end_s"] - s["start_s"], abs=1e-6)) for s in answer["segments"]
            ]
            assert row.top_label in {s["label"] for s in answer["segments"]} and row.calibration == "own-labels"
            top_1 = [frame["predictions"][0]["score"] for frame in answer["frames"]]
            assert row.confidence == pytest.approx(np.mean(top_1)) and row.inference_ms == answer["inference_ms"]
            assert row.embedding is None and row.image is None
        else:
            (row,) = rows
            _check_image_row(row, route, answer, answer)
    assert answered["custom"][2]["calibration"] == "zero-shot"
    ids = {request_id for _, request_id, _ in answered.values()}
    rows = [(line, json.loads(line)) for path in record_files(directory) for line in path.read_bytes().splitlines()]
    plain = [line for line, row in rows if row["request_id"] in ids and row["route"] != "/predict_video"]
    plain = [line for line in plain if b'"embedding":null' in line]
    assert plain and all(len(line) + 1 <= 640 for line in plain)  # an image row without embedding: ~520 bytes
    dimensions = {len(row.embedding) for row in read_records(directory) if row.embedding is not None}
    assert len(dimensions) <= 1  # 10 % of image rows carry one by default: maybe none of these few


# A server of its own: every image's embedding, kept images, and caps a few rows fill.
CAP = RecordsConfig(embedding_sample_rate=1.0, keep_images=True, max_image_kb=6, max_file_mb=0.02, max_total_mb=0.06)


@pytest.fixture(scope="module")
def recording_server(onnx_bento, serving_config, tmp_path_factory):
    folder = tmp_path_factory.mktemp("records-server")
    records = CAP.model_copy(update={"directory": str(folder / "records")})
    config = folder / "serving.yaml"
    config.write_text(yaml.safe_dump(serving_config.model_copy(update={"records": records}).model_dump(mode="json")))
    env = {"HAR_CLIP_SERVING_CONFIG": str(config), "HAR_CLIP_API_TOKEN": API_TOKEN}
    with BentoServer(str(onnx_bento.tag), folder / "serve.log", env=env) as running:
        yield running, folder / "records" / "predictions"


def test_sampled_rows_carry_the_embedding_and_kept_images_their_bytes(recording_server, sample_images, onnx_export_dir):
    server, directory = recording_server
    assert all(path.stat().st_size <= CAP.max_image_kb * 1024 for path in sample_images)
    request_id, _ = _post(server.url, "/predict_batch", [_image(path, "images") for path in sample_images[:2]])
    single_id, _ = _post(server.url, "/predict", [_image(sample_images[2])])
    rows = _rows(directory, request_id) + _rows(directory, single_id)
    paths = [*sample_images[:2], sample_images[2]]
    expected = Predictor.from_export(onnx_export_dir, device="cpu").classify([open_image(p) for p in paths])
    for row, path, answer in zip(rows, paths, expected, strict=True):
        assert base64.b64decode(row.image) == path.read_bytes()
        assert np.allclose(row.embedding, answer.embedding, atol=1e-5)
        assert np.linalg.norm(row.embedding) == pytest.approx(1.0, abs=1e-4)


def test_the_records_stay_under_their_cap_and_the_oldest_go_first(recording_server, sample_images):
    server, directory = recording_server
    cap = CAP.max_total_mb * 1024 * 1024
    sent = []
    for number in range(30):
        sent.append(_post(server.url, "/predict", [_image(sample_images[number % len(sample_images)])])[0])
        assert sum(path.stat().st_size for path in directory.glob("*.jsonl")) <= cap
    kept = [record.request_id for record in read_records(directory) if record.request_id in sent]
    assert 5 <= len(kept) < len(sent) and kept == sent[-len(kept) :]  # the newest, in order, none missing
    assert len(list(directory.glob("*.jsonl"))) >= 3  # closed files beside the live one
