"""Relative config paths resolve against the project root (ZenML's source root), in every step's process.

A step may run in the orchestrator's process, in a step operator's process or in a pod, each with its own working
directory; anchoring at the source root makes `.cache/har-clip/...` the same folder in all of them.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel
from zenml.utils import source_utils

from har_core.locations import anchor_paths

M = TypeVar("M", bound=BaseModel)


def in_project(config: M) -> M:
    """`config` with every relative path made absolute under the project root."""
    return anchor_paths(config, source_utils.get_source_root())
