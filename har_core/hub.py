"""Fail-fast checks for Hugging Face Hub resources, so offline runs stop with advice instead of a deep traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import huggingface_hub
from huggingface_hub import constants as hub_constants

from har_core.config import TrainingPipelineParameters
from har_core.sources import EXPORT_DONE_MARKER, hf_export_root

PROBE_TIMEOUT_S = 10.0


class HubUnavailableError(RuntimeError):
    """A Hub model or dataset the run needs is neither cached nor reachable."""


def ensure_hub_resource(repo_id: str, repo_type: Literal["model", "dataset"], fix: str) -> None:
    """Pass if `repo_id` is in the local HF cache or the Hub answers for it; raise with `fix` otherwise."""
    cached_file = "config.json" if repo_type == "model" else "README.md"
    if isinstance(huggingface_hub.try_to_load_from_cache(repo_id, cached_file, repo_type=repo_type), str):
        return
    if hub_constants.HF_HUB_OFFLINE:
        raise HubUnavailableError(f"HF_HUB_OFFLINE is set and {repo_type} {repo_id!r} is not in the local cache. {fix}")
    try:
        huggingface_hub.repo_info(repo_id, repo_type=repo_type, timeout=PROBE_TIMEOUT_S)
    except Exception as error:  # network, auth and not-found errors all mean: this run cannot get it
        raise HubUnavailableError(
            f"Cannot reach Hugging Face Hub {repo_type} {repo_id!r} ({type(error).__name__}: {error}). {fix}"
        ) from error


def check_run_prerequisites(parameters: TrainingPipelineParameters) -> None:
    """Probe every Hub resource a training run will download, before any pipeline step starts."""
    offline_hint = (
        "For an offline run use the quick path: python run.py --pipeline training --config configs/quickstart.yaml"
    )
    classifier = parameters.classifier
    if classifier.tiny_backbone is None and not Path(classifier.backbone).exists():
        ensure_hub_resource(
            classifier.backbone,
            "model",
            f"{offline_hint}, or set classifier.backbone to a local directory holding the model.",
        )
    data = parameters.data
    if data.source == "huggingface" and not (hf_export_root(data) / EXPORT_DONE_MARKER).is_file():
        ensure_hub_resource(
            data.hf_dataset,
            "dataset",
            f"{offline_hint}, or set data.source: folder with data.root pointing at a <root>/<label>/*.jpg tree.",
        )
