"""Where har-clip keeps files on this machine: config paths anchored at the project, caches private to the user.

A relative path in a config (`training.output_dir`, `data.cache_dir`, ...) means "inside the project", whichever
directory a process happens to run in: a step in a process of its own, a torchrun worker or a pod. Callers anchor
the config once at the project root they know and hand absolute paths on.

Caches that outlive a run and are trusted once written (unpacked datasets) live in the user's own cache folder,
`$XDG_CACHE_HOME/har-clip` or `~/.cache/har-clip`, created mode 0700 and refused when another user owns it: a
predictable folder under a world-writable `/tmp` would let another user plant files that the next run reads.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

APP_NAME = "har-clip"
PRIVATE_MODE = 0o700

M = TypeVar("M", bound=BaseModel)


class UnsafeDirectoryError(PermissionError):
    """A cache folder belongs to another user (or is not a folder), so nothing in it can be trusted."""


def anchor_paths(config: M, root: str | Path) -> M:
    """`config` with every relative `Path` value (nested configs included) made absolute under `root`."""
    root = Path(root)
    updates: dict[str, object] = {}
    for name in type(config).model_fields:
        value = getattr(config, name)
        if isinstance(value, Path) and not value.is_absolute():
            updates[name] = root / value
        elif isinstance(value, BaseModel):
            anchored = anchor_paths(value, root)
            if anchored is not value:
                updates[name] = anchored
    return config.model_copy(update=updates) if updates else config


def user_cache_dir() -> Path:
    """This user's har-clip cache: `$XDG_CACHE_HOME/har-clip`, else `~/.cache/har-clip` (not created here)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / APP_NAME


def private_directory(path: str | Path) -> Path:
    """`path` as a folder only this user can use: created mode 0700, its owner checked, group/other bits removed.

    Raises `UnsafeDirectoryError` when it is not a folder or another user owns it: its contents may have been
    written by them.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.mkdir(mode=PRIVATE_MODE, exist_ok=True)
    check_owned(path)
    info = path.stat()
    if stat.S_IMODE(info.st_mode) & 0o077:
        path.chmod(PRIVATE_MODE)
    return path


def check_owned(path: str | Path) -> None:
    """`path` must be a real folder (not a link) owned by this process's user."""
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeDirectoryError(f"{str(path)!r} is not a folder (a link or a file); refusing to use it as a cache.")
    if info.st_uid != os.geteuid():
        raise UnsafeDirectoryError(
            f"{str(path)!r} belongs to uid {info.st_uid}, not to this user (uid {os.geteuid()}); files another user "
            "can write are not read as a trusted cache. Remove it or point the cache elsewhere."
        )
