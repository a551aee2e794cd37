"""Package one exported format as a BentoML model and build a Bento around it (no ZenML, no torch).

The Bento is built from a throw-away build context holding `bento/` and `har_core.runtime` (everything a deployed
model needs; the PyTorch format adds the model code it is rebuilt with), the serving settings of this deployment
(`bento/serving.yaml`) and the model tag it is pinned to (`bento/bento_model.txt`), so `bentoml serve <bento>` serves
exactly the model it was built with.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

import bentoml
from packaging.requirements import Requirement

from bento.serving_config import MODEL_TAG_FILE, write_serving_config
from har_core.runtime.manifest import ExportManifest, ExportRejectedError
from har_core.runtime.settings import BENTO_MODEL_NAME, BENTO_SERVICE_NAME, ServingConfig
from har_core.runtime.tensorrt_engine import TENSORRT_REQUIREMENT

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SERVICE_IMPORT = "bento.service:HarClipService"
PYTHON_VERSION = "3.11"
# Everything in bento/ ships (the layout keeps the tooling in bento_ops/): the service's modules, its serving settings
# and the model tag it is pinned to.
SERVICE_FILES = ("bento/*.py", "bento/*.yaml", "bento/*.txt")
# The library files a Bento ships: the runtime package, and for the PyTorch format the model code it is rebuilt with.
LIBRARY_FILES = ("har_core/__init__.py", "har_core/runtime/*.py")
MODEL_CODE_FILES = ("har_core/config.py", "har_core/model/*.py")
# What the service imports at run time besides bentoml (BentoML adds itself), per format; versions are pinned
# to this environment's at build time (psutil: the worker watchdog).
COMMON_PACKAGES = ("av", "numpy", "pillow", "psutil", "pydantic", "pyyaml", "safetensors", "tokenizers")
RUNTIME_PACKAGES: dict[str, tuple[str, ...]] = {
    "onnx": ("onnxruntime",),
    "onnx-int8": ("onnxruntime",),
    "torchscript": ("onnxruntime", "torch"),
    "pytorch": ("onnxruntime", "torch", "transformers"),
    "tensorrt": ("onnxruntime-gpu", "tensorrt-cu13", "torch"),  # the engine's I/O buffers are torch CUDA tensors
}
# Packages the code speaks only one major version of: the range where this environment lacks them, and a
# refusal where it holds a version outside it.
VERSION_RANGES = {"tensorrt-cu13": TENSORRT_REQUIREMENT}
GPU_SWAPS = {"onnxruntime": "onnxruntime-gpu"}


def save_bento_model(
    export_dir: str | Path,
    model_name: str | None = None,
    model_version: str | None = None,
    extra_labels: dict[str, str] | None = None,
) -> bentoml.Model:
    """Store one format's export directory as a BentoML model; refuses exports that failed their parity gate."""
    export_dir = Path(export_dir)
    manifest = ExportManifest.load(export_dir)
    manifest.verify_files(export_dir)
    if not manifest.deployable:
        reason = "it was never gated" if manifest.parity is None else "; ".join(manifest.parity.failures)
        raise ExportRejectedError(f"The {manifest.format} export failed its parity gate: {reason}.")
    model_name = model_name or manifest.source.model_name or BENTO_MODEL_NAME
    model_version = str(model_version or manifest.source.model_version or "unversioned")
    labels = {"format": manifest.format, "model_name": model_name, "model_version": model_version}
    with bentoml.models.create(
        BENTO_MODEL_NAME,
        labels={**labels, **(extra_labels or {})},
        metadata=_without_none(
            {
                **labels,
                "labels": list(manifest.labels),
                "templates": list(manifest.templates),
                "backbone": manifest.source.backbone,
                "parity": manifest.parity.model_dump(mode="json") if manifest.parity else None,
                "supports_custom_labels": manifest.text_tower is not None,
            }
        ),
        module="har_clip",
    ) as model:
        shutil.copytree(export_dir, model.path, dirs_exist_ok=True)
    logger.info("Saved BentoML model %s from %s", model.tag, export_dir)
    return model


def runtime_packages(export_format: str, gpu: bool = False) -> list[str]:
    """Pinned requirements of the service for `export_format` (ONNX formats: no torch)."""
    names = [*COMMON_PACKAGES, *RUNTIME_PACKAGES[export_format]]
    if gpu:
        names = [GPU_SWAPS.get(name, name) for name in names]
    return [_pinned(name) for name in dict.fromkeys(names)]


def build_bento(
    model_tag: str,
    export_format: str,
    serving: ServingConfig,
    base_image: str | None = None,
    gpu: bool = False,
    labels: dict[str, str] | None = None,
) -> bentoml.Bento:
    """A Bento of the service pinned to `model_tag`; `base_image` replaces BentoML's default (registry-less hosts)."""
    docker: dict = {"python_version": PYTHON_VERSION}
    if gpu:
        # BentoML's newest CUDA base; torch, onnxruntime-gpu and TensorRT load the CUDA 13 runtime of their nvidia-*
        # wheels, so what the host needs is a driver for CUDA 13 (R580 or newer), not this image's toolkit
        docker["cuda_version"] = "12.8"
    if base_image:  # BentoML's Dockerfile runs `pip install uv`; Debian's system Python needs this to allow it
        docker = {"base_image": base_image, "env": {"PIP_BREAK_SYSTEM_PACKAGES": "1"}}
    with tempfile.TemporaryDirectory(prefix="har-clip-bento-") as context:
        _write_build_context(Path(context), model_tag, serving)
        library = [*LIBRARY_FILES, *(MODEL_CODE_FILES if export_format == "pytorch" else ())]
        bento = bentoml.bentos.build(
            SERVICE_IMPORT,
            name=BENTO_SERVICE_NAME,
            build_ctx=context,
            include=[*SERVICE_FILES, *library],
            labels={"format": export_format, "bento_model": str(model_tag), **(labels or {})},
            models=[str(model_tag)],
            python={"packages": runtime_packages(export_format, gpu), "lock_packages": False},
            docker=docker,
        )
    logger.info("Built Bento %s (%s, model %s)", bento.tag, export_format, model_tag)
    return bento


def _write_build_context(context: Path, model_tag: str, serving: ServingConfig) -> None:
    shutil.copytree(PROJECT_ROOT / "bento", context / "bento", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(PROJECT_ROOT / "har_core", context / "har_core", ignore=shutil.ignore_patterns("__pycache__"))
    write_serving_config(serving, context / "bento" / "serving.yaml")
    (context / "bento" / MODEL_TAG_FILE).write_text(f"{model_tag}\n")


def _without_none(value):
    """BentoML model metadata refuses None (e.g. int8's unchecked logit threshold): leave such keys out."""
    if isinstance(value, dict):
        return {key: _without_none(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_none(item) for item in value if item is not None]
    return value


def _pinned(name: str) -> str:
    """`name==<this environment's version>`; the supported range (or the bare name) where it is not installed."""
    supported = Requirement(VERSION_RANGES.get(name, name)).specifier
    try:
        version = metadata.version(name)
    except metadata.PackageNotFoundError:
        return VERSION_RANGES.get(name, name)
    if not supported.contains(version, prereleases=True):
        raise ValueError(f"{name} {version} is installed but the service needs {VERSION_RANGES[name]}.")
    return f"{name}=={version}"
