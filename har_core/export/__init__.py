"""From a trained model to checked deployable formats: graphs, bundle, benchmark, Hub upload."""

from typing import Any

from har_core.legacy import moved_attribute


def __getattr__(name: str) -> Any:
    """Names of the old `har_core.export` module (artifacts in existing ZenML stores record them)."""
    return moved_attribute(__name__, name)
