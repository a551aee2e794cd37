"""The export manifest: everything a consumer needs to run one exported format, with nothing to guess.

Torch-free (pydantic + hashlib), so the Bento service and the viewer read it without the training stack. One
format's directory holds its files and `export_manifest.json`; the export step's artifact (`ExportBundle`) holds
one such directory per format plus `exports.json` saying which formats passed their parity gate.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from har_core.runtime.hashing import file_sha256
from har_core.runtime.json_file import JsonFileModel
from har_core.runtime.model_card import HarClipModelCard
from har_core.runtime.preprocess import PreprocessConfig
from har_core.runtime.settings import ExportFormatName, ParityThresholds

ExportFormat = ExportFormatName  # Literal["pytorch", "torchscript", "onnx", "onnx-int8", "tensorrt"]
EXPORT_MANIFEST_FILE = "export_manifest.json"
EXPORT_BUNDLE_FILE = "exports.json"
MANIFEST_VERSION = 1
ONNX_FORMATS: frozenset[str] = frozenset({"onnx", "onnx-int8"})

# File roles every consumer may rely on (other roles, e.g. the files of a PyTorch model directory, are listed too).
MODEL_ROLE = "model"  # the image model: .onnx, TorchScript .pt, TensorRT .engine, or the har_clip.json of a dir
CLASS_EMBEDDINGS_ROLE = "class_embeddings"  # safetensors: "class_embeddings" (labels, dim), float32
MODEL_CARD_ROLE = "model_card"  # har_clip.json
TEXT_MODEL_ROLE = "text_model"  # ONNX: input_ids, attention_mask -> normalised text embeddings
TOKENIZER_ROLE = "tokenizer"  # tokenizer.json (HF `tokenizers` format)
PARITY_SET_ROLE = "parity_set"  # safetensors: held-out "pixels" and the PyTorch "image_embeddings" and "logits"
OOD_STATISTICS_ROLE = "ood_statistics"  # safetensors: "class_means", "precision" (har_core.runtime.confidence)
REFERENCE_ROLE = "monitoring_reference"  # safetensors: val "embeddings", "predicted", "confidence" (runtime.reference)


class ExportError(RuntimeError):
    """An export could not be written, verified or used."""


class ExportRejectedError(ExportError):
    """The export failed its parity gate (or was never gated), so it must not be served."""


class ExportedFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str  # relative to the export directory
    sha256: str
    size_bytes: int


class TensorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    dtype: Literal["float32", "int64"]
    shape: tuple[int | str, ...]  # str: a dynamic axis ("batch", "sequence")


class ParityResult(BaseModel):
    """The format's outputs against the PyTorch model's on the same held-out images."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    passed: bool
    num_images: int
    top1_agreement: float  # over the images whose reference margin is clear (thresholds.min_margin)
    max_abs_logit_diff: float  # on calibrated logits (raw / temperature)
    min_embedding_cosine: float
    mean_embedding_cosine: float
    thresholds: ParityThresholds
    failures: tuple[str, ...] = ()  # which threshold was missed, in words
    # None in manifests written before the margin and accuracy criteria existed
    clear_images: int | None = None  # images whose reference top-1 leads by thresholds.min_margin or more
    top1_agreement_all: float | None = None  # over every image, near-ties included (reported, not gated)
    reference_accuracy: float | None = None  # PyTorch's accuracy on the labelled parity images
    accuracy: float | None = None  # this format's; both None when the images carried no labels
    accuracy_drop: float | None = None  # relative: (reference - this) / reference
    temperature: float | None = None  # the logits compared were divided by it (the calibration's; None: before it)


class TextTowerSpec(BaseModel):
    """The ONNX text tower and tokenizer, so new labels get embeddings without torch (open vocabulary)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    inputs: tuple[TensorSpec, ...]
    output: TensorSpec
    max_length: int
    pad_token_id: int


class ModelSource(BaseModel):
    """Where the exported weights came from (ZenML model name/version, pipeline run), when known."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_name: str | None = None
    model_version: str | None = None
    pipeline_run: str | None = None
    backbone: str


class OnnxGraph(BaseModel):
    """How an ONNX image graph was optimised before shipping: the fusion route, what it fused, what is left."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    route: str  # the optimiser that fused it, with its version
    fusions: dict[str, int] = {}  # fusion -> times applied in the shipped graph
    reverted: dict[str, int] = {}  # fusion -> times undone because it measured slower (see har_core/export/fusion.py)
    fused_nodes: dict[str, int] = {}  # com.microsoft operator -> nodes of it in the shipped graph
    nodes: int  # nodes in the shipped graph
    standard_nodes: int  # nodes in the standard (unfused) export it was made from


class ExportManifest(JsonFileModel):
    """One exported format: files with sha256, input/output specs, preprocessing, labels and its parity gate."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    file_name: ClassVar[str] = EXPORT_MANIFEST_FILE
    directory_kind: ClassVar[str] = "an export directory"
    invalid_error: ClassVar[type[Exception]] = ExportError

    manifest_version: int = MANIFEST_VERSION
    format: ExportFormat
    labels: tuple[str, ...]
    templates: tuple[str, ...]
    preprocess: PreprocessConfig
    logit_scale: float
    embedding_dim: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]  # image_embeddings (batch, dim) normalised; logits (batch, labels)
    max_batch_size: int | None = None  # TensorRT engines are built for a batch range; None: any
    files: dict[str, ExportedFile]
    text_tower: TextTowerSpec | None = None
    graph: OnnxGraph | None = None  # ONNX formats with a fused graph; None: the standard export (or not ONNX)
    parity: ParityResult | None = None
    source: ModelSource
    model_card: HarClipModelCard
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    notes: tuple[str, ...] = ()

    @property
    def deployable(self) -> bool:
        return self.parity is not None and self.parity.passed

    def path(self, directory: str | Path, role: str) -> Path:
        if role not in self.files:
            raise ExportError(f"The {self.format} export has no {role!r} file (it has {sorted(self.files)}).")
        return Path(directory) / self.files[role].path

    def verify_files(self, directory: str | Path) -> None:
        """Every listed file exists with its recorded sha256 (a swapped or corrupted file is refused)."""
        for role, entry in self.files.items():
            path = Path(directory) / entry.path
            if not path.is_file():
                raise ExportError(f"{self.format} export in {str(directory)!r}: {role} file {entry.path} is missing.")
            digest = file_sha256(path)
            if digest != entry.sha256:
                raise ExportError(
                    f"{self.format} export in {str(directory)!r}: {entry.path} has sha256 {digest[:12]}…, the "
                    f"manifest records {entry.sha256[:12]}…; the file was changed after export."
                )


class FormatStatus(BaseModel):
    """One requested format in a bundle: exported or not, gated or not, and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: ExportFormat
    directory: str | None = None  # relative to the bundle root; None when the export could not be made
    deployable: bool = False
    message: str = ""


class ExportBundle(BaseModel):
    """The export step's artifact: a local root with one directory per exported format."""

    model_config = ConfigDict(extra="forbid")

    root: str
    formats: dict[str, FormatStatus]

    def directory(self, export_format: ExportFormat) -> Path:
        status = self.formats.get(export_format)
        if status is None or status.directory is None:
            reason = status.message if status else "it was not requested"
            raise ExportError(f"No {export_format} export in this bundle: {reason}")
        return Path(self.root) / status.directory

    def manifest(self, export_format: ExportFormat) -> ExportManifest:
        return ExportManifest.load(self.directory(export_format))

    def deployable_formats(self) -> list[str]:
        return [name for name, status in self.formats.items() if status.deployable]

    def save(self) -> Path:
        path = Path(self.root) / EXPORT_BUNDLE_FILE
        path.write_text(self.model_dump_json(indent=2, exclude={"root"}))
        return path

    @classmethod
    def load(cls, root: str | Path) -> ExportBundle:
        path = Path(root) / EXPORT_BUNDLE_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{str(root)!r} is not an export bundle: {EXPORT_BUNDLE_FILE} is missing.")
        return cls.model_validate({**_read_json(path), "root": str(Path(root))})


def describe_file(directory: str | Path, relative: str) -> ExportedFile:
    path = Path(directory) / relative
    return ExportedFile(path=relative, sha256=file_sha256(path), size_bytes=path.stat().st_size)


def _read_json(path: Path) -> dict:
    import json

    return json.loads(path.read_text())
