"""Altair charts for the pages: prediction bars, per-epoch curves, the linked confusion matrix, per-class scores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import altair as alt
import pandas as pd

if TYPE_CHECKING:  # the evaluation module imports torch; the charts only read the report's fields
    from har_core.evaluation.metrics import EvaluationReport
    from har_core.runtime.predictor import Prediction
    from har_core.runtime.video_scoring import VideoPrediction
    from viewer.live_scoring import LiveState

MISTAKES_PATH = "mistakes"  # the mistakes page's url_path (viewer/app.py)


def predictions_chart(predictions: Sequence[Prediction]) -> alt.Chart:
    """Horizontal bars of the top-k probabilities, best on top."""
    frame = pd.DataFrame([{"label": p.label, "probability": p.score} for p in predictions])
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("label:N", sort="-x", title=None),
            tooltip=["label", alt.Tooltip("probability:Q", format=".3f")],
        )
    )


def timeline_chart(video: VideoPrediction) -> alt.VConcatChart:
    """A video's action segments as coloured bars over time, above each sampled frame's own top score."""
    segments = pd.DataFrame([segment.model_dump() for segment in video.segments])
    frames = pd.DataFrame(
        [{"time_s": f.time_s, "label": f.predictions[0].label, "score": f.predictions[0].score} for f in video.frames]
    )
    time_axis = alt.Scale(domain=[0, video.duration_s])
    bars = (
        alt.Chart(segments, title="Action segments")
        .mark_bar(height=28)
        .encode(
            x=alt.X("start_s:Q", title=None, scale=time_axis),
            x2="end_s:Q",
            color=alt.Color("label:N", legend=alt.Legend(orient="bottom", title=None)),
            tooltip=[
                "label",
                alt.Tooltip("start_s:Q", format=".2f"),
                alt.Tooltip("end_s:Q", format=".2f"),
                alt.Tooltip("mean_score:Q", format=".3f"),
                "frames",
            ],
        )  # fmt: skip
        .properties(height=40, width="container")
    )
    points = (
        alt.Chart(frames, title="Each sampled frame's top label")
        .mark_circle(size=40)
        .encode(
            x=alt.X("time_s:Q", title="seconds", scale=time_axis),
            y=alt.Y("score:Q", title="probability"),
            color="label:N",
            tooltip=[alt.Tooltip("time_s:Q", format=".2f"), "label", alt.Tooltip("score:Q", format=".3f")],
        )
        .properties(height=160, width="container")
    )
    return alt.vconcat(bars, points)


def live_chart(live: LiveState, top: int = 3) -> alt.Chart:
    """The smoothed probability over time of the `top` labels leading now (the rolling window of the stream)."""
    latest = live.history[-1].probabilities
    leaders = sorted(range(len(live.labels)), key=lambda i: -latest[i])[:top]
    rows = [
        {"seconds": point.time_s, "label": live.labels[i], "probability": point.probabilities[i]}
        for point in live.history
        for i in leaders
    ]
    return (
        alt.Chart(pd.DataFrame(rows), title=f"Top {top} labels, smoothed")
        .mark_line()
        .encode(
            x=alt.X("seconds:Q", scale=alt.Scale(zero=False)),
            y=alt.Y("probability:Q", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("label:N", sort=[live.labels[i] for i in leaders]),
            tooltip=["label", alt.Tooltip("seconds:Q", format=".1f"), alt.Tooltip("probability:Q", format=".3f")],
        )
        .properties(height=200)
    )


def history_chart(history: pd.DataFrame, metrics: Sequence[str], title: str) -> alt.Chart:
    """One line per metric over epochs (`history` has an `epoch` column and one column per metric)."""
    long = history.melt(id_vars="epoch", value_vars=list(metrics), var_name="metric", value_name="value")
    return (
        alt.Chart(long, title=title)
        .mark_line(point=True)
        .encode(
            x=alt.X("epoch:Q", axis=alt.Axis(tickMinStep=1, format="d")),
            y="value:Q",
            color="metric:N",
            tooltip=["epoch", "metric", "value"],
        )
    )


def mistakes_link(version: str | int, true_label: str, predicted_label: str) -> str:
    """The mistakes page filtered to one confusion-matrix cell."""
    return f"{MISTAKES_PATH}?" + urlencode({"version": version, "true": true_label, "predicted": predicted_label})


def confusion_frame(report: EvaluationReport, version: str | int | None) -> pd.DataFrame:
    """One row per cell: counts, row-normalised share, and (off the diagonal) a link to those mistakes."""
    shares = report.normalized_confusion_matrix()
    rows = []
    for i, true_label in enumerate(report.labels):
        for j, predicted_label in enumerate(report.labels):
            count = report.confusion_matrix[i][j]
            link = mistakes_link(version, true_label, predicted_label) if version and count and i != j else None
            rows.append(
                {"true": true_label, "predicted": predicted_label, "count": count, "share": shares[i, j], "link": link}
            )
    return pd.DataFrame(rows)


def confusion_chart(report: EvaluationReport, version: str | int | None) -> alt.Chart:
    """Heatmap of the row-normalised confusion matrix; clicking a wrong cell opens its mistakes."""
    frame = confusion_frame(report, version)
    axis = alt.Axis(labelOverlap=False)
    base = alt.Chart(frame).encode(
        x=alt.X("predicted:N", sort=report.labels, axis=axis), y=alt.Y("true:N", sort=report.labels, axis=axis)
    )
    cells = base.mark_rect().encode(
        color=alt.Color("share:Q", scale=alt.Scale(scheme="blues", domain=[0, 1])),
        href="link:N",
        tooltip=["true", "predicted", "count", alt.Tooltip("share:Q", format=".2f")],
    )
    text = base.mark_text(fontSize=10).encode(
        text=alt.condition("datum.count > 0", "count:Q", alt.value("")),
        color=alt.condition("datum.share > 0.5", alt.value("white"), alt.value("black")),
    )
    size = max(240, 24 * len(report.labels))
    return (cells + text).properties(height=size, width=size)


def per_class_frame(report: EvaluationReport) -> pd.DataFrame:
    rows = []
    for label in report.labels:
        scores = report.classification_report.get(label, {})
        rows.append({"class": label, **{name: scores.get(name, 0.0) for name in ("precision", "recall", "f1-score")}})
    return pd.DataFrame(rows)


def per_class_chart(report: EvaluationReport) -> alt.Chart:
    """Precision, recall (= per-class accuracy) and F1 per class, side by side."""
    long = per_class_frame(report).melt(id_vars="class", var_name="metric", value_name="value")
    return (
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=alt.X("class:N", sort=report.labels, title=None),
            xOffset="metric:N",
            y=alt.Y("value:Q", scale=alt.Scale(domain=[0, 1])),
            color="metric:N",
            tooltip=["class", "metric", alt.Tooltip("value:Q", format=".3f")],
        )
    )
