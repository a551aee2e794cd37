"""The deployment pipeline end to end in a clean store, through run.py: two trained versions, deploy the production
one (fastest gated format), refuse a gate-failed format, fail a release's smoke test and a rollback's (the running
deployment keeps serving, stages stay), roll back, undeploy. Every deployment is smoke-tested over HTTP by the
pipeline itself; the test checks the endpoint again from outside."""

from __future__ import annotations

import io
import re
import urllib.request
from pathlib import Path

import pytest
import requests
import yaml
from click.testing import CliRunner
from PIL import Image

from har_core.evaluation.promotion import PRODUCTION_STAGE
from har_zenml.names import BENTO_ARTIFACT, PROJECT_SERVICE_NAME, ZENML_MODEL_NAME
from tests.conftest import PROJECT_ROOT
from tests.pipelines.test_training_pipeline import quickstart_config_in

pytestmark = pytest.mark.slow


def _invoke(*args: str):
    import run

    return CliRunner().invoke(run.main, list(args))


def _training_config(directory: Path, seed: int) -> Path:
    """The quick config, smaller: 2 epochs, ONNX formats only, int8 held to an impossible gate (so it fails)."""
    path = quickstart_config_in(directory)
    config = yaml.safe_load(path.read_text())
    parameters = config["parameters"]
    parameters["data"]["synthetic"]["images_per_class"] = 24
    parameters["training"].update(epochs=2, seed=seed)
    parameters["export"].update(formats=["onnx", "onnx-int8"], parity_images=16, output_dir=str(directory / "exp"))
    parameters["export"]["gates"] = {
        "onnx": {"min_top1_agreement": 0.99, "max_abs_logit_diff": 0.05, "min_embedding_cosine": 0.9999},
        "onnx-int8": {"min_top1_agreement": 1.0, "max_abs_logit_diff": 1e-9, "min_embedding_cosine": 1.0},
    }
    parameters["benchmark"].update(warmup=1, latency_iterations=3, throughput_iterations=2)
    parameters["promotion"]["force"] = True  # every run becomes production: what rollback needs
    path.write_text(yaml.safe_dump(config))
    return path


def _deployment_config(directory: Path, serving: dict | None = None, **deployment) -> Path:
    config = yaml.safe_load((PROJECT_ROOT / "configs" / "deployment.yaml").read_text())
    config["parameters"]["deployment"].update(deployment)
    config["parameters"]["serving"].update(serving or {})
    path = directory / f"deployment-{len(list(directory.glob('deployment-*')))}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _predict(url: str) -> dict:
    buffer = io.BytesIO()
    Image.new("RGB", (80, 80), (200, 50, 50)).save(buffer, "JPEG")
    response = requests.post(f"{url}/predict", files={"image": ("x.jpg", buffer.getvalue(), "image/jpeg")}, timeout=60)
    response.raise_for_status()
    return response.json()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def two_versions(zenml_client, tmp_path_factory, monkeypatch_module):
    monkeypatch_module.setenv("PYTHONPATH", str(PROJECT_ROOT))  # the deployer's daemon imports stacks.*
    directory = tmp_path_factory.mktemp("deploy-e2e")
    config = _training_config(directory, seed=1)
    for _ in range(2):  # the second run reuses the cached steps but is a new, promoted version
        result = _invoke("--pipeline", "training", "--config", str(config))
        assert result.exit_code == 0, result.output + repr(result.exception)
    versions = zenml_client.list_model_versions(ZENML_MODEL_NAME, size=10).items
    assert len(versions) >= 2
    yield directory
    _invoke("--command", "undeploy")


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_deploy_rollback_and_undeploy(zenml_client, two_versions):
    production = zenml_client.get_model_version(ZENML_MODEL_NAME, PRODUCTION_STAGE)
    result = _invoke("--pipeline", "deployment", "--config", str(_deployment_config(two_versions)))
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert f"version {production.number} as onnx" in result.output
    assert "fastest format that passed its parity gate" in result.output
    assert "measured where training ran" in result.output and "smoke test passed" in result.output
    url = re.search(r"at (http://127\.0\.0\.1:\d+)", result.output).group(1)
    assert _predict(url)["model"] == {"name": ZENML_MODEL_NAME, "version": str(production.number), "format": "onnx"}
    bento = zenml_client.get_model_version(ZENML_MODEL_NAME, production.id).run_metadata["bento"]
    run = zenml_client.get_pipeline("deployment_pipeline").last_run
    assert bento["bento_tag"] == run.steps["build_bento"].outputs[BENTO_ARTIFACT][0].load().bento_tag

    refused = _invoke("--pipeline", "deployment", "--config", str(_deployment_config(two_versions, format="onnx-int8")))
    assert refused.exit_code != 0 and "'onnx-int8'" in refused.output and "parity gate failed" in refused.output
    assert "min embedding cosine" in refused.output  # the gate's own words
    assert _answers(url)  # the running deployment was left alone

    # A release whose smoke test fails (a serving config whose default top_k exceeds the 15 labels: /predict
    # answers 400): the new server is stopped, the running deployment keeps serving, nothing else is left running.
    broken = {"default_top_k": 1000}
    failed = _invoke(
        "--pipeline", "deployment", "--config",
        str(_deployment_config(two_versions, serving=broken, model_version=production.number - 1)),
    )  # fmt: skip
    assert failed.exit_code != 0 and "/predict answered 400" in failed.output, failed.output
    assert _predict(url)["model"]["version"] == str(production.number)
    running = zenml_client.active_stack.model_deployer.find_model_server(pipeline_name=PROJECT_SERVICE_NAME)
    assert len(running) == 1 and running[0].config.model_version == str(production.number)

    # A rollback whose deployment fails its smoke test changes no stage and leaves the deployment serving.
    failed = _invoke("--command", "rollback", "--config", str(_deployment_config(two_versions, serving=broken)))
    assert failed.exit_code != 0 and "Rollback not applied" in failed.output, failed.output
    assert zenml_client.get_model_version(ZENML_MODEL_NAME, PRODUCTION_STAGE).number == production.number
    assert _predict(url)["model"]["version"] == str(production.number)

    rolled = _invoke("--command", "rollback", "--config", str(_deployment_config(two_versions)))
    assert rolled.exit_code == 0, rolled.output + repr(rolled.exception)
    restored = zenml_client.get_model_version(ZENML_MODEL_NAME, PRODUCTION_STAGE)
    assert restored.number == production.number - 1
    assert zenml_client.get_model_version(ZENML_MODEL_NAME, production.id).stage == "archived"
    new_url = re.search(r"at (http://127\.0\.0\.1:\d+)", rolled.output).group(1)
    assert _predict(new_url)["model"]["version"] == str(restored.number)
    assert new_url != url and not _answers(url)  # a new port; the old server stopped once the new one passed

    undeployed = _invoke("--command", "undeploy")
    assert undeployed.exit_code == 0 and "Removed" in undeployed.output
    assert not _answers(new_url)


def test_one_lookup_finds_a_versions_export_by_stage_number_or_format(zenml_client, two_versions):
    from har_core.runtime.manifest import ExportManifest
    from har_zenml.model_exports import ModelExportNotFoundError, export_directory, find_model_version

    production = find_model_version(PRODUCTION_STAGE)
    # Each lookup copies the export out of the artifact store: the same files, by their recorded sha256.
    found = [
        export_directory(selector, "onnx") for selector in (PRODUCTION_STAGE, str(production.number), production.id)
    ]
    manifests = [ExportManifest.load(directory) for directory in found]
    assert all(manifest.format == "onnx" and manifest.files == manifests[0].files for manifest in manifests)
    manifests[0].verify_files(found[0])
    with pytest.raises(ModelExportNotFoundError, match="no tensorrt export"):
        export_directory(production.number, "tensorrt")
    with pytest.raises(ModelExportNotFoundError, match="No har_clip_classifier version '9999'"):
        export_directory(9999, "onnx")


# Artifacts saved before har_core was grouped by stage record these import paths for their types.
OLD_TYPE_PATHS = {
    "exports": ("har_core.export_manifest", "ExportBundle"),  # a module that moved (legacy finder)
    "evaluation_report": ("har_core.evaluation", "EvaluationReport"),  # now a package (its __getattr__)
    "trained_model": ("har_core.model", "HarClipClassifier"),  # now a package, custom materializer
    "dataset_manifest": ("har_core.dataset", "DatasetManifest"),
}
# ... and, before the materializers moved to har_zenml, this path for our materializers.
OLD_MATERIALIZERS = {
    "exports": "ExportBundleMaterializer",
    "trained_model": "HarClipClassifierMaterializer",
    "dataset_manifest": "DatasetManifestMaterializer",
}
LOAD_SCRIPT = """
import sys
from zenml.client import Client
from zenml.utils import source_utils
source_utils.set_custom_source_root({root!r})
{prelude}
for name, artifact_id in {ids!r}.items():
    artifact = Client().get_artifact_version(artifact_id)
    assert artifact.data_type.module.count('.') == 1, artifact.data_type
    value = artifact.load()
    print(name, type(value).__module__ + '.' + type(value).__name__)
"""


def _load_in_fresh_process(ids: dict[str, str], prelude: str) -> dict[str, str]:
    """name -> the loaded value's type, in a new interpreter that has imported only ZenML and `prelude`."""
    import os
    import subprocess
    import sys

    script = LOAD_SCRIPT.format(root=str(PROJECT_ROOT), prelude=prelude, ids=ids)
    environment = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(line.split() for line in result.stdout.splitlines() if line.split()[0] in ids)


def test_artifacts_saved_under_old_module_paths_still_load(zenml_client, two_versions):
    """Rewrite the stored type (and our materializer) of some of production's artifacts to their old paths; fresh
    processes load them (promotion re-scores production and rollback redeploys old versions from such stores).

    The aliases live on the ZenML side (`har_zenml.legacy_paths`): `import har_core` installs nothing. Our old
    materializer path installs them, since ZenML imports an artifact's materializer before its type; an artifact
    stored with one of ZenML's own materializers (the pydantic evaluation report) needs `import har_zenml` first."""
    import json

    from sqlalchemy import text

    version = zenml_client.get_model_version(ZENML_MODEL_NAME, PRODUCTION_STAGE)
    artifacts = {name: version.get_artifact(name) for name in OLD_TYPE_PATHS}
    engine = zenml_client.zen_store.engine
    with engine.begin() as connection:
        for name, (module, attribute) in OLD_TYPE_PATHS.items():
            source = {"module": module, "attribute": attribute, "type": "user"}
            connection.execute(
                text("UPDATE artifact_version SET data_type = :source WHERE id = :id"),
                {"source": json.dumps(source), "id": artifacts[name].id.hex},
            )
        for name, attribute in OLD_MATERIALIZERS.items():
            source = {"module": "steps.materializers", "attribute": attribute, "type": "user"}
            connection.execute(
                text("UPDATE artifact_version SET materializer = :source WHERE id = :id"),
                {"source": json.dumps(source), "id": artifacts[name].id.hex},
            )
    ids = {name: str(artifacts[name].id) for name in OLD_TYPE_PATHS}
    nothing_installed = (
        "import har_core, har_core.model\n"
        "assert not any(type(f).__name__ == 'LegacyPathFinder' for f in sys.meta_path)\n"
        "assert 'har_zenml' not in sys.modules and not hasattr(har_core.model, 'HarClipClassifier')"
    )
    custom = {name: ids[name] for name in OLD_MATERIALIZERS}
    loaded = _load_in_fresh_process(custom, prelude=nothing_installed)
    loaded |= _load_in_fresh_process({"evaluation_report": ids["evaluation_report"]}, prelude="import har_zenml")
    assert loaded == {
        "exports": "har_core.runtime.manifest.ExportBundle",
        "evaluation_report": "har_core.evaluation.metrics.EvaluationReport",
        "trained_model": "har_core.model.classifier.HarClipClassifier",
        "dataset_manifest": "har_core.data.dataset.DatasetManifest",
    }
