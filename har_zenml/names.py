"""Step, artifact and model names the pipelines, steps, run.py, the viewer and tests share (ZenML's vocabulary)."""

DATASET_ARTIFACT = "dataset_manifest"
BASE_MODEL_ARTIFACT = "base_model"
TRAINED_MODEL_ARTIFACT = "trained_model"
TRAINING_RESULT_ARTIFACT = "training_result"
EVALUATION_REPORT_ARTIFACT = "evaluation_report"
CONFUSION_MATRIX_ARTIFACT = "confusion_matrix"
REPORT_MARKDOWN_ARTIFACT = "evaluation_summary"
EVALUATION_PREDICTIONS_ARTIFACT = "evaluation_predictions"  # every test image's prediction (viewer: mistakes)
RELIABILITY_DIAGRAM_ARTIFACT = "reliability_diagram"  # confidence against accuracy, before and after calibration
CALIBRATION_ARTIFACT = "calibration"  # the fitted temperatures and thresholds (`Calibration`)
OOD_STATISTICS_ARTIFACT = "ood_statistics"  # the training embeddings' class means and precision (`OodStatistics`)
MONITORING_REFERENCE_ARTIFACT = "monitoring_reference"  # val embeddings, predictions, confidences (monitoring's base)
CALIBRATE_STEP = "calibrate_model"

# Pipelines and the steps looked up by name in their runs (each equal to its function's name; tests/test_layout.py).
TRAINING_PIPELINE = "training_pipeline"
MULTINODE_TRAINING_PIPELINE = "multinode_training_pipeline"
LOAD_DATA_STEP = "load_data"
LOAD_DVC_DATA_STEP = "load_dvc_data"
DATA_STEPS = (LOAD_DATA_STEP, LOAD_DVC_DATA_STEP)  # whichever loaded a run's dataset
TRAIN_STEP = "train_model"
PUBLISH_TRAINING_JOB_STEP = "publish_training_job"
LOAD_TRAINED_MODEL_STEP = "load_trained_model"
SELECT_DEPLOYMENT_STEP = "select_deployment"

ZERO_SHOT_EVALUATION_STEP = "evaluate_zero_shot"
TRAIN_COMMAND_STEP = "train_on_nodes"  # the multi-node pipeline's command step (one per pod)
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

# Deployment: the plan, the built Bento and the running service.
DEPLOYMENT_PLAN_ARTIFACT = "deployment_plan"
BENTO_ARTIFACT = "bento"
DEPLOYMENT_ARTIFACT = "deployment"
DEPLOY_STEP = "deploy_bento"
PROJECT_SERVICE_NAME = "har_clip_deployment"  # pipeline name the model deployer files our services under

# Provenance and reproduction (har_zenml/model_provenance.py, cli/reproduce_command.py).
CODE_DIFF_ARTIFACT = "code_diff"  # the uncommitted changes of a dirty checkout a model was trained from
PROVENANCE_METADATA_KEY = "provenance"  # model version metadata: har_core.runtime.provenance.TrainingProvenance
REPRODUCTION_METADATA_KEY = "reproduction"  # model version metadata of a reproduction: what it was compared with
REPRODUCTION_EXTRA_KEY = "reproduces"  # run config `extra:` key telling the train step which run it re-makes

# Batch inference: the model and format chosen, the predictions table and its summary.
INFERENCE_PIPELINE = "inference_pipeline"
INFERENCE_PLAN_ARTIFACT = "inference_plan"
PREDICTIONS_ARTIFACT = "predictions"  # a pandas DataFrame, stored as parquet
PREDICTION_SUMMARY_ARTIFACT = "prediction_summary"
PREDICT_FILES_STEP = "predict_files"
