"""A DVC-tracked image folder as it was at a git revision, read through DVC's API (no checkout of any tree).

`DVCFileSystem(repo, rev=...)` reads the `.dvc` metadata of that commit from git and the bytes from the
repository's DVC cache or its remote. A version is identified by DVC's directory md5, so a version already
fetched to this machine is never fetched again; every fetched file is checked against its DVC md5.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from pathlib import Path

from pydantic import BaseModel

from har_core.config import DvcDataConfig

logger = logging.getLogger(__name__)

COMPLETE_MARKER = ".dvc-fetched"


class DvcDataError(RuntimeError):
    """The DVC version cannot be loaded: unknown revision, data on no storage, or a damaged file."""


class DvcVersion(BaseModel):
    """Which data a DVC source resolved to: the requested revision, its commit and the folder's DVC md5."""

    repo: str
    path: str
    rev: str
    commit: str
    md5: str
    files: int


def resolve_dvc_version(config: DvcDataConfig) -> tuple[DvcVersion, object]:
    """The version `config` names and an open DVC filesystem at it; unknown revisions list the known tags."""
    from dvc.api import DVCFileSystem  # deferred: importing DVC costs a second
    from dvc.scm import RevError

    try:
        fs = DVCFileSystem(config.repo, rev=config.rev, remote=config.remote)
        commit = fs.repo.scm.get_rev()
    except RevError as error:
        raise DvcDataError(
            f"Git revision {config.rev!r} does not exist in {config.repo!r}. Available tags: "
            f"{', '.join(_tags(config.repo)) or 'none'}. Set data.dvc.rev to one of them, a branch or a commit."
        ) from error
    from dvc_data.index.index import DataIndexDirError

    try:
        info = fs.info(config.path)
    except DataIndexDirError as error:  # the folder's listing (its `.dir` object) is on no storage
        raise _no_storage_error(config, "", error) from error
    except FileNotFoundError as error:
        raise DvcDataError(
            f"{config.path!r} is not tracked by DVC in {config.repo!r} at revision {config.rev or 'HEAD'!r}."
        ) from error
    md5 = (info.get("dvc_info") or {}).get("md5") or info.get("md5")
    if info.get("type") != "directory" or not md5:
        raise DvcDataError(f"{config.path!r} at {config.rev or 'HEAD'!r} is not a DVC-tracked folder.")
    files = int(info["dvc_info"]["entry"].meta.nfiles or 0)
    version = DvcVersion(
        repo=config.repo, path=config.path, rev=config.rev or "HEAD", commit=commit, md5=md5, files=files
    )
    return version, fs


def fetch_dvc_dataset(config: DvcDataConfig, cache_dir: str | Path) -> tuple[Path, DvcVersion, bool]:
    """The local folder holding the version (fetched only if this machine lacks it), the version, and whether it
    was fetched now."""
    from dvc_data.index.index import DataIndexDirError

    version, fs = resolve_dvc_version(config)
    target = Path(cache_dir) / "dvc" / version.md5.removesuffix(".dir")
    if (target / COMPLETE_MARKER).is_file():
        logger.info("DVC %s@%s (md5 %s) already on this machine: %s", version.path, version.rev, version.md5, target)
        return target, version, False
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=target.parent))
    try:
        try:
            fs.get(config.path, str(staging / "data"), recursive=True)
        except (FileNotFoundError, DataIndexDirError) as error:  # a file, or the folder's listing, is missing
            raise _no_storage_error(config, version.md5, error) from error
        verify_dvc_md5s(fs, config.path, staging / "data")
        (staging / "data" / COMPLETE_MARKER).touch()
        try:
            (staging / "data").rename(target)
        except OSError:  # fetched concurrently by another process; that copy passed the same checks
            logger.debug("DVC version %s was fetched concurrently", version.md5)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info(
        "Fetched DVC %s@%s (%d files, md5 %s) to %s", version.path, version.rev, version.files, version.md5, target
    )
    return target, version, True


def verify_dvc_md5s(fs: object, path: str, local: Path) -> None:
    """Each fetched file must have the md5 DVC recorded for it; the first that does not is named."""
    prefix = path.rstrip("/") + "/"
    for name, entry in fs.find(path, detail=True).items():
        expected = entry.get("md5") or (entry.get("dvc_info") or {}).get("md5")
        relative = name.removeprefix(prefix)
        actual = hashlib.md5((local / relative).read_bytes(), usedforsecurity=False).hexdigest()
        if expected and actual != expected:
            raise DvcDataError(
                f"File {relative!r} of {path!r} does not match its DVC md5 ({actual} != {expected}): the DVC cache "
                "or remote copy is damaged. Remove it from the cache (`dvc gc` / delete the object) and `dvc push` "
                "a good copy."
            )


def _no_storage_error(config: DvcDataConfig, md5: str, error: Exception) -> DvcDataError:
    rev = config.rev or "HEAD"
    remote = f" {config.remote!r}" if config.remote else ""
    return DvcDataError(
        f"The data of {config.path!r} at revision {rev!r}{f' (DVC md5 {md5})' if md5 else ''} is neither in the DVC "
        f"cache of {config.repo!r} nor on its remote{remote} ({error}). Upload it from where it was produced with "
        f"`dvc push`, or fetch it into the repository with `git checkout {rev} && dvc pull {config.path}` "
        f"(in {config.repo})."
    )


def _tags(repo: str) -> list[str]:
    from dvc.api import DVCFileSystem

    try:
        return sorted(DVCFileSystem(repo).repo.scm.list_tags())
    except Exception:  # listing tags is only advice in an error message; never hide the real error behind it
        return []
