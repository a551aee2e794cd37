"""Where to look for a pipeline run in each experiment tracker of its stack: one line per tracker.

Reads only the step metadata that ZenML's trackers and `har_zenml.tracking.record_run_locations` wrote, so it works
on any finished run (the run summary of run.py calls it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def tracker_pointers(run: Any) -> list[str]:
    """Lines such as `MLflow: mlflow ui --backend-store-uri sqlite:///…` or `W&B (offline): wandb sync …`."""
    return pointers_from_metadata(step.run_metadata for step in run.steps.values())


def pointers_from_metadata(step_metadata: Iterable[Mapping[str, Any]]) -> list[str]:
    """The same lines from the steps' metadata (the run summary passes that of the steps that computed them)."""
    metadata = [dict(entry) for entry in step_metadata]
    return _mlflow_lines(metadata) + _wandb_lines(metadata)


def _mlflow_lines(metadata: list[dict[str, Any]]) -> list[str]:
    lines = []
    for uri, experiment in sorted(
        {
            (str(m["mlflow_tracking_uri"]), str(m.get("mlflow_experiment_id", "")))
            for m in metadata
            if "mlflow_tracking_uri" in m
        }
    ):
        if uri.startswith(("http://", "https://")):
            lines.append(f"MLflow: {uri.rstrip('/')}/#/experiments/{experiment}")
        else:
            lines.append(f"MLflow: mlflow ui --backend-store-uri {uri}  (answers after ~40 s)")
    return lines


def _wandb_lines(metadata: list[dict[str, Any]]) -> list[str]:
    offline = sorted({str(m["wandb_run_dir"]) for m in metadata if m.get("wandb_mode") == "offline"})
    online = sorted({str(m["wandb_url"]) for m in metadata if m.get("wandb_mode") == "online" and m.get("wandb_url")})
    lines = [f"W&B: {url}" for url in online]
    if offline:
        lines.append(f"W&B (offline; upload with wandb sync): wandb sync {' '.join(offline)}")
    return lines
