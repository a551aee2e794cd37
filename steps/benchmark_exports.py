"""Step: size, accuracy on the evaluation split, latency and throughput of every export, as a table artifact and
tracker metrics."""

from typing import Annotated, Literal

from zenml import log_metadata, step
from zenml.types import MarkdownString

from har_core.config import BenchmarkConfig
from har_core.data.dataset import DatasetManifest
from har_core.export.benchmark import BenchmarkTable, benchmark_bundle, labelled_images
from har_core.runtime.manifest import ExportBundle
from har_zenml import tracking
from har_zenml.names import BENCHMARK_ARTIFACT, BENCHMARK_MARKDOWN_ARTIFACT


@step
def benchmark_exports(
    exports: ExportBundle, dataset: DatasetManifest, benchmark: BenchmarkConfig, split: Literal["val", "test"] = "test"
) -> tuple[Annotated[BenchmarkTable, BENCHMARK_ARTIFACT], Annotated[MarkdownString, BENCHMARK_MARKDOWN_ARTIFACT]]:
    """One row per format; accuracy on the `split` split (the evaluation's) through the format, warm-up excluded."""
    table = benchmark_bundle(exports, benchmark, labelled_images(dataset, split), split=split)
    markdown, metrics = table.markdown(), table.metrics()
    tracking.log_metrics(metrics, prefix="benchmark/")
    tracking.log_text(markdown, "benchmark/benchmark.md")
    tracking.record_run_locations()
    log_metadata(metadata={"benchmark": metrics}, infer_model=True)
    return table, MarkdownString(markdown)
