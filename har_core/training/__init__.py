"""The training loop and everything that runs it: torchrun workers, DDP/FSDP, checkpoints."""

from typing import Any

from har_core.legacy import moved_attribute


def __getattr__(name: str) -> Any:
    """Names of the old `har_core.training` module (artifacts in existing ZenML stores record them)."""
    return moved_attribute(__name__, name)
