"""Load and validate a pipeline run config (ZenML run settings plus our typed `parameters:`) up front."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from zenml.config.pipeline_run_configuration import PipelineRunConfiguration

from har_core.config import TrainingPipelineParameters


class RunConfigError(ValueError):
    """The run config file is missing, not YAML, or has invalid or unknown keys."""


def load_training_run_config(
    path: str | Path, schema: type[TrainingPipelineParameters] = TrainingPipelineParameters
) -> TrainingPipelineParameters:
    """Validate the whole file against `schema`; the error lists every bad key with its dotted path."""
    raw = _read_yaml(Path(path))
    zenml_settings = {key: value for key, value in raw.items() if key != "parameters"}
    unknown = sorted(set(zenml_settings) - set(PipelineRunConfiguration.model_fields))
    if unknown:  # ZenML itself ignores unknown top-level keys; a typo there would silently drop settings
        raise RunConfigError(
            f"{path}: unknown top-level keys {unknown}; expected `parameters` or ZenML run settings "
            f"({', '.join(sorted(PipelineRunConfiguration.model_fields))})."
        )
    try:
        PipelineRunConfiguration.model_validate(zenml_settings)
    except ValidationError as error:
        raise RunConfigError(f"{path}: invalid ZenML run settings:\n{_describe(error)}") from error
    try:
        return schema.model_validate(raw.get("parameters") or {})
    except ValidationError as error:
        raise RunConfigError(f"{path}: invalid parameters:\n{_describe(error, prefix='parameters')}") from error


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise RunConfigError(f"Run config {str(path)!r} does not exist.")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise RunConfigError(f"{path} is not valid YAML: {error}") from error
    if not isinstance(raw, dict):
        raise RunConfigError(f"{path} must hold a YAML mapping at the top level.")
    return raw


def _describe(error: ValidationError, prefix: str = "") -> str:
    lines = []
    for issue in error.errors():
        location = ".".join(str(part) for part in ((prefix,) if prefix else ()) + tuple(issue["loc"]))
        lines.append(f"  - {location}: {issue['msg']}")
    return "\n".join(lines)
