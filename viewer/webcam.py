"""The Predict page's live camera: the browser's camera over WebRTC (streamlit-webrtc on aiortc), scored live.

Nothing leaves the machine: the RTC configuration names no ICE servers (streamlit-webrtc would otherwise ask public
STUN servers, or fetch TURN credentials), so the browser and the viewer connect over their own host addresses.
aioice leaves 127.0.0.1 out of the addresses it offers; `offer_loopback_candidates` adds it, so a browser on the
same machine connects over loopback even with no other interface (Chromium offers loopback only with
`--allow-loopback-in-peer-connection`). A browser on another machine needs a route to one of the viewer's host
addresses, or a TURN server both can reach (docs/viewer.md).

The stream is consumed, never sent back (`SENDONLY` with a sink): the browser shows its own camera, and the server
spends no time re-encoding video. Frames go to a `LiveScorer`, which scores one at a time and drops the rest.
"""

from __future__ import annotations

import streamlit as st

from har_core.runtime.confidence import NO_ACTION
from viewer.backends import Backend
from viewer.charts import live_chart
from viewer.live_scoring import LiveScorer, LiveSettings, LiveState

RTC_CONFIGURATION: dict = {"iceServers": []}  # no STUN, no TURN: host candidates only
STREAMER_KEY = "har-clip-live-camera"
REFRESH_S = 1.0  # how often the readout below the camera is redrawn while streaming


def offer_loopback_candidates() -> None:
    """Make aioice offer 127.0.0.1 as well as the other host addresses (idempotent)."""
    import aioice.ice

    original = aioice.ice.get_host_addresses
    if getattr(original, "offers_loopback", False):
        return

    def with_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        addresses = original(use_ipv4, use_ipv6)
        return [*addresses, "127.0.0.1"] if use_ipv4 and "127.0.0.1" not in addresses else addresses

    with_loopback.offers_loopback = True
    aioice.ice.get_host_addresses = with_loopback


def live_settings() -> LiveSettings:
    """The scoring rate and smoothing, chosen beside the camera."""
    rate, method, strength = st.columns(3)
    scoring_fps = rate.number_input("Frames scored per second", 0.5, 30.0, 4.0, step=0.5)
    smoothing = method.radio("Smoothing", ["ema", "window"], horizontal=True, help="Exponential moving average, or "
                             "the mean over the last frames.")  # fmt: skip
    if smoothing == "ema":
        alpha = strength.slider("EMA weight of the newest frame", 0.05, 1.0, 0.4, 0.05)
        return LiveSettings(scoring_fps=scoring_fps, smoothing="ema", alpha=alpha)
    window = strength.slider("Frames averaged", 1, 30, 5)
    return LiveSettings(scoring_fps=scoring_fps, smoothing="window", window=window)


class _Target:
    """What the WebRTC sink hands frames to: the page's current scorer (replaced when the backend changes)."""

    scorer: LiveScorer | None = None

    def offer(self, frame) -> None:
        if self.scorer is not None:
            self.scorer.offer(frame)


def show_live(backend: Backend) -> None:
    from streamlit_webrtc import WebRtcMode, webrtc_streamer
    from streamlit_webrtc.sink import CallbackSinkTrack

    offer_loopback_candidates()
    settings = live_settings()
    state = st.session_state
    if "har_clip_live_target" not in state:
        state.har_clip_live_target = _Target()
        state.har_clip_live_sink = CallbackSinkTrack(state.har_clip_live_target.offer, kind="video")
    target: _Target = state.har_clip_live_target
    if target.scorer is None or target.scorer.backend is not backend:
        if target.scorer is not None:
            target.scorer.close()
        target.scorer = LiveScorer(backend, settings)
    elif target.scorer.settings != settings:
        target.scorer.configure(settings)
    context = webrtc_streamer(
        key=STREAMER_KEY,
        mode=WebRtcMode.SENDONLY,
        rtc_configuration=RTC_CONFIGURATION,
        media_stream_constraints={"video": True, "audio": False},
        sink_video_track=state.har_clip_live_sink,
    )
    if not context.state.playing:
        st.info("Press START to stream the camera; frames are scored on this machine, nothing leaves it.")
        return
    st.fragment(run_every=REFRESH_S)(_readout)(target.scorer)


def _readout(scorer: LiveScorer) -> None:
    live = scorer.snapshot()
    if live.error:
        st.warning(f"Last frame not scored: {live.error}")
    if live.label is None:
        st.caption(f"Waiting for the first scored frame… ({live.received} frames received)")
        return
    picture, readout = st.columns([1, 3])
    if live.frame is not None:
        picture.image(live.frame, caption="the frame scored last", width="stretch")
    readout.subheader(live.label if live.abstained else f"{live.label} · {live.probability:.1%}")
    readout.markdown(live_verdict_text(live))
    fps, latency, camera, dropped = readout.columns(4)
    fps.metric("Scored fps", f"{live.scoring_fps:.1f}")
    latency.metric("Latency", f"{live.latency_ms:.0f} ms" if live.latency_ms is not None else "–")
    camera.metric("Camera fps", f"{live.camera_fps:.1f}")
    dropped.metric("Dropped frames", f"{live.dropped:,} of {live.received:,}")
    readout.altair_chart(live_chart(live), width="stretch")
    st.caption(
        f"{scorer.backend.description} · smoothing {scorer.settings.smoothing} · frames arriving while one is scored "
        f"are dropped, not queued"
    )


def live_verdict_text(live: LiveState) -> str:
    """What the current action's probability means: smoothed and calibrated, and what "no action" is held to."""
    if not live.calibrated:
        return f"Smoothed probability, uncalibrated: this model has no calibration and never answers “{NO_ACTION}”."
    if live.threshold is None:
        return f"Smoothed calibrated probability (the service does not tell its threshold for “{NO_ACTION}”)."
    if live.abstained:
        return (
            f"No action named: the smoothed best guess, **{live.best_label}** at {live.probability:.1%}, is below "
            f"the {live.threshold:.1%} this model needs to name an action."
        )
    return f"Smoothed calibrated probability; below {live.threshold:.1%} the model answers “{NO_ACTION}”."
