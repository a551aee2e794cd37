"""Step: a DVC-tracked image folder as it was at a git revision, as a split manifest."""

from typing import Annotated

from zenml import log_metadata, step

from har_core.config import DataConfig
from har_core.data.dataset import DatasetManifest
from har_core.data.dvc import fetch_dvc_dataset
from har_core.data.sources import manifest_for_folder
from har_zenml import materializers  # noqa: F401  (registers the materializers of this step's outputs)
from har_zenml.names import DATASET_ARTIFACT
from har_zenml.project_paths import in_project


@step(enable_cache=False)
def load_dvc_data(data: DataConfig) -> Annotated[DatasetManifest, DATASET_ARTIFACT]:
    """Fetch `data.dvc.path` at `data.dvc.rev` through DVC's API (once per DVC md5 on this machine), then check,
    hash and split it like any folder. Never cached: a branch name may point at new data tomorrow; later steps
    still hit the cache when the fetched bytes are unchanged."""
    data = in_project(data)
    folder, version, fetched = fetch_dvc_dataset(data.dvc, data.cache_dir)
    revision = f"dvc:{version.repo}:{version.path}@{version.rev} ({version.commit[:12]}, md5 {version.md5})"
    manifest = manifest_for_folder(folder, data, source="dvc", revision=revision)
    log_metadata(
        metadata={
            "source": "dvc",
            "dvc_rev": version.rev,
            "dvc_commit": version.commit,
            "dvc_md5": version.md5,
            "dvc_files": version.files,
            "fetched": fetched,
            "revision": manifest.revision,
            "fingerprint": manifest.fingerprint(),
            "images": {name: len(manifest.split(name)) for name in ("train", "val", "test")},
        },
        infer_artifact=True,
    )
    return manifest
