"""The model card (`har_clip.json`): what a saved classifier is, readable without torch or the backbone.

`HarClipClassifier.save` writes it beside `backbone/`; exports copy it, so a `Predictor` (or the Bento) knows the
labels, prompt templates and preprocessing of a model without loading its weights.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import ConfigDict, Field, field_validator

from har_core.runtime.confidence import Calibration
from har_core.runtime.json_file import JsonFileModel
from har_core.runtime.labels import build_prompts
from har_core.runtime.preprocess import PreprocessConfig
from har_core.runtime.provenance import TrainingProvenance

MODEL_CARD_FILE = "har_clip.json"
FORMAT_VERSION = 1


class HarClipModelCard(JsonFileModel):
    """Labels (in logit order), prompt templates, preprocessing, where the backbone came from, and, for a trained
    model, how it was made (`provenance`: commit, lock, config, data version, machine; None for an untrained one)
    and, for an exported one, what its probabilities mean (`calibration`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    file_name: ClassVar[str] = MODEL_CARD_FILE
    directory_kind: ClassVar[str] = "a har-clip model directory"

    format_version: int = FORMAT_VERSION
    backbone: str
    labels: tuple[str, ...]
    templates: tuple[str, ...]
    freeze_vision: bool = False
    preprocess: PreprocessConfig
    logit_scale: float | None = Field(None, gt=0)  # exp(logit_scale) as used in the logits; None in older cards
    provenance: TrainingProvenance | None = None
    # Fitted after fine-tuning (None: an untrained model, or a card written before calibration existed), and its
    # figures on the test split: ece/nll before and after, coverage and selective accuracy at the threshold, ...
    calibration: Calibration | None = None
    calibration_metrics: dict[str, float] | None = None

    @field_validator("format_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != FORMAT_VERSION:
            raise ValueError(f"unsupported har-clip model format {value!r} (this code reads {FORMAT_VERSION})")
        return value

    @field_validator("templates")
    @classmethod
    def _prompts_build(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        build_prompts(["label"], value)
        return value

    @field_validator("labels")
    @classmethod
    def _labels_valid(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        build_prompts(value, ["{}"])
        return value
