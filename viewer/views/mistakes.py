"""Mistakes: the test images a model version got wrong, filterable by (true, predicted) pair."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from har_core.runtime.images import InvalidImageError, open_image
from viewer import store
from viewer.session_settings import ViewerSettings

ANY = "(any)"
COLUMNS = 4
settings = ViewerSettings.from_env()


@st.cache_data(show_spinner=False, max_entries=8)
def load_predictions(version_number: int):
    """Per-image predictions of the version's fine-tuned evaluation, or None (with the reason) when absent."""
    version = store.model_version(version_number)
    run = store.training_run_of(version)
    if run is None:
        return None, f"Model version {version_number} has no training run in this ZenML store."
    predictions = store.evaluation_predictions(run)
    if predictions is None:
        return None, (
            f"Run {run.name} kept no per-image predictions (its evaluation step predates them, or it did not "
            "finish). Re-run the training pipeline to record them."
        )
    return predictions, None


def pick(label: str, options: list[str], requested: str | None) -> str:
    choices = [ANY, *options]
    return st.selectbox(label, choices, index=choices.index(requested) if requested in choices else 0)


def show_image(column, mistake) -> None:
    path = Path(mistake.path)
    caption = (
        f"true **{mistake.true_label}** ({mistake.true_score:.2f}) · predicted **{mistake.predicted_label}** "
        f"({mistake.predicted_score:.2f})"
    )
    try:
        column.image(open_image(path, name=path.name, draft_size=256), width="stretch")
    except (OSError, InvalidImageError):
        column.caption(f"(image not readable here: {path})")
    column.markdown(caption)


st.title("Mistakes")
versions = store.model_versions()
if not versions:
    st.info(
        "No model version yet. Train one with `python run.py --pipeline training --config configs/quickstart.yaml`."
    )
    st.stop()
labels = {v.number: f"{v.number} ({store.stage_of(v) or 'no stage'})" for v in versions}
numbers = list(labels)
requested = st.query_params.get("version")
default = numbers.index(int(requested)) if requested and requested.isdigit() and int(requested) in numbers else 0
number = st.selectbox("Model version", numbers, index=default, format_func=labels.get)
with st.spinner(f"Loading the predictions of model version {number}…"):
    predictions, reason = load_predictions(number)
if predictions is None:
    st.warning(reason)
    st.stop()
true_column, predicted_column = st.columns(2)
with true_column:
    true_label = pick("True label", predictions.labels, st.query_params.get("true"))
with predicted_column:
    predicted_label = pick("Predicted label", predictions.labels, st.query_params.get("predicted"))
mistakes = predictions.mistakes(
    None if true_label == ANY else true_label, None if predicted_label == ANY else predicted_label
)
total_wrong = len(predictions.mistakes())
st.markdown(
    f"**{len(mistakes)}** wrong predictions shown of {total_wrong} wrong in {len(predictions.images)} "
    f"{predictions.split} images (most confident first)."
)
if not mistakes:
    st.success("No wrong predictions for this pair.")
    st.stop()
st.dataframe(
    pd.DataFrame([m.model_dump() for m in mistakes])[
        ["true_label", "predicted_label", "predicted_score", "true_score", "path"]
    ].round(3),
    hide_index=True,
)
columns = st.columns(COLUMNS)
for index, mistake in enumerate(mistakes[: settings.mistakes_shown]):
    show_image(columns[index % COLUMNS], mistake)
