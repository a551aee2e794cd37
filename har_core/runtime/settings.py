"""The typed settings a deployed model runs with: export formats, parity gates, the Bento's serving limits and names.

Torch-free and free of the training side, so the Bento image ships it; `har_core.config` builds the run
configuration on top of it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

BENTO_MODEL_NAME = "har_clip_classifier"
BENTO_SERVICE_NAME = "har_clip"
API_TOKEN_ENV = "HAR_CLIP_API_TOKEN"  # set: every API call needs `Authorization: Bearer <token>`
SERVING_CONFIG_ENV = "HAR_CLIP_SERVING_CONFIG"  # path of a serving YAML overriding bento/serving.yaml
BENTO_MODEL_ENV = "HAR_CLIP_BENTO_MODEL"  # BentoML model tag to serve (default: <BENTO_MODEL_NAME>:latest)


class StrictConfig(BaseModel):
    """Base for all configs: unknown keys are errors and values are immutable once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


ExportFormatName = Literal["pytorch", "torchscript", "onnx", "onnx-int8", "tensorrt"]


class ParityThresholds(StrictConfig):
    """What an export must reach against the PyTorch model on held-out images to be offered for deployment."""

    min_top1_agreement: float = Field(0.99, ge=0, le=1)
    max_abs_logit_diff: float | None = Field(0.05, gt=0)  # None: not checked (int8 logits move more than fp32's)
    min_embedding_cosine: float = Field(0.999, ge=-1, le=1)


class ServingConfig(StrictConfig):
    """The Bento service's batching, limits and access settings (bento/serving.yaml; deployment configs override).

    `max_latency_ms` is BentoML's batching deadline: a request still queued after it is answered 503, so it bounds
    queueing, not model time. `timeout_s` answers 504 when a request takes longer end to end.
    `max_request_pixels` bounds the pixels one request decodes (413 beyond it); `max_decoding_pixels` bounds the pixels
    being decoded at once in a worker across all requests (the rest wait): compressed size says nothing about decoded
    size (a one-colour 64 Mpx PNG is ~200 kB), so these, not `max_request_bytes`, bound a worker's memory.
    """

    max_batch_size: int = Field(16, ge=2)
    max_latency_ms: int = Field(10_000, ge=1)
    timeout_s: float = Field(30.0, gt=0)
    max_concurrency: int | None = Field(256, ge=1)  # more requests in flight are answered 429
    max_request_bytes: int = Field(20 * 1024 * 1024, ge=1024)
    max_batch_images: int = Field(32, ge=1)
    max_request_pixels: int = Field(128_000_000, ge=1)
    max_decoding_pixels: int = Field(64_000_000, ge=1)
    max_custom_labels: int = Field(64, ge=1)
    max_label_chars: int = Field(100, ge=1)
    default_top_k: int = Field(5, ge=1)
    workers: int = Field(1, ge=1)
    threads: int | None = Field(None, ge=1)  # inference threads per worker; None: the runtime's default
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # The export's parity gate, re-run at startup on the parity set the Bento carries: `require` keeps a service
    # that fails it not ready (/readyz 503); `warn` serves anyway. Either way /metadata and the log say the result.
    startup_parity: Literal["require", "warn"] = "require"
