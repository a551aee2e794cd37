"""The training pipeline: data -> zero-shot baseline -> fine-tune -> evaluation -> export -> benchmark -> promote."""

from zenml import pipeline

from har_core.config import (
    BenchmarkConfig,
    ClassifierConfig,
    DataConfig,
    EvaluationConfig,
    ExportConfig,
    PromotionConfig,
    TrainingConfig,
)
from har_core.constants import FINE_TUNED_EVALUATION_STEP, ZERO_SHOT_EVALUATION_STEP
from steps import (
    benchmark_exports,
    evaluate_model,
    export_model,
    load_base_model,
    load_data,
    load_dvc_data,
    promote_model,
    train_model,
)


@pipeline
def training_pipeline(
    data: DataConfig,
    classifier: ClassifierConfig,
    training: TrainingConfig,
    evaluation: EvaluationConfig,
    export: ExportConfig,
    benchmark: BenchmarkConfig,
    promotion: PromotionConfig,
) -> None:
    """Wiring only; every setting comes from the run config's `parameters:` block (`data.source: dvc` picks the
    DVC step)."""
    dataset = load_dvc_data(data=data) if data.source == "dvc" else load_data(data=data)
    base_model = load_base_model(classifier=classifier, dataset=dataset)
    evaluate_model(model=base_model, dataset=dataset, evaluation=evaluation, id=ZERO_SHOT_EVALUATION_STEP)
    trained_model, _ = train_model(base_model=base_model, dataset=dataset, training=training)
    report, _, _, _ = evaluate_model(
        model=trained_model, dataset=dataset, evaluation=evaluation, id=FINE_TUNED_EVALUATION_STEP
    )
    exports = export_model(model=trained_model, dataset=dataset, export=export)
    table, _ = benchmark_exports(exports=exports, benchmark=benchmark)
    promote_model(
        model=trained_model,
        dataset=dataset,
        report=report,
        exports=exports,
        benchmark=table,
        promotion=promotion,
    )
