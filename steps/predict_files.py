"""Step: score every image and video of the input with the planned export; a predictions table and its summary."""

import tempfile
from typing import Annotated

from zenml import log_metadata, step
from zenml.logger import get_logger
from zenml.utils import source_utils

from har_core.config import InferenceConfig
from har_core.inference.batch import PredictionSummary, score_files
from har_core.inference.inputs import list_inputs
from har_core.inference.table import PredictionsTable
from har_core.runtime.predictor import Predictor
from har_zenml.inference_inputs import input_folder
from har_zenml.inference_plan import InferencePlan
from har_zenml.materializers import PredictionsTableMaterializer
from har_zenml.model_exports import export_directory
from har_zenml.names import PREDICTION_SUMMARY_ARTIFACT, PREDICTIONS_ARTIFACT
from har_zenml.project_paths import in_project

logger = get_logger(__name__)


# Not cached: the files below a folder or prefix change without the config changing.
@step(enable_cache=False, output_materializers={PREDICTIONS_ARTIFACT: PredictionsTableMaterializer})
def predict_files(
    plan: InferencePlan, inference: InferenceConfig
) -> tuple[
    Annotated[PredictionsTable, PREDICTIONS_ARTIFACT],
    Annotated[PredictionSummary, PREDICTION_SUMMARY_ARTIFACT],
]:
    """On `gpu-cluster` this step runs in a GPU pod through the step operator (configs/inference_gpu_cluster.yaml)."""
    inference = in_project(inference)
    folder = input_folder(inference.input, source_utils.get_source_root())
    files, other = list_inputs(folder, inference.input.max_files)
    logger.info("%d images and videos in %s (%d other files left alone)", len(files), folder.description, other)
    predictor = Predictor.from_export(
        export_directory(plan.model_version_id, plan.format), device=inference.device, threads=inference.threads
    )
    scratch = tempfile.mkdtemp(prefix="har-clip-predictions-")  # the materializer moves the parts into the store
    table, summary = score_files(predictor, folder, files, inference, plan.model_version, other, scratch)
    log_metadata(
        metadata={
            "scored_files": summary.files - len(summary.unreadable),
            "unreadable_files": len(summary.unreadable),
            "images_per_s": round(summary.images_per_s, 2),
            "label_counts": summary.label_counts,
            "model_version": plan.model_version,
            "format": plan.format,
        },
        artifact_name=PREDICTIONS_ARTIFACT,
        infer_artifact=True,
    )
    return table, summary
