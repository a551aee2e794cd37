"""The HAR label set and the text prompts that turn labels into CLIP class embeddings."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

# Order matters: it is the ClassLabel order of `Bingsu/Human_Action_Recognition`, so label index i
# in the dataset is HAR_LABELS[i] here.
HAR_LABELS: tuple[str, ...] = (
    "calling",
    "clapping",
    "cycling",
    "dancing",
    "drinking",
    "eating",
    "fighting",
    "hugging",
    "laughing",
    "listening_to_music",
    "running",
    "sitting",
    "sleeping",
    "texting",
    "using_laptop",
)

# Several templates per class are embedded and averaged (prompt ensembling, as in CLIP's zero-shot recipe).
DEFAULT_TEMPLATES: tuple[str, ...] = (
    "a photo of a person {}.",
    "a photo of someone {}.",
    "an image of a person {}.",
    "a cropped photo of a person {}.",
)


def label_to_text(label: str) -> str:
    """`listening_to_music` -> `listening to music`: CLIP's text tower was trained on words, not identifiers."""
    return label.replace("_", " ").strip()


def build_prompts(labels: Sequence[str], templates: Sequence[str]) -> list[list[str]]:
    """Prompts per label (outer list follows `labels`), one per template."""
    validate_labels(labels)
    if not templates:
        raise ValueError("At least one prompt template is needed.")
    for template in templates:
        if template.count("{}") != 1:
            raise ValueError(f"Prompt template {template!r} must contain exactly one '{{}}' placeholder.")
    return [[template.format(label_to_text(label)) for template in templates] for label in labels]


NO_ACTION = "no action"  # an abstained answer's label (har_core.runtime.confidence), never one of a model's


def validate_labels(labels: Sequence[str]) -> None:
    """Reject empty, blank or duplicated labels up front: they would silently merge classes."""
    if not labels:
        raise ValueError("The label list is empty.")
    blank = [label for label in labels if not label or not label.strip()]
    if blank:
        raise ValueError("Labels must be non-empty strings.")
    duplicates = sorted(label for label, count in Counter(labels).items() if count > 1)  # O(n): /classify's 1,000
    if duplicates:
        raise ValueError(f"Duplicated labels: {duplicates}.")
    if any(label.strip().lower() == NO_ACTION for label in labels):
        raise ValueError(f'"{NO_ACTION}" is what an unsure answer is shown as; name the label differently.')
