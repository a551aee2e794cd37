"""Typed run configuration. YAML files under configs/ are validated against these models on load.

Every model forbids unknown keys, so a typo in a YAML file is an error that names the key instead of a
setting that is silently ignored.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from har_core.labels import DEFAULT_TEMPLATES, HAR_LABELS, build_prompts

DEFAULT_BACKBONE = "openai/clip-vit-base-patch16"
DEFAULT_HF_DATASET = "Bingsu/Human_Action_Recognition"
DEFAULT_CACHE_DIR = Path(".cache/har-clip")


class StrictConfig(BaseModel):
    """Base for all configs: unknown keys are errors and values are immutable once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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
    once; `folder` reads an existing `<root>/<label>/*.jpg` tree; `synthetic` draws one under `cache_dir`; `dvc`
    fetches a DVC-tracked folder at a git revision (see `DvcDataConfig`). All end in the same manifest.
    """

    source: Literal["huggingface", "folder", "synthetic", "dvc"] = "huggingface"
    hf_dataset: str = DEFAULT_HF_DATASET
    hf_split: str = "train"
    hf_revision: str = "main"
    dvc: DvcDataConfig = DvcDataConfig()
    root: Path | None = None
    cache_dir: Path = DEFAULT_CACHE_DIR / "data"
    labels: tuple[str, ...] = HAR_LABELS
    synthetic: SyntheticDataConfig = SyntheticDataConfig()
    split: SplitConfig = SplitConfig()
    on_corrupt: Literal["error", "skip"] = "error"

    @model_validator(mode="after")
    def _folder_needs_root(self) -> DataConfig:
        if self.source == "folder" and self.root is None:
            raise ValueError("data.root is required when data.source is 'folder'")
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


class TrainingConfig(StrictConfig):
    """Optimiser, schedule and loop settings; the defaults are the seed project's (lr 3e-6, batch 128, 15 epochs)."""

    epochs: int = Field(15, ge=1)
    batch_size: int = Field(128, ge=1)
    learning_rate: float = Field(3e-6, gt=0)
    weight_decay: float = Field(0.1, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    grad_clip_norm: float | None = Field(1.0, gt=0)
    augmentation: Literal["none", "light", "medium", "strong"] = "light"
    early_stopping_patience: int | None = Field(3, ge=1)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_workers: int = Field(2, ge=0)
    seed: int = 42
    output_dir: Path = DEFAULT_CACHE_DIR / "checkpoints"


class EvaluationConfig(StrictConfig):
    """Which split to score and how."""

    split: Literal["val", "test"] = "test"
    batch_size: int = Field(128, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_workers: int = Field(2, ge=0)


class TrainingPipelineParameters(StrictConfig):
    """The `parameters:` block of a training run config (configs/training.yaml, configs/quickstart.yaml)."""

    data: DataConfig = DataConfig()
    classifier: ClassifierConfig = ClassifierConfig()
    training: TrainingConfig = TrainingConfig()
    evaluation: EvaluationConfig = EvaluationConfig()


class PrepareConfig(StrictConfig):
    """The `prepare:` block of params.yaml: which source the DVC `prepare` stage materialises, and where to."""

    output: Path = Path("data/har-images")
    data: DataConfig = DataConfig(source="synthetic")

    @model_validator(mode="after")
    def _source_is_materialisable(self) -> PrepareConfig:
        if self.data.source == "dvc":
            raise ValueError("prepare.data.source cannot be 'dvc': the prepare stage produces the DVC version")
        return self
