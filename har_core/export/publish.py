"""Publish a model to the Hugging Face Hub: a `save_pretrained` folder plus a model card from real metrics.

Without a token (or without network) the folder and card are written locally and the result says so; nothing is
faked as uploaded.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData
from pydantic import BaseModel
from transformers import CLIPModel, CLIPTokenizer

from har_core.evaluation.metrics import EvaluationReport
from har_core.model.classifier import HarClipClassifier
from har_core.runtime.model_card import HarClipModelCard

logger = logging.getLogger(__name__)

TRAINING_CONFIG_FILE = "training_config.json"
METRIC_NAMES = {"accuracy": "accuracy", "macro_f1": "f1", "weighted_f1": "f1"}


class PublishResult(BaseModel):
    folder: str
    repo_id: str
    uploaded: bool
    url: str | None = None
    message: str


def write_hub_folder(
    model: HarClipClassifier,
    report: EvaluationReport,
    training_config: Mapping[str, Any],
    directory: str | Path,
    repo_id: str,
    dataset_name: str,
) -> Path:
    """`save_pretrained` layout at the top level (model.safetensors, config.json with id2label, tokenizer, image
    processor), `har_clip.json` (labels, templates, preprocessing), the training config, and README.md."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    clip = model.clip
    clip.config.id2label = dict(enumerate(model.labels))
    clip.config.label2id = {label: index for index, label in enumerate(model.labels)}
    clip.save_pretrained(directory, safe_serialization=True)
    model.tokenizer.save_pretrained(directory)
    model.save_image_processor(directory)
    model.model_card().save(directory)
    (directory / TRAINING_CONFIG_FILE).write_text(json.dumps(dict(training_config), indent=2, default=str))
    build_model_card(model, report, training_config, repo_id, dataset_name).save(directory / "README.md")
    return directory


def build_model_card(
    model: HarClipClassifier,
    report: EvaluationReport,
    training_config: Mapping[str, Any],
    repo_id: str,
    dataset_name: str,
) -> ModelCard:
    """A card whose model-index holds the evaluation report's headline metrics, and a body that shows them."""
    metrics = report.headline_metrics()
    results = [
        EvalResult(
            task_type="image-classification",
            dataset_type=dataset_name,
            dataset_name=dataset_name,
            dataset_split=report.split,
            metric_type=METRIC_NAMES.get(name, name),
            metric_name=name,
            metric_value=value,
        )
        for name, value in metrics.items()
    ]
    data = ModelCardData(
        model_name=repo_id.split("/")[-1],
        license="apache-2.0",
        library_name="transformers",
        pipeline_tag="zero-shot-image-classification",
        tags=["clip", "human-action-recognition", "har-clip"],
        base_model=model.backbone_name if "/" in model.backbone_name else None,
        eval_results=results,
    )
    rows = "\n".join(f"| {name} | {value:.4f} |" for name, value in metrics.items())
    config_rows = "\n".join(f"| {key} | {value} |" for key, value in training_config.items())
    body = (
        f"# {repo_id}\n\nCLIP ({model.backbone_name}) fine-tuned for human action recognition over "
        f"{len(model.labels)} labels: {', '.join(model.labels)}.\n\n"
        f"## Evaluation ({report.num_images} images of the {report.split} split of {dataset_name})\n\n"
        f"| metric | value |\n| --- | --- |\n{rows}\n\n## Training configuration\n\n| key | value |\n| --- | --- |\n"
        f"{config_rows}\n\n## Use\n\n`har_clip.json` lists the labels (logit order) and prompt templates; "
        "`har_core.export.publish.load_hub_folder(path)` rebuilds the classifier.\n"
    )
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")


def load_hub_folder(directory: str | Path) -> HarClipClassifier:
    """Rebuild the classifier from a folder written by `write_hub_folder` (or downloaded from the Hub)."""
    card = HarClipModelCard.load(directory)
    clip = CLIPModel.from_pretrained(directory, use_safetensors=True)
    tokenizer = CLIPTokenizer.from_pretrained(directory)
    return HarClipClassifier(
        clip, tokenizer, card.labels, card.templates, card.preprocess, card.backbone, card.freeze_vision
    ).eval()


def upload_folder(
    directory: str | Path, repo_id: str, token: str | None = None, private: bool = True, endpoint: str | None = None
) -> PublishResult:
    """`create_repo` + `upload_folder` when a token is available; otherwise say where the local folder is."""
    token = token or os.environ.get("HF_TOKEN")
    folder = str(Path(directory).resolve())
    if not token:
        message = f"No Hugging Face token (HF_TOKEN): wrote {folder} locally; nothing was uploaded."
        logger.warning(message)
        return PublishResult(folder=folder, repo_id=repo_id, uploaded=False, message=message)
    api = HfApi(token=token, endpoint=endpoint)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        commit = api.upload_folder(folder_path=folder, repo_id=repo_id, commit_message="Publish har-clip model")
    except Exception as error:  # network, auth, permission: the local folder is still the result
        message = f"Upload to {repo_id} failed ({type(error).__name__}: {error}); the folder is at {folder}."
        logger.error(message)
        return PublishResult(folder=folder, repo_id=repo_id, uploaded=False, message=message)
    return PublishResult(folder=folder, repo_id=repo_id, uploaded=True, url=str(commit.commit_url), message="uploaded")
