"""Artifact, model and step names shared by steps, pipelines, run.py, bento/ and tests (no ZenML import)."""

DATASET_ARTIFACT = "dataset_manifest"
BASE_MODEL_ARTIFACT = "base_model"
TRAINED_MODEL_ARTIFACT = "trained_model"
TRAINING_RESULT_ARTIFACT = "training_result"
EVALUATION_REPORT_ARTIFACT = "evaluation_report"
CONFUSION_MATRIX_ARTIFACT = "confusion_matrix"
REPORT_MARKDOWN_ARTIFACT = "evaluation_summary"
EVALUATION_PREDICTIONS_ARTIFACT = "evaluation_predictions"  # every test image's prediction (viewer: mistakes)

ZERO_SHOT_EVALUATION_STEP = "evaluate_zero_shot"
FINE_TUNED_EVALUATION_STEP = "evaluate_fine_tuned"

ZENML_MODEL_NAME = "har_clip_classifier"

# Export, benchmark and promotion (the export artifact is an `ExportBundle`: one directory per format).
EXPORTS_ARTIFACT = "exports"
BENCHMARK_ARTIFACT = "benchmark_table"
BENCHMARK_MARKDOWN_ARTIFACT = "benchmark_summary"
PROMOTION_DECISION_ARTIFACT = "promotion_decision"
EXPORT_STEP = "export_model"
BENCHMARK_STEP = "benchmark_exports"
PROMOTE_STEP = "promote_model"

# Model Control Plane stages (the values ZenML's ModelStages uses).
PRODUCTION_STAGE = "production"
STAGING_STAGE = "staging"
ARCHIVED_STAGE = "archived"

# Serving (bento/): the BentoML model and service names, and the environment the service reads.
BENTO_MODEL_NAME = "har_clip_classifier"
BENTO_SERVICE_NAME = "har_clip"
API_TOKEN_ENV = "HAR_CLIP_API_TOKEN"  # set: every API call needs `Authorization: Bearer <token>`
SERVING_CONFIG_ENV = "HAR_CLIP_SERVING_CONFIG"  # path of a serving YAML overriding bento/serving.yaml
BENTO_MODEL_ENV = "HAR_CLIP_BENTO_MODEL"  # BentoML model tag to serve (default: <BENTO_MODEL_NAME>:latest)
DEPLOYMENT_PLAN_ARTIFACT = "deployment_plan"
BENTO_ARTIFACT = "bento"
DEPLOYMENT_ARTIFACT = "deployment"
DEPLOY_STEP = "deploy_bento"
PROJECT_SERVICE_NAME = "har_clip_deployment"  # pipeline name the model deployer files our services under
