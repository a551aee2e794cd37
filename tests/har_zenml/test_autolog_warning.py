"""The MLflow tracker's "Failed to disable autologging ... ['fastai']" warning is dropped, and only that one."""

import logging

from zenml.integrations.mlflow.experiment_trackers.mlflow_experiment_tracker import MLFlowExperimentTracker

from har_zenml import tracking


def _autolog_warnings(caplog) -> list[str]:
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        MLFlowExperimentTracker.disable_autologging(None)  # ZenML's own code, run before every tracked step
    return [record.getMessage() for record in caplog.records if "autologging" in record.getMessage()]


def test_the_fastai_autologging_warning_is_silenced_at_its_logger(caplog):
    tracker_logger = logging.getLogger(tracking.MLFLOW_TRACKER_LOGGER)
    assert _autolog_warnings(caplog) == []
    filters = list(tracker_logger.filters)
    for existing in filters:
        tracker_logger.removeFilter(existing)
    try:  # without the filter ZenML still warns: MLflow 3 has no fastai flavor
        assert _autolog_warnings(caplog) == [tracking.FASTAI_AUTOLOG_WARNING]
    finally:
        for existing in filters:
            tracker_logger.addFilter(existing)


def test_other_autologging_warnings_still_show(caplog):
    tracking.silence_missing_fastai_flavor_warning()
    with caplog.at_level(logging.WARNING):
        logging.getLogger(tracking.MLFLOW_TRACKER_LOGGER).warning(
            "Failed to disable MLflow autologging for the following frameworks: ['fastai', 'sklearn']."
        )
    assert len(logging.getLogger(tracking.MLFLOW_TRACKER_LOGGER).filters) == 1
    assert "['fastai', 'sklearn']" in caplog.text
