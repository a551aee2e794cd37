"""ZenML pipelines: wiring only.

`training_pipeline` is imported on first access (PEP 562), so `pipelines.run_config` can validate a run config
without importing ZenML's pipeline machinery, torch or transformers.
"""

from __future__ import annotations

from typing import Any

__all__ = ["training_pipeline"]


def __getattr__(name: str) -> Any:
    if name == "training_pipeline":
        from pipelines.training import training_pipeline

        return training_pipeline
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
