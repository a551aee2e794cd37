"""Where `make lock` and `make install` find packages: pip's own sources, and PyTorch's CPU wheels for torch only.

uv reads none of pip's configuration, so a machine's pip config (pip.conf files, PIP_* variables) that points at a
local folder of wheels or at a mirror is handed on to uv as options. Only `find-links` and `index-url` are passed:
an extra index would narrow uv's choice of files for every package it carries (uv takes a package from the first
index that has it), which is not what pip does.

The CPU build of torch (`torch==X+cpu`) is on PyTorch's own index, not on PyPI. Where pip's sources hold no such
wheel for this interpreter, its project page on that index (`<index>/torch/`, a flat list of torch's files only) is
added as a find-links source: it can offer nothing but torch, so every other package still comes from PyPI (or the
mirror), each file hash-checked against the lock. `HAR_CLIP_TORCH_INDEX` names another index (a mirror, or the
stand-in the clean-machine test serves); an unreachable one stops the install with one line naming it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

PASSED = {"find-links": "--find-links", "index-url": "--index-url"}
# pip config list names a setting `<section>.<key>`; the environment's section is `:env:`, which wins over files.
_PRECEDENCE = (":env:", "global", "install", "download")
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
TORCH_INDEX_ENV = "HAR_CLIP_TORCH_INDEX"
_TORCH_PIN = re.compile(r"^torch==(\S+)", re.MULTILINE)


class SourceUnreachableError(RuntimeError):
    """The index torch's CPU build comes from answered nothing; the message is the one line `make install` prints."""


def pip_settings(python: str = sys.executable) -> dict[str, str]:
    """{key: value} of the passed settings as pip would use them (environment first, then its config files)."""
    try:
        listing = subprocess.run(
            [python, "-m", "pip", "config", "list"], capture_output=True, text=True, check=True, timeout=60
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    found: dict[tuple[str, str], str] = {}
    for line in listing.splitlines():
        name, _, value = line.partition("=")
        section, _, key = name.rpartition(".")
        if key in PASSED and section in _PRECEDENCE:
            found[(section, key)] = value.strip().strip("'\"")
    settings = {}
    for key in PASSED:
        for section in _PRECEDENCE:
            if (section, key) in found:
                settings[key] = found[(section, key)]
                break
    return settings


def uv_source_args(settings: dict[str, str], find_links: bool = True) -> list[str]:
    """uv options for pip's settings; several find-links (whitespace-separated, as pip takes them) each get one.

    `find_links=False` for the CUDA lock: a machine's wheel folder typically holds the CPU build of torch, and a
    `torch==2.13.0` pin would match its `2.13.0+cpu` (the local version does not count in `==`)."""
    args: list[str] = []
    for key, option in PASSED.items():
        if key == "find-links" and not find_links:
            continue
        for value in settings.get(key, "").split():
            args += [option, value]
    return args


def torch_index() -> str:
    """The index torch's CPU build comes from: `HAR_CLIP_TORCH_INDEX`, else PyTorch's CPU index."""
    return (os.environ.get(TORCH_INDEX_ENV) or TORCH_CPU_INDEX).rstrip("/")


def locked_torch(lock_text: str) -> str | None:
    """The torch version a lock pins (`2.13.0+cpu`), None when it pins none."""
    match = _TORCH_PIN.search(lock_text)
    return match.group(1) if match else None


def local_torch_wheel(settings: dict[str, str], version: str, python_tag: str, machine: str) -> Path | None:
    """A wheel of torch `version` for this interpreter and machine in one of pip's local find-links folders."""
    for location in settings.get("find-links", "").split():
        folder = Path(location.removeprefix("file://"))
        if "://" in location and not location.startswith("file://") or not folder.is_dir():
            continue
        for wheel in sorted(folder.glob(f"torch-{version}-{python_tag}-*.whl")):
            if wheel.name.endswith(f"_{machine}.whl"):
                return wheel
    return None


def torch_source_args(settings: dict[str, str], lock_text: str, check: bool = True) -> list[str]:
    """`--find-links <index>/torch/` when the lock pins a CPU torch that pip's local sources do not hold, else none.

    With `check`, the page is fetched first (proxy settings from the environment, as pip and uv take them), so an
    unreachable index is one clear line instead of a resolver's error."""
    version = locked_torch(lock_text)
    if version is None or not version.endswith("+cpu"):
        return []
    python_tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    if local_torch_wheel(settings, version, python_tag, os.uname().machine) is not None:
        return []
    page = f"{torch_index()}/torch/"
    if check:
        try:
            with urllib.request.urlopen(page, timeout=60) as response:
                response.read(1)
        except (OSError, urllib.error.URLError, ValueError) as error:
            reason = getattr(error, "reason", error)
            raise SourceUnreachableError(
                f"torch=={version} (the CPU build) comes from {page}, which could not be reached ({reason}); "
                f"set {TORCH_INDEX_ENV} to a mirror of it, or HTTPS_PROXY/SSL_CERT_FILE for a proxy "
                "(docs/troubleshooting.md#installing)"
            ) from error
    return ["--find-links", page]
