"""Which device a model runs on, resolved once from a config string (torch is imported only when asked)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

DeviceChoice = Literal["auto", "cpu", "cuda", "mps"]
DeviceName = Literal["auto", "cpu", "cuda"]  # what a Predictor accepts (MPS has no ONNX or TensorRT provider)


def mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(choice: DeviceChoice) -> torch.device:
    """`auto` picks CUDA, then Apple's MPS, then CPU; asking for a missing accelerator is an error, not a CPU run."""
    import torch

    if choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: cuda was requested but no CUDA device is available; use device: auto or cpu.")
    if choice == "mps" and not mps_available():
        raise RuntimeError("device: mps was requested but Apple's MPS backend is not available; use auto or cpu.")
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps_available() else "cpu")
    return torch.device(choice)
