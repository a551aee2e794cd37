"""The file hand-over between a launching process and its torchrun workers (and, multi-node, its pods)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import ConfigDict

from har_core.config import TrainingConfig
from har_core.runtime.json_file import JsonFileModel

JOB_FILE = "job.json"
BASE_MODEL_DIR = "base_model"
MANIFEST_FILE = "manifest.json"
METRICS_FILE = "metrics.jsonl"
RESULT_FILE = "result.json"
LOG_DIR = "torchrun-logs"


class TrainingJob(JsonFileModel):
    """Paths the workers read (base model, manifest) and write (checkpoints, metrics, result), plus the config."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    file_name: ClassVar[str] = JOB_FILE
    directory_kind: ClassVar[str] = "a training job directory"

    config: TrainingConfig
    base_model: str
    manifest: str
    output_dir: str
    metrics_file: str
    result_file: str

    @classmethod
    def in_directory(cls, job_dir: Path, config: TrainingConfig, output_dir: Path) -> TrainingJob:
        job_dir = Path(job_dir).resolve()
        return cls(
            config=config,
            base_model=str(job_dir / BASE_MODEL_DIR),
            manifest=str(job_dir / MANIFEST_FILE),
            output_dir=str(Path(output_dir).resolve()),
            metrics_file=str(job_dir / METRICS_FILE),
            result_file=str(job_dir / RESULT_FILE),
        )
