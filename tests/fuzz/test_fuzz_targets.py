"""Every fuzz target: its committed corpus replays cleanly, and a bounded coverage-guided run finds nothing.

The run length is ``YOLOV12_FUZZ_SECONDS`` (default 15 s per target, as CI runs it); a failure prints libFuzzer's
tail and where the crashing input was kept, so it can be fixed and added to the corpus.
"""

import os

import pytest

from fuzz import run

TARGETS = run.target_names()
FUZZ_SECONDS = int(os.environ.get("YOLOV12_FUZZ_SECONDS", "15"))


def test_there_are_targets_for_each_untrusted_input():
    assert {"weights_pt", "weights_native", "image_decode", "kserve_request"} <= set(TARGETS)


@pytest.mark.parametrize("name", TARGETS)
def test_the_committed_corpus_replays_without_failure(name):
    target = run.find_target(name)
    assert run.corpus_files(target), f"{name} has no seed corpus in {target.corpus}"
    assert run.replay(target) == []


@pytest.mark.slow
@pytest.mark.parametrize("name", TARGETS)
def test_fuzzing_finds_nothing(name, tmp_path):
    result = run.fuzz(run.find_target(name), FUZZ_SECONDS, input_timeout_s=10, artifacts=tmp_path / "artifacts")
    kept = "\n".join(str(p) for p in result.artifacts)
    assert result.ok, f"{name}: {result.reason}\n{result.output_tail}\ninputs kept:\n{kept}"
