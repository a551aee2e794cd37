"""Which export format a deployment serves, and the typed records the deployment pipeline passes along.

Torch-free and ZenML-free: the steps read the model version and hand its export statuses and benchmark rows here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from har_core.runtime.manifest import FormatStatus


class DeploymentRefusedError(ValueError):
    """The requested model version or format cannot be deployed; the message says why."""


class BenchmarkRowLike(Protocol):
    format: str
    deployable: bool
    throughput_ips: float | None


class FormatChoice(BaseModel):
    model_config = ConfigDict(frozen=True)

    format: str
    reason: str


class DeploymentPlan(BaseModel):
    """The model version and format a deployment serves, and why that format."""

    model_config = ConfigDict(frozen=True)

    model_name: str
    model_version: str  # the version number
    model_version_id: str
    stage: str | None
    format: str
    reason: str


class BentoRecord(BaseModel):
    """What the build produced: the BentoML model holding the export and the Bento serving it."""

    model_config = ConfigDict(frozen=True)

    bento_tag: str
    bentoml_model_tag: str
    format: str
    bento_path: str


class DeploymentRecord(BaseModel):
    """A running deployment that answered its smoke test."""

    model_config = ConfigDict(frozen=True)

    url: str
    bento_tag: str
    model_version: str
    format: str
    service_id: str
    smoke_test: dict


def choose_format(
    statuses: Mapping[str, FormatStatus],
    rows: Sequence[BenchmarkRowLike],
    requested: str | None,
    measured_on: str,
) -> FormatChoice:
    """`requested` if it passed its parity gate, else the fastest gated format by benchmark throughput."""
    if requested is not None:
        status = statuses.get(requested)
        if status is None:
            raise DeploymentRefusedError(f"Format {requested!r} was not exported for this model version.")
        if not status.deployable:
            raise DeploymentRefusedError(f"Format {requested!r} cannot be deployed: {status.message}.")
        return FormatChoice(format=requested, reason=f"{requested} was requested; its parity gate passed")
    timed = [
        row
        for row in rows
        if row.deployable and row.throughput_ips and statuses.get(row.format) and statuses[row.format].deployable
    ]
    if not timed:
        gated = [name for name, status in statuses.items() if status.deployable]
        if not gated:
            reasons = "; ".join(f"{name}: {status.message}" for name, status in statuses.items())
            raise DeploymentRefusedError(f"No export of this model version passed its parity gate ({reasons}).")
        return FormatChoice(format=gated[0], reason=f"{gated[0]}: the first gated format (no benchmark rows)")
    fastest = max(timed, key=lambda row: row.throughput_ips)
    others = ", ".join(f"{row.format} {row.throughput_ips:.1f}" for row in timed if row is not fastest)
    return FormatChoice(
        format=fastest.format,
        reason=(
            f"{fastest.format} is the fastest format that passed its parity gate: {fastest.throughput_ips:.1f} img/s"
            f"{f' (vs {others})' if others else ''}, measured where training ran ({measured_on})"
        ),
    )
