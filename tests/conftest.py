"""Shared fixtures for every test package: real S3 (moto) and MLflow servers on loopback, started on demand.

Property tests run under one of two hypothesis profiles, picked by ``HYPOTHESIS_PROFILE``:

- ``dev`` (the default for local runs): random cases on every run, so new counterexamples keep turning up;
- ``ci`` (``.ci/run`` selects it): derandomized, the same cases on every run, so a red CI always points at the change
  under test. Counterexamples found locally are kept as explicit ``@example`` cases, which both profiles run.
"""

import os

from hypothesis import settings
from support.services import mlflow_server, mlflow_tracking, s3, s3_server  # noqa: F401

# Under pytest-xdist each worker gets its share of the cores for torch/OpenMP (and so do the subprocesses it starts):
# two workers each running torch on every core would oversubscribe a 2-core machine and slow every test down.
# Set here, before any test module imports torch; an explicit OMP_NUM_THREADS wins.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _threads = str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    os.environ.setdefault("OMP_NUM_THREADS", _threads)
    os.environ.setdefault("MKL_NUM_THREADS", _threads)

# Each xdist worker gets a Ray temp root of its own (RAY_TMPDIR, inherited by every Ray process it starts). A Ray
# process that looks its cluster up by address "auto" reads <temp root>/ray/ray_current_cluster: with one shared root
# it found the other worker's cluster. Ray Train's placement-group cleaner asks the State API that way whether its
# controller lives, got "no" from the wrong cluster and removed the placement group of a run in progress.
if os.environ.get("PYTEST_XDIST_WORKER") and "RAY_TMPDIR" not in os.environ:
    os.environ["RAY_TMPDIR"] = f"/tmp/rt-{os.environ['PYTEST_XDIST_WORKER']}"  # short: Ray's socket paths are limited
    os.makedirs(os.environ["RAY_TMPDIR"], exist_ok=True)

# Ray's metrics export is off in the test processes (and the Ray processes they start), unless a test asks for it
# (the Serve metrics test does, for its own Ray instance). With Ray 2.60 a driver whose session ended keeps firing its
# OpenTelemetry export threads (seen: an export every 10 s after "Stats module has shutdown", one more thread per
# session whose metrics agent went away), and test workers, which start and stop dozens of sessions, died now and
# then without a Python traceback: the kernel logged a jump into heap memory, a use-after-free of the kind Ray fixed
# upstream for a gauge callback that outlived shutdown. With the export off no such thread runs after shutdown.
os.environ.setdefault("RAY_enable_metrics_collection", "0")

# Ray Train's controller polls its workers every 2 s (Ray 2.60's default), and the pipeline waits for each epoch's
# checkpoint to be committed, which happens at the next poll: about a second per epoch of waiting, most of an epoch
# of the tests' tiny runs. Polled every 0.25 s in the test processes (and the Ray processes they start) instead;
# what is polled and what a failure does are unchanged.
os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.25")

# Serve gives a starting HTTP proxy 5 s to answer each readiness check and kills it after 3 misses; with three test
# workers on 2 cores a proxy took longer than those 15 s to start (the main job's deploy step failed so). 30 s each.
os.environ.setdefault("RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S", "30")

settings.register_profile("dev", print_blob=True)
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_configure(config) -> None:  # noqa: ARG001 - pytest hook signature
    """Tests never read or write the developer's own ``yolov12 settings`` file: an empty folder of their own.

    Set in the process environment (not a fixture) so that Ray workers, Serve replicas and CLI subprocesses started
    by the tests inherit it too. ``YOLOV12_DATASETS`` keeps its own default (the shared cache of built samples).
    """
    import tempfile  # noqa: PLC0415

    if "YOLOV12_CONFIG_DIR" not in os.environ:
        os.environ["YOLOV12_CONFIG_DIR"] = tempfile.mkdtemp(prefix="yolov12-test-settings-")



def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` with a recovery from crashed workers that cannot hang (support/xdist_scheduling.py)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from support.xdist_scheduling import CrashSafeLoadFileScheduling  # noqa: PLC0415 - only under xdist

    return CrashSafeLoadFileScheduling(config, log)
