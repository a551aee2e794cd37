"""The modules every export traces or serves: pixels -> (normalised image embedding, logits), and the text tower.

The class embeddings are frozen into a slim head, so an exported image model needs no text tower for its own labels.
The PyTorch format serves `ImageModel` as it is (`load_pytorch_backend`), rebuilt from the saved classifier.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from har_core.model.classifier import HarClipClassifier
from har_core.runtime.device import DeviceName
from har_core.runtime.manifest import ExportManifest
from har_core.runtime.torch_backend import TorchBackend


class ImageModel(nn.Module):
    """The slim serving graph: vision tower + projection, and a frozen head of class embeddings."""

    def __init__(self, classifier: HarClipClassifier) -> None:
        super().__init__()
        self.crop_size = classifier.preprocess_config.crop_size  # the square input side every export traces with
        self.vision_model = classifier.clip.vision_model
        self.visual_projection = classifier.clip.visual_projection
        with torch.no_grad():
            self.register_buffer("class_embeddings", classifier.class_embeddings().detach().float().clone())
            self.register_buffer("logit_scale", classifier.logit_scale().detach().float().clone())

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.vision_model(pixel_values=pixel_values).pooler_output
        embeddings = F.normalize(self.visual_projection(pooled), dim=-1)
        return embeddings, self.logit_scale * embeddings @ self.class_embeddings.T


class TextModel(nn.Module):
    """Text tower + projection: token ids -> normalised prompt embeddings."""

    def __init__(self, classifier: HarClipClassifier) -> None:
        super().__init__()
        self.text_model = classifier.clip.text_model
        self.text_projection = classifier.clip.text_projection

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        pooled = self.text_model(input_ids=input_ids, attention_mask=attention_mask).pooler_output
        return F.normalize(self.text_projection(pooled), dim=-1)


def serving_modules(classifier: HarClipClassifier, text_tower: bool = True) -> tuple[ImageModel, TextModel | None]:
    """The image model and (when asked) the text tower, built once for everything an export traces and writes."""
    text_model = TextModel(classifier).eval().cpu() if text_tower else None
    return ImageModel(classifier).eval().cpu(), text_model


def load_image_model(directory: str | Path) -> ImageModel:
    """The PyTorch format's serving module, rebuilt from its saved classifier directory."""
    return ImageModel(HarClipClassifier.load(directory)).eval()


def load_pytorch_backend(
    manifest: ExportManifest, model_path: Path, device: DeviceName, threads: int | None
) -> TorchBackend:
    """The Predictor's backend for the PyTorch format (named in `har_core.runtime.predictor.BACKEND_LOADERS`)."""
    return TorchBackend(load_image_model(model_path.parent), device, threads)
