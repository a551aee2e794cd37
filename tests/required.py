"""Skips for a missing tool that CI must not take silently.

A developer without podman or Chromium gets a skip with the reason. The landing CI runs `.ci/run` with `CI=true`
and installs every tool below first, so there the same skip is a failure: a failed `apt-get install` would
otherwise turn the container, browser, qemu and Prometheus tests into skips and leave the run green. GPU tests are
not here: CI never has a GPU, and they stay skips.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

# What `.ci/run` installs (Debian package names) or needs (root, for the container tests).
REQUIRED_IN_CI = ("podman", "runc", "debootstrap", "chromium", "qemu-user", "prometheus", "root")


def in_ci() -> bool:
    """True under the landing CI (`CI=true`, as GitHub Actions and .ci/run's caller set it)."""
    return os.environ.get("CI", "").lower() == "true"


def skip_without(requirement: str, reason: str) -> NoReturn:
    """Skip for a missing `requirement` (one of REQUIRED_IN_CI); under CI=true, fail instead."""
    if requirement not in REQUIRED_IN_CI:
        raise ValueError(f"{requirement!r} is not a CI requirement; use pytest.skip")
    if in_ci():
        pytest.fail(f"CI=true requires {requirement}, and it is missing: {reason}", pytrace=False)
    pytest.skip(reason)
