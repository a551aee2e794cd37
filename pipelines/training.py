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
from har_zenml.names import ZERO_SHOT_EVALUATION_STEP
from pipelines.stages import evaluate_export_promote, load_dataset
from steps.evaluate_model import evaluate_model
from steps.load_base_model import load_base_model
from steps.train_model import train_model


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
    DVC step). The head and the tail are shared with the multi-node pipeline (pipelines/stages.py)."""
    dataset = load_dataset(data)
    base_model = load_base_model(classifier=classifier, dataset=dataset)
    evaluate_model(model=base_model, dataset=dataset, evaluation=evaluation, id=ZERO_SHOT_EVALUATION_STEP)
    trained_model, _ = train_model(base_model=base_model, dataset=dataset, training=training)
    evaluate_export_promote(trained_model, dataset, evaluation, export, benchmark, promotion)
