"""Importing the augmentation package has no side effects; albumentations is loaded without its network check."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import os, socket, sys, warnings
warnings.simplefilter("error")
def no_network(*args, **kwargs):
    raise AssertionError("network access during import")
socket.socket.connect = no_network
socket.create_connection = no_network
import yolov12.data.augment as augment
assert "albumentations" not in sys.modules, "albumentations imported at package import"
transform = augment.PolicyTransform({"ops": [{"name": "Blur", "p": 1.0, "magnitude": 0.5}]})
assert "albumentations" in sys.modules
assert "NO_ALBUMENTATIONS_UPDATE" not in os.environ, "environment left changed"
assert os.listdir(".") == [], os.listdir(".")
"""


def test_import_is_lazy_and_offline(tmp_path) -> None:
    done = subprocess.run([sys.executable, "-c", CODE], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
