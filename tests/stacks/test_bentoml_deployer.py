"""The `har_bentoml` model deployer (ZenML's BentoML deployer with the BentoML 1.4 fix) serves a real Bento as a
local daemon, answers the smoke test over HTTP, and stops with every process it started."""

from __future__ import annotations

import os
import urllib.request

import pytest

from bento_ops.server import free_port
from bento_ops.smoke import smoke_test
from har_zenml.names import PROJECT_SERVICE_NAME
from tests.conftest import PROJECT_ROOT


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def test_local_deployment_serves_the_bento_and_stops_cleanly(zenml_client, onnx_bento, bento_model, monkeypatch):
    from zenml.integrations.bentoml.services.bentoml_local_deployment import (
        BentoMLLocalDeploymentConfig,
        BentoMLLocalDeploymentService,
    )

    from stacks.bentoml_deployer import FixedBentoMLLocalDeploymentService, HarBentoMLModelDeployer

    monkeypatch.setenv("PYTHONPATH", str(PROJECT_ROOT))  # the daemon imports stacks.bentoml_deployer
    deployer = zenml_client.active_stack.model_deployer
    assert isinstance(deployer, HarBentoMLModelDeployer)
    port = free_port()
    config = BentoMLLocalDeploymentConfig(
        model_name="har_clip_classifier",
        model_uri=str(bento_model.tag),
        bento_tag=str(onnx_bento.tag),
        bento_uri=str(onnx_bento.path),
        port=port,
        host="127.0.0.1",
        working_dir=os.getcwd(),
        pipeline_name=PROJECT_SERVICE_NAME,
        pipeline_step_name="test_deploy",
    )
    service = deployer.deploy_model(
        config, service_type=BentoMLLocalDeploymentService.SERVICE_TYPE, continuous_deployment_mode=True, timeout=180
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert isinstance(service, FixedBentoMLLocalDeploymentService) and service.is_running
        result = smoke_test(url, "7", "onnx")
        assert result["labels"] == 15 and result["model"]["format"] == "onnx"
        found = deployer.find_model_server(pipeline_name=PROJECT_SERVICE_NAME)
        assert [s.uuid for s in found] == [service.uuid]
    finally:
        deployer.delete_model_server(service.uuid, force=True)
    assert not _answers(url)
    assert deployer.find_model_server(pipeline_name=PROJECT_SERVICE_NAME) == []


def test_deploy_beside_starts_a_second_server_and_leaves_the_running_one_alone(
    zenml_client, onnx_bento, bento_model, monkeypatch
):
    """What a release relies on. Upstream's `deploy_model(continuous_deployment_mode=False)` hands back the running
    server as "the exact same configuration" whatever the config says (checked here too), so it cannot do this."""
    from zenml.integrations.bentoml.services.bentoml_local_deployment import (
        BentoMLLocalDeploymentConfig,
        BentoMLLocalDeploymentService,
    )

    monkeypatch.setenv("PYTHONPATH", str(PROJECT_ROOT))
    deployer = zenml_client.active_stack.model_deployer

    def config(port: int) -> BentoMLLocalDeploymentConfig:
        return BentoMLLocalDeploymentConfig(
            model_name="har_clip_classifier", model_uri=str(bento_model.tag), bento_tag=str(onnx_bento.tag),
            bento_uri=str(onnx_bento.path), port=port, host="127.0.0.1", working_dir=os.getcwd(),
            pipeline_name=PROJECT_SERVICE_NAME, pipeline_step_name="test_deploy",
        )  # fmt: skip

    first_port, second_port = free_port(), free_port()
    first = deployer.deploy_beside(config(first_port), timeout=180)
    second = None
    try:
        upstream = deployer.deploy_model(
            config(second_port), service_type=BentoMLLocalDeploymentService.SERVICE_TYPE, timeout=180
        )
        assert upstream.uuid == first.uuid and not _answers(f"http://127.0.0.1:{second_port}")  # upstream's bug
        second = deployer.deploy_beside(config(second_port), timeout=180)
        assert second.uuid != first.uuid
        assert _answers(f"http://127.0.0.1:{first_port}") and _answers(f"http://127.0.0.1:{second_port}")
        found = {s.uuid for s in deployer.find_model_server(pipeline_name=PROJECT_SERVICE_NAME)}
        assert found == {first.uuid, second.uuid}
    finally:
        for service in (first, second):
            if service is not None:
                deployer.delete_model_server(service.uuid, force=True)
    assert not _answers(f"http://127.0.0.1:{first_port}") and not _answers(f"http://127.0.0.1:{second_port}")


def test_the_upstream_service_class_is_what_we_fix():
    """The bug this flavor works around: a 1.4 service passes upstream's legacy check (`bentoml.Service`)."""
    import bentoml

    from bento.service import HarClipService

    assert isinstance(HarClipService, bentoml.Service) and not isinstance(HarClipService, bentoml.legacy.Service)
    with pytest.raises(AttributeError):
        HarClipService.runners  # noqa: B018  (what upstream's legacy branch reads, and dies on)
