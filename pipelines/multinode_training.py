"""Multi-node training on Kubernetes: the train step becomes a command step on `pod_count` pods.

    python -m pipelines.multinode_training --config configs/training_multinode.yaml   # on the gpu-cluster stack

The single-node pipeline
(pipelines/training.py) stays the default; this variant exists because a multi-pod step must be a command
step, which has no ZenML inputs or outputs (see steps/multinode.py).
"""

import uuid
from pathlib import Path

import click
from zenml import CommandStep, pipeline
from zenml.client import Client

from har_core.config import (
    BenchmarkConfig,
    ClassifierConfig,
    DataConfig,
    EvaluationConfig,
    ExportConfig,
    MultiNodeTrainingParameters,
    PromotionConfig,
    TrainingConfig,
)
from har_core.constants import FINE_TUNED_EVALUATION_STEP, ZERO_SHOT_EVALUATION_STEP
from pipelines.run_config import RunConfigError, load_training_run_config
from steps import benchmark_exports, evaluate_model, export_model, load_base_model, load_data, promote_model
from steps.multinode import load_trained_model, publish_training_job

TRAIN_COMMAND_STEP = "train_on_nodes"
JOBS_FOLDER = "har-clip-jobs"


def node_command(job_uri: str) -> list[str]:
    return ["python", "-m", "steps.multinode_node", job_uri]


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
    """Wiring only. `nodes` must equal the command step's `pod_count` setting (checked by the publish step)."""
    # Decided when the pipeline compiles, so the command (fixed at compile time) can name it.
    job_uri = f"{Client().active_stack.artifact_store.path}/{JOBS_FOLDER}/{uuid.uuid4().hex}"
    dataset = load_data(data=data)
    base_model = load_base_model(classifier=classifier, dataset=dataset)
    evaluate_model(model=base_model, dataset=dataset, evaluation=evaluation, id=ZERO_SHOT_EVALUATION_STEP)
    publish_training_job(base_model=base_model, dataset=dataset, training=training, job_uri=job_uri, nodes=nodes)
    CommandStep(command=node_command(job_uri), name=TRAIN_COMMAND_STEP)(
        id=TRAIN_COMMAND_STEP, after="publish_training_job"
    )
    trained_model, _ = load_trained_model(job_uri=job_uri, after=TRAIN_COMMAND_STEP)
    report, _, _, _ = evaluate_model(
        model=trained_model, dataset=dataset, evaluation=evaluation, id=FINE_TUNED_EVALUATION_STEP
    )
    exports = export_model(model=trained_model, dataset=dataset, export=export)
    table, _ = benchmark_exports(exports=exports, benchmark=benchmark)
    promote_model(
        model=trained_model, dataset=dataset, report=report, exports=exports, benchmark=table, promotion=promotion
    )


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), required=True)
def main(config_path: Path) -> None:
    """Validate the run config (parameters: the training ones plus `nodes`), then run on the active stack."""
    try:
        load_training_run_config(config_path, schema=MultiNodeTrainingParameters)
    except RunConfigError as error:
        raise click.ClickException(str(error)) from error
    multinode_training_pipeline.with_options(config_path=str(config_path))()


if __name__ == "__main__":
    main()
