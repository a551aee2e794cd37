"""Wiring both training pipelines share, written once so they cannot drift: the data source at the head, and
calibration -> evaluation -> export -> benchmark -> promotion after training.

Plain functions that call steps: ZenML adds the steps to whichever `@pipeline` is being composed when they run.
"""

from __future__ import annotations

from typing import Any

from har_core.config import BenchmarkConfig, DataConfig, EvaluationConfig, ExportConfig, PromotionConfig
from har_zenml.names import FINE_TUNED_EVALUATION_STEP
from steps.benchmark_exports import benchmark_exports
from steps.calibrate_model import calibrate_model
from steps.evaluate_model import evaluate_model
from steps.export_model import export_model
from steps.load_data import load_data
from steps.load_dvc_data import load_dvc_data
from steps.promote_model import promote_model


def load_dataset(data: DataConfig) -> Any:
    """The split manifest of the configured source (`data.source: dvc` has a step of its own)."""
    return load_dvc_data(data=data) if data.source == "dvc" else load_data(data=data)


def evaluate_export_promote(
    trained_model: Any,
    dataset: Any,
    evaluation: EvaluationConfig,
    export: ExportConfig,
    benchmark: BenchmarkConfig,
    promotion: PromotionConfig,
) -> None:
    """Calibrate the fine-tuned model (unless `evaluation.calibration.enabled` is off), evaluate it, export and
    benchmark it, then decide its stage from the report."""
    calibration = statistics = reference = None
    if evaluation.calibration.enabled:
        calibration, statistics, reference = calibrate_model(
            model=trained_model, dataset=dataset, evaluation=evaluation
        )
    report, _, _, _, _ = evaluate_model(
        model=trained_model,
        dataset=dataset,
        evaluation=evaluation,
        calibration=calibration,
        ood_statistics=statistics,
        id=FINE_TUNED_EVALUATION_STEP,
    )
    exports = export_model(
        model=trained_model,
        dataset=dataset,
        export=export,
        calibration=calibration,
        report=report,
        ood_statistics=statistics,
        reference=reference,
    )
    table, _ = benchmark_exports(exports=exports, dataset=dataset, benchmark=benchmark, split=evaluation.split)
    promote_model(
        model=trained_model, dataset=dataset, report=report, exports=exports, benchmark=table, promotion=promotion
    )
