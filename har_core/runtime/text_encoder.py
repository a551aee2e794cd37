"""Class embeddings for any label set from the exported ONNX text tower, without torch (open vocabulary).

Mirrors `HarClipClassifier.class_embeddings`: every (label, template) prompt is embedded, normalised, averaged
per label and normalised again.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from har_core.runtime.labels import build_prompts

TEXT_BATCH = 256  # prompts per run of the text tower


def normalize(array: np.ndarray, axis: int = -1) -> np.ndarray:
    norm = np.linalg.norm(array, axis=axis, keepdims=True)
    return array / np.maximum(norm, 1e-12)


class OnnxTextEncoder:
    """Tokenizer (`tokenizers`) plus the ONNX text tower: prompts -> normalised text embeddings."""

    def __init__(self, model_path: Path, tokenizer_path: Path, max_length: int, pad_token_id: int, session_options):
        import onnxruntime as ort

        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.enable_truncation(max_length)
        self.tokenizer.no_padding()
        self.pad_token_id = pad_token_id
        self.session = ort.InferenceSession(str(model_path), session_options, providers=["CPUExecutionProvider"])

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) normalised embeddings, `TEXT_BATCH` texts per run of the tower.

        Batches bound the activations (4,000 prompts at once would hold gigabytes) and cost the same per text;
        texts are batched in order of length, so each batch pads only to its own longest.
        """
        encodings = self.tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda row: len(encodings[row].ids))
        embeddings = np.empty((len(texts), 0), np.float32)
        for start in range(0, len(order), TEXT_BATCH):
            rows = order[start : start + TEXT_BATCH]
            batch = self._run([encodings[row].ids for row in rows])
            if not embeddings.shape[1]:
                embeddings = np.empty((len(texts), batch.shape[1]), np.float32)
            embeddings[rows] = batch
        return normalize(embeddings)

    def _run(self, token_ids: Sequence[Sequence[int]]) -> np.ndarray:
        length = max(len(ids) for ids in token_ids)
        input_ids = np.full((len(token_ids), length), self.pad_token_id, dtype=np.int64)
        attention_mask = np.zeros((len(token_ids), length), dtype=np.int64)
        for row, ids in enumerate(token_ids):
            input_ids[row, : len(ids)] = ids
            attention_mask[row, : len(ids)] = 1
        (embeddings,) = self.session.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})
        return embeddings.astype(np.float32)

    def class_embeddings(self, labels: Sequence[str], templates: Sequence[str]) -> np.ndarray:
        """(len(labels), dim): the normalised mean of each label's normalised prompt embeddings."""
        prompts = build_prompts(labels, templates)
        flat = self.embed_texts([prompt for per_label in prompts for prompt in per_label])
        per_label = flat.reshape(len(labels), len(templates), -1).mean(axis=1)
        return normalize(per_label)
