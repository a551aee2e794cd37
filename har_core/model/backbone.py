"""Resolve and load the CLIP backbone: a Hub id, a local HF directory, or a tiny CLIP built here.

The tiny CLIP is written in Hugging Face format and loaded with the same `from_pretrained` calls as the
real model, so tests and the offline quick path exercise the production loading code.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from pathlib import Path

import torch
from tokenizers.pre_tokenizers import ByteLevel
from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPTokenizer

from har_core.config import ClassifierConfig, TinyBackboneConfig

logger = logging.getLogger(__name__)

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
TINY_MAX_TEXT_LENGTH = 64


class BackboneUnavailableError(RuntimeError):
    """The backbone is neither a local directory nor reachable on the Hugging Face Hub."""


def resolve_backbone(config: ClassifierConfig) -> str:
    """The path or Hub id to pass to `from_pretrained`, building the tiny CLIP first if the config asks for it."""
    if config.tiny_backbone is None:
        return config.backbone
    digest = hashlib.sha256(config.tiny_backbone.model_dump_json().encode()).hexdigest()[:12]
    target = Path(config.cache_dir) / f"tiny-clip-{digest}"
    if not (target / "config.json").exists():
        build_tiny_clip(target, config.tiny_backbone)
    return str(target.resolve())


def load_backbone(name_or_path: str) -> tuple[CLIPModel, CLIPTokenizer, CLIPImageProcessorPil]:
    """Load model, tokenizer and image processor; offline or misnamed backbones raise a message with the fix."""
    is_local = Path(name_or_path).exists()
    if not is_local and looks_like_local_path(name_or_path):
        raise BackboneUnavailableError(f"Backbone directory {name_or_path!r} does not exist.")
    try:
        model = CLIPModel.from_pretrained(name_or_path, use_safetensors=True)
        tokenizer = CLIPTokenizer.from_pretrained(name_or_path)
        processor = CLIPImageProcessorPil.from_pretrained(name_or_path)
    except OSError as error:
        where = "local directory" if is_local else "Hugging Face Hub model"
        raise BackboneUnavailableError(
            f"Could not load the CLIP backbone from {where} {name_or_path!r}: {error}\n"
            "If this machine is offline, run the offline quick path (configs/quickstart.yaml, a tiny CLIP built "
            "locally), or download the model elsewhere and set classifier.backbone to its local directory."
        ) from error
    return model, tokenizer, processor


def looks_like_local_path(name_or_path: str) -> bool:
    """Hub ids are `name` or `org/name`; anything else (`./x`, `/x`, `a/b/c`) is meant as a directory."""
    return name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1


def build_tiny_clip(target: Path, config: TinyBackboneConfig) -> Path:
    """Write a small random-init CLIP, its tokenizer and image processor to `target` (atomically)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tiny-clip-", dir=target.parent))
    try:
        tokenizer = _build_byte_level_tokenizer()
        clip_config = _tiny_clip_config(config, vocab_size=len(tokenizer.get_vocab()), tokenizer=tokenizer)
        torch.manual_seed(config.seed)
        CLIPModel(clip_config).save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        CLIPImageProcessorPil(
            size={"shortest_edge": config.image_size},
            crop_size={"height": config.image_size, "width": config.image_size},
        ).save_pretrained(staging)
        (staging / "tiny_backbone.json").write_text(json.dumps(config.model_dump(), indent=2))
        if target.exists():  # another process finished first; keep its copy
            shutil.rmtree(staging)
        else:
            staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("Built tiny CLIP backbone at %s", target)
    return target


def _build_byte_level_tokenizer() -> CLIPTokenizer:
    """A CLIP BPE tokenizer with a byte-level vocabulary and no merges: every word splits into characters."""
    symbols = sorted(ByteLevel.alphabet())
    vocab = {symbol: index for index, symbol in enumerate(symbols)}
    vocab.update({f"{symbol}</w>": len(symbols) + index for index, symbol in enumerate(symbols)})
    vocab[BOS_TOKEN] = len(vocab)
    vocab[EOS_TOKEN] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=TINY_MAX_TEXT_LENGTH)


def _tiny_clip_config(config: TinyBackboneConfig, vocab_size: int, tokenizer: CLIPTokenizer) -> CLIPConfig:
    common = {
        "hidden_size": config.hidden_size,
        "intermediate_size": 4 * config.hidden_size,
        "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads,
    }
    text_config = {
        **common,
        "vocab_size": vocab_size,
        "max_position_embeddings": TINY_MAX_TEXT_LENGTH,
        "bos_token_id": tokenizer.convert_tokens_to_ids(BOS_TOKEN),
        "eos_token_id": tokenizer.convert_tokens_to_ids(EOS_TOKEN),
        "pad_token_id": tokenizer.convert_tokens_to_ids(EOS_TOKEN),
    }
    vision_config = {**common, "image_size": config.image_size, "patch_size": config.patch_size}
    return CLIPConfig(text_config=text_config, vision_config=vision_config, projection_dim=config.projection_dim)
