"""One lookup from a model version (a stage, a number, `latest` or an id) and a format to its export directory.

The deployment steps, the deployment CLI and the viewer all find exports through here, so "which files does
production's onnx-int8 mean" has one answer; batch inference, the benchmark CLI and reproduction are to use it too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

from har_core.runtime.manifest import ExportBundle
from har_zenml.names import EXPORTS_ARTIFACT, ZENML_MODEL_NAME


class ModelExportNotFoundError(LookupError):
    """No such model version, or it has no export of the asked format; the message says which and what to do."""


def find_model_version(selector: str | int | UUID) -> Any:
    """The version at a stage (`production`, `staging`, `latest`), with a number (also as a digit string) or an id."""
    from zenml.client import Client  # on use: importing this module must not touch a store (the viewer imports it)

    if isinstance(selector, str) and selector.isdigit():
        selector = int(selector)
    try:
        return Client().get_model_version(ZENML_MODEL_NAME, selector)
    except KeyError as error:
        raise ModelExportNotFoundError(
            f"No {ZENML_MODEL_NAME} version {str(selector)!r}: train one (python run.py --pipeline training) and "
            "promote it, or name a version number."
        ) from error


def load_version_exports(version: Any) -> ExportBundle:
    """The version's exports (one local directory per format; loading copies them out of the artifact store)."""
    artifact = version.get_artifact(EXPORTS_ARTIFACT)
    if artifact is None:
        raise ModelExportNotFoundError(
            f"{ZENML_MODEL_NAME} version {version.number} has no {EXPORTS_ARTIFACT} artifact."
        )
    return artifact.load()


def export_directory(selector: str | int | UUID, export_format: str) -> Path:
    """The directory of `export_format` for the version `selector` names; an error says why when there is none."""
    version = find_model_version(selector)
    bundle = load_version_exports(version)
    if export_format not in bundle.formats or bundle.formats[export_format].directory is None:
        status = bundle.formats.get(export_format)
        reason = status.message if status else f"it was not exported (exported: {sorted(bundle.formats)})"
        raise ModelExportNotFoundError(
            f"{ZENML_MODEL_NAME} version {version.number} has no {export_format} export: {reason}."
        )
    return bundle.directory(export_format)
