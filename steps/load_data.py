"""Step: resolve the configured data source to a split manifest."""

from typing import Annotated

from zenml import log_metadata, step

from har_core.config import DataConfig
from har_core.data.dataset import DatasetManifest
from har_core.data.sources import build_manifest
from har_zenml import materializers  # noqa: F401  (registers the materializers of this step's outputs)
from har_zenml.names import DATASET_ARTIFACT
from har_zenml.project_paths import in_project


@step(enable_cache=False)
def load_data(data: DataConfig) -> Annotated[DatasetManifest, DATASET_ARTIFACT]:
    """Build (or reuse) the image folder for `data.source`, check every image, and split it.

    Never cached: images may have been added, removed or edited under an unchanged config. Later steps still
    hit the cache, because ZenML keys them on the manifest's fingerprint (paths, labels, splits and each file's
    sha256), so they re-run exactly when the data changed. The images travel inside the artifact.
    """
    data = in_project(data)
    manifest = build_manifest(data)
    log_metadata(
        metadata={
            "source": data.source,
            "revision": manifest.revision,
            "fingerprint": manifest.fingerprint(),
            "images": {name: len(manifest.split(name)) for name in ("train", "val", "test")},
            "skipped_images": len(manifest.skipped),
            "class_counts": manifest.class_counts(),
        },
        infer_artifact=True,
    )
    return manifest
