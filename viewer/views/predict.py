"""Predict: upload images or videos (or take a photo) and see the top-k labels or a video's action segments, from the
Bento service or a local export."""

from __future__ import annotations

import streamlit as st

from har_core.evaluation.promotion import PRODUCTION_STAGE, STAGING_STAGE
from har_core.runtime.confidence import NO_ACTION
from har_core.runtime.images import InvalidImageError, open_image
from har_core.runtime.video import is_video_name
from viewer import store
from viewer.backends import (
    Answer,
    Backend,
    BackendUnavailableError,
    BentoBackend,
    PredictionRequestError,
    VideoAnswer,
    deployable_formats,
    local_backend,
)
from viewer.charts import predictions_chart, timeline_chart
from viewer.session_settings import ViewerSettings

settings = ViewerSettings.from_env()
STAGES = [PRODUCTION_STAGE, STAGING_STAGE, store.LATEST]


@st.cache_resource(show_spinner=False, max_entries=4)
def bento_backend(url: str, token: str | None, timeout_s: float) -> BentoBackend:
    return BentoBackend(url, token, timeout_s)


@st.cache_resource(show_spinner=False, max_entries=4)
def cached_bundle(version_id: str):
    """The version's export bundle; loading it copies the exports out of the artifact store, so once per version."""
    return store.version_exports(store.client().get_model_version(store.ZENML_MODEL_NAME, version_id))


@st.cache_resource(show_spinner=False, max_entries=4)
def cached_local_backend(version_id: str, version_number: int, export_format: str):
    model = {"name": store.ZENML_MODEL_NAME, "version": str(version_number)}
    return local_backend(cached_bundle(version_id), export_format, model)


def default_bento_url() -> str:
    """`HAR_CLIP_BENTO_URL`, else the deployment of the configured stage's version while it answers: each local
    release serves on a new port, which the deployment pipeline records on the model version."""
    if settings.bento_url:
        return settings.bento_url
    url = store.deployment_url(store.model_version(settings.stage))
    if url is None or not serving_at(url):
        return ""
    st.sidebar.caption(f"The {settings.stage} version is deployed at {url} (recorded by the deployment pipeline).")
    return url


def serving_at(url: str) -> bool:
    """Whether a Bento answers /readyz at `url` within a second (a recorded deployment may have been stopped)."""
    import requests

    try:
        return requests.get(f"{url.rstrip('/')}/readyz", timeout=1).ok
    except requests.RequestException:
        return False


def model_choices(configured: str) -> list[str]:
    """The stages to pick from, with the configured version first when `HAR_CLIP_VIEWER_STAGE` names a number (a
    pinned version keeps answering however later versions move through the stages)."""
    return [configured, *STAGES] if configured.isdigit() else STAGES


def choice_label(choice: str) -> str:
    return f"version {choice}" if choice.isdigit() else choice


def choose_backend() -> Backend | None:
    """The backend picked in the sidebar, or None after telling the user why there is none."""
    url = st.sidebar.text_input("Bento URL", default_bento_url(), help="Empty: predict with a local model from ZenML.")
    if url.strip():
        try:
            with st.spinner(f"Connecting to the Bento service at {url}…"):
                return bento_backend(url.strip(), settings.api_token, settings.bento_timeout_s)
        except BackendUnavailableError as error:
            st.error(str(error))
            return None
    choices = model_choices(settings.stage)
    default = choices.index(settings.stage) if settings.stage in choices else 0
    stage = st.sidebar.selectbox("Model stage", choices, index=default, format_func=choice_label)
    with st.spinner(f"Looking up the {choice_label(stage)} model in ZenML…"):
        version = store.model_version(stage)
    if version is None:
        where = f"**version {stage}**" if stage.isdigit() else f"stage **{stage}**"
        st.warning(
            f"No model version at {where}. Train one with "
            "`python run.py --pipeline training --config configs/quickstart.yaml`; promotion puts it in production "
            "or staging (pick `latest` for the newest version whatever its stage)."
        )
        return None
    with st.spinner(f"Fetching the exports of model version {version.number}…"):
        bundle = cached_bundle(str(version.id))
    if bundle is None:
        st.warning(
            f"Model version {version.number} ({stage}) has no export yet: the training pipeline's export step writes "
            "one (ONNX, int8 ONNX, TorchScript, PyTorch). Versions trained before it existed cannot be loaded here."
        )
        return None
    formats = deployable_formats(bundle)
    if not formats:
        st.error(f"None of model version {version.number}'s exports passed its parity gate: {bundle.formats}")
        return None
    export_format = st.sidebar.selectbox("Export format", formats)
    try:
        with st.spinner(f"Loading the {export_format} export of model version {version.number}…"):
            return cached_local_backend(str(version.id), version.number, export_format)
    except (OSError, ValueError, RuntimeError) as error:
        st.error(f"Could not load the {export_format} export of model version {version.number}: {error}")
        return None


def custom_labels(backend: Backend) -> list[str] | None:
    help_text = "Your own labels, comma separated (open vocabulary: the export's text tower embeds them)."
    if not backend.supports_custom_labels:
        help_text = "This model has no text tower, so it only predicts its own labels."
    text = st.text_input("Custom labels", "", disabled=not backend.supports_custom_labels, help=help_text)
    labels = [label.strip() for label in text.split(",") if label.strip()]
    return labels or None


def show_prediction(backend: Backend, name: str, data: bytes, top_k: int, labels: list[str] | None) -> None:
    try:
        image = open_image(data, name=name)
    except InvalidImageError as error:
        st.error(f"Not an image, skipped: {error}")
        return
    try:
        with st.spinner(f"Scoring {name}…"):
            answer = backend.predict(image, data, name, top_k, labels)
    except (BackendUnavailableError, PredictionRequestError) as error:
        st.error(str(error))
        return
    picture, chart = st.columns([1, 2])
    picture.image(image, caption=name, width="stretch")
    best = answer.predictions[0]
    chart.subheader(NO_ACTION if answer.abstained else f"{best.label} · {best.score:.1%}")
    chart.markdown(verdict_text(answer))
    if answer.verdict.out_of_distribution:
        chart.warning(ood_text(answer, backend))
    chart.altair_chart(predictions_chart(answer.predictions, answer.threshold), width="stretch")
    chart.caption(f"{backend.description} · {answer.inference_ms:.0f} ms")


def verdict_text(answer: Answer) -> str:
    """What the confidence means: calibrated or not, and for "no action" the best guess and the bar it missed."""
    best, confidence = answer.predictions[0], answer.verdict.confidence
    if not answer.calibrated:
        return (
            f"Confidence {confidence:.1%}, uncalibrated: this model has no calibration and never answers “{NO_ACTION}”."
        )
    bar = "the model's threshold" if answer.threshold is None else f"{answer.threshold:.1%}"
    if answer.abstained:
        return (
            f"No action named: the best guess, **{best.label}**, has a calibrated confidence of {confidence:.1%}, "
            f"below {bar}."
        )
    return f"Calibrated confidence {confidence:.1%}; below {bar} the model answers “{NO_ACTION}”."


def ood_text(answer: Answer, backend: Backend) -> str:
    score = answer.verdict.ood_score
    above = f", above its threshold {backend.calibration.ood_above:.3f}" if backend.calibration is not None else ""
    return (
        f"Out of distribution: this image is unlike the images the model was trained on (score {score:.3f}{above}), "
        "so its answer deserves less trust than its confidence says."
    )


def show_video_prediction(backend: Backend, name: str, data: bytes, top_k: int) -> None:
    try:
        with st.spinner(f"Scoring the frames of {name}…"):
            answer = backend.predict_video(data, name, top_k)
    except (BackendUnavailableError, PredictionRequestError) as error:
        st.error(str(error))
        return
    labels = " → ".join(segment.label for segment in answer.segments)
    st.subheader(f"{name} · {labels}")
    player, timeline = st.columns([1, 2])
    player.video(data)
    timeline.altair_chart(timeline_chart(answer), width="stretch")
    rows = [segment.model_dump() for segment in answer.segments]
    timeline.dataframe(rows, hide_index=True, width="stretch")
    timeline.caption(
        f"{backend.description} · {len(answer.frames)} frames at {answer.sample_fps:g} fps over "
        f"{answer.duration_s:.1f} s · {answer.inference_ms:.0f} ms · {video_verdict_text(answer)}"
    )


def video_verdict_text(answer: VideoAnswer) -> str:
    if answer.abstain_below is None:
        return f"uncalibrated probabilities, never “{NO_ACTION}”"
    return (
        f"calibrated probabilities; “{NO_ACTION}” (grey) where the smoothed top-1 is below {answer.abstain_below:.1%}"
    )


st.title("Predict")
backend = choose_backend()
if backend is None:
    st.stop()
st.caption(f"Answering with the {backend.description}.")
labels = custom_labels(backend)
most = len(labels) if labels else len(backend.labels)
top_k = st.slider("Top k", 1, max(most, 2), min(settings.top_k, most))
uploads = st.file_uploader(
    "Images or videos",
    accept_multiple_files=True,
    help="Images (JPEG, PNG, WebP, …) or videos (MP4, MOV, WebM, MKV, AVI, MPEG, OGV), one or more.",
)
files = [(upload.name, upload.getvalue()) for upload in uploads or []]
if st.toggle("Use the camera"):
    shot = st.camera_input("Take a picture")
    if shot is not None:
        files.append(("camera.jpg", shot.getvalue()))
if st.toggle("Live camera (WebRTC)", help="Stream the camera and see the current action, scored live."):
    from viewer.webcam import show_live

    show_live(backend)
elif not files:
    st.info(
        "Upload images (or turn on the camera) to see the model's top labels, or a video to see its action segments."
    )
for name, data in files:
    if is_video_name(name):
        show_video_prediction(backend, name, data, top_k)
    else:
        show_prediction(backend, name, data, top_k, labels)
