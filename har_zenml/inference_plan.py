"""Which model version and export format a batch inference run scores with, and why (torch- and ZenML-free).

The default format is the one the version is deployed as (the deployment pipeline records a `deployment` entry on
the version): batch and online answers then come from the same files. A version never deployed falls back to the
deployment's own default, the fastest format that passed its parity gate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from har_core.runtime.manifest import FormatStatus
from har_zenml.deployment_plan import BenchmarkRowLike, FormatChoice, choose_format


class InferencePlan(BaseModel):
    model_config = ConfigDict(frozen=True)

    model_name: str
    model_version: str  # the version number
    model_version_id: str
    stage: str | None
    format: str
    reason: str


def deployed_format(run_metadata: Mapping[str, Any]) -> str | None:
    """The format in the version's `deployment` metadata (steps/deploy_bento.py), None when never deployed."""
    record = run_metadata.get("deployment")
    value = record.get("format") if isinstance(record, dict) else None
    return value if isinstance(value, str) and value else None


def choose_inference_format(
    statuses: Mapping[str, FormatStatus],
    rows: Sequence[BenchmarkRowLike],
    requested: str | None,
    deployed: str | None,
    measured_on: str,
) -> FormatChoice:
    """`requested` if gated; else the deployed format while it is still gated; else the fastest gated format."""
    if requested is None and deployed is not None:
        status = statuses.get(deployed)
        if status is not None and status.deployable:
            return FormatChoice(format=deployed, reason=f"{deployed}: the format this version is deployed as")
    return choose_format(statuses, rows, requested, measured_on)
