"""The CLIP action classifier: image embeddings scored against cached class-text embeddings.

Logits are `logit_scale * <normalise(image_embedding), class_embedding>` where each class embedding is the
normalised mean of its prompt-template embeddings (prompt ensembling). The text tower is frozen, so its pooled
outputs are computed once per label set and cached; the projections stay trainable and are applied live.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

from har_core.config import ClassifierConfig
from har_core.model.backbone import load_backbone, resolve_backbone
from har_core.runtime.labels import build_prompts
from har_core.runtime.model_card import MODEL_CARD_FILE, HarClipModelCard
from har_core.runtime.preprocess import PreprocessConfig
from har_core.runtime.provenance import TrainingProvenance

logger = logging.getLogger(__name__)

__all__ = ["BACKBONE_DIR", "MODEL_CARD_FILE", "HarClipClassifier", "build_classifier"]

BACKBONE_DIR = "backbone"
MAX_LOGIT_SCALE = 100.0


class HarClipClassifier(nn.Module):
    """CLIP zero-shot/fine-tuned classifier over a fixed, replaceable label set."""

    def __init__(
        self,
        clip: CLIPModel,
        tokenizer: CLIPTokenizer,
        labels: Sequence[str],
        templates: Sequence[str],
        preprocess_config: PreprocessConfig,
        backbone_name: str,
        freeze_vision: bool = False,
    ) -> None:
        super().__init__()
        self.clip = clip
        self.tokenizer = tokenizer
        self.preprocess_config = preprocess_config
        self.backbone_name = backbone_name
        self.clip.text_model.requires_grad_(False)
        self.clip.vision_model.requires_grad_(not freeze_vision)
        self.freeze_vision = freeze_vision
        self.provenance: TrainingProvenance | None = None  # how the weights were made (set by the train step)
        self.register_buffer("text_features", torch.empty(0), persistent=False)
        self.set_labels(labels, templates)

    @property
    def labels(self) -> list[str]:
        return list(self._labels)

    @property
    def templates(self) -> list[str]:
        return list(self._templates)

    @torch.no_grad()
    def set_labels(self, labels: Sequence[str], templates: Sequence[str]) -> None:
        """Encode every (label, template) prompt with the frozen text tower and cache the pooled outputs.

        On the meta device the cache only gets its shape: whoever materialises the model fills it in.
        """
        prompts = build_prompts(labels, templates)
        flat = [prompt for per_label in prompts for prompt in per_label]
        device = self.clip.logit_scale.device
        if device.type == "meta":
            pooled = torch.empty(len(flat), self.clip.text_model.config.hidden_size, device=device)
        else:
            tokens = self.tokenizer(flat, padding=True, truncation=True, return_tensors="pt")
            was_training = self.clip.text_model.training
            self.clip.text_model.eval()
            pooled = self.clip.text_model(
                input_ids=tokens["input_ids"].to(device), attention_mask=tokens["attention_mask"].to(device)
            ).pooler_output
            self.clip.text_model.train(was_training)
        self.text_features = pooled.reshape(len(labels), len(templates), -1).float()
        self._labels, self._templates = tuple(labels), tuple(templates)

    def class_embeddings(self) -> torch.Tensor:
        """(num_labels, dim) normalised class embeddings; differentiable through `text_projection`.

        The cached features take the projection's dtype: FSDP's mixed-precision policy casts parameters, not
        buffers, so under bf16/fp16 sharding the fp32 buffer would meet a low-precision weight.
        """
        projection = self.clip.text_projection
        projected = F.normalize(projection(self.text_features.to(projection.weight.dtype)), dim=-1)
        return F.normalize(projected.mean(dim=1), dim=-1)

    def image_embeddings(self, pixel_values: torch.Tensor) -> torch.Tensor:
        pooled = self.clip.vision_model(pixel_values=pixel_values).pooler_output
        return F.normalize(self.clip.visual_projection(pooled), dim=-1)

    def logit_scale(self) -> torch.Tensor:
        """The temperature applied to cosine similarities (CLIP's learned scale, capped at 100)."""
        return self.clip.logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Logits of shape (batch, num_labels)."""
        scale = self.logit_scale()
        image = self.image_embeddings(pixel_values)
        return scale * image @ self.class_embeddings().to(image.dtype).T

    def model_card(self) -> HarClipModelCard:
        return HarClipModelCard(
            backbone=self.backbone_name,
            labels=tuple(self.labels),
            templates=tuple(self.templates),
            freeze_vision=self.freeze_vision,
            preprocess=self.preprocess_config,
            logit_scale=float(self.logit_scale().detach()),
            provenance=self.provenance,
        )

    def save(self, directory: str | Path, state: dict[str, torch.Tensor] | None = None) -> Path:
        """Write `backbone/` (HF format: safetensors, tokenizer, image processor) and `har_clip.json`.

        `backbone/` is a complete CLIP directory, so `load_backbone(dir / "backbone")` continues from it. `state` is
        this classifier's full state dict when the live weights are sharded (FSDP consolidation).
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        clip_state = None
        if state is not None:
            clip_state = {
                name.removeprefix("clip."): tensor for name, tensor in state.items() if name.startswith("clip.")
            }
        self.clip.save_pretrained(directory / BACKBONE_DIR, state_dict=clip_state)
        self.tokenizer.save_pretrained(directory / BACKBONE_DIR)
        self.save_image_processor(directory / BACKBONE_DIR)
        self.model_card().save(directory)
        return directory

    def save_image_processor(self, directory: str | Path) -> None:
        """`preprocessor_config.json` matching this model's preprocessing, so HF loaders rebuild the same transform."""
        from transformers import CLIPImageProcessorPil  # ~1.5 s of imports that training workers never need

        config = self.preprocess_config
        CLIPImageProcessorPil(
            size={"shortest_edge": config.resize_shortest_edge},
            crop_size={"height": config.crop_size, "width": config.crop_size},
            image_mean=list(config.mean),
            image_std=list(config.std),
        ).save_pretrained(directory)

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> HarClipClassifier:
        """Rebuild a classifier saved by `save` (no pickle: safetensors weights and JSON metadata).

        `device="meta"` builds the architecture without reading or allocating any weight (FSDP ranks that receive
        rank 0's weights, `har_core.training.distributed`); every tensor, `text_features` included, has its shape.
        """
        card = HarClipModelCard.load(directory)
        if torch.device(device).type == "meta":
            with torch.device("meta"):
                clip = CLIPModel(CLIPConfig.from_pretrained(Path(directory) / BACKBONE_DIR))
        else:
            clip = CLIPModel.from_pretrained(Path(directory) / BACKBONE_DIR, use_safetensors=True)
        tokenizer = CLIPTokenizer.from_pretrained(Path(directory) / BACKBONE_DIR)
        model = cls(
            clip.to(device),
            tokenizer,
            card.labels,
            card.templates,
            card.preprocess,
            card.backbone,
            freeze_vision=card.freeze_vision,
        )
        model.provenance = card.provenance
        return model.eval()


def build_classifier(config: ClassifierConfig, labels: Sequence[str]) -> HarClipClassifier:
    """A classifier initialised from the configured backbone (zero-shot until trained)."""
    name_or_path = resolve_backbone(config)
    clip, tokenizer, processor = load_backbone(name_or_path)
    backbone_name = "tiny-clip" if config.tiny_backbone else config.backbone
    return HarClipClassifier(
        clip,
        tokenizer,
        labels,
        config.templates,
        PreprocessConfig.from_image_processor(processor),
        backbone_name,
        freeze_vision=config.freeze_vision,
    ).eval()
