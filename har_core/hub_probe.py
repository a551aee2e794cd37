"""Fail-fast checks for Hugging Face Hub resources, so offline runs stop with advice instead of a deep traceback."""

from __future__ import annotations

from typing import Literal

import huggingface_hub
from huggingface_hub import constants as hub_constants

PROBE_TIMEOUT_S = 10.0


class HubUnavailableError(RuntimeError):
    """A Hub model or dataset the run needs is neither cached nor reachable."""


def ensure_hub_resource(repo_id: str, repo_type: Literal["model", "dataset"], fix: str) -> None:
    """Pass if `repo_id` is in the local HF cache or the Hub answers for it; raise with `fix` otherwise."""
    cached_file = "config.json" if repo_type == "model" else "README.md"
    if isinstance(huggingface_hub.try_to_load_from_cache(repo_id, cached_file, repo_type=repo_type), str):
        return
    if hub_constants.HF_HUB_OFFLINE:
        raise HubUnavailableError(f"HF_HUB_OFFLINE is set and {repo_type} {repo_id!r} is not in the local cache. {fix}")
    try:
        huggingface_hub.repo_info(repo_id, repo_type=repo_type, timeout=PROBE_TIMEOUT_S)
    except Exception as error:  # network, auth and not-found errors all mean: this run cannot get it
        raise HubUnavailableError(
            f"Cannot reach Hugging Face Hub {repo_type} {repo_id!r} ({type(error).__name__}: {error}). {fix}"
        ) from error
