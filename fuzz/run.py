"""Run one coverage-guided fuzz target (atheris, i.e. libFuzzer driving Python) for a bounded time.

    python -m fuzz.run --list                      # the targets
    python -m fuzz.run weights_pt --seconds 30     # fuzz from the committed seed corpus for 30 s
    python -m fuzz.run weights_pt --replay         # each corpus input once, no fuzzing (a fast regression check)

A target is ``fuzz/targets/<name>.py`` (or any ``.py`` file given by path) with ``fuzz_one_input(data: bytes)``. It
feeds the bytes to the code under test and catches only that code's own error types, so every other exception is a
crash. Optional module-level literals, read from the source before anything is imported (modules imported before
instrumentation get no coverage feedback):

- ``MEMORY_BUDGET_MB``: what one input may allocate (default 1024). Checked two ways: the peak of Python and numpy
  allocations while the input runs (``tracemalloc``; this catches a huge ``np.empty`` that is never touched), and the
  resident set, which may grow by the budget plus :data:`FUZZER_ALLOWANCE_MB` (libFuzzer's own corpus and tables)
  over what the process held once the target was imported (libFuzzer's ``-rss_limit_mb``; this catches native
  allocations, e.g. torch's, once they are touched).
- ``INSTRUMENT``: the packages whose code gives coverage feedback (default: the project's own packages).

The committed corpus (``fuzz/corpus/<name>/``) is only read: new inputs go to a temporary folder, crash inputs to
``--artifacts`` (printed). A run fails on a crash, on memory over budget, on one input running longer than
``--input-timeout`` seconds, or on the whole run overrunning its time.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

FUZZ_DIR = Path(__file__).resolve().parent
TARGETS_DIR = FUZZ_DIR / "targets"
CORPUS_DIR = FUZZ_DIR / "corpus"
DEFAULT_INSTRUMENT = ("yolov12", "serve", "pipelines")
DEFAULT_MEMORY_BUDGET_MB = 1024
FUZZER_ALLOWANCE_MB = 128  # libFuzzer's corpus, coverage tables and dictionaries grow the process as it runs
DETACHED = ("/bin/sh", "-c", '"$@" & wait "$!"', "sh")
"""Start the fuzzer as a grandchild of a small shell, not as a child of this process. libFuzzer's memory limit reads
the peak resident set (``ru_maxrss``), and on Linux a program started straight from a large process (a pytest worker
holding torch) inherits that process's peak through fork and exec: the limit would trip on the parent's memory. A
process forked from the shell starts its own count."""
STARTUP_ALLOWANCE_S = 120.0  # imports (torch) and the first pass over the seed corpus before libFuzzer's own clock


@dataclass(frozen=True)
class Target:
    """A fuzz target: its source file, its seed corpus and the settings its source declares."""

    name: str
    path: Path
    memory_budget_mb: int
    instrument: tuple[str, ...]

    @property
    def corpus(self) -> Path:
        """The committed seed corpus (may be missing: libFuzzer then starts from an empty input)."""
        return CORPUS_DIR / self.name


@dataclass(frozen=True)
class RunResult:
    """What one fuzzing run ended with."""

    ok: bool
    reason: str
    output_tail: str
    artifacts: tuple[Path, ...]


def target_names() -> list[str]:
    """Every target under ``fuzz/targets``."""
    return sorted(p.stem for p in TARGETS_DIR.glob("*.py") if not p.name.startswith("_"))


def find_target(name_or_path: str) -> Target:
    """The target named ``name_or_path`` (a file in ``fuzz/targets``) or at that ``.py`` path."""
    path = Path(name_or_path)
    if path.suffix != ".py":
        path = TARGETS_DIR / f"{name_or_path}.py"
    if not path.is_file():
        raise SystemExit(f"error: no fuzz target {name_or_path!r}; known: {', '.join(target_names()) or 'none'}")
    literals = _module_literals(path)
    budget = literals.get("MEMORY_BUDGET_MB", DEFAULT_MEMORY_BUDGET_MB)
    instrument = tuple(literals.get("INSTRUMENT", DEFAULT_INSTRUMENT))
    if not isinstance(budget, int) or budget <= 0 or not all(isinstance(m, str) and m for m in instrument):
        raise SystemExit(f"error: {path}: MEMORY_BUDGET_MB must be a positive int and INSTRUMENT a tuple of names")
    return Target(path.stem, path.resolve(), budget, instrument)


def _module_literals(path: Path) -> dict[str, object]:
    """The module-level ``NAME = <literal>`` assignments of a source file, without importing it."""
    literals: dict[str, object] = {}
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and node.value is not None:
                    try:
                        literals[target.id] = ast.literal_eval(node.value)
                    except ValueError:
                        continue
    return literals


def load_module(target: Target) -> ModuleType:
    """Import the target's source file as a module."""
    spec = importlib.util.spec_from_file_location(f"fuzz_target_{target.name}", target.path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"error: cannot import {target.path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "fuzz_one_input", None)):
        raise SystemExit(f"error: {target.path} defines no fuzz_one_input(data: bytes)")
    return module


def corpus_files(target: Target) -> list[Path]:
    """The committed seed inputs of a target, sorted."""
    return sorted(p for p in target.corpus.glob("*") if p.is_file()) if target.corpus.is_dir() else []


def replay(target: Target) -> list[str]:
    """Feed every committed corpus input to the target once, in this process; return one line per failing input."""
    module = load_module(target)
    failures = []
    for path in corpus_files(target):
        try:
            module.fuzz_one_input(path.read_bytes())
        except Exception as exc:  # noqa: BLE001 - any escaping exception is the finding being reported
            failures.append(f"{path.name}: {type(exc).__name__}: {exc}")
    return failures


def fuzz(target: Target, seconds: int, input_timeout_s: int, artifacts: Path) -> RunResult:
    """Fuzz ``target`` for ``seconds`` in a child process; crash inputs are written under ``artifacts``."""
    artifacts.mkdir(parents=True, exist_ok=True)
    before = set(artifacts.iterdir())
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{target.name}-") as work:
        command = [*DETACHED, sys.executable, "-m", "fuzz.run", "--child", str(target.path), "--seconds",
                   str(seconds), "--input-timeout", str(input_timeout_s), "--artifacts", str(artifacts), "--work", work]
        environment = {**os.environ, "PYTHONPATH": _python_path()}
        started = time.monotonic()
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                              env=environment, cwd=FUZZ_DIR.parent, start_new_session=True) as child:
            try:
                output, _ = child.communicate(timeout=seconds + STARTUP_ALLOWANCE_S)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                output, _ = child.communicate()
                return RunResult(False, f"ran over its time ({time.monotonic() - started:.0f} s)", _tail(output), ())
    found = tuple(sorted(set(artifacts.iterdir()) - before))
    if child.returncode == 0:
        return RunResult(True, "no failure", _tail(output), found)
    return RunResult(False, _failure_reason(output, child.returncode), _tail(output), found)


def _python_path() -> str:
    """The repository root first, so ``fuzz`` and the project's packages import in the child."""
    existing = os.environ.get("PYTHONPATH")
    return os.pathsep.join([str(FUZZ_DIR.parent), *([existing] if existing else [])])


def _failure_reason(output: str, returncode: int) -> str:
    """libFuzzer's own words for why a run stopped."""
    markers = {"out-of-memory": "memory over budget", MemoryBudgetExceeded.__name__: "memory over budget",
               "Uncaught Python exception": "an exception escaped",
               "ERROR: libFuzzer: timeout": "one input ran over the input timeout", "deadly signal": "native crash"}
    for marker, reason in markers.items():
        if marker in output:
            return reason
    return f"the fuzzer exited with status {returncode}"


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


class MemoryBudgetExceeded(Exception):  # noqa: N818 - named for what the fuzzer's log should say
    """One input allocated more than its target's ``MEMORY_BUDGET_MB`` (traced Python and numpy allocations)."""


def within_budget(function: Callable[[bytes], None], budget_mb: int) -> Callable[[bytes], None]:
    """``function`` wrapped so that an input whose traced allocations peak above ``budget_mb`` MiB raises
    :class:`MemoryBudgetExceeded` (``tracemalloc`` must be started)."""

    def one_input(data: bytes) -> None:
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        function(data)
        grown = tracemalloc.get_traced_memory()[1] - start
        if grown > budget_mb << 20:
            raise MemoryBudgetExceeded(f"one input allocated {grown / 2**20:.0f} MiB at its peak (tracemalloc), "
                                       f"above MEMORY_BUDGET_MB={budget_mb}")

    return one_input


def _resident_mb() -> int:
    """This process's resident set, in MiB (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // (1 << 20)


def run_child(target: Target, seconds: int, input_timeout_s: int, artifacts: Path, work: Path) -> None:
    """Inside the child: import under instrumentation, then hand control to libFuzzer (never returns normally)."""
    import atheris  # noqa: PLC0415 - only the child needs libFuzzer

    with atheris.instrument_imports(include=[*target.instrument, f"fuzz_target_{target.name}"]):
        module = load_module(target)
    baseline_mb = _resident_mb()
    rss_limit_mb = baseline_mb + target.memory_budget_mb + FUZZER_ALLOWANCE_MB
    arguments = [sys.argv[0], f"-max_total_time={seconds}", f"-timeout={input_timeout_s}",
                 f"-rss_limit_mb={rss_limit_mb}", f"-artifact_prefix={artifacts}/", "-print_final_stats=1", str(work)]
    if target.corpus.is_dir():
        arguments.append(str(target.corpus))
    print(f"fuzz {target.name}: {len(corpus_files(target))} seed inputs, {seconds} s, budget "
          f"{target.memory_budget_mb} MiB an input, rss limit {rss_limit_mb} MiB ({baseline_mb} MiB after import)",
          flush=True)
    tracemalloc.start()
    atheris.Setup(arguments, within_budget(module.fuzz_one_input, target.memory_budget_mb))
    atheris.Fuzz()


def main(argv: list[str] | None = None) -> int:
    """Command line: list, replay or fuzz targets."""
    parser = argparse.ArgumentParser(prog="python -m fuzz.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("target", nargs="?", help="a name from --list, or the path of a target .py file")
    parser.add_argument("--list", action="store_true", help="print the targets and exit")
    parser.add_argument("--replay", action="store_true", help="run each committed corpus input once, no fuzzing")
    parser.add_argument("--seconds", type=int, default=30, help="how long to fuzz (default 30)")
    parser.add_argument("--input-timeout", type=int, default=10, help="the longest one input may run, in seconds")
    parser.add_argument("--artifacts", type=Path, default=Path("fuzz-artifacts"), help="where crash inputs go")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(target_names()))
        return 0
    if not args.target:
        parser.error("name a target (see --list)")
    target = find_target(args.target)
    if args.child:
        run_child(target, args.seconds, args.input_timeout, args.artifacts.resolve(), args.work)
        return 0
    if args.replay:
        failures = replay(target)
        print("\n".join(failures) or f"{target.name}: {len(corpus_files(target))} corpus inputs, no failure")
        return 1 if failures else 0
    result = fuzz(target, args.seconds, args.input_timeout, args.artifacts.resolve())
    print(result.output_tail)
    print(f"fuzz {target.name}: {'ok' if result.ok else 'FAILED: ' + result.reason}")
    for path in result.artifacts:
        print(f"  input kept: {path}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
