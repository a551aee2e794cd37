"""The CLIP backbone, the classifier, the modules it is exported and served as, and its training precision."""

from typing import Any

from har_core.legacy import moved_attribute


def __getattr__(name: str) -> Any:
    """Names of the old `har_core.model` module (artifacts in existing ZenML stores record them)."""
    return moved_attribute(__name__, name)
