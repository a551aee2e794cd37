"""Choosing the batch inference format: requested, else the deployed one while gated, else the fastest gated one."""

import pytest

from har_zenml.deployment_plan import DeploymentRefusedError
from har_zenml.inference_plan import choose_inference_format, deployed_format
from tests.har_zenml.test_deployment_plan import ROWS, STATUSES


def test_the_deployed_format_is_the_default_even_when_another_is_faster():
    choice = choose_inference_format(STATUSES, ROWS, None, "torchscript", "host")
    assert choice.format == "torchscript" and "deployed as" in choice.reason


def test_without_a_deployment_the_fastest_gated_format_is_chosen():
    choice = choose_inference_format(STATUSES, ROWS, None, None, "host")
    assert choice.format == "onnx" and "fastest format that passed its parity gate" in choice.reason


def test_a_deployed_format_that_no_longer_passes_its_gate_is_passed_over():
    assert choose_inference_format(STATUSES, ROWS, None, "onnx-int8", "host").format == "onnx"


def test_a_requested_format_wins_and_must_be_gated():
    assert choose_inference_format(STATUSES, ROWS, "torchscript", "onnx", "host").format == "torchscript"
    with pytest.raises(DeploymentRefusedError, match="parity gate failed"):
        choose_inference_format(STATUSES, ROWS, "onnx-int8", "onnx", "host")


def test_the_deployed_format_is_read_from_the_deployment_metadata():
    assert deployed_format({"deployment": {"url": "http://x", "format": "onnx-int8"}}) == "onnx-int8"
    assert deployed_format({}) is None and deployed_format({"deployment": "garbled"}) is None
