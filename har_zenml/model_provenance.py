"""The ZenML half of a training run's provenance: the run, its stack, its full config and the stored diff.

Called by the train step in the process that trained (its torch threads and CPU are the ones recorded); the
multi-node pipeline's load step records it with the environment its rank-0 pod wrote (`TrainingEnvironment`). The record
goes on the model version's metadata (`provenance`) and into the trained model's card, so a cached run's model
version and every export still say how their weights were made.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict
from zenml import get_step_context, log_metadata, save_artifact
from zenml.client import Client
from zenml.utils import source_utils

from har_core.config import TrainingPipelineParameters
from har_core.data.dataset import DatasetManifest
from har_core.runtime.provenance import LockVersion, MachineInfo, ReproductionOf, StackInfo, TrainingProvenance
from har_core.training.run_facts import code_version, data_version, library_versions, lock_version, machine_info, seeds
from har_core.training.trainer import TrainingResult
from har_zenml.names import CODE_DIFF_ARTIFACT, DATA_STEPS, PROVENANCE_METADATA_KEY, REPRODUCTION_EXTRA_KEY
from locks.declarations import LOCK_DIR, current_target, lock_for

MAX_STORED_DIFF_CHARS = 20 * 1024 * 1024  # the record's diff_sha256 always covers the whole diff


def environment_lock(cuda: bool) -> Path:
    """The lock of this environment's extra set and interpreter: the gpu one under a CUDA build of torch, else the
    cpu one (a path that does not exist where the support table has no such cell: nothing is compared)."""
    spec = lock_for("gpu,dev,cluster" if cuda else "cpu,dev,cluster", current_target())
    return spec.path if spec is not None else LOCK_DIR / "unsupported.txt"


class TrainingEnvironment(BaseModel):
    """What the process that trained knows about itself: its machine, libraries and installed-vs-lock. A
    multi-node run's pods write it beside their result (`ENVIRONMENT_FILE`), since the step that records the
    provenance runs elsewhere."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    machine: MachineInfo
    versions: dict[str, str]
    lock: LockVersion


ENVIRONMENT_FILE = "environment.json"


def training_environment(result: TrainingResult, root: Path) -> TrainingEnvironment:
    """This process's environment, for the run `result` describes (its device, world size and strategy)."""
    import torch

    return TrainingEnvironment(
        machine=machine_info(result.device, result.world_size, result.strategy),
        versions=library_versions(),
        lock=lock_version(environment_lock(bool(torch.version.cuda)), root),
    )


def stack_info() -> StackInfo:
    stack = Client().active_stack_model
    components = {
        kind.value if hasattr(kind, "value") else str(kind): ", ".join(f"{c.name} ({c.flavor_name})" for c in items)
        for kind, items in stack.components.items()
    }
    return StackInfo(name=stack.name, components=components)


def record_training_provenance(
    dataset: DatasetManifest,
    result: TrainingResult,
    environment: TrainingEnvironment | None = None,
    schema: type[TrainingPipelineParameters] = TrainingPipelineParameters,
) -> TrainingProvenance:
    """Collect, store the diff of a dirty checkout as an artifact, and log the record on the model version.

    `environment`: the training process's own (a multi-node run's rank-0 pod); None means this process trained.
    `schema`: the pipeline's `parameters:` model (the multi-node one adds `nodes`)."""
    context = get_step_context()
    run = context.pipeline_run
    root = Path(source_utils.get_source_root())
    environment = environment or training_environment(result, root)
    parameters = schema.model_validate(run.config.parameters or {})
    code, diff = code_version(root)
    if diff:
        if len(diff) > MAX_STORED_DIFF_CHARS:
            diff = diff[:MAX_STORED_DIFF_CHARS] + f"\n[truncated: the diff has {len(diff)} characters]\n"
        stored = save_artifact(diff, name=CODE_DIFF_ARTIFACT)
        code = code.model_copy(update={"diff_artifact": str(stored.id)})
    dvc = _data_step_metadata(run)
    reproduces = (run.config.extra or {}).get(REPRODUCTION_EXTRA_KEY)
    provenance = TrainingProvenance(
        run=run.name,
        code=code,
        lock=environment.lock,
        parameters=parameters.model_dump(mode="json"),
        stack=stack_info(),
        data=data_version(dataset, parameters.data, dvc.get("dvc_commit"), dvc.get("dvc_md5")),
        seeds=seeds(parameters),
        machine=environment.machine,
        versions=environment.versions,
        reproduces=ReproductionOf.model_validate(reproduces) if reproduces else None,
    )
    log_provenance(provenance)
    return provenance


def log_provenance(provenance: TrainingProvenance) -> None:
    """On the step's model version (the run's), as one nested metadata entry the viewer and --reproduce read."""
    version = get_step_context().model_version
    if version is not None:
        record = {PROVENANCE_METADATA_KEY: provenance.model_dump(mode="json")}
        log_metadata(metadata=record, model_version_id=version.id)


def _data_step_metadata(run) -> dict:
    """The DVC commit and md5 the data step of this run logged (empty for other sources)."""
    for name in DATA_STEPS:
        step = run.steps.get(name) if run.steps else None
        if step is not None:
            return {key: step.run_metadata.get(key) for key in ("dvc_commit", "dvc_md5")}
    return {}
