"""The Hugging Face source, exercised on a local dataset laid out like the Hub's (no download)."""

from pathlib import Path

import datasets
import pytest
from PIL import Image

from har_core.config import DataConfig
from har_core.data.sources import EXPORT_DONE_MARKER, DatasetUnavailableError, build_manifest, export_hf_dataset
from har_core.hub_probe import HubUnavailableError, ensure_hub_resource
from har_core.runtime.labels import HAR_LABELS


def _local_hub_dataset(directory: Path, per_label: int = 4) -> Path:
    """A parquet dataset with the features of Bingsu/Human_Action_Recognition: `image` and ClassLabel `labels`."""
    features = datasets.Features({"image": datasets.Image(), "labels": datasets.ClassLabel(names=list(HAR_LABELS))})
    rows = {"image": [], "labels": []}
    for label in range(len(HAR_LABELS)):
        for index in range(per_label):
            rows["image"].append(Image.new("RGB", (24, 16), (label * 15, index * 40, 0)))
            rows["labels"].append(label)
    (directory / "data").mkdir(parents=True)
    datasets.Dataset.from_dict(rows, features=features).to_parquet(directory / "data" / "train-00000-of-00001.parquet")
    return directory


def test_hf_dataset_is_exported_once_to_an_image_folder(tmp_path):
    source = _local_hub_dataset(tmp_path / "hub", per_label=8)
    manifest = build_manifest(DataConfig(source="huggingface", hf_dataset=str(source), cache_dir=tmp_path / "cache"))
    assert len(manifest.train) + len(manifest.val) + len(manifest.test) == 15 * 8
    root = Path(manifest.root)
    assert (root / EXPORT_DONE_MARKER).is_file()
    assert sorted(path.name for path in root.iterdir() if path.is_dir()) == sorted(HAR_LABELS)
    marker_time = (root / EXPORT_DONE_MARKER).stat().st_mtime_ns
    export_hf_dataset(str(source), "train", root, HAR_LABELS)
    assert (root / EXPORT_DONE_MARKER).stat().st_mtime_ns == marker_time


def test_hf_dataset_with_other_labels_is_refused(tmp_path):
    source = _local_hub_dataset(tmp_path / "hub", per_label=1)
    with pytest.raises(ValueError, match="differ from data.labels"):
        export_hf_dataset(str(source), "train", tmp_path / "out", ["calling", "running"])


def test_unavailable_hf_dataset_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(DatasetUnavailableError, match="quickstart.yaml"):
        export_hf_dataset("no-such-user/no-such-dataset", "train", tmp_path / "out", HAR_LABELS)


def test_offline_hub_check_fails_fast_with_the_fix(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubUnavailableError, match="use the quick path"):
        ensure_hub_resource("openai/clip-vit-base-patch16", "model", "use the quick path")


def test_export_keeps_the_original_bytes_and_reports_corrupt_rows(tmp_path):
    features = datasets.Features(
        {"image": datasets.Image(), "labels": datasets.ClassLabel(names=["calling", "running"])}
    )
    png = tmp_path / "a.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(png)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    rows = {"image": [{"bytes": png.read_bytes(), "path": None}, {"bytes": broken.read_bytes(), "path": None}]}
    rows["labels"] = [0, 1]
    (tmp_path / "hub" / "data").mkdir(parents=True)
    datasets.Dataset.from_dict(rows, features=features).to_parquet(tmp_path / "hub" / "data" / "train-0.parquet")
    root = export_hf_dataset(str(tmp_path / "hub"), "train", tmp_path / "out", ["calling", "running"])
    assert (root / "calling" / "000000.png").read_bytes() == png.read_bytes()
    from har_core.config import DataConfig
    from har_core.data.scan import DataCheckError, plan_image_folder

    with pytest.raises(DataCheckError, match="000001.jpg"):
        plan_image_folder(root, DataConfig(source="folder", root=root))


def test_hf_export_is_keyed_on_the_dataset_revision(tmp_path):
    source = _local_hub_dataset(tmp_path / "hub", per_label=8)
    config = DataConfig(source="huggingface", hf_dataset=str(source), cache_dir=tmp_path / "cache")
    first = build_manifest(config)
    assert first.revision.startswith(f"hf:{source}@local-") and all(r.sha256 for r in first.all_records())
    again = build_manifest(config)
    assert again.revision == first.revision and again.fingerprint() == first.fingerprint()
    (source / "data" / "train-00000-of-00001.parquet").unlink()  # a new revision of the dataset
    _local_hub_dataset(tmp_path / "hub2", per_label=10)
    (tmp_path / "hub2" / "data" / "train-00000-of-00001.parquet").rename(source / "data" / "train-0.parquet")
    newer = build_manifest(config)
    assert newer.revision != first.revision and newer.root != first.root
    assert len(newer.all_records()) == 15 * 10 and newer.fingerprint() != first.fingerprint()


def test_an_export_of_another_revision_is_redone_not_reused(tmp_path):
    source = _local_hub_dataset(tmp_path / "hub", per_label=2)
    root = export_hf_dataset(str(source), "train", tmp_path / "out", HAR_LABELS, revision="aaa")
    (root / "calling" / "stale.jpg").write_bytes(b"from another revision")
    export_hf_dataset(str(source), "train", root, HAR_LABELS, revision="bbb")
    assert not (root / "calling" / "stale.jpg").exists()
    assert (root / EXPORT_DONE_MARKER).read_text() == "bbb"
