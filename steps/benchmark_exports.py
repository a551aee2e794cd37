"""Step: latency and throughput of every deployable export, as a table artifact and tracker metrics."""

from typing import Annotated

from zenml import log_metadata, step
from zenml.types import MarkdownString

from har_core.config import BenchmarkConfig
from har_core.export.benchmark import BenchmarkTable, benchmark_bundle
from har_core.runtime.manifest import ExportBundle
from steps import tracking
from steps.names import BENCHMARK_ARTIFACT, BENCHMARK_MARKDOWN_ARTIFACT


@step
def benchmark_exports(
    exports: ExportBundle, benchmark: BenchmarkConfig
) -> tuple[Annotated[BenchmarkTable, BENCHMARK_ARTIFACT], Annotated[MarkdownString, BENCHMARK_MARKDOWN_ARTIFACT]]:
    """p50/p95 latency at batch 1 and throughput at `benchmark.batch_size`, warm-up excluded."""
    table = benchmark_bundle(exports, benchmark)
    markdown = table.markdown()
    tracking.log_metrics(table.metrics(), prefix="benchmark/")
    tracking.log_text(markdown, "benchmark/benchmark.md")
    tracking.record_run_locations()
    log_metadata(metadata={"benchmark": table.metrics()}, infer_model=True)
    return table, MarkdownString(markdown)
