"""`python run.py --reproduce RUN_OR_VERSION`: re-run a recorded training run and compare the result with it.

The record is the trained model's provenance (in its model card, also on the model version). Before anything
runs, the code, the lock and the data are compared with it; any difference stops the command with one paragraph
naming it, unless `--allow-drift`. The run itself is run.py's ordinary training run, caching off, on the active
stack, with the recorded `parameters:` (a moving data reference fixed at the recorded commit) and a config `extra:`
that tells the train step which run it re-makes. Nothing is checked out: a different commit is refused with the
`git` command that would check out the recorded one.

Both training pipelines are reproducible: a run of `multinode_training_pipeline` is re-run by that pipeline (its
command step's settings, the pod count among them, carried over), compared within tolerance as any DDP run.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import yaml
from zenml.client import Client
from zenml.io import fileio
from zenml.models import PipelineRunResponse

from cli.run_summary import latest_run_id, run_since
from har_core.config import MultiNodeTrainingParameters, TrainingPipelineParameters
from har_core.data.dataset import DatasetManifest
from har_core.locations import anchor_paths
from har_core.runtime.model_card import HarClipModelCard
from har_core.runtime.provenance import ReproductionOf, TrainingProvenance
from har_core.training.reproduction import (
    Comparison,
    code_drift,
    compare,
    data_drift,
    environment_drift,
    expected_standard,
    lock_drift,
    pinned_parameters,
    refusal,
)
from har_zenml.materializers import MANIFEST_FILE
from har_zenml.names import (
    DATA_STEPS,
    DATASET_ARTIFACT,
    EVALUATION_REPORT_ARTIFACT,
    FINE_TUNED_EVALUATION_STEP,
    LOAD_TRAINED_MODEL_STEP,
    MULTINODE_TRAINING_PIPELINE,
    REPRODUCTION_EXTRA_KEY,
    REPRODUCTION_METADATA_KEY,
    TRAIN_COMMAND_STEP,
    TRAIN_STEP,
    TRAINED_MODEL_ARTIFACT,
    TRAINING_PIPELINE,
    TRAINING_RESULT_ARTIFACT,
    ZENML_MODEL_NAME,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REPRODUCTION_TAG = "reproduction"
VERSION_STAGES = ("production", "staging", "archived", "latest")


@dataclass(frozen=True)
class TrainingPipeline:
    """A pipeline that trains: the step whose `trained_model` output carries the provenance, the steps that must
    have run (not been cached) for a rebuild to count, and its `parameters:` schema."""

    name: str
    model_step: str
    trained_by: tuple[str, ...]
    schema: type[TrainingPipelineParameters]


SINGLE_NODE = TrainingPipeline(TRAINING_PIPELINE, TRAIN_STEP, (TRAIN_STEP,), TrainingPipelineParameters)
MULTI_NODE = TrainingPipeline(
    MULTINODE_TRAINING_PIPELINE,
    LOAD_TRAINED_MODEL_STEP,
    (TRAIN_COMMAND_STEP, LOAD_TRAINED_MODEL_STEP),
    MultiNodeTrainingParameters,
)
TRAINING_PIPELINES = {pipeline.name: pipeline for pipeline in (SINGLE_NODE, MULTI_NODE)}


def training_pipeline_of(run: PipelineRunResponse) -> TrainingPipeline:
    name = run.pipeline.name if run.pipeline is not None else None
    if name not in TRAINING_PIPELINES:
        raise click.ClickException(
            f"Run {run.name!r} is a run of {name!r}, which trains no model; reproduce a run of "
            f"{' or '.join(sorted(TRAINING_PIPELINES))}."
        )
    return TRAINING_PIPELINES[name]


def run_multinode(config: Path) -> None:
    """The multi-node pipeline with a reproduction's config, caching off (as run.py's --no-cache)."""
    from pipelines.multinode_training import multinode_training_pipeline

    multinode_training_pipeline.with_options(config_path=str(config), enable_cache=False)()


def reproduce_run(target: str, allow_drift: bool, train: Callable[[Path], None]) -> None:
    """Check, run (`train(config_path)`: run.py's training run, caching off; a multi-node run goes through its own
    pipeline) and compare; a rebuild that should have matched and did not is an error (exit 1)."""
    original = find_training_run(target)
    pipeline = training_pipeline_of(original)
    provenance = recorded_provenance(original)
    parameters = pinned_parameters(provenance, pipeline.schema)
    drift = current_drift(original, provenance, parameters)
    if drift and not allow_drift:
        raise click.ClickException(refusal(original.name, drift))
    click.echo(f"Reproducing run {original.name!r} (model version {_version_name(original)}) on the active stack.")
    for line in drift:
        click.echo(f"Drift, allowed by --allow-drift: {line}")
    with tempfile.TemporaryDirectory(prefix="har-clip-reproduce-") as scratch:
        config = write_run_config(Path(scratch), original, parameters, drift)
        previous = latest_run_id(pipeline.name)
        (train if pipeline is SINGLE_NODE else run_multinode)(config)
    reproduced = run_since(pipeline.name, previous)
    if reproduced is None:
        raise click.ClickException("The reproduction run did not start; see the output above.")
    comparison = compare_runs(original, provenance, reproduced)
    record_comparison(reproduced, original, comparison, drift)
    click.echo(f"\nReproduction of run {original.name!r} as run {reproduced.name!r}:")
    for line in comparison.lines():
        click.echo(f"  {line}")
    if not comparison.reproduced and not drift:
        raise click.ClickException(
            f"Run {reproduced.name!r} did not reproduce run {original.name!r} under the same code, lock and data: "
            "see the comparison above."
        )
    if drift:
        click.echo(f"  The inputs drifted ({len(drift)}), so a match was not expected; recorded on the model version.")


def find_training_run(target: str) -> PipelineRunResponse:
    """The run that trained the weights `target` names: a pipeline run's name or id, or a model version (its
    number, name or stage). A run whose train step was cached points at the run that computed it."""
    client = Client()
    run = None
    if not (target.isdigit() or target in VERSION_STAGES):  # "3" could also prefix a run id: a version wins
        try:
            run = client.get_pipeline_run(target)
        except KeyError:
            run = None
    if run is None:
        try:
            version = client.get_model_version(ZENML_MODEL_NAME, target)
        except KeyError:
            raise click.ClickException(
                f"{target!r} is neither a pipeline run nor a version of model {ZENML_MODEL_NAME!r} (a number, a "
                "name or a stage); `zenml pipeline runs list` and `zenml model version list "
                f"{ZENML_MODEL_NAME}` list them."
            ) from None
        artifact = version.get_artifact(TRAINED_MODEL_ARTIFACT)
        if artifact is None:
            raise click.ClickException(f"Model version {version.name} has no trained model to reproduce.")
        return client.get_pipeline_run(artifact.producer_pipeline_run_id)
    model_step = training_pipeline_of(run).model_step
    step = run.steps.get(model_step)
    if step is None or TRAINED_MODEL_ARTIFACT not in step.outputs:
        raise click.ClickException(f"Run {run.name!r} has no trained model (its {model_step} step did not finish).")
    producer = step.outputs[TRAINED_MODEL_ARTIFACT][0].producer_pipeline_run_id
    return run if producer in (None, run.id) else client.get_pipeline_run(producer)


def recorded_provenance(run: PipelineRunResponse) -> TrainingProvenance:
    """The provenance in the trained model's card, read from the artifact store without loading the weights."""
    uri = trained_model_uri(run)
    with fileio.open(os.path.join(uri, HarClipModelCard.file_name), "r") as handle:
        card = HarClipModelCard.model_validate_json(handle.read())
    if card.provenance is None:
        raise click.ClickException(
            f"Run {run.name!r} recorded no provenance (it was trained before runs recorded one), so there is no "
            "recorded code, lock and data version to reproduce it from."
        )
    return card.provenance


def trained_model_uri(run: PipelineRunResponse) -> str:
    return run.steps[training_pipeline_of(run).model_step].outputs[TRAINED_MODEL_ARTIFACT][0].uri


def recorded_files(run: PipelineRunResponse) -> dict[str, str]:
    """{relative path: sha256} of every image the run trained and evaluated on, from its dataset artifact."""
    for name in DATA_STEPS:
        if name in run.steps and DATASET_ARTIFACT in run.steps[name].outputs:
            uri = run.steps[name].outputs[DATASET_ARTIFACT][0].uri
            with fileio.open(os.path.join(uri, MANIFEST_FILE), "r") as handle:
                manifest = DatasetManifest.model_validate_json(handle.read())
            return {record.path: record.sha256 or "" for record in manifest.all_records()}
    raise click.ClickException(f"Run {run.name!r} has no dataset manifest to compare the data with.")


def current_drift(
    run: PipelineRunResponse, provenance: TrainingProvenance, parameters: TrainingPipelineParameters
) -> list[str]:
    """What is not as recorded now: the code, the lock, the data (each at most one line)."""
    import torch

    from har_core.training.run_facts import code_version, lock_version
    from har_zenml.model_provenance import environment_lock

    current = lock_version(environment_lock(bool(torch.version.cuda)), PROJECT_ROOT)
    drift = [
        code_drift(provenance.code, code_version(PROJECT_ROOT)[0]),
        lock_drift(provenance.lock.file, provenance.lock.sha256, PROJECT_ROOT),
        environment_drift(provenance.lock.differs, current.differs),
    ]
    data = anchor_paths(parameters.data, PROJECT_ROOT)
    drift.append(data_drift(data, current_data_folder(data), recorded_files(run), provenance.data))
    return [line for line in drift if line]


def current_data_folder(data) -> Path:
    """The image folder the configured (pinned) source gives now: fetched or drawn first where needed."""
    if data.source == "dvc":
        from har_core.data.dvc import fetch_dvc_dataset

        return fetch_dvc_dataset(data.dvc, data.cache_dir)[0]
    from har_core.data.sources import image_folder_for

    return image_folder_for(data)[0]


def write_run_config(
    directory: Path, original: PipelineRunResponse, parameters: TrainingPipelineParameters, drift: list[str]
) -> Path:
    """The original run's ZenML settings (its model, which steps use a tracker or the step operator; the active
    stack's components of those types), the recorded parameters, and the `extra:` naming the run re-made."""
    model = original.config.model
    settings: dict[str, Any] = {}
    if model is not None:
        settings["model"] = {
            "name": model.name,
            "description": model.description,
            "tags": sorted({*(model.tags or []), REPRODUCTION_TAG}),
        }
    steps = {}
    for name, step in original.steps.items():
        uses: dict[str, Any] = {
            key: True for key in ("experiment_tracker", "step_operator") if getattr(step.config, key, None)
        }
        if name in training_pipeline_of(original).trained_by and step.config.settings:
            uses["settings"] = carried_settings(step.config.settings)  # e.g. a command step's pod_count
        if uses:
            steps[name] = uses
    if steps:
        settings["steps"] = steps
    reproduces = ReproductionOf(run=original.name, model_version=_version_name(original), drift=tuple(drift))
    settings["extra"] = {REPRODUCTION_EXTRA_KEY: reproduces.model_dump(mode="json")}
    settings["parameters"] = parameters.model_dump(mode="json")
    path = directory / f"reproduce-{original.name}.yaml"
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path


def carried_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The training steps' step-operator and resource settings as the run config spells them."""
    carried = {}
    for key, value in settings.items():
        if key.split(".")[0] in ("step_operator", "resources"):
            carried[key] = value if isinstance(value, dict) else value.model_dump(mode="json", exclude_unset=True)
    return carried


def compare_runs(
    original: PipelineRunResponse, provenance: TrainingProvenance, reproduced: PipelineRunResponse
) -> Comparison:
    """Weights (sha256 of the trained model's safetensors files) and every recorded metric of both runs."""
    for name in training_pipeline_of(reproduced).trained_by:  # caching is off: anything else is a bug
        if name not in reproduced.steps or reproduced.steps[name].status.value != "completed":
            raise click.ClickException(f"The {name} step of run {reproduced.name!r} did not run.")
    again = recorded_provenance(reproduced)
    standard = expected_standard(provenance.machine, again.machine, (provenance.lock, again.lock))
    weights = [weights_sha256(run) for run in (original, reproduced)]
    return compare(run_metrics(original), run_metrics(reproduced), weights[0] == weights[1], standard)


def weights_sha256(run: PipelineRunResponse) -> str:
    """sha256 over the trained model's weight files (`backbone/*.safetensors`), by name, in the artifact store."""
    uri = os.path.join(trained_model_uri(run), "backbone")
    digest = hashlib.sha256()
    names = sorted(str(entry) for entry in fileio.listdir(uri) if str(entry).endswith(".safetensors"))
    if not names:  # a digest of nothing would make two empty folders "identical"
        raise click.ClickException(f"Run {run.name!r} has no weight files (*.safetensors) under {uri} to compare.")
    for name in names:
        digest.update(name.encode() + b"\0")
        with fileio.open(os.path.join(uri, name), "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def run_metrics(run: PipelineRunResponse) -> dict[str, float]:
    """Every per-epoch training metric, the best val accuracy, and the fine-tuned model's test metrics."""
    result = run.steps[training_pipeline_of(run).model_step].outputs[TRAINING_RESULT_ARTIFACT][0].load()
    metrics = {"best_val_accuracy": result.best_val_accuracy}
    for epoch in result.history:
        metrics |= {f"epoch {epoch.epoch} {key}": value for key, value in epoch.model_dump(exclude={"epoch"}).items()}
    step = run.steps.get(FINE_TUNED_EVALUATION_STEP)
    if step is not None and EVALUATION_REPORT_ARTIFACT in step.outputs:
        report = step.outputs[EVALUATION_REPORT_ARTIFACT][0].load()
        metrics |= {f"{report.split} {key}": value for key, value in report.headline_metrics().items()}
    return metrics


def record_comparison(
    reproduced: PipelineRunResponse, original: PipelineRunResponse, comparison: Comparison, drift: list[str]
) -> None:
    """On the reproduction's model version: which run it re-made, what drifted, and the outcome."""
    if reproduced.model_version is None:
        return
    from zenml import log_metadata

    record = {
        "of_run": original.name,
        "of_model_version": _version_name(original),
        "drift": drift,
        "standard": "bit for bit" if comparison.bit_for_bit else "tolerance",
        "why": comparison.why,
        "weights_identical": comparison.weights_identical,
        "mismatched_metrics": comparison.mismatched,
        "reproduced": comparison.reproduced,
    }
    log_metadata(metadata={REPRODUCTION_METADATA_KEY: record}, model_version_id=reproduced.model_version.id)


def _version_name(run: PipelineRunResponse) -> str | None:
    return run.model_version.name if run.model_version is not None else None
