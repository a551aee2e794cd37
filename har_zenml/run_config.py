"""Load and validate a pipeline run config (ZenML run settings plus our typed `parameters:`) up front.

Validation runs in two stages so a typo is reported within a second or two: `load_training_run_config` reads the
YAML, checks the top-level keys against a static list and validates `parameters:` with pydantic, importing
neither ZenML nor torch. `check_zenml_run_settings` then validates the values of ZenML's own settings with ZenML's
model (its import alone costs seconds), once the cheap checks have passed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from har_core.config import DeploymentPipelineParameters, InferencePipelineParameters, TrainingPipelineParameters

P = TypeVar("P", TrainingPipelineParameters, DeploymentPipelineParameters, InferencePipelineParameters)

# The fields of zenml.config.pipeline_run_configuration.PipelineRunConfiguration (ZenML 0.98); kept equal to
# them by tests/pipelines/test_run_config.py, so importing ZenML is not needed to spot a misspelt key.
ZENML_RUN_SETTINGS_KEYS = frozenset(
    {
        "build",
        "cache_policy",
        "cleanup_hook_source",
        "enable_artifact_metadata",
        "enable_artifact_visualization",
        "enable_cache",
        "enable_heartbeat",
        "enable_pipeline_logs",
        "enable_step_logs",
        "end_hook_source",
        "environment",
        "execution_mode",
        "extra",
        "failure_hook_source",
        "init_hook_kwargs",
        "init_hook_source",
        "model",
        "parameters",
        "pause_hook_source",
        "resume_hook_source",
        "retry",
        "run_name",
        "schedule",
        "secrets",
        "settings",
        "start_hook_source",
        "steps",
        "substitutions",
        "success_hook_source",
        "tags",
    }
)


class RunConfigError(ValueError):
    """The run config file is missing, not YAML, or has invalid or unknown keys."""


def load_training_run_config(
    path: str | Path, schema: type[TrainingPipelineParameters] = TrainingPipelineParameters
) -> TrainingPipelineParameters:
    """Check the top-level keys and validate `parameters:` against `schema`; the error lists every bad key with
    its dotted path."""
    return load_run_config(path, schema)


def load_deployment_run_config(path: str | Path) -> DeploymentPipelineParameters:
    """The deployment pipeline's config, validated the same way."""
    return load_run_config(path, DeploymentPipelineParameters)


def load_inference_run_config(path: str | Path) -> InferencePipelineParameters:
    """The batch inference pipeline's config, validated the same way."""
    return load_run_config(path, InferencePipelineParameters)


def load_run_config(path: str | Path, parameters_type: type[P]) -> P:
    """Top-level keys against ZenML's run settings and our typed `parameters:` block, without importing ZenML."""
    raw = read_run_config(Path(path))
    unknown = sorted(set(raw) - ZENML_RUN_SETTINGS_KEYS)
    if unknown:  # ZenML itself ignores unknown top-level keys; a typo there would silently drop settings
        raise RunConfigError(
            f"{path}: unknown top-level keys {unknown}; expected `parameters` or ZenML run settings "
            f"({', '.join(sorted(ZENML_RUN_SETTINGS_KEYS - {'parameters'}))})."
        )
    try:
        return parameters_type.model_validate(raw.get("parameters") or {})
    except ValidationError as error:
        raise RunConfigError(f"{path}: invalid parameters:\n{_describe(error, prefix='parameters')}") from error


def check_zenml_run_settings(path: str | Path) -> None:
    """Validate the values of the ZenML run settings (everything but `parameters:`) with ZenML's own model."""
    from zenml.config.pipeline_run_configuration import PipelineRunConfiguration

    settings = {key: value for key, value in read_run_config(Path(path)).items() if key != "parameters"}
    try:
        PipelineRunConfiguration.model_validate(settings)
    except ValidationError as error:
        raise RunConfigError(f"{path}: invalid ZenML run settings:\n{_describe(error)}") from error


def read_run_config(path: Path) -> dict[str, Any]:
    """The YAML mapping in `path`; a missing, binary or malformed file is a `RunConfigError` naming it."""
    if not path.is_file():
        raise RunConfigError(f"Run config {str(path)!r} does not exist.")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise RunConfigError(
            f"{path} is not a text file (not UTF-8 at byte {error.start}); --config expects a YAML run config "
            "such as configs/quickstart.yaml."
        ) from error
    try:
        raw = yaml.safe_load(text)
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
