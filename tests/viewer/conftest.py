"""The viewer's tests share the session's one tiny training run (tests/conftest.py: `tiny_training_run`)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def viewer_run(tiny_training_run):
    """(the tiny run, its model version); read-only: tests must not add runs."""
    return tiny_training_run
