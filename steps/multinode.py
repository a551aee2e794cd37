"""Steps around the multi-node train command: publish the job before it, load the trained model after it.

ZenML's Kubernetes step operator runs a command step on `pod_count` pods, but a command step has no inputs or
outputs. So `publish_training_job` copies the base model, manifest and config to `<job_uri>` in the artifact
store; every pod runs `python -m steps.multinode_node <job_uri>` (download, torchrun across the pods, global
rank 0 uploads `<job_uri>/output`); `load_trained_model` turns that output into the same typed
`trained_model` / `training_result` artifacts the single-node pipeline produces.
"""

import tempfile
from pathlib import Path
from typing import Annotated

from zenml import log_metadata, step
from zenml.utils import io_utils

from har_core.config import TrainingConfig
from har_core.constants import TRAINED_MODEL_ARTIFACT, TRAINING_RESULT_ARTIFACT
from har_core.dataset import DatasetManifest
from har_core.launch import check_launch, write_job
from har_core.model import HarClipClassifier
from har_core.training import TrainingResult
from steps import tracking

OUTPUT_DIR = "output"
RESULT_NAME = "result.json"
MODEL_DIR = "model"


@step(enable_cache=False)
def publish_training_job(
    base_model: HarClipClassifier, dataset: DatasetManifest, training: TrainingConfig, job_uri: str, nodes: int
) -> None:
    """Check the launch (batch split over all nodes, resume target) and upload the job files to `job_uri`."""
    check_launch(training, base_model, nnodes=nodes)
    with tempfile.TemporaryDirectory() as job_dir:
        write_job(Path(job_dir), base_model, dataset, training, Path(job_dir) / "checkpoints")
        io_utils.copy_dir(job_dir, job_uri, overwrite=True)
    log_metadata(metadata={"job_uri": job_uri, "nodes": nodes})


@step(enable_cache=False)
def load_trained_model(
    job_uri: str,
) -> tuple[Annotated[HarClipClassifier, TRAINED_MODEL_ARTIFACT], Annotated[TrainingResult, TRAINING_RESULT_ARTIFACT]]:
    """Read what global rank 0 uploaded; log its per-epoch metrics to the trackers here (the pods have none)."""
    with tempfile.TemporaryDirectory() as local:
        io_utils.copy_dir(f"{job_uri}/{OUTPUT_DIR}", local)
        result = TrainingResult.model_validate_json((Path(local) / RESULT_NAME).read_text())
        model = HarClipClassifier.load(Path(local) / MODEL_DIR)
    for metrics in result.history:
        tracking.log_metrics(metrics.model_dump(exclude={"epoch"}), step=metrics.epoch)
    return model, result
