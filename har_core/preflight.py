"""Checks run before a pipeline starts, so a run that cannot succeed stops at once with the fix in its message."""

from __future__ import annotations

from pathlib import Path

from har_core.config import TrainingPipelineParameters
from har_core.data.dvc import DvcDataError, resolve_dvc_version
from har_core.data.sources import DatasetUnavailableError, hf_dataset_revision
from har_core.hub_probe import ensure_hub_resource
from har_core.model.backbone import looks_like_local_path

OFFLINE_HINT = (
    "For an offline run use the quick path: python run.py --pipeline training --config configs/quickstart.yaml"
)


class PrerequisiteError(RuntimeError):
    """Something the run needs is missing locally (a folder, a model directory)."""


def check_run_prerequisites(parameters: TrainingPipelineParameters) -> None:
    """Local paths must exist; Hub models and datasets must be cached or reachable (see `ensure_hub_resource`)."""
    data, classifier = parameters.data, parameters.classifier
    if data.source == "folder" and not Path(data.root).is_dir():
        raise PrerequisiteError(f"data.root {str(data.root)!r} does not exist; it must hold <root>/<label>/*.jpg.")
    if classifier.tiny_backbone is None and not Path(classifier.backbone).exists():
        if looks_like_local_path(classifier.backbone):
            raise PrerequisiteError(f"classifier.backbone directory {classifier.backbone!r} does not exist.")
        ensure_hub_resource(
            classifier.backbone,
            "model",
            f"{OFFLINE_HINT}, or set classifier.backbone to a local directory holding the model.",
        )
    if data.source == "huggingface":
        try:  # the export is keyed on the dataset's commit: resolving it proves the Hub or the HF cache answers
            hf_dataset_revision(data.hf_dataset, data.hf_revision)
        except DatasetUnavailableError as error:
            raise PrerequisiteError(str(error)) from error
    if data.source == "dvc":
        try:  # a wrong tag or data pushed nowhere is known in a second, before any step starts
            resolve_dvc_version(data.dvc)
        except DvcDataError as error:
            raise PrerequisiteError(str(error)) from error
