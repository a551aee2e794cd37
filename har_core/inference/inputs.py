"""The files a batch inference run reads: images and videos, by suffix, below a folder on some filesystem.

A folder is anything that lists relative names, tells a file's size and reads its bytes: a local folder here, the
artifact store's filesystem in the pipeline's step (har_zenml/inference_inputs.py). Files of other kinds are counted and
left alone; a folder with more than `max_files` images and videos is refused before anything is read. A local
folder follows symbolic links only where they point inside it (folders and files alike; a link back to a folder
above it is a loop); a link out of it, a loop, and a folder it cannot read are not read and are listed with the
reason (`skipped`), never left out without a word.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict

from har_core.runtime.video import VIDEO_SUFFIXES

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
FileKind = Literal["image", "video"]


class InputError(ValueError):
    """The input cannot be listed: no such folder, nothing to score, or too many files."""


class InputFile(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str  # relative to the folder, with `/` separators
    kind: FileKind
    size: int


class InputFolder(Protocol):
    description: str
    skipped: list[tuple[str, str]]  # (relative name, why it was not read), filled by `names()`

    def names(self) -> list[str]:
        """Every file below the folder, relative, `/`-separated (hidden files and folders left out)."""
        ...

    def size(self, name: str) -> int: ...

    def read(self, name: str) -> bytes: ...

    def local_path(self, name: str) -> Path | None:
        """The file on this machine's disk, when it is one (videos are then read from disk, not from memory)."""
        ...


class LocalFolder:
    """A folder on this machine."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.description = f"folder {str(self.root)!r}"
        self.skipped: list[tuple[str, str]] = []

    def names(self) -> list[str]:
        if not self.root.is_dir():
            raise InputError(
                f"The input folder {str(self.root)!r} does not exist: put the images and videos to score there, or "
                "point parameters.inference.input.path at them (docs/inference.md)."
            )
        real_root = self.root.resolve()
        self.skipped, found = [], []
        pending: list[tuple[PurePosixPath, frozenset[Path]]] = [(PurePosixPath(), frozenset({real_root}))]
        while pending:
            relative, ancestors = pending.pop()
            try:
                entries = sorted(os.scandir(self.root / relative), key=lambda entry: entry.name)
            except OSError as error:
                self.skipped.append((relative.as_posix(), f"folder not readable ({error.strerror or error})"))
                continue
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                name = relative / entry.name
                target = Path(entry.path).resolve() if entry.is_symlink() else None
                if target is not None and not target.is_relative_to(real_root):
                    self.skipped.append((name.as_posix(), f"symbolic link to {target}, outside the input folder"))
                elif entry.is_dir():  # a link inside the root is followed, unless it leads back up (a loop)
                    real = target or Path(entry.path).resolve()
                    if real in ancestors:
                        self.skipped.append((name.as_posix(), "symbolic link back to a folder above it (a loop)"))
                    else:
                        pending.append((name, ancestors | {real}))
                elif entry.is_file():
                    found.append(name.as_posix())
                elif target is not None:
                    self.skipped.append((name.as_posix(), "broken symbolic link"))
        return sorted(found)

    def size(self, name: str) -> int:
        return (self.root / name).stat().st_size

    def read(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    def local_path(self, name: str) -> Path | None:
        return self.root / name


def kind_of(name: str) -> FileKind | None:
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    return "video" if suffix in VIDEO_SUFFIXES else None


def list_inputs(folder: InputFolder, max_files: int) -> tuple[list[InputFile], int]:
    """(the images and videos to score, in name order; how many other files were left alone)."""
    names = folder.names()
    wanted = [(name, kind_of(name)) for name in names]
    chosen = [(name, kind) for name, kind in wanted if kind is not None]
    if not chosen:
        raise InputError(
            f"No image or video in {folder.description} ({len(names)} other files). Images: "
            f"{', '.join(sorted(IMAGE_SUFFIXES))}; videos: {', '.join(sorted(VIDEO_SUFFIXES))}."
        )
    if len(chosen) > max_files:
        raise InputError(
            f"{folder.description} holds {len(chosen):,} images and videos, over input.max_files {max_files:,}: "
            "split it into several runs or raise the limit."
        )
    files = [InputFile(name=name, kind=kind, size=folder.size(name)) for name, kind in chosen]
    return files, len(names) - len(chosen)
