"""`local_process`: a step operator that runs a step in a fresh process on this machine.

The train step gets its own process (its memory is returned when it ends; a crash cannot take the orchestrator
down), and the local stack goes through the same step-operator path as the Kubernetes one on `gpu-cluster`.
Registered by `python -m stacks.register local`.

The step runs as the orchestrator's user, in the orchestrator's working directory, with the orchestrator's source
root: ZenML's step entrypoint moves every step into `/app` (a container's code folder), which a normal user cannot
create and where root would write checkpoints and W&B runs outside the project. `LocalProcessEntrypoint` keeps
everything else ZenML's entrypoint does. The step process dies with the orchestrator (parent-death signal).
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING, ClassVar

from zenml.constants import ENV_ZENML_CUSTOM_SOURCE_ROOT
from zenml.enums import ExecutionStatus
from zenml.step_operators import BaseStepOperator, BaseStepOperatorConfig, BaseStepOperatorFlavor
from zenml.step_operators.step_operator_entrypoint_configuration import StepOperatorEntrypointConfiguration

from har_core.training.process_tree import die_with_parent, stop_process_tree

if TYPE_CHECKING:
    from zenml.config.step_run_info import StepRunInfo
    from zenml.models import StepRunResponse

FLAVOR_NAME = "local_process"
FLAVOR_SOURCE = "stacks.local_process.LocalProcessStepOperatorFlavor"


class LocalProcessStepOperatorConfig(BaseStepOperatorConfig):
    """No settings: the step runs with this interpreter, working directory and environment."""

    @property
    def is_local(self) -> bool:
        return True


class LocalProcessEntrypoint(StepOperatorEntrypointConfiguration):
    """ZenML's step-operator entrypoint without the container's `chdir("/app")`: the code is already here."""

    def prepare_code_environment(self) -> None:
        """Neither download code nor move to `/app`: the step runs the orchestrator's checkout, where it runs."""
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())


class LocalProcessStepOperator(BaseStepOperator):
    """Runs the step's entrypoint (or a command step's command) in a new process session on this machine.

    Implements ZenML's submit/get_status/wait API, so the step launcher publishes a command step's success
    itself and rebuilds a failed step's exception from the step run.
    """

    # The launcher may ask another instance of this component for the status, so processes are kept per class.
    _processes: ClassVar[dict[str, subprocess.Popen]] = {}

    @property
    def entrypoint_config_class(self) -> type[StepOperatorEntrypointConfiguration]:
        return LocalProcessEntrypoint

    def submit(self, info: StepRunInfo, entrypoint_command: list[str], environment: dict[str, str]) -> None:
        from zenml.utils import source_utils

        # ZenML hands `python ...`; the virtualenv that runs this pipeline need not be on PATH.
        command = [sys.executable if entrypoint_command[0] == "python" else entrypoint_command[0]]
        command += entrypoint_command[1:]
        source_root = source_utils.get_source_root()
        env = {**os.environ, **environment, ENV_ZENML_CUSTOM_SOURCE_ROOT: source_root}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [source_root, env.get("PYTHONPATH")]))
        self._processes[str(info.step_run_id)] = subprocess.Popen(
            command, env=env, cwd=os.getcwd(), start_new_session=True, preexec_fn=die_with_parent
        )

    def get_status(self, step_run: StepRunResponse) -> ExecutionStatus:
        process = self._processes.get(str(step_run.id))
        if process is None:
            return ExecutionStatus.FAILED
        returncode = process.poll()
        if returncode is None:
            return ExecutionStatus.RUNNING
        return ExecutionStatus.COMPLETED if returncode == 0 else ExecutionStatus.FAILED

    def wait(self, step_run: StepRunResponse) -> ExecutionStatus:
        process = self._processes.get(str(step_run.id))
        if process is not None:
            process.wait()
        return self.get_status(step_run)

    def cancel(self, step_run: StepRunResponse) -> None:
        self.cleanup_step_submission(step_run)

    def cleanup_step_submission(self, step_run: StepRunResponse) -> None:
        process = self._processes.pop(str(step_run.id), None)
        if process is not None:
            stop_process_tree(process, grace_s=0.0, group=True)  # nothing the step started may outlive it


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
