"""ZenML materializers for `HarClipClassifier` and `ExportBundle`: their own files on disk, never pickle."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from zenml.enums import ArtifactType
from zenml.materializers.base_materializer import BaseMaterializer
from zenml.utils import io_utils

from har_core.export_manifest import ExportBundle
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


class ExportBundleMaterializer(BaseMaterializer):
    """Stores an export bundle's directory tree; loading gives a local copy with one directory per format.

    Outside a step the local copy is kept (the caller owns it); inside a step it is removed when the step ends.
    """

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (ExportBundle,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.MODEL

    def load(self, data_type: type[Any]) -> ExportBundle:
        with self.get_temporary_directory(delete_at_exit=False, delete_after_step_execution=True) as local_dir:
            io_utils.copy_dir(self.uri, local_dir)
            return ExportBundle.load(local_dir)

    def save(self, data: ExportBundle) -> None:
        data.save()
        io_utils.copy_dir(data.root, self.uri, overwrite=True)

    def extract_metadata(self, data: ExportBundle) -> dict[str, Any]:
        return {
            "deployable_formats": ", ".join(data.deployable_formats()) or "none",
            **{f"format/{name}": status.message for name, status in data.formats.items()},
        }
