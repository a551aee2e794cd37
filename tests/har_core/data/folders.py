"""Image records straight from a `<root>/<label>/<image>` tree, for tests that need records without a pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from har_core.data.dataset import ImageRecord


def image_records(root: str | Path, labels: Sequence[str]) -> list[ImageRecord]:
    """Every file under a label folder, in (label folder, file name) order."""
    index = {label: position for position, label in enumerate(labels)}
    return [
        ImageRecord(path=str(path.resolve()), label=index[path.parent.name])
        for path in sorted(Path(root).glob("*/*"))
        if path.parent.name in index and path.is_file()
    ]
