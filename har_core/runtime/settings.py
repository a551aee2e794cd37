"""The typed settings a deployed model runs with: export formats, parity gates, the Bento's serving limits and names.

Torch-free and free of the training side, so the Bento image ships it; `har_core.config` builds the run
configuration on top of it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

BENTO_MODEL_NAME = "har_clip_classifier"
BENTO_SERVICE_NAME = "har_clip"
API_TOKEN_ENV = "HAR_CLIP_API_TOKEN"  # set: every API call needs `Authorization: Bearer <token>`
SERVING_CONFIG_ENV = "HAR_CLIP_SERVING_CONFIG"  # path of a serving YAML overriding bento/serving.yaml
BENTO_MODEL_ENV = "HAR_CLIP_BENTO_MODEL"  # BentoML model tag to serve (default: <BENTO_MODEL_NAME>:latest)
# where the Bento writes its prediction records; wins over `records.directory` (default: <BentoML home>/records)
RECORDS_DIR_ENV = "HAR_CLIP_RECORDS_DIR"


class StrictConfig(BaseModel):
    """Base for all configs: unknown keys are errors and values are immutable once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


ExportFormatName = Literal["pytorch", "torchscript", "onnx", "onnx-int8", "tensorrt"]


class ParityThresholds(StrictConfig):
    """What an export must reach against the PyTorch model on held-out images to be offered for deployment.

    Reduced precision (int8, fp16) moves every logit a little, so it flips the top-1 of images whose two best logits
    are near-tied, and which of those flip depends on the CPU that trained the weights. Such formats are judged the
    way quantisation tools judge them: top-1 agreement only where PyTorch's top-1 leads by `min_margin` logits or
    more, plus the relative accuracy lost on the labelled parity images (`max_accuracy_drop`, Intel Neural
    Compressor's default is 0.01), plus embedding cosine. fp32 formats keep `min_margin: 0` (every image counts).
    """

    min_top1_agreement: float = Field(0.99, ge=0, le=1)
    min_margin: float = Field(0.0, ge=0)  # agreement counts images whose reference top-1 leads top-2 by this much
    max_abs_logit_diff: float | None = Field(0.05, gt=0)  # None: not checked (int8 logits move more than fp32's)
    # (reference accuracy - export accuracy) / reference accuracy on the labelled parity images; None: not checked
    max_accuracy_drop: float | None = Field(None, ge=0, le=1)
    min_embedding_cosine: float = Field(0.999, ge=-1, le=1)


class VideoConfig(StrictConfig):
    """How a video is sampled, scored and cut into action segments, and the limits that bound what one video costs.

    Frames are taken at `sample_fps` (the first decoded frame at or after each step), scored `batch_size` at a time,
    smoothed with a centred moving average over `smoothing_window` sampled frames, and runs of one label shorter
    than `min_segment_s` are merged into a neighbour. Limits, each refused with a message naming it: the encoded
    size (`max_bytes`), the duration, the sampled frames scored (`max_frames`: model time and answer size), the
    pixels of one decoded frame (`max_frame_pixels`: the decoder's memory; FFmpeg itself refuses a larger frame, even
    one the header lied about), the pixels decoded in all (`max_decoded_pixels`), the frames decoded in all
    (`max_decoded_frames`: tiny frames cost time and demuxer index too) and the wall time of decoding and scoring
    (`max_decode_s`, checked at every frame, so a caller that gave up stops the work).
    """

    sample_fps: float = Field(2.0, gt=0, le=60)
    batch_size: int = Field(16, ge=1, le=256)
    smoothing_window: int = Field(3, ge=1)  # sampled frames averaged around each one (1: no smoothing)
    min_segment_s: float = Field(1.0, ge=0)
    max_bytes: int = Field(256 * 1024 * 1024, ge=1024)
    max_duration_s: float = Field(3600.0, gt=0)
    max_frames: int = Field(7200, ge=1)
    max_frame_pixels: int = Field(3840 * 2160, ge=1)
    max_decoded_pixels: int = Field(200_000_000_000, ge=1)
    max_decoded_frames: int = Field(1_000_000, ge=1)
    max_decode_s: float | None = Field(None, gt=0)  # None: no deadline (batch inference); the Bento: its timeout_s


# What the Bento accepts in one /predict_video request: a couple of minutes, scored within the request timeout.
SERVING_VIDEO = VideoConfig(
    max_bytes=50 * 1024 * 1024,
    max_duration_s=120.0,
    max_frames=240,
    max_frame_pixels=1920 * 1080,
    max_decoded_pixels=8_000_000_000,
    max_decoded_frames=120 * 60,  # two minutes at 60 fps
    max_decode_s=30.0,  # ServingConfig.timeout_s: past it the client has its 504, so the decoding thread stops
)


class RecordsConfig(StrictConfig):
    """What the Bento records of every answer for monitoring (bento/records.py; the schema and its reader:
    har_core.runtime.serve_records), and the disk the records may take.

    One JSON line per image or video answered; `embedding_sample_rate` of the image rows carry the image embedding
    (~6 KB each at 512 dimensions, so not every row); uploaded bytes only with `keep_images`, and only uploads up to
    `max_image_kb`. The files rotate at `max_file_mb`, and closed files are deleted oldest first to keep the directory
    within `max_total_mb`, every worker's live file counted at its full `max_file_mb`.
    """

    enabled: bool = True
    directory: str | None = None  # $HAR_CLIP_RECORDS_DIR wins; neither: <BentoML home>/records
    embedding_sample_rate: float = Field(0.1, ge=0, le=1)
    keep_images: bool = False
    max_image_kb: int = Field(512, ge=1)  # with keep_images: larger uploads are recorded without their bytes
    max_file_mb: float = Field(16.0, gt=0)
    max_total_mb: float = Field(1024.0, gt=0)

    @model_validator(mode="after")
    def _an_image_row_fits_a_file(self) -> RecordsConfig:
        """A row longer than `max_file_mb` makes a file of its own, past the file size the cap counts on."""
        if self.keep_images and self.max_image_kb * 1024 * 4 / 3 > self.max_file_mb * 1024 * 1024 / 2:
            raise ValueError(
                f"records.max_image_kb ({self.max_image_kb}) is too large for records.max_file_mb "
                f"({self.max_file_mb}): a kept image (base64, 4/3 of its bytes) must fit in half a file."
            )
        return self


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
    # Request bodies a worker holds at once, all requests together (bento/bodies.py): each in memory up to
    # spool_above_bytes, on disk ($TMPDIR, the pod's /tmp volume) beyond; past a budget for body_wait_s, 503 +
    # Retry-After. Without them, max_concurrency x the video route's 50 MiB was 12.5 GiB held in memory.
    spool_above_bytes: int = Field(1024 * 1024, ge=1024)
    max_buffered_bytes: int = Field(256 * 1024 * 1024, ge=1024)
    max_spooled_bytes: int = Field(2 * 1024 * 1024 * 1024, ge=1024)
    body_wait_s: float = Field(5.0, ge=0)
    max_batch_images: int = Field(32, ge=1)
    max_request_pixels: int = Field(128_000_000, ge=1)
    max_decoding_pixels: int = Field(64_000_000, ge=1)
    max_custom_labels: int = Field(64, ge=1)
    max_label_chars: int = Field(100, ge=1)
    default_top_k: int = Field(5, ge=1)
    workers: int = Field(1, ge=1)
    # serial: one model call at a time per worker, whichever route (bento/model_calls.py); parallel: /predict_batch,
    # /classify and /predict_video call the model concurrently (benchmarks/serving/serve_bench.py --only fairness
    # compares them)
    model_calls: Literal["serial", "parallel"] = "serial"
    threads: int | None = Field(None, ge=1)  # inference threads per worker; None: the runtime's default
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # The export's parity gate, re-run at startup on the parity set the Bento carries: `require` keeps a service
    # that fails it not ready (/readyz 503); `warn` serves anyway. Either way /metadata and the log say the result.
    startup_parity: Literal["require", "warn"] = "require"
    video: VideoConfig = SERVING_VIDEO  # /predict_video: sampling, smoothing and the limits of one upload
    records: RecordsConfig = RecordsConfig()  # what is recorded of every answer, for monitoring

    @model_validator(mode="after")
    def _records_cap_holds_every_worker(self) -> ServingConfig:
        """Each worker writes its own live file; the cap keeps those and at least one closed file."""
        records = self.records
        if records.max_total_mb < (self.workers + 1) * records.max_file_mb:
            raise ValueError(
                f"records.max_total_mb ({records.max_total_mb}) must be at least (workers + 1) x records.max_file_mb "
                f"= {(self.workers + 1) * records.max_file_mb}: every worker's live file and one closed file."
            )
        return self
