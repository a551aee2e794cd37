"""Choosing the format to deploy: the requested one only if gated, else the fastest gated one."""

import pytest
from pydantic import BaseModel

from har_core.runtime.manifest import FormatStatus
from har_zenml.deployment_plan import DeploymentRefusedError, choose_format


class Row(BaseModel):
    format: str
    deployable: bool
    throughput_ips: float | None = None


STATUSES = {
    "onnx": FormatStatus(format="onnx", directory="onnx", deployable=True, message="parity gate passed"),
    "onnx-int8": FormatStatus(
        format="onnx-int8", directory="onnx-int8", deployable=False, message="parity gate failed: top-1 agreement 0.91"
    ),
    "torchscript": FormatStatus(format="torchscript", directory="torchscript", deployable=True, message="passed"),
    "tensorrt": FormatStatus(format="tensorrt", deployable=False, message="TensorRT is not installed"),
}
ROWS = [
    Row(format="onnx", deployable=True, throughput_ips=5.5),
    Row(format="onnx-int8", deployable=False),
    Row(format="torchscript", deployable=True, throughput_ips=4.4),
]


def test_default_is_the_fastest_gated_format_and_says_where_it_was_measured():
    choice = choose_format(STATUSES, ROWS, None, "x86_64 training host")
    assert choice.format == "onnx"
    assert "5.5 img/s" in choice.reason and "torchscript 4.4" in choice.reason
    assert "measured where training ran (x86_64 training host)" in choice.reason


def test_a_faster_but_gate_failed_format_is_never_the_default():
    rows = [*ROWS, Row(format="onnx-int8", deployable=True, throughput_ips=99.0)]  # table disagrees with the gate
    assert choose_format(STATUSES, rows, None, "host").format == "onnx"


@pytest.mark.parametrize(
    ("requested", "message"),
    [("onnx-int8", "top-1 agreement 0.91"), ("tensorrt", "TensorRT is not installed"), ("pytorch", "not exported")],
)
def test_a_requested_format_that_cannot_deploy_is_refused_with_the_reason(requested, message):
    with pytest.raises(DeploymentRefusedError, match=message):
        choose_format(STATUSES, ROWS, requested, "host")


def test_a_requested_gated_format_is_used():
    assert choose_format(STATUSES, ROWS, "torchscript", "host").format == "torchscript"


def test_nothing_gated_is_refused():
    statuses = {"onnx": STATUSES["onnx-int8"].model_copy(update={"format": "onnx"})}
    with pytest.raises(DeploymentRefusedError, match="No export"):
        choose_format(statuses, [], None, "host")
