"""ZenML materializers, never pickle: the classifier as its own safetensors + JSON directory, the out-of-distribution
statistics and the monitoring reference as one safetensors file each, the export bundle's directory tree, and the
dataset manifest together with its images, so every step reads data through the artifact store, wherever it runs."""

from __future__ import annotations

import os
from typing import Any, ClassVar

import pandas as pd
from zenml.enums import ArtifactType
from zenml.integrations.pandas.materializers.pandas_materializer import PandasMaterializer
from zenml.io import fileio
from zenml.materializers.base_materializer import BaseMaterializer
from zenml.utils import io_utils

from har_core.data.archive import unpacked, write_archive
from har_core.data.dataset import DatasetManifest
from har_core.inference.table import PredictionsTable
from har_core.model.classifier import MODEL_CARD_FILE, HarClipClassifier
from har_core.runtime.confidence import OOD_STATISTICS_FILE, OodStatistics
from har_core.runtime.manifest import ExportBundle
from har_core.runtime.reference import REFERENCE_FILE, MonitoringReference

MANIFEST_FILE = "manifest.json"
IMAGES_ARCHIVE = "images.tar"


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


class _SafetensorsFileMaterializer(BaseMaterializer):
    """A type stored as the one safetensors file an export also carries: its own `save(path)` and `load(path)`."""

    SKIP_REGISTRATION: ClassVar[bool] = True
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA
    FILE_NAME: ClassVar[str]

    def load(self, data_type: type[Any]) -> Any:
        with self.get_temporary_directory(delete_at_exit=True) as local_dir:
            local = os.path.join(local_dir, self.FILE_NAME)
            fileio.copy(os.path.join(self.uri, self.FILE_NAME), local)
            return data_type.load(local)

    def save(self, data: Any) -> None:
        with self.get_temporary_directory(delete_at_exit=True) as local_dir:
            local = data.save(os.path.join(local_dir, self.FILE_NAME))
            fileio.copy(str(local), os.path.join(self.uri, self.FILE_NAME), overwrite=True)


class OodStatisticsMaterializer(_SafetensorsFileMaterializer):
    """The Mahalanobis statistics (`ood_statistics.safetensors`, no pickle)."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (OodStatistics,)
    FILE_NAME: ClassVar[str] = OOD_STATISTICS_FILE

    def extract_metadata(self, data: OodStatistics) -> dict[str, Any]:
        return {"classes": int(data.class_means.shape[0]), "dimensions": int(data.class_means.shape[1])}


class MonitoringReferenceMaterializer(_SafetensorsFileMaterializer):
    """The monitoring reference (`monitoring_reference.safetensors`, no pickle)."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (MonitoringReference,)
    FILE_NAME: ClassVar[str] = REFERENCE_FILE

    def extract_metadata(self, data: MonitoringReference) -> dict[str, Any]:
        summary = data.summary()
        return {"images": summary["images"], "split": data.split, "median_confidence": summary["median_confidence"]}


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


class DatasetManifestMaterializer(BaseMaterializer):
    """`manifest.json` (relative paths, sha256 per file, no machine path) plus `images.tar` in the artifact store.

    Loading unpacks the images once per machine and fingerprint (har_core.data.archive) and points `root`
    there. The content hash is the manifest's fingerprint, so ZenML's cache misses exactly when a byte changed.
    """

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (DatasetManifest,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA

    def load(self, data_type: type[Any]) -> DatasetManifest:
        with fileio.open(os.path.join(self.uri, MANIFEST_FILE), "r") as handle:
            stored = DatasetManifest.model_validate_json(handle.read())
        archive_uri = os.path.join(self.uri, IMAGES_ARCHIVE)
        return unpacked(stored, lambda local: fileio.copy(archive_uri, str(local), overwrite=True))

    def save(self, data: DatasetManifest) -> None:
        with fileio.open(os.path.join(self.uri, MANIFEST_FILE), "w") as handle:
            handle.write(data.model_copy(update={"root": ""}).model_dump_json())
        with self.get_temporary_directory(delete_at_exit=True) as local_dir:
            archive = write_archive(data, os.path.join(local_dir, IMAGES_ARCHIVE))
            fileio.copy(str(archive), os.path.join(self.uri, IMAGES_ARCHIVE), overwrite=True)

    def compute_content_hash(self, data: DatasetManifest) -> str:
        return data.fingerprint()

    def extract_metadata(self, data: DatasetManifest) -> dict[str, Any]:
        return {
            "fingerprint": data.fingerprint(),
            "source": data.source,
            "revision": data.revision,
            "num_images": len(data.all_records()),
        }


class PredictionsTableMaterializer(BaseMaterializer):
    """The batch predictions' parquet part files, moved into the artifact store one by one (never one table in
    memory), with an index (`table.json`); loading returns the table read through the store's filesystem."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (PredictionsTable,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA
    INDEX_FILE: ClassVar[str] = "table.json"

    def load(self, data_type: type[Any]) -> PredictionsTable:
        with fileio.open(os.path.join(self.uri, self.INDEX_FILE), "r") as handle:
            table = PredictionsTable.model_validate_json(handle.read())
        return table.model_copy(update={"directory": self.uri})

    def save(self, data: PredictionsTable) -> None:
        for part in data.parts:
            source = os.path.join(data.directory, part)
            fileio.copy(source, os.path.join(self.uri, part), overwrite=True)
            os.remove(source)  # the step's scratch copy: the artifact store holds it now
        with fileio.open(os.path.join(self.uri, self.INDEX_FILE), "w") as handle:
            handle.write(data.model_copy(update={"directory": ""}).model_dump_json())

    def extract_metadata(self, data: PredictionsTable) -> dict[str, Any]:
        return {"rows": data.rows, "parts": len(data.parts)}


class PredictionsMaterializer(PandasMaterializer):
    """Versions stored before the table was written in parts: one DataFrame, ZenML's pandas materializer (parquet
    with pyarrow). Kept so those artifacts still load (their records name this class). Its statistics skip all-empty
    columns: ZenML's metadata extraction fails on an all-empty nullable column (the `frame` of a table of images
    only) and would warn on every such run."""

    def extract_metadata(self, df: pd.DataFrame) -> dict[str, Any]:
        metadata = super().extract_metadata(df.dropna(axis="columns", how="all"))
        metadata["shape"] = df.shape
        return metadata
