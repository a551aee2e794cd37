"""The viewer end to end: `streamlit run` on a free 127.0.0.1 port, driven by Debian's headless Chromium.

Screenshots of each page go to `$HAR_CLIP_TEST_ARTIFACTS/viewer/` (default: <tmp>/har-clip-test-artifacts/viewer);
they are test output, never committed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests
import yaml

from har_core.runtime.confidence import NO_ACTION
from tests.conftest import PROJECT_ROOT
from tests.required import skip_without

pytestmark = pytest.mark.slow
CHROMIUM = os.environ.get("HAR_CLIP_CHROMIUM", "/usr/bin/chromium")
TIMEOUT_MS = 240_000  # two shared CPU cores: a model load plus the first Vega render can take a while


def artifacts_dir() -> Path:
    root = Path(os.environ.get("HAR_CLIP_TEST_ARTIFACTS") or Path(tempfile.gettempdir()) / "har-clip-test-artifacts")
    directory = root / "viewer"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the `playwright` package (dev extra)")
    if not shutil.which(CHROMIUM):
        reason = f"needs Chromium at {CHROMIUM} (`apt-get install chromium`; HAR_CLIP_CHROMIUM overrides the path)"
        skip_without("chromium", reason)
    with sync_api.sync_playwright() as playwright:
        # Chromium's fake camera (a moving test pattern) stands in for a webcam; no permission prompt.
        fake_camera = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=fake_camera)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def viewer_url(viewer_run):
    """`streamlit run viewer/app.py` on the session's ZenML store; its whole process group is killed at the end."""
    port = free_port()
    _, version = viewer_run
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        # Pinned: tests that ran since the tiny run may have added newer versions and moved its stage.
        "HAR_CLIP_VIEWER_STAGE": str(version.number),
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    }
    env.pop("HAR_CLIP_BENTO_URL", None)
    command = [sys.executable, "-m", "streamlit", "run", "viewer/app.py", "--server.headless", "true"]
    command += ["--server.address", "127.0.0.1", "--server.port", str(port), "--server.fileWatcherType", "none"]
    log = open(artifacts_dir() / "streamlit.log", "w")  # noqa: SIM115 (closed at teardown)
    process = subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, process)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def wait_for_health(url: str, process: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with {process.returncode}; see {artifacts_dir() / 'streamlit.log'}")
        try:
            if requests.get(f"{url}/_stcore/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"streamlit did not answer {url}/_stcore/health within {timeout_s} s")


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, permissions=["camera"])
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    path = artifacts_dir() / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def test_upload_an_image_and_see_the_label_and_chart(page, viewer_url, viewer_run, tmp_path):
    from viewer import store

    run, _ = viewer_run
    wrong = store.evaluation_predictions(run).mistakes()[0]
    page.goto(viewer_url)  # Predict is the default page
    page.get_by_text("Answering with the local onnx export").wait_for()
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    page.locator("input[type=file]").set_input_files([wrong.path, str(notes)])
    page.get_by_text("Not an image, skipped: notes.txt").wait_for()
    headline = page.locator("h3").filter(has_text=f"{wrong.predicted_label} ·")
    headline.wait_for()
    page.locator("[data-testid=stVegaLiteChart] canvas, [data-testid=stVegaLiteChart] svg").first.wait_for()
    page.wait_for_timeout(1000)  # let Vega finish drawing before the screenshot
    assert screenshot(page, "predict").stat().st_size > 0


def test_an_image_the_model_abstains_on_reads_no_action(
    page, viewer_url, calibrated_bento_url, onnx_export_dir, tmp_path
):
    """The Bento URL typed in the sidebar (a Bento serving the tests' calibrated export), then an image its
    calibration abstains on: the page names no action, the best guess and the threshold, and draws the labels."""
    from har_core.runtime.predictor import Predictor
    from tests.viewer.unsure_images import judged_image

    predictor = Predictor.from_export(onnx_export_dir)
    unsure = tmp_path / "unsure.png"
    judged_image(predictor, abstained=True).save(unsure)
    page.goto(viewer_url)
    page.get_by_text("Answering with the local onnx export").wait_for()
    url_box = page.get_by_role("textbox", name="Bento URL")
    url_box.fill(calibrated_bento_url)
    url_box.press("Enter")
    page.get_by_text(f"Answering with the Bento service at {calibrated_bento_url}").wait_for()
    page.locator("input[type=file]").set_input_files([str(unsure)])
    page.locator("h3").filter(has_text=NO_ACTION).wait_for()
    page.get_by_text("No action named: the best guess").wait_for()
    page.locator("[data-testid=stVegaLiteChart] canvas, [data-testid=stVegaLiteChart] svg").first.wait_for()
    page.wait_for_timeout(1000)
    screenshot(page, "predict-no-action")


def test_a_camera_photo_is_scored(page, viewer_url):
    page.goto(viewer_url)
    page.get_by_text("Answering with the local onnx export").wait_for()
    page.get_by_text("Use the camera").click()
    page.locator("video").wait_for()
    page.wait_for_function("document.querySelector('video') && document.querySelector('video').readyState >= 2")
    page.get_by_role("button", name="Take Photo").click()
    page.get_by_text("camera.jpg").wait_for()  # the photo's caption beside its prediction
    page.locator("h3").filter(has_text=" · ").first.wait_for()
    page.locator("[data-testid=stVegaLiteChart]").first.wait_for()
    page.wait_for_timeout(1000)
    screenshot(page, "predict-camera")


def test_a_video_shows_its_timeline_of_segments(page, viewer_url, synthetic_root, tmp_path):
    from tests.videos import first_image, two_label_frames, write_video

    frames = two_label_frames(
        first_image(synthetic_root, "calling", 128), first_image(synthetic_root, "texting", 128), 10, 6.0, 3.0
    )
    video = write_video(tmp_path / "two-actions.webm", frames, 10, "libvpx")
    page.set_viewport_size({"width": 1400, "height": 1300})  # the timeline and its legend in one screenshot
    page.goto(viewer_url)
    page.get_by_text("Answering with the local onnx export").wait_for()
    page.locator("input[type=file]").set_input_files([str(video)])
    page.locator("h3").filter(has_text="two-actions.webm ·").wait_for()
    page.locator("[data-testid=stVegaLiteChart] canvas, [data-testid=stVegaLiteChart] svg").first.wait_for()
    page.locator("video").first.wait_for()
    page.wait_for_timeout(1500)
    screenshot(page, "predict-video")


def recognised_image(version, directory: Path):
    """(label, image): of the synthetic images the run trained on, the one its export gets right by the widest
    margin. The tiny run is far from accurate, so the camera is shown an image it is known to recognise."""
    from PIL import Image

    from har_core.config import SyntheticDataConfig
    from har_core.data.synthetic import generate_synthetic_images
    from har_core.runtime.labels import HAR_LABELS
    from har_core.runtime.predictor import Predictor
    from tests.conftest import tiny_run_config
    from viewer import store

    drawn = yaml.safe_load(tiny_run_config(directory).read_text())["parameters"]["data"]["synthetic"]
    root = generate_synthetic_images(directory / "drawn", HAR_LABELS, SyntheticDataConfig(**drawn))
    predictor = Predictor.from_export(store.version_exports(version).directory("onnx"))
    best = None
    for label in HAR_LABELS:
        for path in sorted((root / label).glob("*.jpg")):
            first, second = predictor.predict([Image.open(path)], top_k=2)[0]
            if first.label == label and (best is None or first.score - second.score > best[0]):
                best = (first.score - second.score, label, Image.open(path).convert("RGB"))
    assert best is not None, "the tiny run recognises none of the images it trained on"
    return best[1], best[2]


def write_y4m(path: Path, image, size=(320, 240), fps: int = 10, seconds: int = 3) -> Path:
    """A raw YUV4MPEG2 file of `image` centred on black: what Chromium's fake camera plays (in a loop)."""
    import av
    import numpy as np
    from PIL import Image

    canvas = Image.new("RGB", size)
    side = min(size)
    canvas.paste(image.resize((side, side)), ((size[0] - side) // 2, (size[1] - side) // 2))
    frame = np.asarray(canvas)
    with av.open(str(path), mode="w", format="yuv4mpegpipe") as container:
        stream = container.add_stream("rawvideo", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for _ in range(fps * seconds):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_the_live_camera_shows_the_action_it_sees_with_its_rate(browser, viewer_url, viewer_run, tmp_path):
    """WebRTC from Chromium's fake camera, fed a file of one label's image, to the viewer over loopback (no ICE
    servers): the page names that label within seconds and shows the achieved scoring rate and latency."""
    _, version = viewer_run
    label, image = recognised_image(version, tmp_path)
    camera = write_y4m(tmp_path / "camera.y4m", image)
    args = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
    args += [f"--use-file-for-fake-video-capture={camera}", "--allow-loopback-in-peer-connection"]
    live_browser = browser.browser_type.launch(executable_path=CHROMIUM, headless=True, args=args)
    try:
        page = live_browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(viewer_url)
        page.get_by_text("Answering with the local onnx export").wait_for()
        page.get_by_text("Live camera (WebRTC)").click()
        page.frame_locator("iframe[title*=webrtc]").get_by_role("button", name="START").click()
        started = time.monotonic()
        page.locator("h3").filter(has_text=f"{label} ·").wait_for(timeout=60_000)
        shown_after = time.monotonic() - started
        page.wait_for_timeout(10_000)  # let the rates settle over the readout's 5 s window
        metrics = dict(item.split("\n\n") for item in page.locator("[data-testid=stMetric]").all_inner_texts())
        headline = page.locator("h3").filter(has_text=" · ").first.inner_text()
        screenshot(page, "predict-live")
    finally:
        live_browser.close()
    print(f"live camera: {label!r} shown {shown_after:.1f} s after START; now {headline!r}, {metrics}")
    assert headline.startswith(f"{label} ·")
    assert float(metrics["Scored fps"]) > 0 and metrics["Latency"].endswith(" ms")
    assert shown_after < 30


def test_runs_page_lists_the_run(page, viewer_url, viewer_run):
    run, _ = viewer_run
    page.set_viewport_size({"width": 1400, "height": 2800})  # the whole page in one screenshot
    page.goto(f"{viewer_url}/runs?run={run.name}")
    page.locator("h2").filter(has_text=run.name).wait_for()
    page.get_by_text("Status completed").wait_for()
    page.get_by_text("Most frequent confusions").wait_for()
    page.get_by_text("Calibration (").wait_for()  # the figures beside the reliability diagram
    page.locator("[data-testid=stVegaLiteChart]").nth(4).wait_for()  # loss, accuracy, confusion, per class, reliability
    page.locator("[data-testid=stVegaLiteChart] canvas, [data-testid=stVegaLiteChart] svg").nth(4).wait_for()
    assert page.locator("[data-testid=stVegaLiteChart]").count() == 5
    page.wait_for_timeout(1500)
    screenshot(page, "runs")
    link = page.locator("[data-testid=stPageLink] a").first  # the most frequent confusion
    true_label = link.inner_text().split(" → ")[0]
    link.click()
    page.get_by_text("wrong predictions shown of").wait_for()
    assert "/mistakes" in page.url and f"true={true_label}" in page.url


def test_mistakes_page_shows_a_wrong_prediction(page, viewer_url, viewer_run):
    run, version = viewer_run
    page.set_viewport_size({"width": 1400, "height": 1600})
    page.goto(f"{viewer_url}/mistakes?version={version.number}")
    page.get_by_text("wrong predictions shown of").wait_for()
    caption = page.get_by_text("predicted", exact=False).filter(has_text="true").first
    caption.wait_for()
    page.locator("[data-testid=stImage] img").first.wait_for()
    page.wait_for_timeout(1000)
    screenshot(page, "mistakes")
