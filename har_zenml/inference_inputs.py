"""The folder a batch inference run reads, per `input.source`: local, a prefix on the stack's artifact store, or
a DVC version fetched to this machine."""

from __future__ import annotations

import os
from pathlib import Path

from har_core.config import InferenceInputConfig
from har_core.data.dvc import fetch_dvc_dataset
from har_core.inference.inputs import InputError, InputFolder, LocalFolder


class ArtifactStoreFolder:
    """A prefix on the active stack's artifact store, read through ZenML's `fileio` (the store's credentials)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri.rstrip("/")
        self.description = f"artifact store prefix {self.uri!r}"
        self.skipped: list[tuple[str, str]] = []  # object stores have no links or unreadable folders

    def names(self) -> list[str]:
        from zenml.io import fileio

        if not fileio.isdir(self.uri):
            raise InputError(f"Nothing at {self.uri!r} on the artifact store.")
        names = []
        for directory, _, files in fileio.walk(self.uri):
            directory = directory.decode() if isinstance(directory, bytes) else str(directory)
            relative = directory.rstrip("/")[len(self.uri) :].strip("/")
            for file in files:
                file = file.decode() if isinstance(file, bytes) else str(file)
                name = f"{relative}/{file}" if relative else file
                if not any(part.startswith(".") for part in name.split("/")):
                    names.append(name)
        return sorted(names)

    def size(self, name: str) -> int:
        from zenml.io import fileio

        return int(fileio.size(f"{self.uri}/{name}") or 0)

    def read(self, name: str) -> bytes:
        from zenml.io import fileio

        with fileio.open(f"{self.uri}/{name}", "rb") as file:
            return file.read()

    def local_path(self, name: str) -> Path | None:
        return None


def artifact_store_uri(path: str) -> str:
    """`path` on the active stack's artifact store: a URI under the store's root, or a path relative to it."""
    from zenml.client import Client

    root = str(Client().active_stack.artifact_store.path).rstrip("/")
    uri = path if "://" in path or os.path.isabs(path) else f"{root}/{path.lstrip('/')}"
    if uri.rstrip("/") != root and not uri.startswith(root + "/"):
        raise InputError(
            f"input.path {path!r} is not on the active stack's artifact store ({root}): give a prefix below it, "
            "or a path relative to it."
        )
    return uri


def input_folder(config: InferenceInputConfig, project_root: str | Path) -> InputFolder:
    """The folder `config` names (a relative local path means inside the project; a DVC version is fetched first,
    once per version on this machine)."""
    if config.source == "folder":
        return LocalFolder(Path(project_root) / config.path)
    if config.source == "artifact_store":
        return ArtifactStoreFolder(artifact_store_uri(config.path))
    target, version, _ = fetch_dvc_dataset(config.dvc, config.cache_dir)
    folder = LocalFolder(target)
    folder.description = f"DVC {version.path}@{version.rev} (commit {version.commit[:8]}, md5 {version.md5})"
    return folder
