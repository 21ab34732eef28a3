"""The Gradio demo: upload a photo, get boxes. ``python app.py`` → http://127.0.0.1:7860.

The model is any source ``YOLO(...)`` accepts (native checkpoint, exported ONNX/OpenVINO, imported ``.pt``, zoo name)
or a registry URI ``models:/NAME@alias`` (resolved through MLflow by ``pipelines.registry``). Without ``--model`` the
demo uses the newest ``best.safetensors`` under ``runs/`` (what the main job trains), else an untrained yolov12n and
says so on the page. With ``--endpoint http://HOST:PORT`` it calls a running Serve endpoint (``yolov12 serve``)
instead. Everything is served from this machine; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from yolov12.tasks import task_spec
from yolov12.utils.extras import MissingExtraError, require

logger = logging.getLogger("app")

DEFAULT_PORT = 7860
UNTRAINED = "yolov12n.yaml"


def newest_trained_weights(root: Path = Path("runs")) -> Path | None:
    """The most recently written ``best.safetensors`` below ``root`` (None when nothing was trained yet)."""
    found = sorted(root.glob("**/weights/best.safetensors"), key=lambda p: p.stat().st_mtime) if root.is_dir() else []
    return found[-1] if found else None


def load_model(source: str | None) -> tuple[Any, str]:
    """``(YOLO model, description)`` for a model source (see the module docstring)."""
    from yolov12 import YOLO  # noqa: PLC0415 - keep `import app` cheap for the CLI's --help

    if source and source.startswith("models:/"):
        from pipelines.registry import resolve_model_uri  # noqa: PLC0415 - MLflow only when a registry URI is given

        path = resolve_model_uri(source)
        return YOLO(path), f"{source} ({path})"
    if source:
        return YOLO(source), source
    trained = newest_trained_weights()
    if trained is not None:
        return YOLO(trained), str(trained)
    return YOLO(UNTRAINED), f"{UNTRAINED} (untrained: train first, e.g. `bash scripts/dev.sh main`, to see real boxes)"


def load_endpoint(url: str) -> tuple[Any, str]:
    """``(remote model, description)`` for a running Serve endpoint: same ``predict -> Results`` calls, over HTTP."""
    from serve.client import RemoteModel  # noqa: PLC0415 - only when an endpoint is given

    model = RemoteModel(url)
    return model, model.description


def detect(model: Any, image_rgb: np.ndarray | None, conf: float, iou: float, imgsz: int
           ) -> tuple[np.ndarray | None, list[dict], str]:
    """Run the model on one RGB image: (annotated RGB image, detections, one-line status)."""
    if image_rgb is None:
        return None, [], "upload an image first"
    image_bgr = np.ascontiguousarray(image_rgb[..., ::-1])
    result = model.predict(image_bgr, conf=conf, iou=iou, imgsz=int(imgsz), verbose=False)[0]
    annotated = np.ascontiguousarray(result.plot()[..., ::-1])
    rows = result.summary(decimals=2)
    timing = ", ".join(f"{stage} {ms:.0f} ms" for stage, ms in result.speed.items())
    noun = "objects" if task_spec(model.task).predicts_boxes else "classes"
    return annotated, rows, f"{len(rows)} {noun} ({timing})"


def build_demo(model: Any, description: str):
    """The Gradio Blocks app around ``model``."""
    import gradio as gr  # noqa: PLC0415 - heavy import, only when the demo is built

    from yolov12.infer.samples import sample_images  # noqa: PLC0415

    default_size = task_spec(model.task).default_image_size
    with gr.Blocks(title="YOLOv12 demo") as demo:
        gr.Markdown(f"# YOLOv12 demo\nModel: `{description}` · task `{model.task}` · {len(model.names)} classes")
        with gr.Row():
            with gr.Column():
                image = gr.Image(type="numpy", label="Image", elem_id="input-image")
                conf = gr.Slider(0.0, 1.0, value=0.25, step=0.01, label="Confidence threshold")
                iou = gr.Slider(0.0, 1.0, value=0.7, step=0.01, label="NMS IoU threshold")
                imgsz = gr.Slider(64, 1280, value=default_size, step=32, label="Image size")
                run = gr.Button("Detect", variant="primary", elem_id="detect-button")
            with gr.Column():
                annotated = gr.Image(type="numpy", label="Result", elem_id="output-image")
                status = gr.Textbox(label="Status", elem_id="status")
                table = gr.JSON(label="Detections", elem_id="detections")
        gr.Examples([[str(p)] for p in sample_images()], inputs=[image])
        run.click(lambda *args: detect(model, *args), inputs=[image, conf, iou, imgsz],
                  outputs=[annotated, table, status], api_name="detect")
    return demo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="YOLOv12 Gradio demo")
    parser.add_argument("--model", default=os.environ.get("YOLOV12_DEMO_MODEL"),
                        help="weights / exported model / zoo name / models:/NAME@alias (default: newest trained run)")
    parser.add_argument("--endpoint", default=os.environ.get("YOLOV12_DEMO_ENDPOINT"),
                        help="URL of a running Serve endpoint (yolov12 serve ...) to call instead of a local model")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    try:
        require("gradio", extra="demo", feature="the demo (app.py)")
    except MissingExtraError as exc:
        parser.exit(2, f"error: {exc}\n")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from an offline machine
    try:
        model, description = load_endpoint(args.endpoint) if args.endpoint else load_model(args.model)
    except (ValueError, FileNotFoundError, OSError, RuntimeError, MissingExtraError) as exc:
        parser.exit(2, f"error: cannot load the demo model: {exc}\n")
    logger.info("demo model: %s", description)
    build_demo(model, description).launch(server_name=args.host, server_port=args.port, show_error=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
