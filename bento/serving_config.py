"""Where the service's settings come from: `HAR_CLIP_SERVING_CONFIG`, else `serving.yaml` beside this module."""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import ValidationError

from har_core.runtime.settings import BENTO_MODEL_ENV, BENTO_MODEL_NAME, SERVING_CONFIG_ENV, ServingConfig

HERE = Path(__file__).resolve().parent
SERVING_FILE = HERE / "serving.yaml"
MODEL_TAG_FILE = "bento_model.txt"  # written into a built Bento: the model it is pinned to


def load_serving_config(path: str | Path | None = None) -> ServingConfig:
    """The validated serving settings; a bad file is an error naming the file and the key."""
    path = Path(path or os.environ.get(SERVING_CONFIG_ENV) or SERVING_FILE)
    if not path.is_file():
        raise FileNotFoundError(f"Serving config {str(path)!r} does not exist.")
    try:
        return ServingConfig.model_validate(yaml.safe_load(path.read_text()) or {})
    except ValidationError as error:
        raise ValueError(f"{path}: invalid serving config:\n{error}") from error


def write_serving_config(config: ServingConfig, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    return path


def bento_model_tag() -> str:
    """`HAR_CLIP_BENTO_MODEL`, else the tag a built Bento is pinned to, else the newest har-clip model."""
    pinned = HERE / MODEL_TAG_FILE
    return (
        os.environ.get(BENTO_MODEL_ENV)
        or (pinned.read_text().strip() if pinned.is_file() else "")
        or f"{BENTO_MODEL_NAME}:latest"
    )
