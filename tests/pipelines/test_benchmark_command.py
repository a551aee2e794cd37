"""The benchmark table of a real training run, and `run.py --command benchmark` on that run's model version (no
retraining), with the accuracy floor that fails it for CI. One tiny run in the session's clean ZenML store."""

from typing import get_args

import pytest
import yaml
from click.testing import CliRunner

from har_core.runtime.settings import ExportFormatName
from har_zenml.names import BENCHMARK_ARTIFACT, BENCHMARK_STEP, EVALUATION_REPORT_ARTIFACT, FINE_TUNED_EVALUATION_STEP
from tests.pipelines.pipeline_runs import run_training, tiny_config

pytestmark = pytest.mark.slow

FORMATS = ["pytorch", "onnx"]


@pytest.fixture(scope="module")
def tiny_version(zenml_client, tmp_path_factory):
    """(run, its model version, its benchmark table): 3 labels, 18 images, one epoch, PyTorch and ONNX exports."""
    directory = tmp_path_factory.mktemp("benchmark-command")
    path = tiny_config(directory)
    config = yaml.safe_load(path.read_text())
    parameters = config["parameters"]
    parameters["export"].update(
        formats=FORMATS, text_tower=False, parity_images=16, output_dir=str(directory / "exports")
    )
    parameters["benchmark"].update(batch_size=2, warmup=0, latency_iterations=2, throughput_iterations=1, threads=1)
    path.write_text(yaml.safe_dump(config))
    run, _ = run_training(zenml_client, path, "--no-cache")
    version = zenml_client.get_model_version(run.model_version.model.name, run.model_version.number)
    table = run.steps[BENCHMARK_STEP].outputs[BENCHMARK_ARTIFACT][0].load()
    return run, version, table


def benchmark(*args: str):
    import run

    return CliRunner().invoke(run.main, ["--command", "benchmark", *args])


def rows_of(output: str) -> dict[str, list[str]]:
    """The printed table's rows by format: [status, size, accuracy, preprocess, inference, end-to-end, img/s, …]."""
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[0] in get_args(ExportFormatName):
            rows[cells[0]] = cells[1:]
    return rows


def test_the_pipeline_table_measures_accuracy_through_each_format(tiny_version):
    run, version, table = tiny_version
    report = run.steps[FINE_TUNED_EVALUATION_STEP].outputs[EVALUATION_REPORT_ARTIFACT][0].load()
    rows = {row.format: row for row in table.rows}
    assert list(rows) == FORMATS and table.split == report.split == "test"
    assert table.model == f"{version.model.name} version {version.number}"
    for row in rows.values():
        assert row.status == "passed" and row.size_mb > 0 and row.accuracy_images == report.num_images
        assert row.preprocess_ms > 0 and row.p50_ms > 0 and row.end_to_end_ms > 0 and row.throughput_ips > 0
    assert rows["pytorch"].accuracy == pytest.approx(report.accuracy)  # the same model, the same images
    assert abs(rows["onnx"].accuracy - report.accuracy) <= 1 / report.num_images


def test_the_command_benchmarks_one_format_of_an_existing_version(tiny_version):
    _, version, table = tiny_version
    result = benchmark("--model-version", str(version.number), "--format", "onnx")
    assert result.exit_code == 0, result.output + repr(result.exception)
    rows = rows_of(result.output)
    assert list(rows) == ["onnx"] and rows["onnx"][0] == "passed"
    [measured] = [row for row in table.rows if row.format == "onnx"]
    assert rows["onnx"][2] == f"{measured.accuracy:.4f}"  # the pipeline's figure: same files, same images
    assert f"{measured.accuracy_images} test images" in result.output


def test_an_accuracy_floor_above_a_format_fails_the_command(tiny_version):
    _, version, table = tiny_version
    accuracy = min(row.accuracy for row in table.rows)
    reached = benchmark("--model-version", str(version.number), "--min-accuracy", str(accuracy))
    assert reached.exit_code == 0, reached.output
    assert set(rows_of(reached.output)) == set(FORMATS) and "reaches the accuracy floor" in reached.output
    if accuracy == 1.0:
        pytest.skip("the tiny model is perfect on its test images: no floor can be above it")
    floor = accuracy + 0.001
    failed = benchmark("--model-version", str(version.number), "--min-accuracy", str(floor))
    assert failed.exit_code == 1
    assert (
        f"Below the accuracy floor {floor}" in failed.output and f"accuracy {accuracy:.4f} < {floor}" in failed.output
    )


def test_a_missing_version_or_format_is_a_clear_error(tiny_version):
    _, version, _ = tiny_version
    missing = benchmark("--model-version", "999999")
    assert missing.exit_code == 1 and "version '999999'" in missing.output
    not_exported = benchmark("--model-version", str(version.number), "--format", "torchscript")
    assert not_exported.exit_code == 1
    assert (
        "no torchscript export: it was not requested" in not_exported.output and "onnx, pytorch" in not_exported.output
    )


def test_the_format_choices_are_the_export_formats():
    import run

    assert set(run.EXPORT_FORMATS) == set(get_args(ExportFormatName))
