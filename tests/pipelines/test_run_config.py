"""Run-config validation: the cheap first stage imports no heavy library and still knows every ZenML key."""

import os
import subprocess
import sys
from pathlib import Path

import yaml

from har_zenml.run_config import ZENML_RUN_SETTINGS_KEYS
from tests.conftest import PROJECT_ROOT

HEAVY_MODULES = ("torch", "transformers", "mlflow", "zenml", "datasets", "sklearn")


def test_static_key_list_equals_zenml_run_configuration_fields():
    from zenml.config.pipeline_run_configuration import PipelineRunConfiguration

    assert set(PipelineRunConfiguration.model_fields) == ZENML_RUN_SETTINGS_KEYS


def _imported_modules(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run the CLI under `-X importtime` and return the names of every module it imported."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(PROJECT_ROOT / "run.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    modules = {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    return result, modules


def test_a_config_typo_is_reported_without_heavy_imports(tmp_path):
    config = yaml.safe_load((PROJECT_ROOT / "configs" / "quickstart.yaml").read_text())
    config["parameters"]["training"]["epocs"] = 3
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(config))
    result, modules = _imported_modules("--config", str(path), cwd=tmp_path)
    assert result.returncode == 1
    assert "parameters.training.epocs: Extra inputs are not permitted" in result.stderr
    assert "har_core.config" in modules and "har_zenml.run_config" in modules  # the parse saw the imports
    heavy = sorted(name for name in modules if name.split(".")[0] in HEAVY_MODULES)
    assert heavy == []


def test_an_unknown_top_level_key_is_reported_without_heavy_imports(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump({"step": {}, "parameters": {}}))
    result, modules = _imported_modules("--config", str(path), cwd=tmp_path)
    assert result.returncode == 1 and "unknown top-level keys ['step']" in result.stderr
    assert not [name for name in modules if name.split(".")[0] in HEAVY_MODULES]
