"""Training precision: the mixed-precision choice, resolved once from the config string for the training device."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch


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
