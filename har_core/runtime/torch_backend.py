"""The Predictor's backend for torch modules returning (embeddings, logits): TorchScript and the PyTorch format."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from har_core.runtime.device import DeviceName, resolve_device
from har_core.runtime.manifest import ExportManifest


class TorchBackend:
    """Runs a module in inference mode on the resolved device; outputs come back as float32 numpy arrays."""

    def __init__(self, module, device: DeviceName, threads: int | None) -> None:
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.device = resolve_device(device)
        self.module = module.to(self.device).eval()

    def run(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        with torch.inference_mode():
            embeddings, logits = self.module(torch.from_numpy(pixels).to(self.device))
        return embeddings.float().cpu().numpy(), logits.float().cpu().numpy()


def load_torchscript_backend(
    manifest: ExportManifest, model_path: Path, device: DeviceName, threads: int | None
) -> TorchBackend:
    import torch

    return TorchBackend(torch.jit.load(str(model_path), map_location="cpu"), device, threads)
