"""The fuzz runner itself: it must report each kind of failure, and pass a target that has none."""

from pathlib import Path

import pytest
from failing_targets import CLEAN, CRASHING, GREEDY, SLOW, UNTOUCHED

from fuzz import run


def _target(tmp_path: Path, name: str, source: str) -> run.Target:
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    return run.find_target(str(path))


@pytest.mark.parametrize(("source", "reason", "artifact_prefix"), [
    (CRASHING, "an exception escaped", ("crash-",)),
    (GREEDY, "memory over budget", ("crash-", "oom-")),  # whichever check sees it first: traced peak or resident set
    (UNTOUCHED, "memory over budget", ("crash-",)),
    (SLOW, "one input ran over the input timeout", ("timeout-",)),
], ids=["exception", "allocation", "untouched-allocation", "slow"])
def test_each_kind_of_failure_is_reported_with_its_input_kept(tmp_path, source, reason, artifact_prefix):
    target = _target(tmp_path, "failing", source)
    result = run.fuzz(target, seconds=20, input_timeout_s=2, artifacts=tmp_path / "artifacts")
    assert not result.ok
    assert result.reason == reason
    assert [p.name.startswith(artifact_prefix) for p in result.artifacts] == [True]


def test_native_memory_over_the_resident_limit_is_reported(tmp_path):
    source = GREEDY.replace("bytearray(b\"x\" * (512 << 20))", "__import__('torch').ones(256 << 20)")
    # The input imports torch first: tens of seconds on a loaded 2-core machine, so the input timeout is generous
    # (the run ends at the first oversized input either way).
    result = run.fuzz(_target(tmp_path, "native", source), seconds=90, input_timeout_s=80, artifacts=tmp_path / "a")
    assert (result.ok, result.reason) == (False, "memory over budget")
    assert [p.name.startswith("oom-") for p in result.artifacts] == [True]


def test_a_target_without_failures_passes_and_keeps_nothing(tmp_path):
    result = run.fuzz(_target(tmp_path, "clean", CLEAN), seconds=3, input_timeout_s=2, artifacts=tmp_path / "a")
    assert result.ok, result.output_tail
    assert result.artifacts == ()


def test_settings_are_read_from_the_source_without_importing_it(tmp_path):
    source = 'MEMORY_BUDGET_MB = 77\nINSTRUMENT = ("serve",)\nraise RuntimeError("imported")\n'
    target = _target(tmp_path, "settings", source)
    assert (target.memory_budget_mb, target.instrument) == (77, ("serve",))


def test_a_bad_budget_is_refused_in_one_line(tmp_path):
    with pytest.raises(SystemExit, match="MEMORY_BUDGET_MB must be a positive int"):
        _target(tmp_path, "bad", "MEMORY_BUDGET_MB = -1\n")


def test_replay_names_each_committed_input_that_fails(tmp_path, monkeypatch):
    target = _target(tmp_path, "replayed", CRASHING)
    corpus = tmp_path / "corpus"
    (corpus / "replayed").mkdir(parents=True)
    (corpus / "replayed" / "fine").write_bytes(b"\x00\x01")
    (corpus / "replayed" / "crash-b").write_bytes(b"\x42\x42")
    monkeypatch.setattr(run, "CORPUS_DIR", corpus)
    assert run.replay(target) == ["crash-b: ValueError: found the crash"]
