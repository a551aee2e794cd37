"""The multi-node train command's job: what its publish step writes for the pods, and what it refuses up front.

Shared by the steps around the command (`steps/multinode.py`), every pod (`har_zenml.multinode_node`) and the CLI
(`cli/multinode_command.py`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from zenml.io import fileio

from har_core.config import TrainingConfig
from har_core.training.job import JOB_FILE
from har_zenml.names import TRAIN_COMMAND_STEP

CHECKPOINTS_DIR = "checkpoints"


class PublishedJob(BaseModel):
    """What every pod needs, by reference: nothing in it is a path on the machine that published it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    training: TrainingConfig
    nodes: int
    base_model_id: str
    dataset_id: str
    pipeline_run_id: str

    @classmethod
    def read(cls, job_uri: str) -> PublishedJob:
        with fileio.open(f"{job_uri}/{JOB_FILE}", "r") as handle:
            return cls.model_validate_json(handle.read())


def check_multinode(training: TrainingConfig, nodes: int, pod_counts: list[int]) -> None:
    """What the multi-node pipeline cannot do, refused before any pod starts, each with the fix."""
    if training.resume_from is not None:
        raise ValueError(
            "training.resume_from is not supported by the multi-node pipeline: each pod writes its resume "
            "checkpoints to its own disk, which is gone with the pod, so no later run can find them. Remove "
            "resume_from, or resume on one node with the training pipeline."
        )
    if training.distributed.strategy == "none":
        raise ValueError("training.distributed.strategy is 'none'; the multi-node pipeline needs ddp or fsdp.")
    for pod_count in pod_counts:
        if pod_count != nodes:
            raise ValueError(
                f"parameters.nodes is {nodes} but step {TRAIN_COMMAND_STEP!r} runs on pod_count {pod_count} pods; "
                "make them equal."
            )


def configured_pod_counts(step_settings: dict[str, Any]) -> list[int]:
    """`pod_count` of every step-operator setting of the command step (e.g. `step_operator.kubernetes`)."""
    counts = []
    for key, value in step_settings.items():
        values = value if isinstance(value, dict) else value.model_dump()
        if key.split(".")[0] == "step_operator" and values.get("pod_count") is not None:
            counts.append(int(values["pod_count"]))
    return counts
