"""The service's records (bento/records.py), without a server: the monitor type through `bentoml.monitor`, the row
schema, the embedding sampler and the video summary. The served records are checked in test_records_served.py."""

from __future__ import annotations

import json

import bentoml
import numpy as np
import pytest

from bento.records import COLUMNS, EmbeddingSampler, RecordsMonitor, _float32s, _video_summary, monitoring_settings
from har_core.runtime.confidence import margins
from har_core.runtime.serve_records import SCHEMA_FILE, PredictionRecord, read_records
from har_core.runtime.settings import RECORDS_DIR_ENV, RecordsConfig, ServingConfig


def _row(**changes) -> dict:
    row = {name: None for name in COLUMNS}
    row.update(route="/predict", image_index=0, model_name="m", model_version="1", model_format="onnx",
               top_label="running", confidence=0.9, abstained=False, margin=0.8, out_of_distribution=False,
               latency_ms=3.0, inference_ms=2.0)  # fmt: skip
    return {**row, **changes}


def test_the_columns_are_the_record_schema():
    assert ["timestamp", "request_id", *COLUMNS] == list(PredictionRecord.model_fields)


def test_the_monitor_type_writes_json_lines_and_the_schema_through_bentoml_monitor(tmp_path):
    options = {"log_path": str(tmp_path), "max_file_bytes": 4096, "max_total_bytes": 16384}
    rows = [_row(image_index=0), _row(image_index=1, embedding=[0.5, -0.25])]
    with bentoml.monitor("records_unit", monitor_class=RecordsMonitor, monitor_options=options) as monitor:
        for name, (role, kind) in COLUMNS.items():
            monitor.log_batch([row[name] for row in rows], name, role, kind)
    read = list(read_records(tmp_path / "records_unit"))
    assert [record.image_index for record in read] == [0, 1] and read[1].embedding == [0.5, -0.25]
    assert read[0].request_id is None and read[0].timestamp.utcoffset().total_seconds() == 0  # outside a request
    schema = json.loads((tmp_path / "records_unit" / SCHEMA_FILE).read_text())
    assert [column["name"] for column in schema["columns"]] == list(PredictionRecord.model_fields)
    assert {column["name"]: column["role"] for column in schema["columns"]}["confidence"] == "prediction"


def test_monitoring_settings_name_the_monitor_type_the_directory_and_the_caps(tmp_path, monkeypatch):
    monkeypatch.setenv(RECORDS_DIR_ENV, str(tmp_path / "from-env"))
    settings = monitoring_settings(RecordsConfig(directory=str(tmp_path / "from-config"), max_file_mb=0.5))
    assert settings["type"] == "bento.records.RecordsMonitor" and settings["enabled"] is True
    assert settings["options"] == {
        "log_path": str(tmp_path / "from-env"),  # the environment wins over the config
        "max_file_bytes": 512 * 1024,
        "max_total_bytes": 1024 * 1024 * 1024,
    }
    monkeypatch.delenv(RECORDS_DIR_ENV)
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "home"))
    assert monitoring_settings(RecordsConfig())["options"]["log_path"] == str(tmp_path / "home" / "records")


def test_the_sampler_takes_about_its_rate_and_a_seed_repeats_it():
    sampler = EmbeddingSampler(0.1, seed=7)
    taken = [sampler.take() for _ in range(20_000)]
    assert 0.09 < np.mean(taken) < 0.11
    again = EmbeddingSampler(0.1, seed=7)
    assert [again.take() for _ in range(20_000)] == taken
    assert not any(EmbeddingSampler(0.0).take() for _ in range(1000))
    assert all(EmbeddingSampler(1.0).take() for _ in range(1000))


def test_embeddings_are_written_as_the_shortest_decimals_of_their_float32_values():
    values = np.random.default_rng(0).normal(0, 0.05, 512).astype(np.float32)
    written = _float32s(values.tolist())
    assert np.array_equal(np.asarray(written, dtype=np.float32), values)
    assert len(json.dumps(written)) < 0.65 * len(json.dumps(values.tolist()))


def test_margins_are_top_one_minus_top_two_over_the_whole_row():
    rows = np.array([[0.1, 0.7, 0.2], [0.5, 0.5, 0.0]])
    assert np.allclose(margins(rows), [0.5, 0.0]) and np.allclose(margins(np.array([[1.0]])), [1.0])


def test_a_video_is_summarised_by_its_longest_label_and_its_frames_means():
    from har_core.runtime.predictor import Prediction
    from har_core.runtime.timeline import ActionSegment
    from har_core.runtime.video_scoring import FrameScores, VideoPrediction

    def frame(time_s, top, second, ood):
        ranked = [Prediction(label="a", score=top), Prediction(label="b", score=second)]
        return FrameScores(time_s=time_s, predictions=ranked, smoothed_label="a", smoothed_score=top, ood_score=ood)

    segments = [
        ActionSegment(label="a", start_s=0, end_s=1, mean_score=0.8, frames=2),
        ActionSegment(label="no action", start_s=1, end_s=1.5, mean_score=0.3, frames=1),
        ActionSegment(label="a", start_s=1.5, end_s=2, mean_score=0.8, frames=1),
    ]
    frames = [frame(0, 0.8, 0.1, 1.0), frame(0.5, 0.6, 0.3, 3.0)]
    result = VideoPrediction.model_construct(segments=segments, frames=frames)
    summary = _video_summary(result, ood_above=1.5)
    assert summary["top_label"] == "a" and summary["abstained"] is False
    assert summary["confidence"] == pytest.approx(0.7) and summary["margin"] == pytest.approx(0.5)
    assert summary["ood_score"] == pytest.approx(2.0) and summary["out_of_distribution"] is True
    unsure = VideoPrediction.model_construct(segments=segments[1:2], frames=frames[:1])
    assert _video_summary(unsure, ood_above=None) | {"margin": None} == {
        "top_label": "no action", "confidence": 0.8, "abstained": True, "margin": None, "ood_score": 1.0,
        "out_of_distribution": False,
    }  # fmt: skip


def test_the_caps_are_checked_against_each_other_and_the_workers():
    with pytest.raises(ValueError, match="max_image_kb"):
        RecordsConfig(keep_images=True, max_image_kb=512, max_file_mb=1)
    RecordsConfig(keep_images=False, max_image_kb=512, max_file_mb=1)  # not kept: no bound needed
    with pytest.raises(ValueError, match=r"\(workers \+ 1\) x records.max_file_mb = 80"):
        ServingConfig(workers=4, records=RecordsConfig(max_file_mb=16, max_total_mb=64))
    ServingConfig(workers=3, records=RecordsConfig(max_file_mb=16, max_total_mb=64))
