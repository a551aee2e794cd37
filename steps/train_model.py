"""Step: fine-tune the classifier and return the best-epoch model.

With `training.distributed.strategy: none` the loop runs in this step's process; with `ddp`/`fsdp` this step
launches torchrun workers and relays rank 0's per-epoch metrics to the experiment trackers as they arrive
(the tracker runs belong to this process). Either way the outputs are the same typed artifacts.
"""

import os
import tempfile
from pathlib import Path
from typing import Annotated

from zenml import get_step_context, log_metadata, step
from zenml.client import Client
from zenml.utils import io_utils

from har_core.config import TrainingConfig
from har_core.data.dataset import DatasetManifest
from har_core.model.classifier import HarClipClassifier
from har_core.training.launcher import run_training
from har_core.training.trainer import EpochMetrics, TrainingResult
from har_zenml import (
    materializers,  # noqa: F401  (registers the materializers of this step's outputs)
    tracking,
)
from har_zenml.model_provenance import record_training_provenance
from har_zenml.names import TRAINED_MODEL_ARTIFACT, TRAINING_RESULT_ARTIFACT
from har_zenml.project_paths import in_project


@step
def train_model(
    base_model: HarClipClassifier, dataset: DatasetManifest, training: TrainingConfig
) -> tuple[Annotated[HarClipClassifier, TRAINED_MODEL_ARTIFACT], Annotated[TrainingResult, TRAINING_RESULT_ARTIFACT]]:
    """Train on the manifest's train split, early-stopping on val accuracy.

    Checkpoints are written locally under `training.output_dir/<run>` while training, then copied to the artifact
    store (`<store>/checkpoints/<run>/{best,last}`), so they outlive the machine that trained.
    """
    training, run_name = in_project(training), get_step_context().pipeline_run.name
    tracking.log_params(training.model_dump(mode="json"))

    def on_epoch_end(metrics: EpochMetrics) -> None:
        tracking.log_metrics(metrics.model_dump(exclude={"epoch"}), step=metrics.epoch)

    with tempfile.TemporaryDirectory(prefix="har-clip-job-") as job_dir:
        model, result = run_training(
            base_model, dataset, training, Path(training.output_dir) / run_name, Path(job_dir), on_epoch_end
        )
    log_metadata(metadata={"train_process_pid": os.getpid(), "world_size": result.world_size})
    stored = f"{Client().active_stack.artifact_store.path.rstrip('/')}/checkpoints/{run_name}"
    for name, local in (("best", result.best_checkpoint), ("last", result.last_checkpoint)):
        io_utils.copy_dir(local, f"{stored}/{name}", overwrite=True)
    result = result.model_copy(update={"best_checkpoint": f"{stored}/best", "last_checkpoint": f"{stored}/last"})
    tracking.log_metrics({"best_val_accuracy": result.best_val_accuracy, "best_epoch": result.best_epoch})
    tracking.record_run_locations()
    model.provenance = record_training_provenance(dataset, result)  # on the model version and in the model card
    log_metadata(
        metadata={"best_epoch": result.best_epoch, "best_val_accuracy": result.best_val_accuracy},
        infer_artifact=True,
        artifact_name=TRAINING_RESULT_ARTIFACT,
    )
    return model, result
