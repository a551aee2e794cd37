"""The viewer's settings: environment variables give the defaults, the sidebar can change them per session."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field

from har_core.evaluation.promotion import PRODUCTION_STAGE
from har_core.runtime.settings import API_TOKEN_ENV

BENTO_URL_ENV = "HAR_CLIP_BENTO_URL"  # e.g. http://127.0.0.1:3000; unset: predict with a local model
STAGE_ENV = "HAR_CLIP_VIEWER_STAGE"  # default stage of the local model: production, staging, latest or a number


class ViewerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    bento_url: str = ""
    api_token: str | None = None
    stage: str = PRODUCTION_STAGE
    top_k: int = Field(5, ge=1)
    bento_timeout_s: float = Field(30.0, gt=0)
    mistakes_shown: int = Field(24, ge=1)  # images drawn on the mistakes page (the table lists all)

    @classmethod
    def from_env(cls) -> ViewerSettings:
        return cls(
            bento_url=os.environ.get(BENTO_URL_ENV, ""),
            api_token=os.environ.get(API_TOKEN_ENV) or None,
            stage=os.environ.get(STAGE_ENV) or PRODUCTION_STAGE,
        )
