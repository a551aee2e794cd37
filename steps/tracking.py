"""Log to whichever experiment trackers the active stack gave this step (MLflow now; W&B joins later).

ZenML starts the tracker's run before the step body runs, so logging here is a no-op on stacks without one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import mlflow
from PIL import Image


def log_params(params: Mapping[str, Any]) -> None:
    if mlflow.active_run() is not None:
        mlflow.log_params({key: str(value)[:6000] for key, value in params.items()})


def log_metrics(metrics: Mapping[str, float], step: int | None = None, prefix: str = "") -> None:
    if mlflow.active_run() is not None:
        mlflow.log_metrics({f"{prefix}{key}": float(value) for key, value in metrics.items()}, step=step)


def log_image(image: Image.Image, file_name: str) -> None:
    if mlflow.active_run() is not None:
        mlflow.log_image(image, artifact_file=file_name)


def log_text(text: str, file_name: str) -> None:
    if mlflow.active_run() is not None:
        mlflow.log_text(text, artifact_file=file_name)
