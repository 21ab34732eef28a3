"""The core library stands alone: importing it pulls in no Ray and no upper package, and has no side effects."""

from __future__ import annotations

import subprocess
import sys


def test_import_has_no_ray_and_no_upper_layers(tmp_path) -> None:
    code = (
        "import sys, os\n"
        "import yolov12\n"
        "from yolov12 import YOLO\n"
        "from yolov12 import models, nn, config\n"
        "import yolov12.weights, yolov12.infer, yolov12.cli.main\n"
        "model = YOLO('yolov12n.yaml')\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('ray', 'pipelines', 'serve', 'tune', 'mlflow')]\n"
        "assert not bad, bad\n"
        "assert os.listdir('.') == [], os.listdir('.')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
