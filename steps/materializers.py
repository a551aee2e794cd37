"""ZenML materializer for `HarClipClassifier`: the model's own safetensors + JSON directory, never pickle."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from zenml.enums import ArtifactType
from zenml.materializers.base_materializer import BaseMaterializer
from zenml.utils import io_utils

from har_core.model import MODEL_CARD_FILE, HarClipClassifier


class HarClipClassifierMaterializer(BaseMaterializer):
    """Stores a classifier as `HarClipClassifier.save` lays it out, through the artifact store's filesystem."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (HarClipClassifier,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.MODEL

    def load(self, data_type: type[Any]) -> HarClipClassifier:
        with self.get_temporary_directory(delete_at_exit=True) as local_dir:
            io_utils.copy_dir(self.uri, local_dir)
            return HarClipClassifier.load(local_dir)

    def save(self, data: HarClipClassifier) -> None:
        with self.get_temporary_directory(delete_at_exit=True) as local_dir:
            data.save(local_dir)
            io_utils.copy_dir(local_dir, self.uri, overwrite=True)

    def extract_metadata(self, data: HarClipClassifier) -> dict[str, Any]:
        return {
            "backbone": data.backbone_name,
            "num_labels": len(data.labels),
            "labels": ", ".join(data.labels),
            "parameters": sum(parameter.numel() for parameter in data.parameters()),
            "model_card": os.path.join(self.uri, MODEL_CARD_FILE),
        }
