"""Files this checkout writes, made readable by an older checkout (`--baseline-source`) for before/after runs.

The project's JSON models forbid unknown keys, so a checkout from before a field existed refuses a file that carries
it. A before/after benchmark gives the baseline a copy without the keys added since; they describe the files (a
model's provenance, the fused graph's counts), not how fast they run.
"""

import json
import shutil
from collections.abc import Iterable
from pathlib import Path

from har_core.runtime.manifest import EXPORT_MANIFEST_FILE, describe_file
from har_core.runtime.model_card import MODEL_CARD_FILE
from har_core.training.job import JOB_FILE

# file name -> key paths added after the oldest baseline the benchmarks are run against (483c819, issue 15's start)
NEWER_KEYS: dict[str, tuple[tuple[str, ...], ...]] = {
    JOB_FILE: (("config", "decoded_cache"), ("config", "decoded_cache_max_gib")),
    MODEL_CARD_FILE: (("provenance",),),
    EXPORT_MANIFEST_FILE: (("graph",), ("model_card", "provenance")),
}


def drop_keys(json_file: Path, key_paths: Iterable[tuple[str, ...]]) -> None:
    """Remove each key path (outer key first) from a JSON file in place; a missing one is skipped."""
    document = json.loads(json_file.read_text())
    for *parents, key in key_paths:
        node = document
        for parent in parents:
            node = node.get(parent) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(key, None)
    json_file.write_text(json.dumps(document, indent=2))


def for_baseline(directory: Path, target: Path | None = None) -> Path:
    """`directory` (a model, an export or a training job), or a copy of it at `target`, without the newer keys.

    An export's manifest records the sha256 of its files: those of the files edited here are recorded anew."""
    if target is not None:
        shutil.copytree(directory, target, symlinks=True)
        directory = target
    for name, key_paths in NEWER_KEYS.items():
        for json_file in directory.rglob(name):
            drop_keys(json_file, key_paths)
    for manifest_file in directory.rglob(EXPORT_MANIFEST_FILE):
        _record_digests(manifest_file)
    return directory


def _record_digests(manifest_file: Path) -> None:
    """Describe again each listed file this module edits (the others keep their recorded digests)."""
    manifest = json.loads(manifest_file.read_text())
    files = manifest.get("files", {})
    for role, entry in files.items():
        if Path(entry["path"]).name in NEWER_KEYS:
            files[role] = describe_file(manifest_file.parent, entry["path"]).model_dump(mode="json")
    manifest_file.write_text(json.dumps(manifest, indent=2))
