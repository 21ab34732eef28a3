"""Extras: a missing optional package is one line naming the extra that installs it, and every named extra exists."""

from __future__ import annotations

import importlib.machinery
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
import tomllib

from yolov12.engines.registry import BACKENDS
from yolov12.utils.extras import MissingExtraError, extra_imports, install_hint, require

REPO = Path(__file__).resolve().parents[3]
SOURCES = [*REPO.glob("yolov12/**/*.py"), *REPO.glob("pipelines/*.py"), *REPO.glob("tune/*.py"),
           *REPO.glob("serve/*.py"), REPO / "app.py"]
NAMED_EXTRA = re.compile(r"""require\([^)]*?extra=["']([\w-]+)["']|extra_imports\(["']([\w-]+)["']"""
                         r"""|install_hint\(["']([\w-]+)["']""")


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_require_passes_for_an_installed_module_and_imports_nothing() -> None:
    done = run_python("import sys\nfrom yolov12.utils.extras import require\nrequire('ray', 'ray', 'x')\n"
                      "assert 'ray' not in sys.modules")
    assert done.returncode == 0, done.stderr


def test_a_missing_module_is_one_line_naming_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what an absent package looks like to the import system
    with pytest.raises(MissingExtraError) as caught:
        require("ray", extra="ray", feature="pipelines")
    assert str(caught.value) == "pipelines needs Ray: pip install 'yolov12-platform[ray]'"
    assert isinstance(caught.value, ImportError) and caught.value.extra == "ray" and caught.value.name == "ray"
    with pytest.raises(MissingExtraError, match=r"^serve needs Ray: "):
        require("ray.serve", extra="serve", feature="serve")  # a dotted name whose parent is missing


def test_a_missing_parent_wins_over_an_imported_child(monkeypatch) -> None:
    child = types.ModuleType("ray.serve")
    child.__spec__ = importlib.machinery.ModuleSpec("ray.serve", loader=None)
    monkeypatch.setitem(sys.modules, "ray.serve", child)  # imported earlier in this process (seen in the full suite)
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingExtraError, match=r"^serve needs Ray: "):
        require("ray.serve", extra="serve", feature="serve")


def test_extra_imports_names_the_module_that_is_missing(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "botocore", None)
    with pytest.raises(MissingExtraError) as caught, extra_imports("s3", "s3:// datasets"):
        import botocore  # noqa: F401
    assert str(caught.value) == f"s3:// datasets needs boto3: {install_hint('s3')}"


def test_extra_imports_leaves_other_import_failures_alone() -> None:
    with pytest.raises(ImportError, match="a broken install") as caught, extra_imports("s3", "s3:// datasets"):
        raise ImportError("a broken install")
    assert not isinstance(caught.value, MissingExtraError)


@pytest.mark.parametrize(
    ("hidden", "module", "message"),
    [
        ("ray", "pipelines", "pipelines needs Ray: pip install 'yolov12-platform[ray]'"),
        ("mlflow", "pipelines.tracking", "pipelines needs MLflow: pip install 'yolov12-platform[mlflow]'"),
        ("ray", "tune", "tune needs Ray: pip install 'yolov12-platform[ray]'"),
        ("ray", "serve", "serve needs Ray: pip install 'yolov12-platform[serve]'"),
        ("fastapi", "serve.app", "serve needs FastAPI: pip install 'yolov12-platform[serve]'"),
        ("boto3", "yolov12.data.remote", "s3:// datasets needs boto3: pip install 'yolov12-platform[s3]'"),
        ("openvino", "yolov12.engines.openvino_engine",
         "the OpenVINO engine needs OpenVINO: pip install 'yolov12-platform[openvino]'"),
    ],
)
def test_importing_a_layer_without_its_extra_is_one_line(hidden: str, module: str, message: str) -> None:
    done = run_python(f"import sys\nsys.modules[{hidden!r}] = None\nimport {module}")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == f"yolov12.utils.extras.MissingExtraError: {message}"


def test_the_core_imports_and_builds_without_openvino() -> None:
    done = run_python(
        "import sys\nsys.modules['openvino'] = None\n"
        "import yolov12.export, yolov12.engines\nfrom yolov12 import YOLO\nYOLO('yolov12n.yaml')\n"
    )
    assert done.returncode == 0, done.stderr


def test_openvino_export_without_openvino_fails_before_the_onnx_export(monkeypatch, tmp_path: Path) -> None:
    from yolov12 import YOLO
    from yolov12.engines import load_engine

    monkeypatch.setitem(sys.modules, "openvino", None)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MissingExtraError) as caught:
        YOLO("yolov12n.yaml").export(format="openvino", imgsz=64)
    assert str(caught.value) == "OpenVINO export needs OpenVINO: pip install 'yolov12-platform[openvino]'"
    assert list(tmp_path.iterdir()) == []
    folder = tmp_path / "model_openvino"
    folder.mkdir()
    with pytest.raises(MissingExtraError, match=r"^the openvino backend needs OpenVINO: .*\[openvino\]'$"):
        load_engine(folder)


def test_the_demo_without_gradio_exits_2_with_one_line() -> None:
    done = run_python("import sys\nsys.modules['gradio'] = None\nimport app\napp.main(['--model', 'yolov12n.yaml'])")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: the demo (app.py) needs Gradio: pip install 'yolov12-platform[demo]'"


def test_every_extra_named_in_the_code_exists_in_pyproject() -> None:
    extras = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    named = {name for path in SOURCES for match in NAMED_EXTRA.finditer(path.read_text()) for name in match.groups()
             if name}
    named |= {backend.extra for backend in BACKENDS.values() if backend.extra}
    assert {"ray", "mlflow", "serve", "openvino", "demo", "s3"} <= named
    assert named <= extras, named - extras
