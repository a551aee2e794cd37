"""Step: store the chosen export as a BentoML model, build a Bento pinned to it, and record its tag on the version."""

from typing import Annotated
from uuid import UUID

from zenml import log_metadata, step
from zenml.logger import get_logger

from bento_ops.packaging import build_bento as build_bento_package
from bento_ops.packaging import save_bento_model
from har_core.config import DeploymentConfig
from har_core.runtime.settings import ServingConfig
from har_zenml.deployment_plan import BentoRecord, DeploymentPlan
from har_zenml.model_exports import export_directory
from har_zenml.names import BENTO_ARTIFACT

logger = get_logger(__name__)


@step(enable_cache=False)
def build_bento(
    plan: DeploymentPlan, deployment: DeploymentConfig, serving: ServingConfig
) -> Annotated[BentoRecord, BENTO_ARTIFACT]:
    """The BentoML model carries the export's files, labels, manifest and parity; the Bento its runtime packages."""
    model = save_bento_model(
        export_directory(UUID(plan.model_version_id), plan.format),
        model_name=plan.model_name,
        model_version=plan.model_version,
        extra_labels={"stage": plan.stage or "none"},
    )
    bento = build_bento_package(
        str(model.tag), plan.format, serving, base_image=deployment.base_image, gpu=deployment.gpu
    )
    record = BentoRecord(
        bento_tag=str(bento.tag), bentoml_model_tag=str(model.tag), format=plan.format, bento_path=str(bento.path)
    )
    log_metadata(metadata={"bento": record.model_dump()}, model_version_id=UUID(plan.model_version_id))
    logger.info("Bento %s (BentoML model %s) recorded on version %s", bento.tag, model.tag, plan.model_version)
    return record
