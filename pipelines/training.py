"""The training pipeline: data -> zero-shot baseline -> fine-tune -> evaluation of the fine-tuned model."""

from zenml import pipeline

from har_core.config import ClassifierConfig, DataConfig, EvaluationConfig, TrainingConfig
from har_core.constants import FINE_TUNED_EVALUATION_STEP, ZERO_SHOT_EVALUATION_STEP
from steps import evaluate_model, load_base_model, load_data, load_dvc_data, train_model


@pipeline
def training_pipeline(
    data: DataConfig, classifier: ClassifierConfig, training: TrainingConfig, evaluation: EvaluationConfig
) -> None:
    """Wiring only; every setting comes from the run config's `parameters:` block (`data.source: dvc` picks the
    DVC step)."""
    dataset = load_dvc_data(data=data) if data.source == "dvc" else load_data(data=data)
    base_model = load_base_model(classifier=classifier, dataset=dataset)
    evaluate_model(model=base_model, dataset=dataset, evaluation=evaluation, id=ZERO_SHOT_EVALUATION_STEP)
    trained_model, _ = train_model(base_model=base_model, dataset=dataset, training=training)
    evaluate_model(model=trained_model, dataset=dataset, evaluation=evaluation, id=FINE_TUNED_EVALUATION_STEP)
