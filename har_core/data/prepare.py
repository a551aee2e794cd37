"""The DVC `prepare` stage: materialise a data source into a DVC-tracked image folder plus its manifest.

    python -m har_core.data.prepare --params params.yaml     # what `dvc repro prepare` runs (see dvc.yaml)

The folder is `<output>/<label>/<image>` with `<output>/manifest.csv` (file, label, sha256); `dvc.yaml` tracks it,
`dvc push` uploads it, and `data.source: dvc` (har_core.data.dvc) reads it back at any git revision.
"""

from __future__ import annotations

import argparse
import csv
import logging
import shutil
from pathlib import Path

import yaml

from har_core.config import PrepareConfig
from har_core.data.scan import plan_image_folder
from har_core.data.sources import image_folder_for

logger = logging.getLogger(__name__)

MANIFEST_CSV = "manifest.csv"


def prepare_dataset(config: PrepareConfig) -> Path:
    """Copy every readable image of the source (flat or pre-split layout, as the data check reads it) into a fresh
    `config.output` and write its manifest."""
    data = config.data
    source_root, _ = image_folder_for(data)
    source_root = source_root.resolve()
    plan = plan_image_folder(source_root, data)  # the same checks as a training run; any problem stops here
    images = sorted((image for split in plan.splits.values() for image in split), key=lambda image: image.path)
    output = Path(config.output)
    shutil.rmtree(output, ignore_errors=True)
    rows = []
    for image in images:
        relative = Path(image.path).resolve().relative_to(source_root)
        (output / relative.parent).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(image.path, output / relative)
        rows.append((relative.as_posix(), plan.labels[image.label], image.sha256))
    skipped = plan.skipped
    with (output / MANIFEST_CSV).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label", "sha256"])
        writer.writerows(rows)
    logger.info("Prepared %d images (%d skipped) from %s in %s", len(rows), len(skipped), data.source, output)
    return output


def load_prepare_config(params_path: str | Path) -> PrepareConfig:
    """The `prepare:` block of a DVC params file, validated (unknown keys are errors)."""
    raw = yaml.safe_load(Path(params_path).read_text()) or {}
    return PrepareConfig.model_validate(raw.get("prepare") or {})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="DVC params file with a `prepare:` block")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    prepare_dataset(load_prepare_config(arguments.params))


if __name__ == "__main__":
    main()
