"""Altair charts for the pages: prediction bars, per-epoch curves, the linked confusion matrix, per-class scores,
the reliability diagram."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import altair as alt
import pandas as pd

from har_core.runtime.confidence import NO_ACTION

if TYPE_CHECKING:  # the evaluation module imports torch; the charts only read the report's fields
    from har_core.evaluation.metrics import CalibrationSummary, EvaluationReport
    from har_core.runtime.predictor import Prediction
    from har_core.runtime.video_scoring import VideoPrediction
    from viewer.live_scoring import LiveState

MISTAKES_PATH = "mistakes"  # the mistakes page's url_path (viewer/app.py)
NO_ACTION_COLOUR = "#9e9e9e"  # "no action" is grey wherever labels are coloured
SMOOTHED_TOP1 = "top-1 (smoothed)"  # the live chart's line of what "no action" is judged by
# category20 without its greys, dark shades first: one colour per action, none mistaken for "no action"
ACTION_COLOURS = [
    *("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf"),
    *("#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5"),
]


def label_colours(labels: Sequence[str]) -> alt.Scale:
    """One colour per label in order of first appearance; "no action" (and the live top-1 it is judged by) grey."""
    domain = list(dict.fromkeys(labels))
    actions = iter(ACTION_COLOURS * (len(domain) // len(ACTION_COLOURS) + 1))
    grey = (NO_ACTION, SMOOTHED_TOP1)
    return alt.Scale(domain=domain, range=[NO_ACTION_COLOUR if label in grey else next(actions) for label in domain])


def predictions_chart(predictions: Sequence[Prediction], threshold: float | None = None) -> alt.Chart | alt.LayerChart:
    """Horizontal bars of the top-k probabilities, best on top; with the abstention `threshold`, a dashed rule at it
    (a top bar short of it is "no action")."""
    frame = pd.DataFrame([{"label": p.label, "probability": p.score} for p in predictions])
    bars = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1]), title="probability"),
            y=alt.Y("label:N", sort="-x", title=None),
            tooltip=["label", alt.Tooltip("probability:Q", format=".3f")],
        )
    )
    return with_threshold(bars, frame, threshold, "x", "probability")


def with_threshold(chart: alt.Chart, frame: pd.DataFrame, threshold: float | None, channel: str, title: str):
    """`chart` (drawn from `frame`) with a dashed rule along `channel` (whose axis is `title`) at the abstention
    threshold, if there is one.

    The threshold becomes a column of `frame`, so both layers share one dataset; the rule is drawn once, at its mean.
    """
    if threshold is None:
        return chart
    frame["threshold"] = threshold
    where = alt.X if channel == "x" else alt.Y
    rule = (
        alt.Chart(frame)
        .mark_rule(color="black", strokeDash=[4, 3])
        .encode(
            where("mean(threshold):Q", title=title),
            tooltip=[alt.Tooltip("mean(threshold):Q", title=f"{NO_ACTION} below", format=".3f")],
        )
    )
    return alt.layer(chart, rule)


def timeline_chart(video: VideoPrediction) -> alt.VConcatChart:
    """A video's action segments as coloured bars over time ("no action" grey), above each sampled frame's own top
    score (a frame whose top score is below the abstention threshold is "no action", with its best guess)."""
    segments = pd.DataFrame([segment.model_dump() for segment in video.segments])
    frames = pd.DataFrame(
        [
            {
                "time_s": f.time_s,
                "label": NO_ACTION if f.abstained else f.predictions[0].label,
                "best guess": f.predictions[0].label,
                "score": f.predictions[0].score,
            }
            for f in video.frames
        ]
    )
    colours = label_colours([*segments["label"], *frames["label"]])
    time_axis = alt.Scale(domain=[0, video.duration_s])
    bars = (
        alt.Chart(segments, title="Action segments")
        .mark_bar(height=28)
        .encode(
            x=alt.X("start_s:Q", title=None, scale=time_axis),
            x2="end_s:Q",
            color=alt.Color("label:N", scale=colours, legend=alt.Legend(orient="bottom", title=None)),
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
        alt.Chart(frames)
        .mark_circle(size=40)
        .encode(
            x=alt.X("time_s:Q", title="seconds", scale=time_axis),
            y=alt.Y("score:Q", title="probability"),
            color=alt.Color("label:N", scale=colours, legend=None),
            tooltip=[
                alt.Tooltip("time_s:Q", format=".2f"),
                "label",
                "best guess",
                alt.Tooltip("score:Q", format=".3f"),
            ],
        )
    )
    points = with_threshold(points, frames, video.abstain_below, "y", "probability")
    return alt.vconcat(bars, points.properties(title="Each sampled frame's top label", height=160, width="container"))


def live_chart(live: LiveState, top: int = 3) -> alt.Chart | alt.LayerChart:
    """The smoothed probability over time of the `top` labels leading now (the rolling window of the stream); with a
    calibration, also the smoothed top-1 that "no action" is judged by (dotted) and the threshold (dashed)."""
    latest = live.history[-1].probabilities
    leaders = sorted(range(len(live.labels)), key=lambda i: -latest[i])[:top]
    rows = [
        {"seconds": point.time_s, "label": live.labels[i], "probability": point.probabilities[i]}
        for point in live.history
        for i in leaders
    ]
    if live.threshold is not None:
        rows += [{"seconds": p.time_s, "label": SMOOTHED_TOP1, "probability": p.confidence} for p in live.history]
    frame = pd.DataFrame(rows)
    named = [live.labels[i] for i in leaders]
    lines = (
        alt.Chart(frame)
        .mark_line()
        .encode(
            x=alt.X("seconds:Q", scale=alt.Scale(zero=False)),
            y=alt.Y("probability:Q", scale=alt.Scale(domain=[0, 1]), title="probability"),
            color=alt.Color("label:N", scale=label_colours([*named, SMOOTHED_TOP1]), title=None),
            strokeDash=alt.condition(f"datum.label == '{SMOOTHED_TOP1}'", alt.value([2, 2]), alt.value([1, 0])),
            tooltip=["label", alt.Tooltip("seconds:Q", format=".1f"), alt.Tooltip("probability:Q", format=".3f")],
        )
    )
    chart = with_threshold(lines, frame, live.threshold, "y", "probability")
    return chart.properties(title=f"Top {top} labels, smoothed", height=200)


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


def reliability_frame(summary: CalibrationSummary) -> pd.DataFrame:
    """One row per non-empty confidence bin, before and (when fitted) after calibration."""
    series = [("before calibration", summary.reliability_before)]
    if summary.reliability_after is not None:
        series.append(("after calibration", summary.reliability_after))
    return pd.DataFrame(
        [
            {
                "when": when,
                "confidence": row.confidence,
                "accuracy": row.accuracy,
                "images": row.count,
                "bin": f"{row.lower:.2f} to {row.upper:.2f}",
            }
            for when, rows in series
            for row in rows
            if row.count
        ]
    )


def reliability_chart(summary: CalibrationSummary) -> alt.LayerChart:
    """Accuracy against mean confidence per bin (dots sized by their images), before and after calibration, over the
    diagonal a calibrated model follows: a curve below it is overconfident, above it underconfident."""
    unit = alt.Scale(domain=[0, 1])
    order = ["before calibration", "after calibration"]
    bins = alt.Chart(reliability_frame(summary)).encode(
        x=alt.X("confidence:Q", scale=unit, title="confidence (mean top-1 probability in the bin)"),
        y=alt.Y("accuracy:Q", scale=unit, title="accuracy in the bin"),
        color=alt.Color(
            "when:N",
            scale=alt.Scale(domain=order, range=["#d62728", "#1f77b4"]),
            title=None,
            legend=alt.Legend(orient="bottom"),
        ),
        tooltip=[
            "when",
            "bin",
            "images",
            alt.Tooltip("confidence:Q", format=".3f"),
            alt.Tooltip("accuracy:Q", format=".3f"),
        ],
    )
    diagonal = (
        alt.Chart(pd.DataFrame({"confidence": [0.0, 1.0], "accuracy": [0.0, 1.0]}))
        .mark_line(color=NO_ACTION_COLOUR, strokeDash=[4, 3])
        .encode(x="confidence:Q", y="accuracy:Q")
    )
    dots = bins.mark_circle(opacity=0.9).encode(size=alt.Size("images:Q", legend=None))
    return alt.layer(bins.mark_line(), dots, diagonal).properties(title="Reliability diagram")
