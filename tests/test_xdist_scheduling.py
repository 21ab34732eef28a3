"""The test run's own xdist scheduler (support/xdist_scheduling.py): a worker that dies mid-file neither hangs the run
nor loses the tests after the one it crashed on, and the crashed test is not run again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

TESTS = Path(__file__).resolve().parent
SLEEPY = ("import time\n\ndef test_a():\n    time.sleep(0.3)\n\n"
          "def test_b():\n    time.sleep(0.3)\n\ndef test_c():\n    pass\n")
CRASHING = ("import os\n\ndef test_before():\n    pass\n\n"
            "def test_crash():\n    os._exit(1)\n\ndef test_after():\n    pass\n")
CONFTEST = (f"import sys\nsys.path.insert(0, {str(TESTS)!r})\n"
            "from support.xdist_scheduling import CrashSafeLoadFileScheduling\n\n"
            "def pytest_xdist_make_scheduler(config, log):\n    return CrashSafeLoadFileScheduling(config, log)\n")


@pytest.mark.slow
def test_a_crashed_worker_is_replaced_and_the_run_ends_with_every_other_test_run(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    for index in range(6):
        (tmp_path / f"test_file{index}.py").write_text(SLEEPY)
    (tmp_path / "test_file3.py").write_text(CRASHING)
    (tmp_path / "test_file1.py").write_text(CRASHING.replace("test_crash", "test_crash_too"))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "3", "--dist",
                          "loadfile", "--max-worker-restart=2", str(tmp_path)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)  # the stock scheduler hangs here with every worker idle
    summary = run.stdout.strip().splitlines()[-1]
    assert "2 failed, 16 passed" in summary, run.stdout[-3000:]
    crashed = sorted(line.split(" - ")[0] for line in run.stdout.splitlines()
                     if line.startswith("FAILED") and "crashed while running" in line)
    assert crashed == ["FAILED test_file1.py::test_crash_too", "FAILED test_file3.py::test_crash"], crashed


def test_the_longest_files_start_first(tmp_path: Path) -> None:
    """A listed long file starts before files that xdist would send first (more tests, earlier in collection)."""
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "tests" / "a").mkdir(parents=True)
    (tmp_path / "tests" / "a" / "test_many.py").write_text("".join(f"def test_{i}():\n    pass\n\n" for i in range(9)))
    (tmp_path / "tests" / "test_main_job.py").write_text("def test_long():\n    pass\n")
    run = subprocess.run([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-n", "1", "--dist",
                          "loadfile", "tests"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    order = [line.split("::")[0].split()[-1] for line in run.stdout.splitlines() if "PASSED" in line]
    assert order[0] == "tests/test_main_job.py" and len(order) == 10, run.stdout[-3000:]


class _FakeConfig:
    """What xdist's scheduler reads from pytest's config: two local workers, no reordering."""

    class option:  # noqa: N801 - mirrors pytest's ``config.option`` namespace
        loadscopereorder = False

    @staticmethod
    def getvalue(name: str) -> list[str]:
        assert name == "tx"
        return ["2*popen"]


class _Worker:
    """A worker controller as the scheduler sees it; ``alive = False``: its process has just exited."""

    shutting_down = False

    def __init__(self, name: str) -> None:
        self.gateway = SimpleNamespace(id=name)
        self.alive, self.sent = True, []

    def send_runtest_some(self, indices: list[int]) -> None:
        if not self.alive:
            raise OSError("cannot send (already closed?)")
        self.sent.append(list(indices))

    def shutdown(self) -> None:
        self.shutting_down = True


def test_work_sent_to_a_worker_that_just_died_goes_back_to_the_queue() -> None:
    """The race a loaded CI machine hits: a worker's last test report arrives after its process exited, the
    scheduler sends it the next file, the send fails; the run goes on and that file is run elsewhere."""
    from support.xdist_scheduling import CrashSafeLoadFileScheduling

    collection = [f"test_f{file}.py::test_{test}" for file in range(6) for test in range(2)]
    scheduler = CrashSafeLoadFileScheduling(_FakeConfig())
    dying, healthy = _Worker("gw0"), _Worker("gw1")
    for worker in (dying, healthy):
        scheduler.add_node(worker)
        scheduler.add_node_collection(worker, collection)
    scheduler.schedule()  # two files each: gw0 test_f0 and test_f2, gw1 test_f1 and test_f3
    assert list(scheduler.assigned_work[dying]) == ["test_f0.py", "test_f2.py"]
    scheduler.mark_test_complete(dying, collection.index("test_f0.py::test_0"))
    dying.alive = False  # it reports its first file done, then crashes on test_f2.py::test_0
    scheduler.mark_test_complete(dying, collection.index("test_f0.py::test_1"))  # sends test_f4.py: must not raise
    assert scheduler.remove_node(dying) == "test_f2.py::test_0"
    assert dict(scheduler.workqueue) == {"test_f5.py": {"test_f5.py::test_0": False, "test_f5.py::test_1": False},
                                         "test_f2.py": {"test_f2.py::test_0": True, "test_f2.py::test_1": False},
                                         "test_f4.py": {"test_f4.py::test_0": False, "test_f4.py::test_1": False}}
