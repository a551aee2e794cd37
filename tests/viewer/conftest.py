"""The viewer's tests share the session's one tiny training run (tests/conftest.py: `tiny_training_run`)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def viewer_run(tiny_training_run):
    """(the tiny run, its model version); read-only: tests must not add runs."""
    return tiny_training_run


@pytest.fixture(scope="session")
def calibrated_bento_url(bento_model, tmp_path_factory):
    """`bentoml serve` of the service in bento/ on the tests' calibrated tiny export (`tiny_exports`), no token.

    Its thresholds were fitted on 120 images, so it abstains on some blank, noise or unseen-shape images; the tiny
    training run's were fitted on 18 validation images at 95 % coverage, so it answers everything it is shown."""
    from bento_ops.server import BentoServer
    from har_core.runtime.settings import API_TOKEN_ENV, BENTO_MODEL_ENV

    log = tmp_path_factory.mktemp("viewer-calibrated-bento") / "serve.log"
    env = {BENTO_MODEL_ENV: str(bento_model.tag), API_TOKEN_ENV: ""}
    with BentoServer("bento.service:HarClipService", log, env=env) as server:
        yield server.url
