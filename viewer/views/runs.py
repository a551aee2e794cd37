"""Runs: training runs from ZenML with their curves, evaluation, benchmark table and the model versions."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from har_zenml.names import FINE_TUNED_EVALUATION_STEP, ZERO_SHOT_EVALUATION_STEP
from viewer import store
from viewer.charts import confusion_chart, history_chart, per_class_chart, per_class_frame, reliability_chart
from viewer.tables import benchmark_frame, calibration_frame

MAX_CONFUSION_LINKS = 8
RELIABILITY_HEIGHT_PX = 480  # about square beside the figures, legend and axis titles included
TABLE_ROW_PX = 35  # st.dataframe's row height: a table this tall shows every row without scrolling


def runs_table(rows: list[store.RunRow]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "run": row.name,
                "status": row.status,
                "started": row.started,
                "duration (s)": round(row.duration_s, 1) if row.duration_s is not None else None,
                "model version": row.model_version,
                "stage": row.stage,
            }
            for row in rows
        ]
    )


def show_training(run) -> None:
    result = store.training_result(run)
    if result is None:
        st.info("This run has no training result (its training step did not finish).")
        return
    history = pd.DataFrame([epoch.model_dump() for epoch in result.history])
    st.caption(
        f"Best val accuracy {result.best_val_accuracy:.3f} at epoch {result.best_epoch}"
        f"{' (stopped early)' if result.stopped_early else ''} · {result.device}, {result.precision}"
    )
    loss, accuracy = st.columns(2)
    loss.altair_chart(history_chart(history, ["train_loss", "val_loss"], "Loss per epoch"), width="stretch")
    accuracy.altair_chart(
        history_chart(history, ["train_accuracy", "val_accuracy"], "Accuracy per epoch"), width="stretch"
    )


def show_evaluation(run, version_number: int | None) -> None:
    report = store.evaluation_report(run)
    if report is None:
        st.info("This run has no evaluation of the fine-tuned model yet.")
        return
    zero_shot = store.evaluation_report(run, ZERO_SHOT_EVALUATION_STEP)
    metrics = {FINE_TUNED_EVALUATION_STEP: report.headline_metrics()}
    if zero_shot is not None:
        metrics[ZERO_SHOT_EVALUATION_STEP] = zero_shot.headline_metrics()
    st.dataframe(pd.DataFrame(metrics).T.round(4))
    matrix, per_class = st.columns(2)
    matrix.markdown(f"**Confusion matrix** ({report.num_images} {report.split} images; click a cell for its mistakes)")
    matrix.altair_chart(confusion_chart(report, version_number), width="stretch", height=24 * len(report.labels) + 160)
    per_class.markdown("**Per class** (recall is the class's accuracy)")
    per_class.altair_chart(per_class_chart(report), width="stretch")
    with per_class.expander("Per-class table"):
        st.dataframe(per_class_frame(report).round(3), hide_index=True)
    show_confusion_links(report, version_number)
    show_calibration(report)


def show_calibration(report) -> None:
    """How far the fine-tuned model's confidences are from its accuracy, before and after calibration, and what
    abstaining below the fitted threshold buys (docs/confidence.md)."""
    summary = report.calibration
    if summary is None:
        st.info("No calibration figures: this run's evaluation was made before calibration existed.")
        return
    figures, diagram = st.columns([2, 3])
    table = calibration_frame(summary).round(4)
    figures.markdown(f"**Calibration** ({report.num_images} {report.split} images)")
    figures.dataframe(table, hide_index=True, width="stretch", height=TABLE_ROW_PX * (len(table) + 1) + 3)
    diagram.altair_chart(reliability_chart(summary), width="stretch", height=RELIABILITY_HEIGHT_PX)


def show_confusion_links(report, version_number: int | None) -> None:
    """The most frequent confusions, each a link to the mistakes page filtered to that cell."""
    pairs = [
        (count, report.labels[i], report.labels[j])
        for i, row in enumerate(report.confusion_matrix)
        for j, count in enumerate(row)
        if i != j and count
    ]
    if not pairs or version_number is None:
        return
    st.markdown("**Most frequent confusions**")
    for count, true_label, predicted_label in sorted(pairs, reverse=True)[:MAX_CONFUSION_LINKS]:
        st.page_link(
            "views/mistakes.py",
            label=f"{true_label} → {predicted_label}: {count}",
            query_params={"version": str(version_number), "true": true_label, "predicted": predicted_label},
        )


def show_version(version) -> None:
    st.subheader(f"Model version {version.number}")
    stage = store.stage_of(version)
    st.markdown(f"Stage: **{stage or 'none'}** · promotion: {store.promotion_reason(version) or 'not decided'}")
    table = store.benchmark_table(version)
    if table is None:
        st.info(
            "No benchmark table for this version: the benchmark step (after export) records one per exported format."
        )
    else:
        st.markdown(f"**Benchmark per format** ({_benchmark_caption(table)})")
        st.dataframe(benchmark_frame(table), hide_index=True)
    show_provenance(version)


def show_provenance(version) -> None:
    """How the model was made (commit, lock, config, data version, stack, machine, versions) and how to remake it."""
    provenance = store.provenance(version)
    st.markdown("**How this model was made**")
    if provenance is None:
        st.info("No provenance recorded: this version was trained before runs recorded one.")
        return
    rows = pd.DataFrame(provenance.summary_rows(), columns=["what", "value"])
    st.dataframe(rows, hide_index=True, width="stretch")
    st.caption(f"Rebuild and compare: `python run.py --reproduce {version.number}`")
    reproduction = store.reproduction(version)
    if reproduction is not None:
        outcome = "reproduced" if reproduction["reproduced"] else "did not reproduce"
        drift = "; ".join(reproduction["drift"]) or "none"
        st.markdown(
            f"Reproduction of run `{reproduction['of_run']}`: **{outcome}** ({reproduction['standard']}: "
            f"{reproduction['why']}) · drift: {drift}"
        )
    with st.expander("Full provenance record"):
        st.json(provenance.model_dump(mode="json"))


def _benchmark_caption(table) -> str:
    images = next((row.accuracy_images for row in table.rows if getattr(row, "accuracy_images", None)), None)
    accuracy = f"accuracy: top-1 on {images} {table.split} images through each format" if images else "no accuracy"
    return f"{accuracy}; latency at batch 1, p50; measured on {table.machine}, {table.threads} threads"


def show_versions() -> None:
    rows = store.version_rows()
    if not rows:
        return
    st.subheader("Model versions")
    st.dataframe(pd.DataFrame([row.__dict__ for row in rows]), hide_index=True)


st.title("Training runs")
with st.spinner("Reading training runs from ZenML…"):
    rows = store.training_runs()
if not rows:
    st.info(
        "No training run yet. Start one with `python run.py --pipeline training --config configs/quickstart.yaml` "
        "(offline, about a minute), then reload this page."
    )
    st.stop()
st.dataframe(runs_table(rows), hide_index=True)
names = [row.name for row in rows]
requested = st.query_params.get("run")
chosen = st.selectbox("Run", names, index=names.index(requested) if requested in names else 0)
row = rows[names.index(chosen)]
with st.spinner(f"Loading {chosen}…"):
    run = store.get_run(row.id)
    version = run.model_version
    st.header(chosen)
    st.markdown(f"Status **{row.status}** · duration {row.duration_s or 0:.0f} s · started {row.started}")
    steps, config = st.columns(2)
    steps.dataframe(pd.DataFrame(store.step_rows(run)), hide_index=True)
    with config.expander("Run configuration (`parameters:`)"):
        st.json(store.run_parameters(run))
    show_training(run)
    show_evaluation(run, version.number if version else None)
    if version is not None:
        show_version(version)
show_versions()
