"""What `pip install yolov12-platform` (no extras) must do: run inside that venv by tests/test_core_install.py.

``python -I core_smoke.py WORKDIR``: builds a tiny offline sample dataset, trains yolov12n for one epoch at 64 px,
predicts on one image, exports ONNX and runs it in ONNX Runtime; checks that the extras' packages are absent and
that each upper layer and the OpenVINO export fail with the one line naming their extra. Prints one JSON line.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

EXTRA_PACKAGES = ("ray", "mlflow", "gradio", "openvino", "nncf", "boto3", "fastapi", "optuna")
# Module -> the one line its import gives without its extra.
LAYER_MESSAGES = {
    "pipelines": "pipelines needs Ray: pip install 'yolov12-platform[ray]'",
    "tune": "tune needs Ray: pip install 'yolov12-platform[ray]'",
    "serve": "serve needs Ray: pip install 'yolov12-platform[serve]'",
}
OPENVINO_MESSAGE = "OpenVINO export needs OpenVINO: pip install 'yolov12-platform[openvino]'"


def import_error(module: str) -> str:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        return f"{type(exc).__name__}: {exc}"
    return "imported"


def main(workdir: Path) -> dict:
    started = time.perf_counter()
    present = [name for name in EXTRA_PACKAGES if importlib.util.find_spec(name) is not None]
    assert not present, f"packages of extras installed by the core install: {present}"
    layers = {module: import_error(module) for module in LAYER_MESSAGES}
    for module, message in LAYER_MESSAGES.items():
        assert layers[module] == f"MissingExtraError: {message}", layers[module]

    import numpy as np
    import onnxruntime

    from yolov12 import YOLO
    from yolov12.data.sample_dataset import SampleSpec, ensure_sample_detection
    from yolov12.utils.extras import MissingExtraError

    spec = SampleSpec(train_images=4, val_images=2, image_size=96, min_digit_size=16, max_digit_size=40)  # 1 step
    data = ensure_sample_detection(workdir / "datasets", spec)
    model = YOLO("yolov12n.yaml")
    metrics = model.train(data=str(data), epochs=1, imgsz=64, batch=4, workers=0, optimizer="SGD", lr0=0.01,
                          warmup_epochs=0, close_mosaic=0, amp=False, seed=0, project=str(workdir / "runs"),
                          name="core", verbose=False)
    best = model.trainer_result.best
    image = sorted((data.parent / "images" / "val").glob("*.jpg"))[0]
    results = YOLO(best).predict(str(image), imgsz=64, conf=0.0)
    assert len(results) == 1 and results[0].boxes is not None

    onnx_path = YOLO(best).export(format="onnx", imgsz=64)
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    raw = session.run(None, {feed.name: np.zeros((1, 3, 64, 64), np.float32)})[0]
    exported = YOLO(onnx_path).predict(str(image), imgsz=64, conf=0.0)
    assert len(exported) == 1

    try:
        YOLO(best).export(format="openvino", imgsz=64)
        openvino = "exported"
    except MissingExtraError as exc:
        openvino = str(exc)
    assert openvino == OPENVINO_MESSAGE, openvino
    return {"metrics": sorted(metrics), "best": str(best), "onnx": str(onnx_path), "onnx_output": list(raw.shape),
            "layers": layers, "openvino": openvino, "seconds": round(time.perf_counter() - started, 1)}


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
