"""Tracking sessions over ``/v1/track``: the real Ingress in this process (Starlette's WebSocket test client), then
through Ray Serve's proxy on 127.0.0.1.

The model is a one-class yolov12n whose class bias says "object" everywhere: its detections depend on the image
only, so the same frame sent again gives the same boxes, and a tracker must give them the same ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_support import asgi_client, in_process_ingress, png_claiming, running_app
from starlette.websockets import WebSocketDisconnect

from serve import tracking

API_KEY_ENV = "YOLOV12_TEST_TRACK_KEY"
FRAMES = 3


def ids_of(answer: dict) -> list[int]:
    return sorted(track["id"] for track in answer["tracks"])


@pytest.mark.parametrize(("query", "message"), [
    ({"tracker": "deepsort"}, "tracker='deepsort': use one of bytetrack, botsort"),
    ({"tracker": "/etc/passwd"}, "tracker='/etc/passwd'"),
    ({"conf": "2"}, "conf='2'"),
    ({"imgsz": "4000"}, "above the limit of 1280 (max_request_imgsz)"),
    ({"track_bufer": "9"}, "did you mean 'track_buffer'"),
    ({"track_low_thresh": "0.9"}, "track_low_thresh=0.9 is above track_high_thresh"),
])
def test_bad_session_options_are_refused_in_one_line(query, message) -> None:
    with pytest.raises(tracking.TrackingOptionsError) as info:
        tracking.parse_tracking_options(query, max_imgsz=1280)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_session_options_default_to_model_track_and_take_tracker_keys() -> None:
    options = tracking.parse_tracking_options({"tracker": "botsort.yaml", "track_buffer": "60", "iou": "0.5"}, 640)
    assert (options.detect.conf, options.detect.iou) == (tracking.TRACKING_CONF, 0.5)
    assert (options.tracker.tracker_type, options.tracker.track_buffer) == ("botsort", 60)


def test_the_registry_refuses_a_session_over_its_limit_and_frees_closed_ones() -> None:
    registry = tracking.SessionRegistry(limit=1)
    with registry.session() as first:
        with pytest.raises(tracking.SessionLimitError, match="max_track_sessions"), registry.session():
            pass
        assert list(registry.open_sessions) == [first]
    with registry.session():
        assert len(registry.open_sessions) == 1


@pytest.fixture(scope="module")
def client(tmp_path_factory, confident_weights: Path) -> Iterator[object]:
    """The Ingress in this process with a 2-session limit, a 1 s idle timeout and an API key."""
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv(API_KEY_ENV, "s3cret")
    ingress = in_process_ingress(tmp_path_factory.mktemp("track-cache"), model=str(confident_weights),
                                 random_weights=False, max_det=20, max_track_sessions=2, track_session_idle_s=1.0,
                                 max_body_bytes=200_000, api_key_env=API_KEY_ENV)
    with asgi_client(ingress) as test_client:
        yield test_client
    monkeypatch.undo()


def connect(client, query: str = "", key: str | None = "s3cret"):
    return client.websocket_connect(f"/v1/track{query}", headers={"x-api-key": key} if key else {})


def close_of(socket) -> tuple[int, str]:
    """The close code and reason the server ended the session with."""
    with pytest.raises(WebSocketDisconnect) as info:
        while True:
            socket.receive_text()
    return info.value.code, info.value.reason


def jpeg(width: int, height: int) -> bytes:
    import cv2
    import numpy as np

    return cv2.imencode(".jpg", np.full((height, width, 3), 128, np.uint8))[1].tobytes()


TALL, WIDE = (64, 256), (256, 64)  # the model's boxes cover the frame: these two barely overlap (IoU 0.14)


def test_a_session_keeps_its_tracks_across_frames_and_each_session_has_its_own(client) -> None:
    """A tall frame starts tracks; a wide one then cannot match them, so its boxes are new tracks, confirmed on their
    second frame only (a session's first frame confirms at once) and numbered after the first ones; the repeated
    frame keeps those ids. A tracker made anew for each frame would answer ids 1..k every time."""
    frames = [jpeg(*TALL), *[jpeg(*WIDE)] * FRAMES]
    with connect(client, "?max_det=5") as socket:
        hello = json.loads(socket.receive_text())
        assert hello["tracker"] == "bytetrack" and hello["idle_timeout_s"] == 1.0 and hello["session"]
        answers = []
        for frame in frames:
            socket.send_bytes(frame)
            answers.append(json.loads(socket.receive_text()))
    assert [answer["frame"] for answer in answers] == list(range(1, len(frames) + 1))
    first, unconfirmed, *settled = (ids_of(answer) for answer in answers)
    assert first == [1, 2, 3, 4, 5] and unconfirmed == [], (first, unconfirmed)
    assert all(ids == [6, 7, 8, 9, 10] for ids in settled), settled
    assert {"track", "frame", "inference"} <= set(answers[0]["timing_ms"])
    with connect(client, "?max_det=5") as socket:
        socket.receive_text()
        socket.send_bytes(jpeg(*WIDE))
        assert ids_of(json.loads(socket.receive_text())) == [1, 2, 3, 4, 5]  # its own ids


def test_botsort_sessions_decode_frames_for_motion_compensation(client, sample_jpegs) -> None:
    with connect(client, "?tracker=botsort") as socket:
        socket.receive_text()
        answers = []
        for _ in range(2):
            socket.send_bytes(sample_jpegs[0])
            answers.append(json.loads(socket.receive_text()))
    assert ids_of(answers[0]) and ids_of(answers[0]) == ids_of(answers[1])


def test_a_bad_frame_is_answered_and_the_session_goes_on(client, sample_jpegs) -> None:
    with connect(client) as socket:
        socket.receive_text()
        socket.send_bytes(b"not an image")
        bad = json.loads(socket.receive_text())
        socket.send_text("a text message")
        text = json.loads(socket.receive_text())
        socket.send_bytes(png_claiming(100_000, 100_000))
        huge = json.loads(socket.receive_text())
        socket.send_bytes(sample_jpegs[0])
        good = json.loads(socket.receive_text())
    assert bad["status"] in (400, 415) and bad["frame"] == 1 and "\n" not in bad["error"]
    assert text["status"] == 415 and "binary message" in text["error"]
    assert huge["status"] == 413 and "pixels" in huge["error"]
    assert good["frame"] == 3 and good["tracks"]  # the tracker skipped the unusable frames


@pytest.mark.parametrize(("query", "key", "code", "reason"), [
    ("", None, tracking.CLOSE_UNAUTHORISED, "missing or wrong x-api-key header"),
    ("", "wrong", tracking.CLOSE_UNAUTHORISED, "missing or wrong x-api-key header"),
    ("?tracker=deepsort", "s3cret", tracking.CLOSE_BAD_OPTIONS, "tracker='deepsort'"),
    ("?imgsz=4096", "s3cret", tracking.CLOSE_BAD_OPTIONS, "max_request_imgsz"),
])
def test_refused_sessions_close_with_a_code_and_one_line(client, query, key, code, reason) -> None:
    with connect(client, query, key) as socket:
        got_code, got_reason = close_of(socket)
    assert got_code == code and reason in got_reason


def test_a_frame_above_the_body_limit_closes_the_session(client) -> None:
    with connect(client) as socket:
        socket.receive_text()
        socket.send_bytes(bytes(200_001))
        code, reason = close_of(socket)
    assert code == tracking.CLOSE_TOO_BIG and "max_body_bytes" in reason


def test_sessions_over_the_replica_limit_are_refused(client) -> None:
    with connect(client) as first, connect(client) as second:
        first.receive_text(), second.receive_text()
        with connect(client) as third:
            code, reason = close_of(third)
    assert code == tracking.CLOSE_TOO_MANY_SESSIONS and "max_track_sessions" in reason
    with connect(client) as again:  # the two above have ended: room again
        assert json.loads(again.receive_text())["session"]


def test_an_idle_session_expires(client, sample_jpegs) -> None:
    with connect(client) as socket:
        socket.receive_text()
        socket.send_bytes(sample_jpegs[0])
        socket.receive_text()
        code, reason = close_of(socket)  # no frame for 1 s
    assert code == tracking.CLOSE_EXPIRED and "track_session_idle_s" in reason


@pytest.mark.slow
@pytest.mark.integration
def test_a_session_through_ray_serve_keeps_ids_across_frames_and_expires(serve_port, confident_weights,
                                                                          sample_jpegs) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect as ws_connect

    args = {"model": str(confident_weights), "backend": "torch", "imgsz": 64, "max_det": 5, "threads": 1,
            "track_session_idle_s": 2.0}
    with running_app(serve_port, args, "tracking") as url:
        with ws_connect(url.replace("http://", "ws://") + "/v1/track", open_timeout=60) as socket:
            assert json.loads(socket.recv(timeout=60))["tracker"] == "bytetrack"
            answers = []
            for frame in [jpeg(*TALL), *[jpeg(*WIDE)] * FRAMES]:
                socket.send(frame)
                answers.append(json.loads(socket.recv(timeout=60)))
            with pytest.raises(ConnectionClosed) as closed:
                socket.recv(timeout=30)
    assert [ids_of(answer) for answer in answers] == [[1, 2, 3, 4, 5], [], *[[6, 7, 8, 9, 10]] * (FRAMES - 1)]
    assert closed.value.rcvd.code == tracking.CLOSE_EXPIRED
