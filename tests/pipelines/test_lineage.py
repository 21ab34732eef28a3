"""Lineage on a real ``mlflow server``: from the deployed alias back to the dataset and config, and back again."""

from __future__ import annotations

import json
import uuid

import pytest
from support.training_runs import DATASET_SOURCE, TEACHERS, digest_for, tracked_run

from pipelines.cli import lineage_command
from pipelines.lineage import lineage, versions_from_dataset
from pipelines.registry import ModelNotFoundError, RegistryError, promote
from pipelines.tracking import TrackingConfig, flatten_params

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def runs(mlflow_server, tmp_path_factory: pytest.TempPathFactory):
    """Version 1 trained on dataset A, version 2 on dataset B (the candidate); champion = version 1."""
    name = f"lineage-{uuid.uuid4().hex[:8]}"
    tracking = TrackingConfig(tracking_uri=mlflow_server.url, experiment=name, registered_model=name)
    a, b = digest_for(f"{name}-A"), digest_for(f"{name}-B")
    made = [tracked_run(tmp_path_factory.mktemp(f"run{i}"), tracking, run_name=f"job-{i}", digest=d, seed=i)
            for i, d in enumerate((a, b), start=1)]
    promote(name, 1, tracking_uri=mlflow_server.url)
    return name, made, mlflow_server.url


def test_lineage_of_champion_leads_back_to_the_exact_dataset_and_config(runs) -> None:
    name, made, uri = runs
    chain = lineage(f"models:/{name}@champion", tracking_uri=uri)
    run = made[0]
    assert (chain.model, chain.version, chain.alias) == (name, "1", "champion")
    assert chain.run_id == run.run_id and chain.run_name == "job-1" and chain.run_status == "FINISHED"
    assert chain.dataset.digest == run.digest and chain.dataset.source == DATASET_SOURCE
    assert chain.params == flatten_params(run.params)
    assert [t.spec for t in chain.teachers] == TEACHERS and chain.system["world_size"] == "2"
    assert chain.model_id and chain.version_tags["weights_file"] == "best.safetensors"
    text = chain.render()
    for fact in (f"alias champion -> version 1 of {name}", run.run_id, f"digest={run.digest}", DATASET_SOURCE,
                 TEACHERS[0], "train.optim.lr0 = 0.01"):
        assert fact in text


def test_versions_from_dataset_finds_exactly_the_versions_trained_on_it(runs) -> None:
    name, made, uri = runs
    found = versions_from_dataset(made[0].digest, tracking_uri=uri)
    assert [(r.model, r.version, r.run_id, r.aliases) for r in found] == [(name, "1", made[0].run_id, ("champion",))]
    by_prefix = versions_from_dataset(made[1].digest[:12], tracking_uri=uri)
    assert [(r.model, r.version, r.aliases) for r in by_prefix] == [(name, "2", ("candidate",))]
    assert versions_from_dataset(digest_for("never-trained-on"), tracking_uri=uri) == []
    with pytest.raises(RegistryError, match="not hex"):
        versions_from_dataset("sample' OR 1=1", tracking_uri=uri)


def test_lineage_command_both_directions(runs, capsys: pytest.CaptureFixture) -> None:
    name, made, uri = runs
    assert lineage_command([f"models:/{name}@champion", f"tracking_uri={uri}"]) == 0
    out = capsys.readouterr().out
    assert f"digest={made[0].digest}" in out and made[0].run_id in out
    assert lineage_command([f"dataset={made[0].digest}", f"tracking_uri={uri}", "json=true"]) == 0
    assert [(r["model"], r["version"]) for r in json.loads(capsys.readouterr().out)] == [(name, "1")]
    assert lineage_command([f"models:/{name}/2", "--tracking-uri", uri]) == 0
    assert f"digest={made[1].digest}" in capsys.readouterr().out


def test_lineage_errors_name_the_fix(runs) -> None:
    name, _, uri = runs
    with pytest.raises(ModelNotFoundError, match="has no alias 'prod'.*yolov12 promote"):
        lineage(f"models:/{name}@prod", tracking_uri=uri)
    with pytest.raises(ModelNotFoundError, match="no version '7'"):
        lineage(f"models:/{name}/7", tracking_uri=uri)
