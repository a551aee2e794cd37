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
from pipelines.run_config import RunConfigError, load_training_run_config, read_run_config
from pipelines.stages import evaluate_export_promote, load_dataset
from steps.evaluate_model import evaluate_model
from steps.load_base_model import load_base_model
from steps.multinode import (
    TRAIN_COMMAND_STEP,
    check_multinode,
    configured_pod_counts,
    load_trained_model,
    publish_training_job,
)
from steps.names import ZERO_SHOT_EVALUATION_STEP

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
    """Wiring only; head and tail shared with the training pipeline. `nodes` must equal the command step's
    `pod_count` (checked by the publish step, and again by every pod)."""
    # Decided when the pipeline compiles, so the command (fixed at compile time) can name it.
    job_uri = f"{Client().active_stack.artifact_store.path}/{JOBS_FOLDER}/{uuid.uuid4().hex}"
    dataset = load_dataset(data)
    base_model = load_base_model(classifier=classifier, dataset=dataset)
    evaluate_model(model=base_model, dataset=dataset, evaluation=evaluation, id=ZERO_SHOT_EVALUATION_STEP)
    publish_training_job(base_model=base_model, dataset=dataset, training=training, job_uri=job_uri, nodes=nodes)
    CommandStep(command=node_command(job_uri), name=TRAIN_COMMAND_STEP)(
        id=TRAIN_COMMAND_STEP, after="publish_training_job"
    )
    trained_model, _ = load_trained_model(job_uri=job_uri, dataset=dataset, after=TRAIN_COMMAND_STEP)
    evaluate_export_promote(trained_model, dataset, evaluation, export, benchmark, promotion)


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), required=True)
def main(config_path: Path) -> None:
    """Validate the run config (parameters: the training ones plus `nodes`), then run on the active stack."""
    try:
        parameters = load_training_run_config(config_path, schema=MultiNodeTrainingParameters)
        step_settings = (read_run_config(config_path).get("steps") or {}).get(TRAIN_COMMAND_STEP) or {}
        check_multinode(
            parameters.training, parameters.nodes, configured_pod_counts(step_settings.get("settings") or {})
        )
    except (RunConfigError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    multinode_training_pipeline.with_options(config_path=str(config_path))()


if __name__ == "__main__":
    main()
