"""Data problems in a local folder stop run.py before the pipeline starts: a short error, no run, no model version."""

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import run
from tests.conftest import PROJECT_ROOT
from tests.har_core.data.test_scan import header_only_png, write_images


def folder_run_config(directory: Path, root: Path) -> Path:
    """configs/quickstart.yaml reading `root` as a local folder, caches under `directory`."""
    config = yaml.safe_load((PROJECT_ROOT / "configs" / "quickstart.yaml").read_text())
    config["parameters"]["data"] = {"source": "folder", "root": str(root)}
    config["parameters"]["classifier"]["cache_dir"] = str(directory / "backbones")
    config["parameters"]["training"]["output_dir"] = str(directory / "checkpoints")
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _unknown_label(root: Path) -> None:
    write_images(root / "calling", 8)
    write_images(root / "juggling", 2)


def _corrupt_files(root: Path) -> None:
    images = write_images(root / "calling", 8)
    write_images(root / "running", 8, start=50)
    (root / "calling" / "zero.jpg").write_bytes(b"")
    (root / "running" / "text.png").write_text("hello")
    (root / "running" / "cut.jpg").write_bytes(images[0].read_bytes()[:200])


def _empty_root(root: Path) -> None:
    root.mkdir()


def _oversized(root: Path) -> None:
    write_images(root / "calling", 8)
    header_only_png(root / "calling" / "bomb.png", 20_000, 20_000)


def _leakage(root: Path) -> None:
    for split in ("train", "val", "test"):
        write_images(root / split / "calling", 3, start=10 * len(split))
    (root / "val" / "calling" / "again.jpg").write_bytes((root / "train" / "calling" / "050.jpg").read_bytes())


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (_unknown_label, ["sub-folders that are not labels: ['juggling']"]),
        (
            _corrupt_files,
            [
                "3 unreadable images",
                "calling/zero.jpg: the file is empty (0 bytes).",
                "running/text.png: not a readable image (no image format recognised)",
                "running/cut.jpg: not a readable image",
            ],
        ),
        (_empty_root, ["no readable images"]),
        (_oversized, ["calling/bomb.png: 20000x20000 is 400,000,000 pixels, over the 64,000,000 pixel limit."]),
        (_leakage, ["images appear in more than one split (leakage", "train/calling/050.jpg = val/calling/again.jpg"]),
    ],
    ids=["unknown-label", "corrupt-files", "empty-root", "oversized", "leakage"],
)
def test_data_problems_stop_the_cli_before_any_run(zenml_client, tmp_path, make, expected):
    root = tmp_path / "photos"
    make(root)
    runs_before = zenml_client.list_pipeline_runs(size=1).total
    versions_before = zenml_client.list_model_versions(model_name_or_id=None, size=1).total
    result = CliRunner().invoke(run.main, ["--config", str(folder_run_config(tmp_path, root))])
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"Error: Data check of {root}")
    for fragment in expected:
        assert fragment in result.output
    assert "Traceback" not in result.output and len(result.output.splitlines()) < 12
    assert zenml_client.list_pipeline_runs(size=1).total == runs_before
    assert zenml_client.list_model_versions(model_name_or_id=None, size=1).total == versions_before
