"""Before/after benchmarks hand an older checkout a copy of this checkout's files without the keys added since."""

from __future__ import annotations

import json

from benchmarks.shared.baseline import for_baseline
from har_core.runtime.manifest import ExportManifest


def test_an_export_copy_loses_the_newer_keys_and_still_verifies(onnx_export_dir, tmp_path):
    copy = for_baseline(onnx_export_dir, tmp_path / "onnx")
    manifest = json.loads((copy / "export_manifest.json").read_text())
    card = json.loads((copy / "har_clip.json").read_text())
    assert "graph" not in manifest and "provenance" not in manifest["model_card"]
    assert "provenance" not in card
    ExportManifest.load(copy).verify_files(copy)  # the edited model card's digest was recorded anew
    assert "provenance" in json.loads((onnx_export_dir / "har_clip.json").read_text())  # the original is untouched


def test_a_job_file_loses_the_cache_settings(tmp_path):
    job = {"config": {"epochs": 1, "decoded_cache": True, "decoded_cache_max_gib": 16}, "manifest": "m.json"}
    (tmp_path / "job.json").write_text(json.dumps(job))
    for_baseline(tmp_path)
    assert json.loads((tmp_path / "job.json").read_text()) == {"config": {"epochs": 1}, "manifest": "m.json"}
