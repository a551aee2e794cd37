"""The model card (`har_clip.json`): what a saved classifier is, readable without torch or the backbone.

`HarClipClassifier.save` writes it beside `backbone/`; exports copy it, so a `Predictor` (or the Bento) knows the
labels, prompt templates and preprocessing of a model without loading its weights.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from har_core.labels import build_prompts
from har_core.transform import PreprocessConfig

MODEL_CARD_FILE = "har_clip.json"
FORMAT_VERSION = 1


class HarClipModelCard(BaseModel):
    """Labels (in logit order), prompt templates, preprocessing and where the backbone came from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: int = FORMAT_VERSION
    backbone: str
    labels: tuple[str, ...]
    templates: tuple[str, ...]
    freeze_vision: bool = False
    preprocess: PreprocessConfig
    logit_scale: float | None = Field(None, gt=0)  # exp(logit_scale) as used in the logits; None in older cards

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

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / MODEL_CARD_FILE
        path.write_text(self.model_dump_json(indent=2))
        return path

    @classmethod
    def load(cls, directory: str | Path) -> HarClipModelCard:
        """Read `<directory>/har_clip.json`; a missing or invalid card is an error naming the file."""
        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"Model directory {str(directory)!r} does not exist.")
        path = directory / MODEL_CARD_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"{str(directory)!r} is not a har-clip model directory: {MODEL_CARD_FILE} is missing."
            )
        try:
            return cls.model_validate_json(path.read_text())
        except ValidationError as error:
            raise ValueError(f"{path} is not a valid har-clip model card: {error}") from error
