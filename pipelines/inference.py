"""The batch inference pipeline: pick the model version and format, then score every image and video of the input."""

from zenml import pipeline

from har_core.config import InferenceConfig
from steps.predict_files import predict_files
from steps.select_inference_model import select_inference_model


@pipeline
def inference_pipeline(inference: InferenceConfig) -> None:
    """Wiring only; every setting comes from the run config's `parameters.inference` block."""
    plan = select_inference_model(inference=inference)
    predict_files(plan=plan, inference=inference)
