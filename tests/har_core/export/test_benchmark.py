from har_core.config import BenchmarkConfig
from har_core.export.benchmark import benchmark_bundle

CONFIG = BenchmarkConfig(batch_size=2, warmup=1, latency_iterations=3, throughput_iterations=2, device="cpu", threads=1)


def test_every_requested_format_gets_a_row_and_untimed_ones_say_why(tiny_exports):
    table = benchmark_bundle(tiny_exports, CONFIG)
    rows = {row.format: row for row in table.rows}
    assert set(rows) == set(tiny_exports.formats)
    for name in tiny_exports.deployable_formats():
        row = rows[name]
        assert 0 < row.p50_ms <= row.p95_ms and row.throughput_ips > 0 and row.device == "cpu"
        assert table.metrics()[f"{name}/p50_ms"] == row.p50_ms
    for name, status in tiny_exports.formats.items():
        if not status.deployable:
            assert rows[name].p50_ms is None and rows[name].note == status.message
    markdown = table.markdown()
    assert markdown.count("\n| ") == len(rows) + 2 and "img/s (batch 2)" in markdown
