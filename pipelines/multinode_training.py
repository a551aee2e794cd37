"""Multi-node training on Kubernetes: the train step becomes a command step on `pod_count` pods.

Run with `har-clip train-multinode --config configs/training_multinode.yaml` on the gpu-cluster stack
(cli/multinode_command.py). The single-node pipeline
(pipelines/training.py) stays the default; this variant exists because a multi-pod step must be a command
step, which has no ZenML inputs or outputs (see steps/multinode.py).
"""

import uuid

from zenml import CommandStep, pipeline
from zenml.client import Client

from har_core.config import (
    BenchmarkConfig,
    ClassifierConfig,
    DataConfig,
    EvaluationConfig,
    ExportConfig,
    PromotionConfig,
    TrainingConfig,
)
from har_zenml.names import PUBLISH_TRAINING_JOB_STEP, TRAIN_COMMAND_STEP, ZERO_SHOT_EVALUATION_STEP
from pipelines.stages import evaluate_export_promote, load_dataset
from steps.evaluate_model import evaluate_model
from steps.load_base_model import load_base_model
from steps.multinode import load_trained_model, publish_training_job

JOBS_FOLDER = "har-clip-jobs"


def node_command(job_uri: str) -> list[str]:
    return ["python", "-m", "har_zenml.multinode_node", job_uri]


@pipeline
def multinode_training_pipeline(
    data: DataConfig,
    classifier: ClassifierConfig,
    training: TrainingConfig,
    evaluation: EvaluationConfig,
    export: ExportConfig,
    benchmark: BenchmarkConfig,
    promotion: PromotionConfig,
    nodes: int = 2,
) -> None:
    """Wiring only; head and tail shared with the training pipeline. `nodes` must equal the command step's
    `pod_count` (checked by the publish step, and again by every pod)."""
    # Decided when the pipeline compiles, so the command (fixed at compile time) can name it.
    job_uri = f"{Client().active_stack.artifact_store.path}/{JOBS_FOLDER}/{uuid.uuid4().hex}"
    dataset = load_dataset(data)
    base_model = load_base_model(classifier=classifier, dataset=dataset)
    evaluate_model(model=base_model, dataset=dataset, evaluation=evaluation, id=ZERO_SHOT_EVALUATION_STEP)
    publish_training_job(base_model=base_model, dataset=dataset, training=training, job_uri=job_uri, nodes=nodes)
    CommandStep(command=node_command(job_uri), name=TRAIN_COMMAND_STEP)(
        id=TRAIN_COMMAND_STEP, after=PUBLISH_TRAINING_JOB_STEP
    )
    trained_model, _ = load_trained_model(job_uri=job_uri, dataset=dataset, after=TRAIN_COMMAND_STEP)
    evaluate_export_promote(trained_model, dataset, evaluation, export, benchmark, promotion)
