"""The file hand-over between a launching process and its torchrun workers (and, multi-node, its pods)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from har_core.config import TrainingConfig

JOB_FILE = "job.json"
BASE_MODEL_DIR = "base_model"
MANIFEST_FILE = "manifest.json"
METRICS_FILE = "metrics.jsonl"
RESULT_FILE = "result.json"
LOG_DIR = "torchrun-logs"


class TrainingJob(BaseModel):
    """Paths the workers read (base model, manifest) and write (checkpoints, metrics, result), plus the config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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

    def save(self, job_dir: Path) -> Path:
        path = Path(job_dir) / JOB_FILE
        path.write_text(self.model_dump_json(indent=2))
        return path

    @classmethod
    def load(cls, job_dir: str | Path) -> TrainingJob:
        path = Path(job_dir) / JOB_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{str(job_dir)!r} holds no {JOB_FILE}; it is not a training job directory.")
        return cls.model_validate_json(path.read_text())
