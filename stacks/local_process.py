"""`local_process`: a step operator that runs a step in a fresh process on this machine.

The train step gets its own process (its memory is returned when it ends; a crash cannot take the orchestrator
down), and the local stack goes through the same step-operator path as the Kubernetes one on `gpu-cluster`.
Registered by `python -m stacks.register local`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

from zenml.step_operators import BaseStepOperator, BaseStepOperatorConfig, BaseStepOperatorFlavor

if TYPE_CHECKING:
    from zenml.config.step_run_info import StepRunInfo

FLAVOR_NAME = "local_process"
FLAVOR_SOURCE = "stacks.local_process.LocalProcessStepOperatorFlavor"


class LocalProcessStepOperatorConfig(BaseStepOperatorConfig):
    """No settings: the step runs with this interpreter, working directory and environment."""

    @property
    def is_local(self) -> bool:
        return True


class LocalProcessStepOperator(BaseStepOperator):
    """Runs the step's entrypoint command in a new process session and waits for it (ZenML's legacy `launch`)."""

    def launch(self, info: StepRunInfo, entrypoint_command: list[str], environment: dict[str, str]) -> None:
        from zenml.utils import source_utils

        # ZenML hands `python ...`; the virtualenv that runs this pipeline need not be on PATH.
        command = [sys.executable if entrypoint_command[0] == "python" else entrypoint_command[0]]
        command += entrypoint_command[1:]
        env = {**os.environ, **environment}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [source_utils.get_source_root(), env.get("PYTHONPATH")]))
        process = subprocess.Popen(command, env=env, start_new_session=True)
        try:
            returncode = process.wait()
        finally:
            _kill_session(process)
        if returncode != 0:
            raise RuntimeError(
                f"Step {info.pipeline_step_name!r} failed in its own process (exit status {returncode}); "
                "its error is in the step's log and on the step run."
            )


def _kill_session(process: subprocess.Popen) -> None:
    """Nothing the step started may outlive it (an interrupted orchestrator included)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


class LocalProcessStepOperatorFlavor(BaseStepOperatorFlavor):
    @property
    def name(self) -> str:
        return FLAVOR_NAME

    @property
    def config_class(self) -> type[LocalProcessStepOperatorConfig]:
        return LocalProcessStepOperatorConfig

    @property
    def implementation_class(self) -> type[LocalProcessStepOperator]:
        return LocalProcessStepOperator
