"""Reading the Bento's records back (har_core.runtime.serve_records): the files in time order, each row validated."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from har_core.runtime.serve_records import (
    RECORDS_NAME,
    PredictionRecord,
    closed_file,
    live_file,
    read_records,
    record_files,
)

ROW = {
    "timestamp": "2027-01-02T03:04:05.000001+00:00", "request_id": "00000000000000ab", "route": "/predict",
    "image_index": 0, "model_name": "har_clip_classifier", "model_version": "7", "model_format": "onnx",
    "calibration": "own-labels", "top_label": "running", "confidence": 0.9, "abstained": False, "margin": 0.7,
    "ood_score": 12.5, "out_of_distribution": False, "latency_ms": 5.0, "inference_ms": 3.0, "frames_scored": None,
    "segments": None, "embedding": None, "image": None,
}  # fmt: skip


def _write(path, *labels: str) -> None:
    path.write_text("".join(json.dumps({**ROW, "top_label": label}) + "\n" for label in labels))


def test_closed_files_come_oldest_first_then_the_live_ones(tmp_path):
    folder = tmp_path / RECORDS_NAME
    folder.mkdir()
    _write(live_file(folder, 1), "live 1")
    _write(closed_file(folder, 2, datetime(2027, 1, 2, tzinfo=UTC)), "closed second")
    _write(closed_file(folder, 1, datetime(2027, 1, 1, 23, 59, 59, 999999, tzinfo=UTC)), "closed first")
    _write(live_file(folder, 2), "live 2")
    (folder / "schema.json").write_text("{}")
    expected = ["closed first", "closed second", "live 1", "live 2"]
    assert [record.top_label for record in read_records(tmp_path)] == expected  # the records directory
    assert record_files(folder) == record_files(tmp_path)  # or its predictions/ folder


def test_a_row_outside_the_schema_is_an_error(tmp_path):
    (tmp_path / "live.1.jsonl").write_text(json.dumps({**ROW, "unknown": 1}) + "\n")
    with pytest.raises(ValidationError, match="unknown"):
        list(read_records(tmp_path))
    assert PredictionRecord.model_validate(ROW).timestamp.utcoffset().total_seconds() == 0
