"""Device and mixed-precision choices, resolved once from config strings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

DeviceChoice = Literal["auto", "cpu", "cuda", "mps"]


def mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(choice: DeviceChoice) -> torch.device:
    """`auto` picks CUDA, then Apple's MPS, then CPU; asking for a missing accelerator is an error, not a CPU run."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: cuda was requested but no CUDA device is available; use device: auto or cpu.")
    if choice == "mps" and not mps_available():
        raise RuntimeError("device: mps was requested but Apple's MPS backend is not available; use auto or cpu.")
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps_available() else "cpu")
    return torch.device(choice)


@dataclass(frozen=True)
class Precision:
    """Autocast dtype (None for fp32) and whether fp16 loss scaling is needed."""

    dtype: torch.dtype | None
    use_grad_scaler: bool

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]


def resolve_precision(choice: Literal["auto", "fp32", "bf16", "fp16"], device: torch.device) -> Precision:
    """`auto`: bf16 on CUDA where supported (else fp16 with a GradScaler), fp32 on CPU and MPS.

    An explicit bf16 or fp16 is honoured on every device: CPU autocast (and FSDP's mixed-precision policy) run the
    same code path as a GPU, only slower, which is how that path is tested on machines without one.
    """
    if choice == "auto":
        if device.type != "cuda":
            return Precision(None, False)
        choice = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if choice == "fp32":
        return Precision(None, False)
    if choice == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError("precision: bf16 is not supported by this GPU; use precision: auto or fp16.")
        return Precision(torch.bfloat16, False)
    return Precision(torch.float16, True)
