"""run.py rejects bad run configs and unreachable Hub resources up front, with messages that say what to do."""

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import run
from tests.conftest import PROJECT_ROOT


def _invoke(*args: str):
    return CliRunner().invoke(run.main, list(args))


def _write(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_help_shows_examples():
    result = _invoke("--help")
    assert result.exit_code == 0
    assert "configs/quickstart.yaml" in result.output and "zenml stack set" in result.output


def test_unknown_parameter_key_names_the_key(tmp_path):
    config = yaml.safe_load((PROJECT_ROOT / "configs" / "quickstart.yaml").read_text())
    config["parameters"]["training"]["epocs"] = 3
    result = _invoke("--config", str(_write(tmp_path, config)))
    assert result.exit_code != 0
    assert "parameters.training.epocs" in result.output and "Extra inputs are not permitted" in result.output


def test_unknown_top_level_key_is_rejected(tmp_path):
    result = _invoke("--config", str(_write(tmp_path, {"paramters": {}})))
    assert result.exit_code != 0 and "paramters" in result.output


def test_missing_and_malformed_configs(tmp_path):
    result = _invoke("--config", str(tmp_path / "missing.yaml"))
    assert result.exit_code != 0 and "does not exist" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("parameters: [unclosed")
    result = _invoke("--config", str(bad))
    assert result.exit_code != 0 and "not valid YAML" in result.output


def test_real_config_offline_fails_fast_with_advice(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    config = yaml.safe_load((PROJECT_ROOT / "configs" / "training.yaml").read_text())
    config["parameters"]["data"]["cache_dir"] = str(tmp_path)
    result = _invoke("--config", str(_write(tmp_path, config)))
    assert result.exit_code != 0
    assert "openai/clip-vit-base-patch16" in result.output
    assert "configs/quickstart.yaml" in result.output
    assert "Traceback" not in result.output


def test_default_config_is_the_real_training_config():
    assert run.DEFAULT_CONFIGS["training"] == PROJECT_ROOT / "configs" / "training.yaml"
    from har_zenml.run_config import load_training_run_config

    parameters = load_training_run_config(run.DEFAULT_CONFIGS["training"])
    assert parameters.classifier.backbone == "openai/clip-vit-base-patch16"
    assert parameters.data.hf_dataset == "Bingsu/Human_Action_Recognition"


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("data", "root", "/nonexistent/har-images", "data.root '/nonexistent/har-images' does not exist"),
        ("classifier", "backbone", "./models/missing-clip", "classifier.backbone directory './models/missing-clip'"),
    ],
)
def test_missing_local_paths_stop_the_run_before_it_starts(tmp_path, section, key, value, message):
    config = yaml.safe_load((PROJECT_ROOT / "configs" / "quickstart.yaml").read_text())
    config["parameters"][section][key] = value
    if section == "data":
        config["parameters"]["data"] = {"source": "folder", "root": value}
    else:
        config["parameters"]["classifier"] = {"backbone": value}
    result = _invoke("--config", str(_write(tmp_path, config)))
    assert result.exit_code != 0 and message in result.output


def test_binary_config_is_a_clean_error(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(bytes(range(256)) * 8)
    result = _invoke("--config", str(path))
    assert result.exit_code == 1
    assert "is not a text file" in result.output and "Traceback" not in result.output


def test_invalid_zenml_setting_values_are_still_reported(tmp_path):
    config = yaml.safe_load((PROJECT_ROOT / "configs" / "quickstart.yaml").read_text())
    config["enable_cache"] = "sometimes"
    result = _invoke("--config", str(_write(tmp_path, config)))
    assert result.exit_code == 1
    assert "invalid ZenML run settings" in result.output and "enable_cache" in result.output


def test_deployment_config_is_validated_up_front(tmp_path):
    config = yaml.safe_load((PROJECT_ROOT / "configs" / "deployment.yaml").read_text())
    config["parameters"]["deployment"]["formt"] = "onnx"
    config["parameters"]["serving"]["max_batch_size"] = 1
    result = _invoke("--pipeline", "deployment", "--config", str(_write(tmp_path, config)))
    assert result.exit_code != 0
    assert "parameters.deployment.formt" in result.output and "parameters.serving.max_batch_size" in result.output
    assert "Traceback" not in result.output


def test_default_deployment_config_is_valid_and_help_shows_the_operations():
    from har_zenml.run_config import load_deployment_run_config

    parameters = load_deployment_run_config(run.DEFAULT_CONFIGS["deployment"])
    assert parameters.deployment.model_version == "production" and parameters.deployment.format is None
    help_text = _invoke("--help").output
    assert "--command undeploy" in help_text and "--command rollback" in help_text
    assert "--pipeline undeploy" not in help_text  # commands, not ZenML pipelines
    assert _invoke("--pipeline", "undeploy").exit_code == 2  # not a pipeline


def _console(*args: str, cwd: Path = PROJECT_ROOT):
    """The installed `har-clip` console script (pyproject's [project.scripts]), run for real."""
    import subprocess
    import sys

    script = Path(sys.executable).with_name("har-clip")
    assert script.is_file(), f"no har-clip beside {sys.executable}: `make install` installs it"
    return subprocess.run([str(script), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_console_script_lists_its_subcommands():
    result = _console("--help")
    assert result.returncode == 0, result.stderr
    for subcommand in ("train", "deploy", "infer", "benchmark", "reproduce", "publish", "run", "register-stack"):
        assert f"  {subcommand}" in result.stdout, subcommand
    publish = _console("publish", "--help")  # a subcommand imported only when asked for
    assert publish.returncode == 0 and "--repo-id" in publish.stdout


def test_the_console_script_runs_the_same_checks_as_run_py_from_any_folder(tmp_path):
    """`har-clip train` is run.py's command: the same refusal, word for word, also run outside the checkout."""
    config = yaml.safe_load((PROJECT_ROOT / "configs" / "quickstart.yaml").read_text())
    config["parameters"]["training"]["epocs"] = 3
    path = _write(tmp_path, config)
    result = _console("train", "--config", str(path), cwd=tmp_path)
    assert result.returncode != 0
    assert "parameters.training.epocs" in result.stderr and "Extra inputs are not permitted" in result.stderr
    assert _invoke("--config", str(path)).output.strip() == result.stderr.strip()
