"""The benchmark table: one row per format with status, size, accuracy through the format, latency and throughput."""

import shutil

import numpy as np
import pytest

from har_core.config import BenchmarkConfig
from har_core.data.dataset import load_image
from har_core.export.benchmark import accuracy_floor_failures, benchmark_bundle, sample_jpeg
from har_core.export.graphs import reference_outputs
from har_core.model.serving_graph import ImageModel
from har_core.runtime.images import open_image
from har_core.runtime.manifest import MODEL_ROLE, ExportBundle, FormatStatus
from har_core.runtime.parity import run_parity_gate
from har_core.runtime.preprocess import preprocess_batch
from har_core.runtime.settings import ParityThresholds
from tests.har_core.data.folders import image_records

CONFIG = BenchmarkConfig(batch_size=2, warmup=1, latency_iterations=3, throughput_iterations=2, device="cpu", threads=1)
TIMINGS = ("preprocess_ms", "p50_ms", "p95_ms", "end_to_end_ms", "throughput_ips")


@pytest.fixture(scope="module")
def labelled(tiny_model, synthetic_root):
    """(file, label) of 3 synthetic images per label."""
    records = image_records(synthetic_root, tiny_model.labels)[::3]
    return [(record.path, tiny_model.labels[record.label]) for record in records]


@pytest.fixture(scope="module")
def table(tiny_exports, labelled):
    return benchmark_bundle(tiny_exports, CONFIG, labelled, split="test")


def torch_accuracy(model, labelled) -> float:
    pixels = preprocess_batch([load_image(path) for path, _ in labelled], model.preprocess_config)
    predicted = reference_outputs(ImageModel(model), pixels)[1].argmax(1).tolist()
    return float(np.mean([model.labels[index] == label for index, (_, label) in zip(predicted, labelled, strict=True)]))


def test_every_format_gets_a_row_with_status_size_accuracy_and_timings(table, tiny_exports, tiny_model, labelled):
    rows = {row.format: row for row in table.rows}
    assert set(rows) == set(tiny_exports.formats) and table.model == "tiny version 1" and table.split == "test"
    expected = torch_accuracy(tiny_model, labelled)
    for name in tiny_exports.deployable_formats():
        row = rows[name]
        assert row.status == "passed" and row.deployable and row.device == "cpu"
        assert all(getattr(row, field) > 0 for field in TIMINGS) and row.p50_ms <= row.p95_ms
        manifest = tiny_exports.manifest(name)
        assert 0 < row.size_mb < sum(entry.size_bytes for entry in manifest.files.values()) / 1e6
        assert row.accuracy_images == len(labelled)
        # through the format, on the images: PyTorch's own accuracy, up to the format's own rounding
        assert abs(row.accuracy - expected) <= (0 if name in ("pytorch", "torchscript") else 2 / len(labelled))
        assert table.metrics()[f"{name}/accuracy"] == row.accuracy
    assert rows["onnx"].size_mb == pytest.approx(tiny_exports.manifest("onnx").files[MODEL_ROLE].size_bytes / 1e6)
    assert rows["onnx-int8"].size_mb < rows["onnx"].size_mb  # uint8 weights (the tiny graph is mostly not weights)
    for name, status in tiny_exports.formats.items():
        if status.directory is None:  # TensorRT without TensorRT: says why, nothing measured
            row = rows[name]
            assert row.status == "export failed" and row.note == status.message and "TensorRT" in row.note
            assert row.accuracy is None and all(getattr(row, field) is None for field in TIMINGS)
    markdown = table.markdown()
    assert markdown.count("\n| ") == len(rows) + 2 and "img/s (batch 2)" in markdown
    assert "| preprocess ms | inference ms | end-to-end ms |" in markdown
    assert f"top-1 on {len(labelled)} images of the test split" in markdown


def test_a_format_that_failed_its_gate_is_measured_and_says_so(
    tiny_exports, tiny_model, parity_pixels, labelled, tmp_path
):
    shutil.copytree(tiny_exports.directory("onnx-int8"), tmp_path / "onnx-int8")
    impossible = ParityThresholds(min_top1_agreement=1.0, max_abs_logit_diff=1e-9, min_embedding_cosine=1.0)
    result = run_parity_gate(
        tmp_path / "onnx-int8", parity_pixels, reference_outputs(ImageModel(tiny_model), parity_pixels), impossible
    )
    message = "parity gate failed: " + "; ".join(result.failures)
    status = FormatStatus(format="onnx-int8", directory="onnx-int8", deployable=False, message=message)
    bundle = ExportBundle(root=str(tmp_path), formats={"onnx-int8": status})
    [row] = benchmark_bundle(bundle, CONFIG, labelled[:4], split="val").rows
    assert row.status == "failed its gate" and not row.deployable and row.note == message
    assert row.accuracy is not None and row.accuracy_images == 4 and row.throughput_ips > 0
    assert accuracy_floor_failures(benchmark_bundle(bundle, CONFIG, (), formats=["onnx-int8"]), 0.5) == [
        f"onnx-int8: no accuracy (failed its gate: {message})"
    ]


def test_the_accuracy_floor_names_each_format_below_it(table):
    measured = [row for row in table.rows if row.accuracy is not None]
    lowest = min(row.accuracy for row in measured)
    assert not [f for f in accuracy_floor_failures(table, lowest) if "accuracy" in f and "<" in f]
    failures = accuracy_floor_failures(table, min(1.0, lowest + 0.01))
    assert any(f.startswith(f"{row.format}: accuracy {row.accuracy:.4f} < ") for row in measured for f in failures)
    unmeasured = [row.format for row in table.rows if row.accuracy is None]
    assert [f.split(":")[0] for f in failures if "no accuracy" in f] == unmeasured


def test_max_accuracy_images_bounds_the_scoring_and_no_images_means_no_accuracy(tiny_exports, labelled):
    bounded = CONFIG.model_copy(update={"max_accuracy_images": 3})
    [row] = benchmark_bundle(tiny_exports, bounded, labelled, formats=["onnx"]).rows
    assert row.accuracy_images == 3
    unlabelled = benchmark_bundle(tiny_exports, CONFIG, (), formats=["onnx"])
    assert unlabelled.rows[0].accuracy is None and unlabelled.split is None and unlabelled.rows[0].preprocess_ms > 0
    assert "not measured (no images)" in unlabelled.markdown()


def test_the_sample_jpeg_is_photo_sized():
    image = open_image(sample_jpeg())
    assert image.size == (640, 480) and image.mode == "RGB"
