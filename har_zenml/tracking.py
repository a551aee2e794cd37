"""Log to every experiment tracker the active stack gave this step: MLflow and/or Weights & Biases.

ZenML starts each tracker's run before the step body runs (`mlflow.active_run()`, `wandb.run`), so every
function here logs to the trackers whose run is active and is a no-op on a stack without them. Neither library is
imported here: ZenML's tracker imports its library to open the run, so a process that never imported it has no run
of it, and the steps' processes on a stack without that tracker skip its import (mlflow alone is ~1 s each).
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from PIL import Image
from zenml import log_metadata

MLFLOW, WANDB = "mlflow", "wandb"


def _active_mlflow() -> ModuleType | None:
    """mlflow, when a run of it is open in this process (ZenML's MLflow tracker imported it to open one)."""
    mlflow = sys.modules.get(MLFLOW)
    return mlflow if mlflow is not None and mlflow.active_run() is not None else None


def _active_wandb() -> ModuleType | None:
    """wandb, when a run of it is open in this process (ZenML's W&B tracker imported it to open one)."""
    wandb = sys.modules.get(WANDB)
    return wandb if wandb is not None and getattr(wandb, "run", None) is not None else None


def active_trackers() -> list[str]:
    """Names of the trackers with a run open in this step."""
    return [name for name, module in ((MLFLOW, _active_mlflow()), (WANDB, _active_wandb())) if module is not None]


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
    mlflow, wandb = _active_mlflow(), _active_wandb()
    if mlflow is not None:
        mlflow.log_params({key: str(value)[:6000] for key, value in params.items()})
    if wandb is not None:
        wandb.config.update(dict(params), allow_val_change=True)


def log_metrics(metrics: Mapping[str, float], step: int | None = None, prefix: str = "") -> None:
    """Scalars; `step` (the epoch) makes them a per-step history, without it they are final values."""
    values = {f"{prefix}{key}": float(value) for key, value in metrics.items()}
    mlflow, wandb = _active_mlflow(), _active_wandb()
    if mlflow is not None:
        mlflow.log_metrics(values, step=step)
    if wandb is not None:
        wandb.log(values, step=step)
        if step is None:
            wandb.run.summary.update(values)


def log_image(image: Image.Image, file_name: str) -> None:
    """A plot; `file_name` (e.g. `evaluate_fine_tuned/confusion_matrix.png`) names it in both trackers."""
    mlflow, wandb = _active_mlflow(), _active_wandb()
    if mlflow is not None:
        mlflow.log_image(image, artifact_file=file_name)
    if wandb is not None:
        wandb.log({Path(file_name).with_suffix("").as_posix(): wandb.Image(image)})


def log_text(text: str, file_name: str) -> None:
    """A report file, stored as a run file in both trackers."""
    mlflow, wandb = _active_mlflow(), _active_wandb()
    if mlflow is not None:
        mlflow.log_text(text, artifact_file=file_name)
    if wandb is not None:
        path = Path(wandb.run.dir) / file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        wandb.save(str(path), base_path=wandb.run.dir, policy="now")


def log_table(rows: Sequence[Mapping[str, Any]], name: str) -> None:
    """Rows with equal keys (a per-class report): an MLflow table artifact and a W&B Table."""
    if not rows:
        return
    columns = list(rows[0])
    mlflow, wandb = _active_mlflow(), _active_wandb()
    if mlflow is not None:
        mlflow.log_table({column: [row[column] for row in rows] for column in columns}, artifact_file=f"{name}.json")
    if wandb is not None:
        wandb.log({name: wandb.Table(columns=columns, data=[[row[column] for column in columns] for row in rows])})


def record_run_locations() -> None:
    """Step metadata saying where this step's tracker runs live, for `cli.tracker_links`.

    Both ZenML trackers write the same `experiment_tracker_url` key (one overwrites the other), and a W&B
    offline run exists only as a local directory, so each tracker's location gets its own keys here.
    """
    metadata: dict[str, str] = {}
    mlflow, wandb = _active_mlflow(), _active_wandb()
    if mlflow is not None:
        metadata["mlflow_tracking_uri"] = mlflow.get_tracking_uri()
    if wandb is not None:
        metadata |= {"wandb_mode": str(wandb.run.settings.mode), "wandb_run_dir": str(Path(wandb.run.dir).parent)}
    if metadata:
        log_metadata(metadata=metadata)
