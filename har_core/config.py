"""Typed run configuration. YAML files under configs/ are validated against these models on load.

Every model forbids unknown keys, so a typo in a YAML file is an error that names the key instead of a
setting that is silently ignored.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from har_core.runtime.confidence import OodScoreName
from har_core.runtime.labels import DEFAULT_TEMPLATES, build_prompts
from har_core.runtime.settings import ExportFormatName, ParityThresholds, ServingConfig, StrictConfig, VideoConfig

DEFAULT_BACKBONE = "openai/clip-vit-base-patch16"
DEFAULT_HF_DATASET = "Bingsu/Human_Action_Recognition"
DEFAULT_CACHE_DIR = Path(".cache/har-clip")


class SyntheticDataConfig(StrictConfig):
    """Class-dependent drawings (a shape and a colour per class) that a model can learn offline."""

    images_per_class: int = Field(40, ge=4)
    image_size: int = Field(96, ge=16, le=1024)
    seed: int = 0


class SplitConfig(StrictConfig):
    """Stratified train/val/test fractions; the defaults are the seed project's 60/15/25."""

    train: float = Field(0.60, gt=0, lt=1)
    val: float = Field(0.15, gt=0, lt=1)
    test: float = Field(0.25, gt=0, lt=1)
    seed: int = 42

    @model_validator(mode="after")
    def _fractions_sum_to_one(self) -> SplitConfig:
        total = self.train + self.val + self.test
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"split fractions train+val+test must sum to 1, got {total:.4f}")
        return self


class DvcDataConfig(StrictConfig):
    """A DVC-tracked `<path>/<label>/*` image folder as it was at git revision `rev` of `repo`.

    `repo` is a local git repository or a git URL; `rev` a tag, branch or commit (None: the repository's HEAD);
    `remote` the DVC remote to fetch from when the data is not in the repository's DVC cache (None: its default).
    """

    repo: str = "."
    path: str = "data/har-images"
    rev: str | None = None
    remote: str | None = None


class DataConfig(StrictConfig):
    """Where images come from and how they are split.

    `huggingface` exports the HF dataset at `hf_revision` to `<cache_dir>/<dataset>-<split>@<commit>/<label>/*`
    once; `folder` reads an existing `<root>/<label>/*` or pre-split `<root>/{train,val,test}/<label>/*` tree;
    `synthetic` draws one under `cache_dir`; `dvc` fetches a DVC-tracked folder at a git revision (see
    `DvcDataConfig`). All end in the same manifest (see har_core.data.scan). `labels` left unset means the labels
    that have images, in canonical order; a list forces that label set.
    """

    source: Literal["huggingface", "folder", "synthetic", "dvc"] = "huggingface"
    hf_dataset: str = DEFAULT_HF_DATASET
    hf_split: str = "train"
    hf_revision: str = "main"
    dvc: DvcDataConfig = DvcDataConfig()
    root: Path | None = None
    cache_dir: Path = DEFAULT_CACHE_DIR / "data"
    labels: tuple[str, ...] | None = None  # None: the labels present in the data, in HAR_LABELS order
    synthetic: SyntheticDataConfig = SyntheticDataConfig()
    split: SplitConfig = SplitConfig()
    on_corrupt: Literal["error", "skip"] = "error"

    @model_validator(mode="after")
    def _folder_needs_root(self) -> DataConfig:
        if self.source == "folder" and self.root is None:
            raise ValueError("data.root is required when data.source is 'folder'")
        if self.labels is not None:
            build_prompts(self.labels, ["{}"])  # validates the label list
        return self


class TinyBackboneConfig(StrictConfig):
    """A small random-init CLIP built locally, so tests and the offline path need no download."""

    image_size: int = Field(64, ge=16)
    patch_size: int = Field(16, ge=2)
    hidden_size: int = Field(64, ge=8)
    num_layers: int = Field(2, ge=1)
    num_heads: int = Field(2, ge=1)
    projection_dim: int = Field(64, ge=8)
    seed: int = 0

    @model_validator(mode="after")
    def _shapes_fit(self) -> TinyBackboneConfig:
        if self.image_size % self.patch_size:
            raise ValueError("tiny_backbone.image_size must be a multiple of tiny_backbone.patch_size")
        if self.hidden_size % self.num_heads:
            raise ValueError("tiny_backbone.hidden_size must be a multiple of tiny_backbone.num_heads")
        return self


class ClassifierConfig(StrictConfig):
    """The CLIP backbone and how its class embeddings are built.

    `backbone` is a Hugging Face Hub id or a local directory in HF format. With `tiny_backbone` set, a tiny
    CLIP is built under `cache_dir` and loaded through the same `from_pretrained` path instead.
    """

    backbone: str = DEFAULT_BACKBONE
    tiny_backbone: TinyBackboneConfig | None = None
    cache_dir: Path = DEFAULT_CACHE_DIR / "backbones"
    templates: tuple[str, ...] = DEFAULT_TEMPLATES
    freeze_vision: bool = False

    @model_validator(mode="after")
    def _templates_are_valid(self) -> ClassifierConfig:
        build_prompts(["label"], self.templates)
        return self


class DistributedConfig(StrictConfig):
    """How many processes train and how they talk. `strategy: none` trains in the step's own process.

    `ddp` and `fsdp` launch `nproc_per_node` workers with torchrun (`auto`: one per GPU, 1 on a CPU-only
    machine); `backend: auto` is NCCL on CUDA, gloo otherwise. `training.batch_size` stays the global batch.
    `timeout_s` bounds how long a collective waits for a peer that stopped answering (a lost node), instead of
    gloo's 30 minutes; it must outlast the longest stretch one rank works alone (rank 0 writing a checkpoint).
    """

    strategy: Literal["none", "ddp", "fsdp"] = "none"
    nproc_per_node: Literal["auto"] | int = Field("auto", description="workers on this node: auto or N >= 1")
    backend: Literal["auto", "gloo", "nccl"] = "auto"
    timeout_s: int = Field(600, ge=10, description="process-group timeout: a collective fails after this long")

    @model_validator(mode="after")
    def _nproc_is_positive(self) -> DistributedConfig:
        if self.nproc_per_node != "auto" and self.nproc_per_node < 1:
            raise ValueError("distributed.nproc_per_node must be 'auto' or an integer >= 1")
        return self


class TrainingConfig(StrictConfig):
    """Optimiser, schedule and loop settings; the defaults are the seed project's (lr 3e-6, batch 128, 15 epochs).

    `batch_size` is the global batch: on N processes each takes batch_size / N. `resume_from` is a resume
    checkpoint directory or `latest` (the newest resumable checkpoint under `output_dir` for the same model and
    labels). Resume checkpoints are written every `checkpoint_every_n_steps` optimiser steps (if set) and at each
    epoch end; `keep_last_n` of them are kept besides `best/` and `last/`.
    `decoded_cache` decodes every train and val image once into a memory-mapped uint8 file (resized for the model,
    in the user's private cache, `decoded_cache_max_gib` at most for all datasets together), so later epochs read
    pixels instead of decoding files (har_core/data/decoded_cache.py); a dataset over the bound is not cached.
    """

    epochs: int = Field(15, ge=1)
    batch_size: int = Field(128, ge=1)
    learning_rate: float = Field(3e-6, gt=0)
    weight_decay: float = Field(0.1, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    grad_clip_norm: float | None = Field(1.0, gt=0)
    augmentation: Literal["none", "light", "medium", "strong"] = "light"
    early_stopping_patience: int | None = Field(3, ge=1)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    num_workers: int = Field(2, ge=0)
    decoded_cache: bool = True
    decoded_cache_max_gib: float = Field(16.0, gt=0)
    seed: int = 42
    output_dir: Path = DEFAULT_CACHE_DIR / "checkpoints"
    distributed: DistributedConfig = DistributedConfig()
    resume_from: Literal["latest"] | Path | None = None
    checkpoint_every_n_steps: int | None = Field(None, ge=1)
    keep_last_n: int = Field(1, ge=1)
    compile: bool = False


class CalibrationConfig(StrictConfig):
    """How the fine-tuned model's confidences are calibrated after training (docs/confidence.md).

    Temperatures are fitted by NLL on `split` (None: the split evaluation does not score; never the evaluated one,
    whose figures would then report their own fit); `coverage` is the share of that split's
    images the abstention thresholds answer; `ood_in_distribution` the share of them the out-of-distribution
    threshold calls in distribution."""

    enabled: bool = True
    split: Literal["val", "test"] | None = None
    coverage: float = Field(0.95, gt=0, le=1)
    ood_score: OodScoreName = "mahalanobis"
    ood_in_distribution: float = Field(0.95, gt=0, lt=1)
    ood_fit_images: int = Field(4096, ge=1)  # train images (a seeded sample) the mahalanobis statistics come from
    zero_shot_subsets: int = Field(4, ge=1)  # random custom-label sets per image for the zero-shot temperature
    seed: int = 0


class EvaluationConfig(StrictConfig):
    """Which split to score and how, and how confidences are calibrated first."""

    split: Literal["val", "test"] = "test"
    batch_size: int = Field(128, ge=1)
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    num_workers: int = Field(2, ge=0)
    calibration: CalibrationConfig = CalibrationConfig()

    @property
    def calibration_split(self) -> Literal["val", "test"]:
        return self.calibration.split or ("val" if self.split == "test" else "test")

    @model_validator(mode="after")
    def _calibrated_elsewhere(self) -> EvaluationConfig:
        if self.calibration.enabled and self.calibration.split == self.split:
            raise ValueError(
                f"evaluation.calibration.split is {self.split!r}, the split being evaluated: a temperature and "
                "thresholds fitted on the evaluated images would report their own fit. Use the other split."
            )
        return self


def _default_gates() -> dict[str, ParityThresholds]:
    """fp32 formats compute what PyTorch computes: every image's top-1 must agree. Reduced precision (int8, TensorRT's
    fp16) flips near-tied top-1s, differently with the weights each CPU trains, so it is judged on accuracy lost
    (relative, Intel Neural Compressor's default of 1 %) and on agreement where PyTorch leads by 0.5 logits or more
    (docs/export.md, "The parity gate")."""
    fp32 = ParityThresholds(min_top1_agreement=0.99, max_abs_logit_diff=0.05, min_embedding_cosine=0.9999)
    reduced = {"min_top1_agreement": 0.99, "min_margin": 0.5, "max_accuracy_drop": 0.01}
    return {
        "pytorch": ParityThresholds(min_top1_agreement=1.0, max_abs_logit_diff=1e-4, min_embedding_cosine=0.99999),
        "torchscript": fp32,
        "onnx": fp32,
        "onnx-int8": ParityThresholds(**reduced, max_abs_logit_diff=None, min_embedding_cosine=0.99),
        "tensorrt": ParityThresholds(**reduced, max_abs_logit_diff=0.5, min_embedding_cosine=0.999),
    }


class ExportConfig(StrictConfig):
    """Which formats to export, how, and the parity gate each must pass (thresholds per format)."""

    formats: tuple[ExportFormatName, ...] = ("pytorch", "torchscript", "onnx", "onnx-int8", "tensorrt")
    text_tower: bool = True  # ONNX text tower + tokenizer in every export: open-vocabulary labels without torch
    opset: int = Field(18, ge=17)
    parity_split: Literal["val", "test"] = "val"
    parity_images: int = Field(64, ge=1)
    # The first N parity images and PyTorch's outputs on them travel in every export (and so in the Bento), so the
    # serving host re-runs the gate at startup; 0 leaves the set out (the service then reports "not checked").
    serving_parity_images: int = Field(32, ge=0)
    gates: dict[ExportFormatName, ParityThresholds] = Field(default_factory=_default_gates)
    # uint8: exact on every x86 CPU (U8U8); int8-reduce-range: 7-bit int8 weights, also exact everywhere, ~1.5x
    # faster than uint8 on ViT-B/16 but less accurate (benchmarks/export/int8_settings.py; README "int8 that
    # computes …").
    int8_weights: Literal["uint8", "int8-reduce-range"] = "uint8"
    # fused: onnxruntime's transformer fusions (attention, skip-LayerNorm; com.microsoft operators, which onnxruntime
    # runs on CPU and CUDA) in the onnx and onnx-int8 graphs; standard: only standard ONNX operators (for other
    # runtimes). TensorRT always builds from the standard graph.
    onnx_graph: Literal["fused", "standard"] = "fused"
    tensorrt_fp16: bool = True
    tensorrt_max_batch: int = Field(32, ge=1)
    tensorrt_workspace_mib: int = Field(2048, ge=64)
    device: Literal["auto", "cpu", "cuda"] = "auto"  # where the parity gate runs each format
    output_dir: Path = DEFAULT_CACHE_DIR / "exports"  # <output_dir>/<run name>/<format>/

    @model_validator(mode="after")
    def _formats_are_unique_and_gated(self) -> ExportConfig:
        if len(set(self.formats)) != len(self.formats):
            raise ValueError(f"export.formats lists a format twice: {list(self.formats)}")
        missing = sorted(set(self.formats) - set(self.gates))
        if missing:
            raise ValueError(f"export.gates has no thresholds for {missing}")
        return self


class BenchmarkConfig(StrictConfig):
    """Accuracy on the evaluation split through each format, latency at batch 1 and throughput at `batch_size`;
    warm-up iterations are never timed."""

    batch_size: int = Field(8, ge=1)
    max_accuracy_images: int | None = Field(None, ge=1)  # None: the whole evaluation split
    warmup: int = Field(3, ge=0)
    latency_iterations: int = Field(20, ge=2)
    throughput_iterations: int = Field(5, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = Field(None, ge=1)


class PromotionConfig(StrictConfig):
    """Production only when better than the current production model on the candidate's test split.

    `force: true` promotes regardless (and is recorded as used on the model version).
    """

    metric: Literal["accuracy", "macro_f1", "weighted_f1"] = "accuracy"
    margin: float = Field(0.01, ge=0, le=1)
    min_metric: float = Field(0.5, ge=0, le=1)  # absolute floor, also for the first model
    force: bool = False
    batch_size: int = Field(64, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"


class TrainingPipelineParameters(StrictConfig):
    """The `parameters:` block of a training run config (configs/training.yaml, configs/quickstart.yaml)."""

    data: DataConfig = DataConfig()
    classifier: ClassifierConfig = ClassifierConfig()
    training: TrainingConfig = TrainingConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    export: ExportConfig = ExportConfig()
    benchmark: BenchmarkConfig = BenchmarkConfig()
    promotion: PromotionConfig = PromotionConfig()


class DeploymentConfig(StrictConfig):
    """Which model version and export format to deploy, and how the deployment is reached and checked.

    `model_version`: a stage (`production`, `staging`) or a version number. `format`: None picks the fastest format
    that passed its parity gate in that version's benchmark table (measured where training ran).
    """

    model_version: Literal["production", "staging", "latest"] | int = "production"
    format: ExportFormatName | None = None
    host: str = "127.0.0.1"
    port: int | None = Field(None, ge=1, le=65535)  # None: a free port
    ready_timeout_s: int = Field(180, ge=10)
    base_image: str | None = None  # container builds on hosts without a registry (bento_ops/container/base_image.sh)
    gpu: bool = False  # onnxruntime-gpu and a CUDA base image in the Bento's container definition


class DeploymentPipelineParameters(StrictConfig):
    """The `parameters:` block of a deployment run config (configs/deployment.yaml)."""

    deployment: DeploymentConfig = DeploymentConfig()
    serving: ServingConfig = ServingConfig()


class InferenceInputConfig(StrictConfig):
    """The files a batch inference run scores: images and videos (by suffix) anywhere below one folder.

    `folder`: `path` is a local folder. `artifact_store`: `path` is a prefix on the active stack's artifact store
    (`s3://bucket/incoming/` on an S3 store, or relative to the store's root), read through the store's own
    credentials, so it works wherever the scoring step runs. `dvc`: the DVC-tracked folder `dvc` names, at a git
    revision (fetched once per version, md5-checked, as `data.source: dvc` is for training).
    """

    source: Literal["folder", "artifact_store", "dvc"] = "folder"
    path: str | None = None
    dvc: DvcDataConfig = DvcDataConfig()
    cache_dir: Path = DEFAULT_CACHE_DIR / "data"  # where DVC versions are fetched to
    max_files: int = Field(100_000, ge=1)  # more files found is an error: split the input
    max_image_bytes: int = Field(64 * 1024 * 1024, ge=1024)  # a larger image file is unreadable (listed)

    @model_validator(mode="after")
    def _path_fits_the_source(self) -> InferenceInputConfig:
        if self.source in ("folder", "artifact_store") and not self.path:
            raise ValueError(f"input.path is required with input.source: {self.source}")
        if self.source == "dvc" and self.path:
            raise ValueError("input.path is not used with input.source: dvc; set input.dvc.path")
        return self


class InferenceConfig(StrictConfig):
    """Which model scores the files, how, and what happens to files that cannot be read.

    `model_version`: a stage or a version number. `format`: None picks the format that version is deployed as (the
    deployment pipeline records it on the version), else the fastest format that passed its parity gate.
    `on_error: skip` lists unreadable files in the summary and goes on; `fail` stops at the first one.
    """

    model_version: Literal["production", "staging", "latest"] | int = "production"
    format: ExportFormatName | None = None
    input: InferenceInputConfig = InferenceInputConfig(path="data/incoming")
    top_k: int = Field(5, ge=1)
    batch_size: int = Field(32, ge=1, le=1024)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = Field(None, ge=1)
    on_error: Literal["skip", "fail"] = "skip"
    video: VideoConfig = VideoConfig()
    output_dir: Path = DEFAULT_CACHE_DIR / "predictions"  # the CSV export: <output_dir>/<run name>.csv


class InferencePipelineParameters(StrictConfig):
    """The `parameters:` block of a batch inference run config (configs/inference.yaml)."""

    inference: InferenceConfig = InferenceConfig()


class MultiNodeTrainingParameters(TrainingPipelineParameters):
    """The multi-node variant (pipelines/multinode_training.py): `nodes` must equal the train step's pod_count."""

    nodes: int = Field(2, ge=1)


class PrepareConfig(StrictConfig):
    """The `prepare:` block of params.yaml: which source the DVC `prepare` stage materialises, and where to."""

    output: Path = Path("data/har-images")
    data: DataConfig = DataConfig(source="synthetic")

    @model_validator(mode="after")
    def _source_is_materialisable(self) -> PrepareConfig:
        if self.data.source == "dvc":
            raise ValueError("prepare.data.source cannot be 'dvc': the prepare stage produces the DVC version")
        return self
