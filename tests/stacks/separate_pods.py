"""A test step operator that runs a command step the way ZenML's Kubernetes step operator runs it on `pod_count`
pods, minus Kubernetes: one process per pod, each in its own working directory with its own `$HOME` and
`$TMPDIR`, an environment of nothing but what ZenML hands a step operator (store, active stack), the variables
of `zenml.integrations.kubernetes.kube_utils.multi_pod_environment` (main address 127.0.0.1 and a free port)
plus the indexed Job's `JOB_COMPLETION_INDEX`, and the pod settings' `environment`. The pods share the network,
the artifact store and the ZenML store; no variable or path of the test process reaches them.

Like an indexed Job with `backoffLimit: 0`, the step fails as soon as one pod fails: the other pods get SIGTERM
and, after a grace period, SIGKILL (Kubernetes' `terminationGracePeriodSeconds`). Every pod's process group is
killed when the step is cleaned up.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from pydantic import PositiveInt
from zenml.config.base_settings import BaseSettings
from zenml.enums import ExecutionStatus
from zenml.step_operators import BaseStepOperator, BaseStepOperatorConfig, BaseStepOperatorFlavor

from tests.har_core.training.distributed_helpers import process_tree

if TYPE_CHECKING:
    from zenml.config.step_run_info import StepRunInfo
    from zenml.models import StepRunResponse

FLAVOR_NAME = "separate_pods"
FLAVOR_SOURCE = "tests.stacks.separate_pods.SeparatePodsStepOperatorFlavor"
POLL_SECONDS = 0.5
PID_FILE = "pid"
LOG_FILE = "pod.log"


class SeparatePodsSettings(BaseSettings):
    """`pod_count` as on the Kubernetes step operator; `environment` as a pod spec's `env`."""

    pod_count: PositiveInt = 1
    environment: dict[str, str] = {}
    termination_grace_s: float = 30.0


class SeparatePodsConfig(BaseStepOperatorConfig, SeparatePodsSettings):
    """`root`: where each pod's folder (`<step run id>-<index>/{work,home,tmp}`, `pod.log`, `pid`) is made."""

    root: str

    @property
    def is_local(self) -> bool:
        return True


class SeparatePodsStepOperator(BaseStepOperator):
    _pods: ClassVar[dict[str, list[subprocess.Popen]]] = {}

    @property
    def config(self) -> SeparatePodsConfig:
        return self._config  # type: ignore[return-value]

    @property
    def settings_class(self) -> type[SeparatePodsSettings]:
        return SeparatePodsSettings

    def submit(self, info: StepRunInfo, entrypoint_command: list[str], environment: dict[str, str]) -> None:
        from zenml.integrations.kubernetes.kube_utils import multi_pod_environment
        from zenml.utils import source_utils

        settings: SeparatePodsSettings = self.get_settings(info)  # type: ignore[assignment]
        command = [sys.executable if entrypoint_command[0] == "python" else entrypoint_command[0]]
        command += entrypoint_command[1:]
        pod_variables = {}
        if settings.pod_count > 1:
            pod_variables = multi_pod_environment("job", "namespace", settings.pod_count)
            # The headless service's DNS name of pod 0 becomes this machine's loopback address.
            pod_variables["ZENML_KUBERNETES_MAIN_ADDRESS"] = "127.0.0.1"
            pod_variables["ZENML_KUBERNETES_MAIN_PORT"] = str(_free_port())
        pods = []
        for index in range(settings.pod_count):
            pod = Path(self.config.root) / f"{info.step_run_id}-{index}"
            for folder in ("work", "home", "tmp"):
                (pod / folder).mkdir(parents=True, exist_ok=True)
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "LANG": "C.UTF-8",
                "HOME": str(pod / "home"),
                "TMPDIR": str(pod / "tmp"),
                # The image's code: this checkout (a pod's image holds the project installed).
                "PYTHONPATH": source_utils.get_source_root(),
                **environment,
                **pod_variables,
                **settings.environment,
            }
            if settings.pod_count > 1:
                env["JOB_COMPLETION_INDEX"] = str(index)
            with (pod / LOG_FILE).open("wb") as log:
                process = subprocess.Popen(
                    command, env=env, cwd=pod / "work", stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            (pod / PID_FILE).write_text(str(process.pid))
            pods.append(process)
        self._pods[str(info.step_run_id)] = pods

    def get_status(self, step_run: StepRunResponse) -> ExecutionStatus:
        pods = self._pods.get(str(step_run.id))
        if pods is None:
            return ExecutionStatus.FAILED
        codes = [pod.poll() for pod in pods]
        if any(code not in (None, 0) for code in codes):
            return ExecutionStatus.FAILED
        if all(code == 0 for code in codes):
            return ExecutionStatus.COMPLETED
        return ExecutionStatus.RUNNING

    def wait(self, step_run: StepRunResponse) -> ExecutionStatus:
        while (status := self.get_status(step_run)) == ExecutionStatus.RUNNING:
            time.sleep(POLL_SECONDS)
        if status == ExecutionStatus.FAILED:  # the Job failed: its other pods are deleted
            self._terminate(self._pods.get(str(step_run.id), []), self.config.termination_grace_s)
        return status

    def cancel(self, step_run: StepRunResponse) -> None:
        self.cleanup_step_submission(step_run)

    def cleanup_step_submission(self, step_run: StepRunResponse) -> None:
        self._terminate(self._pods.pop(str(step_run.id), []), 0.0)

    @staticmethod
    def _terminate(pods: list[subprocess.Popen], grace_s: float) -> None:
        """SIGTERM each pod's main process, then SIGKILL every process the pod had (a container's end: its
        torchrun runs in a session of its own, so killing the pod's process group alone would leave it)."""
        trees = [process_tree(pod.pid) for pod in pods if pod.poll() is None]
        for pod in pods:
            with contextlib.suppress(ProcessLookupError):
                pod.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(pod.poll() is None for pod in pods):
            time.sleep(0.1)
        for pid in {pid for tree in trees for pid in tree} | {pid for pod in pods for pid in process_tree(pod.pid)}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pod in pods:
            pod.wait()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SeparatePodsStepOperatorFlavor(BaseStepOperatorFlavor):
    @property
    def name(self) -> str:
        return FLAVOR_NAME

    @property
    def config_class(self) -> type[SeparatePodsConfig]:
        return SeparatePodsConfig

    @property
    def implementation_class(self) -> type[SeparatePodsStepOperator]:
        return SeparatePodsStepOperator
