"""`har_bentoml`: ZenML's BentoML model deployer with its local deployment fixed for BentoML >= 1.2 services.

Why a subclass, not our own deployer: ZenML's deployer already gives us the service registry (`zenml
model-deployer models list`), daemon management and the container deployment; only one branch is wrong.
`BentoMLLocalDeploymentService.run()` picks its BentoML < 1.2 path with `isinstance(svc, bentoml.Service)`, which in
1.4 is the new-style service class too, so the daemon calls `serve_http_production` and dies with
`'Service' object has no attribute 'runners'`. The fix (what this module does, small enough for upstream): test for
the legacy class, `bentoml.legacy.Service`, and otherwise take the `_bentoml_impl.server.serve_http` branch.

Registered as a custom flavor by `python -m stacks.register` (the `flavors:` list of a stack file).
"""

from __future__ import annotations

from typing import Any, ClassVar
from uuid import UUID

from zenml.client import Client
from zenml.integrations.bentoml.flavors.bentoml_model_deployer_flavor import BentoMLModelDeployerFlavor
from zenml.integrations.bentoml.model_deployers.bentoml_model_deployer import BentoMLModelDeployer
from zenml.integrations.bentoml.services.bentoml_local_deployment import (
    BentoMLLocalDeploymentConfig,
    BentoMLLocalDeploymentService,
    SSLBentoMLParametersConfig,
)
from zenml.logger import get_logger
from zenml.model_deployers.base_model_deployer import get_model_version_id_if_exists
from zenml.services.service import BaseService, ServiceConfig

logger = get_logger(__name__)

FLAVOR_NAME = "har_bentoml"


class FixedBentoMLLocalDeploymentService(BentoMLLocalDeploymentService):
    """The local daemon, serving new-style (>= 1.2) services with `serve_http`; legacy ones as upstream does."""

    def run(self) -> None:
        import bentoml
        from bentoml._internal.service.loader import load

        service = load(bento_identifier=self.config.bento_tag, working_dir=self.config.working_dir or ".")
        if isinstance(service, bentoml.legacy.Service):
            return super().run()
        from _bentoml_impl.server import serve_http

        self.endpoint.prepare_for_start()
        ssl = self.config.ssl_parameters or SSLBentoMLParametersConfig()
        service.inject_config()
        logger.info("Serving %s on %s:%s", self.config.bento_tag, self.config.host, self.config.port)
        try:
            serve_http(
                self.config.bento_tag,
                working_dir=self.config.working_dir or ".",
                host=self.config.host or "127.0.0.1",
                port=self.config.port,
                backlog=self.config.backlog,
                ssl_certfile=ssl.ssl_certfile,
                ssl_keyfile=ssl.ssl_keyfile,
                ssl_keyfile_password=ssl.ssl_keyfile_password,
                ssl_version=ssl.ssl_version,
                ssl_cert_reqs=ssl.ssl_cert_reqs,
                ssl_ca_certs=ssl.ssl_ca_certs,
                ssl_ciphers=ssl.ssl_ciphers,
            )
        except KeyboardInterrupt:
            logger.info("Stopping the BentoML server")

    def stop(self, timeout: int = 0, force: bool = False) -> None:
        """Stop the daemon, then the BentoML workers it started (they run in sessions of their own and would
        outlive it, still holding the port)."""
        from har_core.training.process_tree import descendants, stop_process_tree

        workers = descendants(self.status.pid) if self.status.pid else []
        super().stop(timeout=timeout, force=force)
        for worker in workers:
            stop_process_tree(worker, grace_s=5.0)


class HarBentoMLModelDeployer(BentoMLModelDeployer):
    """ZenML's BentoML model deployer; local deployments run `FixedBentoMLLocalDeploymentService`."""

    def deploy_beside(self, config: BentoMLLocalDeploymentConfig, timeout: int) -> BaseService:
        """Start a new server for `config` and leave every running one alone (releases start the new server
        before they stop the old one).

        Why not `deploy_model(continuous_deployment_mode=False)`: ZenML's lookup of "an existing server with the
        exact same configuration" matches on the service type only (its config filter is not applied), so it hands
        back the running deployment instead of starting the new one. This is `deploy_model` without that lookup.
        """
        client = Client()
        response = client.create_service(
            config=config,
            service_type=BentoMLLocalDeploymentService.SERVICE_TYPE,
            model_version_id=get_model_version_id_if_exists(config.model_name, config.model_version),
        )
        try:
            service = self.perform_deploy_model(id=response.id, config=config, timeout=timeout)
        except Exception as error:
            client.delete_service(response.id)
            raise RuntimeError(f"Failed to deploy model server for {config.model_name}: {error}") from error
        client.update_service(
            id=service.uuid,
            name=service.config.service_name,
            service_source=service.model_dump().get("type"),
            admin_state=service.admin_state,
            status=service.status.model_dump(),
            endpoint=service.endpoint.model_dump() if service.endpoint else None,
            prediction_url=service.get_prediction_url(),
            health_check_url=service.get_healthcheck_url(),
        )
        return service

    def _create_new_service(self, id: UUID, timeout: int, config: ServiceConfig) -> BaseService:
        if not isinstance(config, BentoMLLocalDeploymentConfig):
            return super()._create_new_service(id=id, timeout=timeout, config=config)
        config.root_runtime_path = self.local_path
        service = FixedBentoMLLocalDeploymentService(uuid=id, config=config)
        try:
            service.start(timeout=timeout)
        except BaseException:  # never ready (e.g. its startup parity check failed): leave no daemon behind
            service.stop(force=True)
            raise
        return service


class HarBentoMLModelDeployerFlavor(BentoMLModelDeployerFlavor):
    """Same configuration as ZenML's `bentoml` flavor."""

    SOURCE: ClassVar[str] = f"{__name__}.HarBentoMLModelDeployerFlavor"

    @property
    def name(self) -> str:
        return FLAVOR_NAME

    @property
    def implementation_class(self) -> type[Any]:
        return HarBentoMLModelDeployer
