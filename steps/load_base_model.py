"""Step: the untrained (zero-shot) classifier for the dataset's labels."""

from typing import Annotated

from zenml import step

from har_core.config import ClassifierConfig
from har_core.data.dataset import DatasetManifest
from har_core.model.classifier import HarClipClassifier, build_classifier
from har_zenml import materializers  # noqa: F401  (registers the materializers of this step's outputs)
from har_zenml.names import BASE_MODEL_ARTIFACT
from har_zenml.project_paths import in_project


@step
def load_base_model(
    classifier: ClassifierConfig, dataset: DatasetManifest
) -> Annotated[HarClipClassifier, BASE_MODEL_ARTIFACT]:
    """Load the CLIP backbone and cache the class-text embeddings of `dataset.labels`."""
    return build_classifier(in_project(classifier), dataset.labels)
