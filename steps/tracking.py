"""Log to whichever experiment trackers the active stack gave this step (MLflow now; W&B joins later).

ZenML starts the tracker's run before the step body runs, so logging here is a no-op on stacks without one.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping
from typing import Any

import mlflow
from PIL import Image

# ZenML 0.98's MLflow tracker disables autologging for a fixed list of flavors before every tracked step; MLflow 3
# no longer ships `mlflow.fastai`, so each step warned "Failed to disable MLflow autologging ... ['fastai']".
# Nothing was left enabled (there is no fastai flavor to enable), so exactly that message is dropped; a failure for
# any other framework still shows.
MLFLOW_TRACKER_LOGGER = "zenml.integrations.mlflow.experiment_trackers.mlflow_experiment_tracker"
FASTAI_AUTOLOG_WARNING = "Failed to disable MLflow autologging for the following frameworks: ['fastai']."


class _NoFastaiAutologWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != FASTAI_AUTOLOG_WARNING or importlib.util.find_spec("mlflow.fastai") is not None


def silence_missing_fastai_flavor_warning() -> None:
    """Idempotent: attach the filter once to the logger of ZenML's MLflow tracker."""
    tracker_logger = logging.getLogger(MLFLOW_TRACKER_LOGGER)
    if not any(isinstance(existing, _NoFastaiAutologWarning) for existing in tracker_logger.filters):
        tracker_logger.addFilter(_NoFastaiAutologWarning())


silence_missing_fastai_flavor_warning()  # steps import this module in every process that runs a tracked step


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
