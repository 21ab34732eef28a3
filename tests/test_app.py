"""The Gradio demo in a real headless Chromium: upload a photo, press Detect, read the boxes off the page."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pipelines.local_stack import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def confident_checkpoint(path: Path) -> Path:
    """A one-class yolov12n whose class bias says 'object' everywhere, so the page must show boxes."""
    from yolov12.models import build_model, load_architecture
    from yolov12.weights import save_checkpoint

    model = build_model(load_architecture("yolov12n").with_overrides(num_classes=1), names={0: "thing"})
    for branch in model.model[-1].cv3:
        branch[-1].bias.data[:] = 6.0
    return save_checkpoint(model, path)


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory) -> str:
    weights = confident_checkpoint(tmp_path_factory.mktemp("demo") / "confident.safetensors")
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    log = tmp_path_factory.mktemp("demo-log") / "app.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "app.py", "--model", str(weights), "--port", str(port)],
                                   cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the demo did not start on {url}:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    yield url
    process.terminate()
    process.wait(timeout=30)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (scripts/dev.sh test installs it)")
def test_upload_detect_and_read_the_boxes(demo_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from yolov12.infer.samples import sample_images

    photo = str(sample_images()[0])
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=flags)
        try:
            page = browser.new_page()
            page.goto(demo_url, wait_until="networkidle")
            assert "YOLOv12 demo" in page.content()
            page.locator("#input-image input[type=file]").set_input_files(photo)
            page.locator("#input-image img").wait_for(timeout=30_000)
            page.locator("#detect-button").click()
            status = page.locator("#status textarea")
            shows_result = "() => / objects /.test(document.querySelector('#status textarea')?.value ?? '')"
            page.wait_for_function(shows_result, timeout=120_000)
            count = int(status.input_value().split()[0])
            page.locator("#output-image img").wait_for(timeout=30_000)
            page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)
        finally:
            browser.close()
    assert count > 0  # the confident head finds objects everywhere; the page shows how many
    assert (tmp_path / "demo.png").stat().st_size > 10_000


def test_detect_function_draws_what_it_reports(tmp_path: Path) -> None:
    import app
    from yolov12 import YOLO
    from yolov12.infer.image_io import read_image
    from yolov12.infer.samples import sample_images

    model = YOLO(confident_checkpoint(tmp_path / "c.safetensors"))
    image_rgb = read_image(sample_images()[0])[..., ::-1]
    annotated, rows, status = app.detect(model, image_rgb, conf=0.5, iou=0.7, imgsz=320)
    assert annotated.shape == image_rgb.shape and not (annotated == image_rgb).all()
    assert rows and status.startswith(f"{len(rows)} objects")
    assert all(row["name"] == "thing" and row["confidence"] >= 0.5 for row in rows)
    json.dumps(rows)  # what the page shows is plain JSON
    assert app.detect(model, None, 0.25, 0.7, 640)[2] == "upload an image first"


def test_no_trained_run_falls_back_to_an_untrained_model_and_says_so(tmp_path: Path, monkeypatch) -> None:
    import app

    monkeypatch.chdir(tmp_path)
    model, description = app.load_model(None)
    assert "untrained" in description and model.task == "detect"
    with pytest.raises(ValueError, match="does not exist"):
        app.load_model(str(tmp_path / "missing.safetensors"))
