"""Each page's logic through Streamlit's AppTest, on the session store's one tiny run (and on an empty store)."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
from urllib.parse import parse_qs

import pytest
from PIL import Image

from har_core.runtime.confidence import NO_ACTION
from har_zenml.names import PROMOTION_DECISION_ARTIFACT
from tests.conftest import CPU_LOCK, PROJECT_ROOT
from tests.viewer.unsure_images import encoded_png, judged_image, no_action_video
from viewer.tables import CALIBRATION_FIGURES

pytestmark = pytest.mark.slow
APP = str(PROJECT_ROOT / "viewer" / "app.py")
TIMEOUT = 180  # seconds per script run: two shared cores, ONNX session start, ZenML queries


@pytest.fixture
def app(viewer_run, monkeypatch):
    from streamlit.testing.v1 import AppTest

    for name in ("HAR_CLIP_BENTO_URL", "HAR_CLIP_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    # Pinned: tests that ran since the tiny run may have added newer versions and moved its stage.
    monkeypatch.setenv("HAR_CLIP_VIEWER_STAGE", str(viewer_run[1].number))
    return AppTest.from_file(APP, default_timeout=TIMEOUT)


@pytest.fixture(scope="module")
def wrong_image(viewer_run):
    """A test image the tiny model gets wrong, with its recorded prediction."""
    from viewer import store

    run, _ = viewer_run
    return store.evaluation_predictions(run).mistakes()[0]


def texts(elements) -> list[str]:
    return [element.value for element in elements]


def charts(at) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("vega_lite_chart")]


def chart_rows(at, index: int) -> list[dict]:
    """The rows a chart draws (Streamlit ships them beside the spec, as Arrow)."""
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    chart = at.get("vega_lite_chart")[index].proto
    data = chart.datasets[0].data.data if chart.datasets else chart.data.data
    return convert_arrow_bytes_to_pandas_df(data).to_dict("records")


def png_bytes(path: str) -> bytes:
    buffer = io.BytesIO()
    Image.open(path).save(buffer, "PNG")
    return buffer.getvalue()


def test_predict_page_ranks_uploads_like_the_export_and_refuses_non_images(app, viewer_run, wrong_image):
    from har_core.runtime.predictor import Predictor
    from viewer import store

    _, version = viewer_run
    at = app.run()
    assert not at.exception
    assert f"local onnx export of har_clip_classifier version {version.number}" in texts(at.caption)[0]
    assert texts(at.info) == [
        "Upload images (or turn on the camera) to see the model's top labels, or a video to see its action segments."
    ]

    image = png_bytes(wrong_image.path)
    at.file_uploader[0].set_value([("wrong.png", image, "image/png"), ("notes.txt", b"not an image", "text/plain")])
    at.run()
    predictor = Predictor.from_export(store.version_exports(version).directory("onnx"))
    answer = predictor.classify([Image.open(io.BytesIO(image))], top_k=5)[0]
    expected = answer.predictions
    assert texts(at.subheader) == [headline(answer)]
    assert expected[0].label == wrong_image.predicted_label  # the page shows the model's (wrong) answer, or abstains
    assert verdict_line(answer, predictor.calibration.abstain_below) in texts(at.markdown)
    [error] = texts(at.error)
    assert error.startswith("Not an image, skipped: notes.txt")
    [chart] = charts(at)
    bars, rule = chart["layer"]  # the bars, and a dashed rule at the abstention threshold
    assert bars["encoding"]["x"]["field"] == "probability" and rule["encoding"]["x"]["field"] == "threshold"
    rows = chart_rows(at, 0)
    assert [row["label"] for row in rows] == [p.label for p in expected]
    assert {row["threshold"] for row in rows} == {predictor.calibration.abstain_below}


def headline(answer) -> str:
    """The page's headline for a `Classification`: "no action", or the top label and its calibrated probability."""
    best = answer.predictions[0]
    return NO_ACTION if answer.abstained else f"{best.label} · {best.score:.1%}"


def verdict_line(answer, threshold: float) -> str:
    best, confidence = answer.predictions[0], answer.verdict.confidence
    if answer.abstained:
        return (
            f"No action named: the best guess, **{best.label}**, has a calibrated confidence of {confidence:.1%}, "
            f"below {threshold:.1%}."
        )
    return f"Calibrated confidence {confidence:.1%}; below {threshold:.1%} the model answers “{NO_ACTION}”."


@pytest.fixture(scope="module")
def calibrated_predictor(onnx_export_dir):
    """The calibrated export the `calibrated_bento_url` serves, to find images it abstains on and check answers."""
    from har_core.runtime.predictor import Predictor

    return Predictor.from_export(onnx_export_dir)


def test_an_image_the_model_abstains_on_shows_no_action_and_its_best_guess(
    app, calibrated_bento_url, calibrated_predictor, monkeypatch
):
    """A Bento whose calibrated top-1 for an image is below the fitted threshold answers "no action": the page says
    so, names the best guess and still draws the ranked labels; an image unlike the training images gets a warning."""
    monkeypatch.setenv("HAR_CLIP_BENTO_URL", calibrated_bento_url)
    unsure = judged_image(calibrated_predictor, abstained=True)
    strange = judged_image(calibrated_predictor, abstained=None, out_of_distribution=True)
    at = app.run()
    assert f"Answering with the Bento service at {calibrated_bento_url}" in texts(at.caption)[0]
    uploads = [("unsure.png", encoded_png(unsure), "image/png"), ("strange.png", encoded_png(strange), "image/png")]
    at.file_uploader[0].set_value(uploads).run()
    assert not at.exception
    answers = [calibrated_predictor.classify([image], top_k=5)[0] for image in (unsure, strange)]
    assert texts(at.subheader) == [NO_ACTION, headline(answers[1])]
    calibration = calibrated_predictor.calibration
    assert verdict_line(answers[0], calibration.abstain_below) in texts(at.markdown)
    assert [row["label"] for row in chart_rows(at, 0)] == [p.label for p in answers[0].predictions]
    assert charts(at)[0]["layer"][1]["mark"]["type"] == "rule"  # the threshold the top bar falls short of
    warnings = [text for text in texts(at.warning) if text.startswith("Out of distribution")]
    flagged = [answer.verdict.ood_score for answer in answers if answer.verdict.out_of_distribution]
    assert len(warnings) == len(flagged) >= 1
    assert f"score {flagged[-1]:.3f}, above its threshold {calibration.ood_above:.3f})" in warnings[-1]


def test_a_stretch_the_model_abstains_on_is_a_grey_no_action_segment(
    app, calibrated_bento_url, calibrated_predictor, monkeypatch
):
    from viewer.backends import LocalBackend
    from viewer.charts import NO_ACTION_COLOUR

    monkeypatch.setenv("HAR_CLIP_BENTO_URL", calibrated_bento_url)
    backend = LocalBackend(calibrated_predictor, {"name": "tiny", "version": "1"})  # the Bento's video settings
    video, expected = no_action_video(backend, judged_image(calibrated_predictor, abstained=False))
    at = app.run()
    at.file_uploader[0].set_value(("stretch.avi", video, "video/x-msvideo")).run()
    assert not at.exception
    labels = [segment.label for segment in expected.segments]
    assert labels[-1] == NO_ACTION and texts(at.subheader) == ["stretch.avi · " + " → ".join(labels)]
    [timeline] = charts(at)
    scale = timeline["vconcat"][0]["encoding"]["color"]["scale"]
    assert dict(zip(scale["domain"], scale["range"], strict=True))[NO_ACTION] == NO_ACTION_COLOUR
    [table] = [frame.value for frame in at.dataframe if "mean_score" in frame.value.columns]
    assert table["label"].tolist() == labels
    threshold = calibrated_predictor.calibration.abstain_below
    assert f"“{NO_ACTION}” (grey) where the smoothed top-1 is below {threshold:.1%}" in texts(at.caption)[-1]


def test_custom_labels_rank_only_the_given_labels(app, viewer_run, wrong_image):
    at = app.run()
    [labels_input] = [box for box in at.text_input if box.label == "Custom labels"]
    labels_input.set_value("juggling, rowing, knitting").run()
    at.file_uploader[0].set_value(("a.png", png_bytes(wrong_image.path), "image/png")).run()
    [headline] = texts(at.subheader)
    assert headline.split(" · ")[0] in {"juggling", "rowing", "knitting"}
    assert sorted(row["label"] for row in chart_rows(at, 0)) == ["juggling", "knitting", "rowing"]


def test_a_video_upload_shows_the_segments_the_export_finds(app, viewer_run, synthetic_root):
    from har_core.runtime.predictor import Predictor
    from har_core.runtime.settings import ServingConfig
    from har_core.runtime.video import VideoReader
    from har_core.runtime.video_scoring import score_video
    from tests.videos import encode_video, first_image, two_label_frames
    from viewer import store

    _, version = viewer_run
    frames = two_label_frames(
        first_image(synthetic_root, "calling"), first_image(synthetic_root, "texting"), 10, 6.0, 3.0
    )
    video = encode_video(frames, 10, "libvpx")
    at = app.run()
    at.file_uploader[0].set_value([("clip.webm", video, "video/webm"), ("cut.mp4", video[:500], "video/mp4")]).run()
    assert not at.exception
    predictor = Predictor.from_export(store.version_exports(version).directory("onnx"))
    with VideoReader(video, ServingConfig().video, resize=predictor.manifest.preprocess.resize_shortest_edge) as reader:
        expected = score_video(predictor, reader)
    assert texts(at.subheader) == ["clip.webm · " + " → ".join(segment.label for segment in expected.segments)]
    [error] = texts(at.error)
    assert error.startswith("cut.mp4: ")
    [timeline] = charts(at)
    assert [chart["title"] for chart in timeline["vconcat"]] == ["Action segments", "Each sampled frame's top label"]
    assert len(chart_rows(at, 0)) == len(expected.segments)
    assert len(at.get("video")) == 1
    threshold = predictor.calibration.abstain_below
    assert expected.abstain_below == threshold
    assert f"“{NO_ACTION}” (grey) where the smoothed top-1 is below {threshold:.1%}" in texts(at.caption)[-1]


def test_an_unreachable_bento_is_named_with_what_to_do(app):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    at = app.run()
    at.sidebar.text_input[0].set_value(f"http://127.0.0.1:{port}").run()
    [error] = texts(at.error)
    assert f"The Bento service at http://127.0.0.1:{port} is unreachable" in error
    assert "bentoml serve" in error and not at.file_uploader


def test_runs_page_shows_the_run_curves_evaluation_and_versions(app, viewer_run):
    from viewer import store

    run, version = viewer_run
    at = app.run()
    at.switch_page("views/runs.py")
    at.query_params["run"] = run.name
    at.run()
    assert not at.exception
    assert at.selectbox[0].value == run.name
    markdown = texts(at.markdown)
    assert f"Status **{run.status.value}**" in markdown[0] and run.status.value == "completed"
    titles = [chart.get("title") for chart in charts(at)]
    assert titles[:2] == ["Loss per epoch", "Accuracy per epoch"] and titles[4] == "Reliability diagram"
    assert len(titles) == 5
    assert {row["epoch"] for row in chart_rows(at, 0)} == {1, 2}
    confusion = charts(at)[2]
    assert confusion["layer"][0]["encoding"]["href"]["field"] == "link"
    report = store.evaluation_report(run)
    assert_calibration_shown(at, report)
    top_count = max(c for i, row in enumerate(report.confusion_matrix) for j, c in enumerate(row) if i != j)
    first = at.page_link[0].proto
    assert first.page == "mistakes" and first.label.endswith(f": {top_count}")
    true_label, predicted_label = first.label.rsplit(":", 1)[0].split(" → ")
    assert parse_qs(first.query_string) == {
        "version": [str(version.number)],
        "true": [true_label],
        "predicted": [predicted_label],
    }
    decision = version.get_artifact(PROMOTION_DECISION_ARTIFACT).load()
    assert decision.stage == "staging" and "below the floor" in decision.reason  # as promotion decided then
    current = store.stage_of(store.model_version(version.number))  # later versions may have taken its stage since
    assert f"Stage: **{current or 'none'}** · promotion: {decision.reason}" in markdown
    [benchmark] = [frame.value for frame in at.dataframe if "inference ms" in frame.value.columns]
    assert benchmark.columns.tolist() == [
        *("format", "status", "size (MB)", "accuracy", "preprocess ms", "inference ms", "end-to-end ms"),
        *("img/s (batch 2)", "device", "note"),
    ]
    onnx = benchmark.iloc[0]
    assert benchmark["format"].tolist() == ["onnx"] and onnx["status"] == "passed" and onnx["inference ms"] > 0
    assert abs(onnx["accuracy"] - report.accuracy) <= 1 / report.num_images  # through ONNX, on the test split
    assert f"top-1 on {report.num_images} test images" in " ".join(markdown)
    [versions] = [frame.value for frame in at.dataframe if "promotion" in frame.value.columns]
    assert decision.reason in versions.loc[versions["number"] == version.number, "promotion"].tolist()
    [provenance] = [frame.value for frame in at.dataframe if list(frame.value.columns) == ["what", "value"]]
    facts = dict(zip(provenance["what"], provenance["value"], strict=True))
    recorded = store.provenance(version)
    assert facts["run"] == run.name and facts["code"].startswith(recorded.code.commit)
    assert facts["lock"].startswith(f"{CPU_LOCK} sha256 ") and "training 42" in facts["seeds"]
    assert f"{recorded.machine.torch_threads} torch threads" in facts["training process"]
    assert f"python run.py --reproduce {version.number}" in " ".join(texts(at.caption))


def assert_calibration_shown(at, report) -> None:
    """The fine-tuned evaluation's calibration figures and its reliability diagram, bin by bin, as recorded."""
    summary = report.calibration
    assert summary is not None and summary.reliability_after is not None  # the training run calibrates
    assert f"**Calibration** ({report.num_images} {report.split} images)" in texts(at.markdown)
    [figures] = [frame.value for frame in at.dataframe if list(frame.value.columns) == ["figure", "value"]]
    shown = dict(zip(figures["figure"], figures["value"], strict=True))
    recorded = {name: summary.metrics[key] for key, name in CALIBRATION_FIGURES.items() if key in summary.metrics}
    assert {"ECE before calibration", "ECE after calibration", "temperature"} <= set(recorded)
    assert shown == pytest.approx(recorded | {f"OOD AUROC, {k}": v for k, v in summary.ood_auroc.items()}, abs=1e-4)
    drawn = chart_rows(at, 4)
    for when, bins in (
        ("before calibration", summary.reliability_before),
        ("after calibration", summary.reliability_after),
    ):
        rows = [(row["confidence"], row["accuracy"], row["images"]) for row in drawn if row["when"] == when]
        assert rows == [(b.confidence, b.accuracy, b.count) for b in bins if b.count]
        assert sum(row[2] for row in rows) == report.num_images


def test_mistakes_page_filters_by_class_pair(app, viewer_run, wrong_image):
    from viewer import store

    run, version = viewer_run
    predictions = store.evaluation_predictions(run)
    at = app.run()
    at.switch_page("views/mistakes.py")
    at.query_params.update(
        version=str(version.number), true=wrong_image.true_label, predicted=wrong_image.predicted_label
    )
    at.run()
    assert not at.exception
    pair = predictions.mistakes(wrong_image.true_label, wrong_image.predicted_label)
    total = len(predictions.mistakes())
    assert texts(at.markdown)[0].startswith(f"**{len(pair)}** wrong predictions shown of {total} wrong")
    assert f"true **{wrong_image.true_label}**" in texts(at.markdown)[1]
    at.selectbox[1].set_value("(any)").run()
    at.selectbox[2].set_value("(any)").run()
    assert texts(at.markdown)[0].startswith(f"**{total}** wrong predictions shown")


@pytest.fixture(scope="module")
def bento_url(viewer_run, tmp_path_factory):
    """`bentoml serve` of the service in bento/ on the tiny run's ONNX export, with a bearer token."""
    from bento_ops.packaging import save_bento_model
    from bento_ops.server import BentoServer
    from har_core.runtime.settings import API_TOKEN_ENV, BENTO_MODEL_ENV
    from viewer import store

    _, version = viewer_run
    export_dir = store.version_exports(version).directory("onnx")
    model = save_bento_model(export_dir, model_name=version.model.name, model_version=str(version.number))
    env = {BENTO_MODEL_ENV: str(model.tag), API_TOKEN_ENV: BENTO_TOKEN}
    log = tmp_path_factory.mktemp("viewer-bento") / "serve.log"
    with BentoServer("bento.service:HarClipService", log, env=env) as server:
        yield server.url


BENTO_TOKEN = "viewer-test-token"


def test_predict_page_asks_a_running_bento(app, viewer_run, wrong_image, bento_url, monkeypatch):
    from har_core.runtime.predictor import Predictor
    from viewer import store

    _, version = viewer_run
    monkeypatch.setenv("HAR_CLIP_BENTO_URL", bento_url)
    at = app.run()
    assert "wants a bearer token" in texts(at.error)[0]  # no token yet
    monkeypatch.setenv("HAR_CLIP_API_TOKEN", BENTO_TOKEN)
    at = app.__class__.from_file(APP, default_timeout=TIMEOUT).run()
    assert texts(at.caption)[0] == (
        f"Answering with the Bento service at {bento_url} (onnx export, version {version.number})."
    )
    image = png_bytes(wrong_image.path)
    at.file_uploader[0].set_value(("wrong.png", image, "image/png")).run()
    local = Predictor.from_export(store.version_exports(version).directory("onnx"))
    answer = local.classify([Image.open(io.BytesIO(image))], top_k=5)[0]
    assert texts(at.subheader) == [headline(answer)]
    assert verdict_line(answer, local.calibration.abstain_below) in texts(at.markdown)  # the Bento's verdict
    assert [row["label"] for row in chart_rows(at, 0)] == [p.label for p in answer.predictions]
    [labels_input] = [box for box in at.text_input if box.label == "Custom labels"]
    labels_input.set_value("juggling, rowing").run()  # open vocabulary through the Bento's /classify
    assert sorted(row["label"] for row in chart_rows(at, 0)) == ["juggling", "rowing"]


def test_the_predict_page_finds_the_deployment_on_its_recorded_url(app, viewer_run, bento_url, monkeypatch):
    """Each local release serves on a new port: the viewer reads it from the version's `deployment` metadata, and
    falls back to the local model when the recorded server no longer answers."""
    from zenml import log_metadata

    _, version = viewer_run
    monkeypatch.setenv("HAR_CLIP_VIEWER_STAGE", str(version.number))
    monkeypatch.setenv("HAR_CLIP_API_TOKEN", BENTO_TOKEN)

    def url_box(at):
        return next(box for box in at.text_input if box.label == "Bento URL")

    try:
        log_metadata(metadata={"deployment": {"url": bento_url}}, model_version_id=version.id)
        at = app.run()
        assert url_box(at).value == bento_url
        assert f"Answering with the Bento service at {bento_url} (onnx export, version {version.number})." in texts(
            at.caption
        )
        with socket.socket() as probe:  # a port nothing listens on: a deployment that has been stopped
            probe.bind(("127.0.0.1", 0))
            stopped = f"http://127.0.0.1:{probe.getsockname()[1]}"
        log_metadata(metadata={"deployment": {"url": stopped}}, model_version_id=version.id)
        at = app.__class__.from_file(APP, default_timeout=TIMEOUT).run()
        assert url_box(at).value == ""
        assert not [caption for caption in texts(at.caption) if "Bento service" in caption]
    finally:
        log_metadata(metadata={"deployment": {"url": ""}}, model_version_id=version.id)


EMPTY_STORE_SCRIPT = """
import json, sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[1], default_timeout=300).run()
out = {"predict": [w.value for w in at.warning]}
for page in ("runs", "mistakes"):
    at.switch_page(f"views/{page}.py").run()
    out[page] = [i.value for i in at.info]
print("RESULT" + json.dumps(out))
"""


def test_an_empty_store_gets_clear_messages_on_every_page(tmp_path):
    """A fresh ZenML store in its own process: no run, no model version, no model at the stage."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(PROJECT_ROOT),
        "ZENML_CONFIG_PATH": str(tmp_path / "zenml"),
        "ZENML_REPOSITORY_PATH": str(tmp_path / "no-repository"),
        "ZENML_ANALYTICS_OPT_IN": "false",
    }
    result = subprocess.run(
        [sys.executable, "-c", EMPTY_STORE_SCRIPT, APP],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.split("RESULT", 1)[1])
    assert out["predict"][0].startswith("No model version at stage **production**")
    assert out["runs"][0].startswith("No training run yet. Start one with `python run.py --pipeline training")
    assert out["mistakes"][0].startswith("No model version yet.")
