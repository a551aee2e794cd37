"""Shared fixtures. ZenML gets a clean, throw-away store for the whole session (set before ZenML is imported)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="har-clip-tests-"))

# Must happen before anything imports zenml: the store location is read once, at import.
os.environ["ZENML_CONFIG_PATH"] = str(_SESSION_HOME / "zenml")
os.environ["ZENML_ANALYTICS_OPT_IN"] = "false"
os.environ["ZENML_REPOSITORY_PATH"] = str(_SESSION_HOME / "no-repository")  # ignore a developer's .zen
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["HAR_CLIP_DATA_CACHE"] = str(_SESSION_HOME / "unpacked-data")  # datasets unpacked from artifacts
os.environ["WANDB_DIR"] = str(_SESSION_HOME)  # offline W&B runs land in <session>/wandb/


def pytest_sessionfinish(session, exitstatus) -> None:
    shutil.rmtree(_SESSION_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def session_dir() -> Path:
    return _SESSION_HOME


@pytest.fixture(scope="session")
def tiny_classifier_config(session_dir: Path):
    from har_core.config import ClassifierConfig, TinyBackboneConfig

    return ClassifierConfig(tiny_backbone=TinyBackboneConfig(), cache_dir=session_dir / "backbones")


@pytest.fixture(scope="session")
def tiny_model(tiny_classifier_config):
    """A zero-shot tiny CLIP classifier over the 15 HAR labels (read-only: copy before mutating)."""
    from har_core.labels import HAR_LABELS
    from har_core.model import build_classifier

    return build_classifier(tiny_classifier_config, HAR_LABELS)


@pytest.fixture(scope="session")
def synthetic_root(session_dir: Path) -> Path:
    """Synthetic image folder, 8 images per label at 64 px."""
    from har_core.config import SyntheticDataConfig
    from har_core.labels import HAR_LABELS
    from har_core.synthetic import generate_synthetic_images

    return generate_synthetic_images(
        session_dir / "synthetic", HAR_LABELS, SyntheticDataConfig(images_per_class=8, image_size=64)
    )


@pytest.fixture(scope="session")
def zenml_client(session_dir: Path):
    """A ZenML client on the session's clean store, with the project's `local` stack registered and active."""
    from zenml.client import Client
    from zenml.utils import source_utils

    from stacks.register import load_stack_spec, register_stack

    source_utils.set_custom_source_root(str(PROJECT_ROOT))
    register_stack(load_stack_spec("local"), activate=True)
    return Client()
