"""Steps around the multi-node train command: publish the job before it, load the trained model after it.

ZenML's Kubernetes step operator runs a command step on `pod_count` pods, but a command step has no inputs or
outputs, and each pod has its own disk: only the artifact store is common. So `publish_training_job` writes
`<job_uri>/job.json` (the training config, the node count and the ids of the base-model and dataset artifacts);
every pod runs `python -m har_zenml.multinode_node <job_uri>`, loads both artifacts through their materializers (the
dataset's images come out of its `images.tar`), trains under torchrun across the pods, and the pod holding global
rank 0 uploads `best/`, `last/`, `environment.json` and `result.json` under `<job_uri>`; `load_trained_model`
turns them into the same typed `trained_model` / `training_result` artifacts the single-node pipeline produces,
with the same provenance on the model (the machine and libraries are the rank-0 pod's).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from zenml import get_step_context, log_metadata, step
from zenml.io import fileio
from zenml.utils import io_utils

from har_core.config import MultiNodeTrainingParameters, TrainingConfig
from har_core.data.dataset import DatasetManifest
from har_core.model.classifier import HarClipClassifier
from har_core.training.job import JOB_FILE, RESULT_FILE
from har_core.training.launcher import check_launch
from har_core.training.trainer import TrainingResult
from har_zenml import (
    materializers,  # noqa: F401  (registers the materializers of this step's outputs)
    tracking,
)
from har_zenml.model_provenance import ENVIRONMENT_FILE, TrainingEnvironment, record_training_provenance
from har_zenml.multinode_job import PublishedJob, check_multinode, configured_pod_counts
from har_zenml.names import TRAIN_COMMAND_STEP, TRAINED_MODEL_ARTIFACT, TRAINING_RESULT_ARTIFACT


@step(enable_cache=False)
def publish_training_job(
    base_model: HarClipClassifier, dataset: DatasetManifest, training: TrainingConfig, job_uri: str, nodes: int
) -> None:
    """Check the launch (resume, `nodes` against the command step's `pod_count`, the batch split over all
    nodes), then write `<job_uri>/job.json`. The pods load the model and data from their artifacts."""
    context = get_step_context()
    snapshot_steps = context.pipeline_run.snapshot.step_configurations
    settings = snapshot_steps[TRAIN_COMMAND_STEP].config.settings if TRAIN_COMMAND_STEP in snapshot_steps else {}
    check_multinode(training, nodes, configured_pod_counts(settings))
    check_launch(training, base_model, nnodes=nodes)
    inputs = context.inputs
    published = PublishedJob(
        training=training,
        nodes=nodes,
        base_model_id=str(inputs["base_model"][0].id),
        dataset_id=str(inputs["dataset"][0].id),
        pipeline_run_id=str(context.pipeline_run.id),
    )
    fileio.makedirs(job_uri)
    with fileio.open(f"{job_uri}/{JOB_FILE}", "w") as handle:
        handle.write(published.model_dump_json(indent=2))
    log_metadata(metadata={"job_uri": job_uri, "nodes": nodes})


@step(enable_cache=False)
def load_trained_model(
    job_uri: str, dataset: DatasetManifest
) -> tuple[Annotated[HarClipClassifier, TRAINED_MODEL_ARTIFACT], Annotated[TrainingResult, TRAINING_RESULT_ARTIFACT]]:
    """Read what global rank 0's pod uploaded; log its per-epoch metrics to the trackers here (pods have none) and
    record the provenance, with the pod's environment, on the model version and in the model card."""
    with fileio.open(f"{job_uri}/{RESULT_FILE}", "r") as handle:
        result = TrainingResult.model_validate_json(handle.read())
    with fileio.open(f"{job_uri}/{ENVIRONMENT_FILE}", "r") as handle:
        environment = TrainingEnvironment.model_validate_json(handle.read())
    with tempfile.TemporaryDirectory() as local:
        io_utils.copy_dir(result.best_checkpoint, local)
        model = HarClipClassifier.load(Path(local))
    for metrics in result.history:
        tracking.log_metrics(metrics.model_dump(exclude={"epoch"}), step=metrics.epoch)
    tracking.log_metrics({"best_val_accuracy": result.best_val_accuracy, "best_epoch": result.best_epoch})
    model.provenance = record_training_provenance(dataset, result, environment, schema=MultiNodeTrainingParameters)
    return model, result
