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
    """AMP only on CUDA: bf16 where supported, else fp16 with a GradScaler; CPU and MPS train in fp32."""
    if device.type != "cuda" or choice == "fp32":
        if choice in ("bf16", "fp16") and device.type != "cuda":
            raise ValueError(f"precision: {choice} needs a CUDA device; use precision: auto or fp32 on CPU.")
        return Precision(None, False)
    if choice == "auto":
        choice = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if choice == "bf16":
        return Precision(torch.bfloat16, False)
    return Precision(torch.float16, True)
