"""``yolov12 promote`` and ``yolov12 lineage``: registry commands the core CLI finds through entry points.

    yolov12 promote model=yolov12n-sample version=3 alias=champion   # or: yolov12 promote NAME 3 --alias champion
    yolov12 lineage model=models:/yolov12n-sample@champion   # alias -> version -> run -> params -> dataset -> teachers
                                                              # (their runs and datasets) and the engines serving it
    yolov12 lineage dataset=<sha256 or a prefix>              # which versions came from this dataset

Both take ``key=value`` (``tracking_uri=URI`` too); the older forms stay as aliases: bare words fill ``model`` and
``version`` in order, ``--alias champion`` / ``--tracking-uri URI`` are ``alias=`` / ``tracking_uri=``, and
``name=`` (promote) and ``uri=`` (lineage) are other names of ``model=``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

from mlflow.exceptions import MlflowException

from pipelines.arguments import normalise_options
from pipelines.lineage import lineage, render_versions, versions_from_dataset
from pipelines.registry import CHAMPION_ALIAS, promote
from yolov12.cli.arguments import CommandLineError, parse_key_values
from yolov12.cli.commands import Command

__all__ = ["LINEAGE_COMMAND", "PROMOTE_COMMAND", "lineage_command", "normalise_options", "promote_command"]


def _one_line_mlflow_errors(run: Callable[[list[str]], int]) -> Callable[[list[str]], int]:
    def wrapped(arguments: list[str]) -> int:
        try:
            return run(arguments)
        except MlflowException as exc:  # server down, bad URI...: one line, like every other CLI error
            raise RuntimeError(f"MLflow: {str(exc).strip().splitlines()[0]}") from None

    return wrapped


def _one_of(values: dict, key: str, alias: str) -> None:
    """Fold the older spelling ``alias`` into ``key`` (refusing both at once)."""
    if alias in values:
        if key in values:
            raise CommandLineError(f"{alias}= is another name of {key}=; give one of them")
        values[key] = values.pop(alias)


@_one_line_mlflow_errors
def promote_command(arguments: list[str]) -> int:
    """``yolov12 promote model=NAME version=3 [alias=champion] [tracking_uri=URI]`` (see the module docstring)."""
    values = parse_key_values(normalise_options(arguments), ["model", "version", "alias", "tracking_uri", "name"],
                              positional=("model", "version"))
    _one_of(values, "model", "name")
    if "model" not in values or "version" not in values:
        raise CommandLineError("promote needs a model and a version: yolov12 promote model=NAME version=3 "
                               "alias=champion")
    if str(values["model"]).startswith("models:/"):
        raise CommandLineError(f"promote takes the registered model's name, not a URI: model="
                               f"{str(values['model'])[len('models:/'):].split('@')[0].split('/')[0]}")
    alias = str(values.get("alias", CHAMPION_ALIAS))
    version = promote(str(values["model"]), str(values["version"]), alias, tracking_uri=values.get("tracking_uri"))
    print(f"models:/{version.name}@{alias} -> version {version.version} (aliases now: {', '.join(version.aliases)})")
    return 0


@_one_line_mlflow_errors
def lineage_command(arguments: list[str]) -> int:
    """``yolov12 lineage model=models:/NAME@alias | model=models:/NAME/3 | dataset=DIGEST [json=true]
    [tracking_uri=URI]`` (a bare URI works too)."""
    values = parse_key_values(normalise_options(arguments), ["model", "dataset", "json", "tracking_uri", "uri"],
                              positional=("model",))
    _one_of(values, "model", "uri")
    if ("model" in values) == ("dataset" in values):
        raise CommandLineError("lineage needs one of: model=models:/NAME@champion (or models:/NAME/3) or "
                               "dataset=<digest>")
    tracking_uri = values.get("tracking_uri")
    if "dataset" in values:
        digest = str(values["dataset"])
        refs = versions_from_dataset(digest, tracking_uri=tracking_uri)
        text = json.dumps([dataclasses.asdict(r) for r in refs], indent=1) if values.get("json") else \
            render_versions(digest, refs)
    else:
        chain = lineage(str(values["model"]), tracking_uri=tracking_uri)
        text = json.dumps(dataclasses.asdict(chain), indent=1) if values.get("json") else chain.render()
    print(text)
    return 0


PROMOTE_COMMAND = Command("promote", "move a registry alias: yolov12 promote model=NAME version=3 alias=champion",
                          promote_command)
LINEAGE_COMMAND = Command("lineage", "lineage of a model or dataset: yolov12 lineage model=models:/NAME@champion",
                          lineage_command)
