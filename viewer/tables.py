"""Turn a table-like artifact (pydantic rows, a list of dicts, a dict per format) into a DataFrame for display; the
benchmark's and the calibration's figures as the pages show them."""

from __future__ import annotations

from typing import Any

import pandas as pd
from pydantic import BaseModel


def as_frame(table: Any) -> pd.DataFrame:
    """Rows of `table` as a DataFrame; a model holding a list of rows shows those rows, a dict of dicts one row each."""
    if isinstance(table, pd.DataFrame):
        return table
    if isinstance(table, BaseModel):
        data = table.model_dump(mode="json")
        rows = next((value for value in data.values() if _is_rows(value)), None)
        return pd.DataFrame(rows) if rows is not None else pd.DataFrame([data])
    if isinstance(table, dict):
        if table and all(isinstance(value, dict) for value in table.values()):
            return pd.DataFrame.from_dict(table, orient="index").reset_index(names="format")
        return pd.DataFrame([table])
    if isinstance(table, list | tuple):
        return pd.DataFrame([row.model_dump(mode="json") if isinstance(row, BaseModel) else row for row in table])
    return pd.DataFrame({"value": [str(table)]})


def _is_rows(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, dict) for item in value)


# The benchmark table's user-facing columns (har_core.export.benchmark.BenchmarkRow field -> column), in order.
BENCHMARK_COLUMNS = {
    "format": "format",
    "status": "status",
    "size_mb": "size (MB)",
    "accuracy": "accuracy",
    "preprocess_ms": "preprocess ms",
    "p50_ms": "inference ms",
    "end_to_end_ms": "end-to-end ms",
    "throughput_ips": "img/s",
    "device": "device",
    "note": "note",
}


def benchmark_frame(table: Any) -> pd.DataFrame:
    """One row per format as the export docs show it: status, size, accuracy, batch-1 latency split into preprocess /
    inference / end to end, throughput at the table's batch size (named in the column). Tables written before a
    column existed show it empty."""
    frame = as_frame(table).reindex(columns=list(BENCHMARK_COLUMNS))
    batch = getattr(table.rows[0], "batch_size", None) if getattr(table, "rows", None) else None
    columns = {**BENCHMARK_COLUMNS, "throughput_ips": f"img/s (batch {batch})" if batch else "img/s"}
    return frame.rename(columns=columns)


# An evaluation's calibration figures (`CalibrationSummary.metrics` key -> row), in the order the Runs page lists them.
CALIBRATION_FIGURES = {
    "ece_before": "ECE before calibration",
    "ece_after": "ECE after calibration",
    "nll_before": "NLL before calibration",
    "nll_after": "NLL after calibration",
    "temperature": "temperature",
    "zero_shot_temperature": "temperature for custom labels",
    "abstain_below": "no action below (calibrated top-1)",
    "target_coverage": "coverage asked",
    "coverage": "coverage (share answered)",
    "selective_accuracy": "accuracy of the answered",
    "accuracy": "accuracy of all",
    "risk_coverage_auc": "risk-coverage AUC",
}


def calibration_frame(summary: Any) -> pd.DataFrame:
    """The headline figures of a `CalibrationSummary` (those it has), then each out-of-distribution set's AUROC."""
    rows = [
        {"figure": name, "value": summary.metrics[key]}
        for key, name in CALIBRATION_FIGURES.items()
        if key in summary.metrics
    ]
    rows += [{"figure": f"OOD AUROC, {name}", "value": value} for name, value in summary.ood_auroc.items()]
    return pd.DataFrame(rows, columns=["figure", "value"])
