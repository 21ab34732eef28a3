"""pytest-xdist's file scheduling, made safe for a crashed worker (our ``--dist loadfile`` runs use it).

In pytest-xdist 3.8.0 a worker that dies under ``--dist loadfile`` can hang the whole run with every worker idle
(seen here: a SIGSEGV in one worker, then a run that never ended; reported upstream for ``loadfile``, and fixed
there for ``loadgroup`` only). Three faults in ``LoadScopeScheduling``:

- ``remove_node`` puts the dead worker's whole workload back on the queue, files it had finished included; such a
  file is later sent as an empty list of tests, which never completes, and the worker waits for it forever. It
  also leaves the test that crashed pending, so the replacement worker runs it again (and may crash again);
- a worker whose process has just died can still be sent work (its last test report arrives before the news that
  it is down), and the send raises ``OSError`` out of the scheduler: an INTERNALERROR that ends the run;
- a worker that is sent a single test waits for a second one (or for shutdown) before it runs it, and a replacement
  worker whose first file has one pending test gets neither.

:class:`CrashSafeLoadFileScheduling` requeues only files with tests left to run, counts the crashed test as done
(xdist has reported it as failed; ``scripts/dev.sh`` reruns it in a fresh process), and never leaves a worker holding
a single test with nothing else to come. Selected in ``tests/conftest.py`` through xdist's own
``pytest_xdist_make_scheduler`` hook.
"""

from __future__ import annotations

from xdist.scheduler import LoadFileScheduling

# Files whose tests take minutes each, started first so that none of them is left to run alone at the end of a run
# (xdist orders files by their number of tests, and these have few). Longest first, by a fresh-clone .ci/run on the
# 2-core machine with 3 workers (pytest --durations, 2026-12-07, load average up to 12): the stream's parity and
# resume run 573 + 111 s, the sweep restore 166 s, the main job 151 s, the S3 resume 138 s, the 2-node batch jobs
# 134 + 92 s, PBT 124 s, the detector learning test 114 s.
LONGEST_FILES_FIRST = (
    "tests/pipelines/test_ray_data_ingest.py",
    "tests/tune/test_tune_sweep.py",
    "tests/test_main_job.py",
    "tests/pipelines/test_train_s3.py",
    "tests/pipelines/test_batch_predict.py",
    "tests/tune/test_tune_pbt.py",
    "tests/yolov12/engine/test_trainer.py",
)


class CrashSafeLoadFileScheduling(LoadFileScheduling):
    """``--dist loadfile`` whose recovery from a crashed worker cannot deadlock, with the longest files first."""

    _longest_first_done = False

    def remove_node(self, node) -> str | None:  # noqa: ANN001 - xdist's WorkerController
        workload = self.assigned_work.pop(node)
        pending = [(scope, nodeid) for scope, unit in workload.items() for nodeid, done in unit.items() if not done]
        if not pending:
            return None
        crash_scope, crashitem = pending[0]  # a worker runs its tests in order: the first pending one was running
        workload[crash_scope][crashitem] = True
        for scope, unit in workload.items():
            if not all(unit.values()):
                self.workqueue[scope] = unit
        for other in list(self.assigned_work):
            self._reschedule(other)
        return crashitem

    def _assign_work_unit(self, node) -> None:  # noqa: ANN001
        if not self._longest_first_done:  # the first assignment: the work queue holds every file
            self._longest_first_done = True
            first = [scope for scope in LONGEST_FILES_FIRST if scope in self.workqueue]
            for scope in reversed(first):
                self.workqueue.move_to_end(scope, last=False)
        while True:
            try:
                super()._assign_work_unit(node)
            except OSError:  # the worker died after its last report: its "node down" comes next, and remove_node
                return  # requeues what was just assigned to it (xdist's own shutdown() ignores this error likewise)
            if self._pending_of(self.assigned_work[node]) >= 2:
                return
            if not self.workqueue:
                node.shutdown()  # the worker runs what it holds, then stops: never one test waiting for a second
                return
