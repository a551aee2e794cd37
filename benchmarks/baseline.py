"""Files this checkout writes, made readable by an older checkout (`--baseline-source`) for before/after runs.

The project's JSON models forbid unknown keys, so a checkout from before a field existed refuses a file that carries
it. A before/after benchmark gives the baseline a copy without the keys added since; they describe the files (a
model's provenance, the fused graph's counts), not how fast they run.
"""

import json
import shutil
from collections.abc import Iterable
from pathlib import Path

from har_core.runtime.hashing import file_sha256

MANIFEST_FILE = "export_manifest.json"

# file name -> key paths added after the oldest baseline the benchmarks are run against (483c819, issue 15's start)
NEWER_KEYS: dict[str, tuple[tuple[str, ...], ...]] = {
    "job.json": (("config", "decoded_cache"), ("config", "decoded_cache_max_gib")),
    "har_clip.json": (("provenance",),),
    MANIFEST_FILE: (("graph",), ("model_card", "provenance")),
}


def drop_keys(json_file: Path, key_paths: Iterable[tuple[str, ...]]) -> bool:
    """Remove each key path (outer key first) from a JSON file in place; a missing one is skipped. Changed?"""
    document = json.loads(json_file.read_text())
    dropped = False
    for *parents, key in key_paths:
        node = document
        for parent in parents:
            node = node.get(parent) if isinstance(node, dict) else None
        if isinstance(node, dict) and key in node:
            del node[key]
            dropped = True
    if dropped:
        json_file.write_text(json.dumps(document, indent=2))
    return dropped


def for_baseline(directory: Path, target: Path | None = None) -> Path:
    """`directory` (a model, an export or a training job), or a copy of it at `target`, without the newer keys.

    An export's manifest records the sha256 of its files: the digests of the files edited here are recorded anew."""
    if target is not None:
        shutil.copytree(directory, target, symlinks=True)
        directory = target
    changed = set()
    for name, key_paths in NEWER_KEYS.items():
        for json_file in directory.rglob(name):
            if json_file.name != MANIFEST_FILE and drop_keys(json_file, key_paths):
                changed.add(json_file)
    for manifest in directory.rglob(MANIFEST_FILE):
        _record_digests(manifest, changed)
        drop_keys(manifest, NEWER_KEYS[MANIFEST_FILE])
    return directory


def _record_digests(manifest_file: Path, changed: set[Path]) -> None:
    manifest = json.loads(manifest_file.read_text())
    for entry in manifest.get("files", {}).values():
        path = manifest_file.parent / entry["path"]
        if path in changed:
            entry.update(sha256=file_sha256(path), size_bytes=path.stat().st_size)
    manifest_file.write_text(json.dumps(manifest, indent=2))
