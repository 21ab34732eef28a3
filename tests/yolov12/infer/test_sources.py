"""Every source type becomes named (H, W, 3) BGR uint8 frames; every bad input raises a SourceError that says why."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from yolov12.infer.image_io import SourceError, read_image, to_bgr_uint8
from yolov12.infer.sources import iter_batches, iter_frames


def _frames(source, **kwargs) -> list[tuple[str, np.ndarray]]:
    frames = list(iter_frames(source, **kwargs))
    for _, image in frames:
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and image.flags.c_contiguous
    return frames


def _write(path: Path, image: np.ndarray) -> Path:
    ok, encoded = cv2.imencode(path.suffix, image)
    assert ok
    encoded.tofile(str(path))
    return path


@pytest.fixture
def bgr() -> np.ndarray:
    image = np.zeros((40, 60, 3), np.uint8)
    image[..., 0] = 200  # blue
    image[10:20, 10:30] = (10, 120, 250)
    return image


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".tiff", ".webp", ".jpg", ".jpeg", ".PNG"])
@pytest.mark.parametrize("as_path", [True, False])
def test_image_file(tmp_path, bgr, suffix, as_path) -> None:
    path = _write(tmp_path / f"picture{suffix}", bgr)
    [(name, image)] = _frames(path if as_path else str(path))
    assert name == str(path)
    difference = np.abs(image.astype(int) - bgr)
    if suffix.lower() in (".jpg", ".jpeg", ".webp"):  # lossy: chroma blur at the edges
        assert image.shape == bgr.shape and difference.mean() < 6
    else:
        assert difference.max() == 0


def test_unicode_path(tmp_path, bgr) -> None:
    folder = tmp_path / "données ü 图像"
    folder.mkdir()
    path = _write(folder / "снимок.png", bgr)
    [(name, image)] = _frames(str(path))
    assert name == str(path) and (image == bgr).all()


def test_folder_is_sorted_and_skips_other_files(tmp_path, bgr) -> None:
    for name in ("b.png", "a.jpg", "c.bmp"):
        _write(tmp_path / name, bgr)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub").mkdir()
    assert [Path(n).name for n, _ in _frames(tmp_path)] == ["a.jpg", "b.png", "c.bmp"]


def test_glob_pattern(tmp_path, bgr) -> None:
    for name in ("x1.png", "x2.png", "y.png"):
        _write(tmp_path / name, bgr)
    assert [Path(n).name for n, _ in _frames(str(tmp_path / "x*.png"))] == ["x1.png", "x2.png"]


def test_video_file(tmp_path) -> None:
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    assert writer.isOpened()
    for i in range(5):
        writer.write(np.full((48, 64, 3), i * 50, np.uint8))
    writer.release()
    frames = _frames(path)
    assert [n for n, _ in frames] == [f"{path}:frame{i}" for i in range(5)]
    assert all(image.shape == (48, 64, 3) for _, image in frames)
    assert [round(float(image.mean()) / 50) for _, image in frames] == [0, 1, 2, 3, 4]


def test_numpy_bgr_gray_bgra(bgr) -> None:
    gray = bgr[..., 1].copy()
    bgra = np.dstack([bgr, np.full(bgr.shape[:2], 7, np.uint8)])
    frames = _frames([bgr, gray, gray[..., None], bgra])
    assert [n for n, _ in frames] == ["image0", "image1", "image2", "image3"]
    assert (frames[0][1] == bgr).all()
    assert (frames[1][1] == gray[..., None]).all() and (frames[2][1] == frames[1][1]).all()
    assert (frames[3][1] == bgr).all()


def test_numpy_16_bit_and_float_are_scaled() -> None:
    levels = np.array([0, 1, 128, 255], np.uint16)
    wide = np.tile((levels * 257)[None, :, None], (2, 1, 3))
    [(_, image)] = _frames(wide)
    assert image[0, :, 0].tolist() == levels.tolist()
    [(_, image)] = _frames(np.full((2, 2, 3), 0.5, np.float32))
    assert (image == 128).all()


def test_16_bit_png_file_is_converted_to_8_bit(tmp_path) -> None:
    levels = np.array([0, 10, 100, 200, 255], np.uint16)
    wide = np.tile((levels * 257)[None, :, None], (3, 1, 3))
    path = _write(tmp_path / "deep.png", wide)
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    assert read_image(path)[0, :, 1].tolist() == levels.tolist()
    gray_path = _write(tmp_path / "deep_gray.png", wide[..., 0].copy())
    assert read_image(gray_path)[1, :, 2].tolist() == levels.tolist()


def test_pil_images(bgr) -> None:
    rgb = Image.fromarray(np.ascontiguousarray(bgr[..., ::-1]))
    modes = [rgb, rgb.convert("L"), rgb.convert("RGBA"), rgb.convert("P"), rgb.convert("CMYK")]
    frames = _frames(modes)
    assert (frames[0][1] == bgr).all()
    assert (frames[1][1][..., 0] == frames[1][1][..., 2]).all()
    assert (frames[2][1] == bgr).all()
    assert np.abs(frames[3][1].astype(int) - bgr).max() < 60  # palette quantisation
    sixteen = Image.fromarray(np.full((3, 4), 100 * 257, np.uint16))
    assert sixteen.mode.startswith("I;16")
    assert (_frames(sixteen)[0][1] == 100).all()


def test_torch_tensor_batch(bgr) -> None:
    rgb = torch.from_numpy(np.ascontiguousarray(bgr[..., ::-1])).permute(2, 0, 1).float() / 255
    frames = _frames(torch.stack([rgb, rgb.flip(2)]))
    assert [n for n, _ in frames] == ["image0", "image1"]
    assert (frames[0][1] == bgr).all() and (frames[1][1] == bgr[:, ::-1]).all()
    assert (_frames(rgb)[0][1] == bgr).all()  # a single (3, H, W) image


def test_mixed_list_and_batches(tmp_path, bgr) -> None:
    path = _write(tmp_path / "a.png", bgr)
    source = [path, bgr, Image.fromarray(bgr), str(path), torch.zeros(2, 3, 8, 8)]
    names = [n for n, _ in _frames(source)]
    assert names == [str(path), "image0", "image1", str(path), "image2", "image3"]
    assert [len(b) for b in iter_batches(source, 4)] == [4, 2]
    assert [len(b) for b in iter_batches(source, 1)] == [1] * 6


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


BAD_SOURCES = {
    "missing file": (lambda d: d / "nope.jpg", "no such file: "),
    "empty folder": (lambda d: _mkdir(d / "empty"), "no images or videos found in folder"),
    "folder without images": (lambda d: _text(_mkdir(d / "docs") / "a.txt").parent, "no images or videos found"),
    "glob matching nothing": (lambda d: str(d / "*.jpg"), "no images or videos match the pattern"),
    "glob matching only other files": (lambda d: str(_text(d / "a.txt").parent / "*"), "none of them a supported"),
    "unsupported extension": (lambda d: _text(d / "a.txt"), "unsupported file type '.txt'"),
    "corrupt jpg": (lambda d: _bytes(d / "bad.jpg", b"\xff\xd8\xff garbage" * 10), "cannot decode image"),
    "random bytes png": (lambda d: _bytes(d / "bad.png", np.random.default_rng(0).bytes(500)), "cannot decode image"),
    "empty file": (lambda d: _bytes(d / "empty.png", b""), "cannot decode image"),
    "text as image": (lambda d: _text(d / "fake.webp"), "not a valid image (corrupt or unsupported format)"),
    "corrupt video": (lambda d: _bytes(d / "bad.mp4", b"\x00" * 300), "video"),
    "huge image header": (lambda d: _bytes(d / "huge.png", _png_header_only(30000, 30000)),
                          "30000x30000 (900000000 pixels), above the limit of 400000000 pixels (20000x20000)"),
    "url nobody serves": (lambda d: "http://127.0.0.1:9/stream.mjpg", "cannot open stream http://127.0.0.1:9/"),
    "missing webcam": (lambda d: 42, "cannot open stream webcam42"),
    "negative webcam": (lambda d: -1, "webcam index -1 is negative"),
    "stream in a list": (lambda d: ["rtsp://127.0.0.1:9/live", np.zeros((4, 4, 3), np.uint8)],
                         "a stream or webcam must be the only source"),
    "unsupported type": (lambda d: 4.2, "unsupported source type float"),
    "empty list": (lambda d: [], "the source list is empty"),
    "numpy wrong channels": (lambda d: np.zeros((4, 4, 2), np.uint8), "got shape (4, 4, 2)"),
    "numpy bool": (lambda d: np.zeros((4, 4, 3), bool), "unsupported pixel type bool"),
    "numpy float out of range": (lambda d: np.full((4, 4, 3), 255.0), "must be in [0, 1]"),
    "numpy empty": (lambda d: np.zeros((0, 4, 3), np.uint8), "the image is empty"),
    "tensor out of range": (lambda d: torch.full((1, 3, 4, 4), 255.0), "divide by 255"),
    "tensor wrong shape": (lambda d: torch.zeros(1, 1, 4, 4), "must be (B, 3, H, W)"),
    "tensor uint8": (lambda d: torch.zeros(1, 3, 4, 4, dtype=torch.uint8), "must be float"),
    "pil float mode": (lambda d: Image.new("F", (4, 4)), "unsupported PIL mode 'F'"),
}


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _text(path: Path) -> Path:
    path.write_text("hello, I am not an image")
    return path


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", list(BAD_SOURCES))
def test_bad_sources_raise_clear_errors(tmp_path, case) -> None:
    make, message = BAD_SOURCES[case]
    source = make(tmp_path)
    with pytest.raises(SourceError, match=None) as info:
        list(iter_frames(source))
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_missing_file_is_reported_before_iterating(tmp_path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        iter_frames([tmp_path / "missing.png"])


def test_pixel_limit(tmp_path, bgr) -> None:
    path = _write(tmp_path / "a.png", bgr)  # 60x40 = 2400 pixels
    assert len(_frames(path, max_pixels=2400)) == 1
    with pytest.raises(SourceError, match=r"60x40 \(2400 pixels\), above the limit of 2399 pixels"):
        _frames(path, max_pixels=2399)
    with pytest.raises(SourceError, match="above the limit of 100 pixels"):
        _frames(bgr, max_pixels=100)


def test_to_bgr_uint8_passes_uint8_through_without_copy(bgr) -> None:
    assert to_bgr_uint8(bgr, "x") is bgr


def _avi(path: Path, width: int, height: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (width, height))
    assert writer.isOpened()
    for _ in range(2):
        writer.write(np.zeros((height, width, 3), np.uint8))
    writer.release()
    return path


def test_video_frames_over_the_limits_are_refused_before_the_first_frame(tmp_path, monkeypatch) -> None:
    path = _avi(tmp_path / "clip.avi", 64, 48)  # 3072 pixels, 9216 bytes a frame
    assert len(_frames(path, max_pixels=3072, max_bytes=9216)) == 2
    monkeypatch.setattr(cv2.VideoCapture, "read", lambda self: pytest.fail("read a frame over the limits"))
    with pytest.raises(SourceError, match=rf"video {path} has 64x48 frames \(3072 pixels\), above the limit of 3071"):
        _frames(path, max_pixels=3071)
    with pytest.raises(SourceError, match="9216 bytes a frame, above the limit of 9215 bytes"):
        _frames(path, max_bytes=9215)


def test_byte_limit_reaches_image_files_through_iter_frames(tmp_path) -> None:
    path = _write(tmp_path / "deep.png", np.zeros((10, 10, 3), np.uint16))  # 600 bytes decoded
    assert len(_frames([path], max_bytes=600)) == 1
    with pytest.raises(SourceError, match="decodes to 600 bytes"):
        _frames([path], max_bytes=599)


# -- live sources: an MJPEG-over-HTTP server on 127.0.0.1, run by the test ---------------------------------------------


class _MjpegServer:
    """Serves ``frames`` JPEG frames of grey level ``10 * (offset + i)`` as multipart/x-mixed-replace to its first
    client, then closes the connection (``hold=False``) or keeps it open without sending anything (a stalled stream);
    later clients get 503, as from a camera that went away."""

    def __init__(self, frames: int, offset: int = 0, hold: bool = False, port: int = 0) -> None:
        import http.server  # noqa: PLC0415
        import threading  # noqa: PLC0415

        self.release = threading.Event()
        self.clients = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server hook
                owner.clients += 1
                if owner.clients > 1:
                    self.send_error(503)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                for i in range(frames):
                    ok, encoded = cv2.imencode(".jpg", np.full((48, 64, 3), 10 * (offset + i), np.uint8))
                    data = encoded.tobytes()
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n"
                                     % (len(data), data))
                    self.wfile.flush()
                if hold:
                    owner.release.wait(30)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/stream.mjpg"

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def _levels(frames) -> list[int]:
    return [round(float(image.mean()) / 10) for _, image in frames]


def test_mjpeg_stream_is_read_frame_by_frame(caplog) -> None:
    from yolov12.infer.streams import StreamSettings  # noqa: PLC0415

    server = _MjpegServer(frames=4)
    try:
        frames, error = [], None
        try:
            for frame in iter_frames(server.url, stream=StreamSettings(timeout_s=2, reconnect_attempts=0)):
                frames.append(frame)
        except SourceError as exc:
            error = str(exc)
    finally:
        server.stop()
    assert [name for name, _ in frames] == [f"{server.url}:frame{i}" for i in range(4)]
    assert _levels(frames) == [0, 1, 2, 3] and all(image.shape == (48, 64, 3) for _, image in frames)
    assert error is not None and "was lost after 4 frames (reconnect_attempts=0)" in error


def test_stream_reconnects_when_the_server_stops_and_restarts(caplog) -> None:
    import threading  # noqa: PLC0415
    import time  # noqa: PLC0415

    from yolov12.infer.streams import StreamSettings  # noqa: PLC0415

    first = _MjpegServer(frames=3)
    second: list[_MjpegServer] = []

    def restart() -> None:
        first.stop()
        time.sleep(0.3)
        second.append(_MjpegServer(frames=3, offset=3, port=first.port))

    frames = []
    settings = StreamSettings(timeout_s=2, reconnect_attempts=4, reconnect_delay_s=0.2)
    with pytest.raises(SourceError, match="was lost after 6 frames \\(4 reconnect attempts failed\\)"):
        for frame in iter_frames(first.url, stream=settings):
            frames.append(frame)
            assert len(frames) < 20, "the stream should have ended"
            if len(frames) == 3:
                threading.Thread(target=restart).start()
    for server in second:
        server.stop()
    assert [name for name, _ in frames] == [f"{first.url}:frame{i}" for i in range(6)]
    assert _levels(frames) == [0, 1, 2, 3, 4, 5]
    warnings = [r.getMessage() for r in caplog.records if "stalled or dropped" in r.getMessage()]
    assert warnings and "after 3 frames; reconnecting in 0.2 s (attempt 1 of 4)" in warnings[0]


def test_a_stalled_stream_times_out_instead_of_hanging() -> None:
    import time  # noqa: PLC0415

    from yolov12.infer.streams import StreamSettings  # noqa: PLC0415

    server = _MjpegServer(frames=5, hold=True)  # FFmpeg reads a few frames to open a stream
    start = time.monotonic()
    frames = []
    try:
        with pytest.raises(SourceError, match="lost after 5 frames"):
            for frame in iter_frames(server.url, stream=StreamSettings(timeout_s=1, reconnect_attempts=1,
                                                                         reconnect_delay_s=0.05)):
                frames.append(frame)
    finally:
        server.stop()
    assert len(frames) == 5 and time.monotonic() - start < 15  # the reconnect got 503: given up, no hang


def test_stream_frames_obey_the_decode_limits() -> None:
    from yolov12.infer.streams import StreamSettings  # noqa: PLC0415

    server = _MjpegServer(frames=4)
    try:
        with pytest.raises(SourceError, match="above the limit of 3071 pixels"):
            list(iter_frames(server.url, max_pixels=3071, stream=StreamSettings(timeout_s=2, reconnect_attempts=0)))
    finally:
        server.stop()


def test_stream_passwords_stay_out_of_names() -> None:
    from yolov12.infer.streams import live_source, redact_url  # noqa: PLC0415

    assert redact_url("rtsp://admin:hunter2@10.0.0.5:554/live") == "rtsp://admin:***@10.0.0.5:554/live"
    assert live_source("rtsp://cam/live").display == "rtsp://cam/live"
    assert live_source(0).display == live_source("0").display == "webcam0"
