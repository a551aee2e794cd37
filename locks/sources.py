"""Hand pip's package sources on to uv, which reads none of pip's configuration.

A machine's pip config (pip.conf files, PIP_* variables) may point at a local folder of wheels or at a mirror: the
CPU build of torch often comes from there (`find-links`), so `make lock` and `make install` pass these settings to
uv as options. Only `find-links` and `index-url` are passed: an extra index would narrow uv's choice of files for
every package it carries (uv takes a package from the first index that has it), which is not what pip does.
"""

from __future__ import annotations

import subprocess
import sys

PASSED = {"find-links": "--find-links", "index-url": "--index-url"}
# pip config list names a setting `<section>.<key>`; the environment's section is `:env:`, which wins over files.
_PRECEDENCE = (":env:", "global", "install", "download")


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
