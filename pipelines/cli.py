"""``yolov12 promote`` and ``yolov12 lineage``: registry commands the core CLI finds through entry points.

    yolov12 promote yolov12n-sample 3 --alias champion      # or: name=yolov12n-sample version=3 alias=champion
    yolov12 lineage models:/yolov12n-sample@champion        # alias -> version -> run -> params -> dataset -> teachers
    yolov12 lineage dataset=<sha256 or a prefix>            # which versions came from this dataset
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

from mlflow.exceptions import MlflowException

from pipelines.lineage import lineage, render_versions, versions_from_dataset
from pipelines.registry import CHAMPION_ALIAS, promote
from yolov12.cli.arguments import CommandLineError, parse_key_values
from yolov12.cli.commands import Command


def normalise_options(arguments: list[str]) -> list[str]:
    """``["--alias", "champion"]`` -> ``["alias=champion"]`` so both CLI styles parse as key=value."""
    out: list[str] = []
    items = iter(arguments)
    for argument in items:
        if argument.startswith("--") and "=" not in argument:
            value = next(items, None)
            if value is None:
                raise CommandLineError(f"option {argument} needs a value, e.g. {argument} champion")
            out.append(f"{argument[2:]}={value}")
        else:
            out.append(argument)
    return out


def _one_line_mlflow_errors(run: Callable[[list[str]], int]) -> Callable[[list[str]], int]:
    def wrapped(arguments: list[str]) -> int:
        try:
            return run(arguments)
        except MlflowException as exc:  # server down, bad URI...: one line, like every other CLI error
            raise RuntimeError(f"MLflow: {str(exc).strip().splitlines()[0]}") from None

    return wrapped


@_one_line_mlflow_errors
def promote_command(arguments: list[str]) -> int:
    """``yolov12 promote NAME VERSION [--alias champion] [--tracking-uri URI]``."""
    values = parse_key_values(normalise_options(arguments), ["name", "version", "alias", "tracking_uri"],
                              positional=("name", "version"))
    if "name" not in values or "version" not in values:
        raise CommandLineError("promote needs a model and a version: yolov12 promote NAME VERSION --alias champion")
    alias = str(values.get("alias", CHAMPION_ALIAS))
    version = promote(str(values["name"]), str(values["version"]), alias, tracking_uri=values.get("tracking_uri"))
    print(f"models:/{version.name}@{alias} -> version {version.version} (aliases now: {', '.join(version.aliases)})")
    return 0


@_one_line_mlflow_errors
def lineage_command(arguments: list[str]) -> int:
    """``yolov12 lineage models:/NAME@alias | models:/NAME/3 | dataset=DIGEST [json=true] [tracking_uri=URI]``."""
    values = parse_key_values(normalise_options(arguments), ["uri", "dataset", "json", "tracking_uri"],
                              positional=("uri",))
    if ("uri" in values) == ("dataset" in values):
        raise CommandLineError("lineage needs one of: a model URI (yolov12 lineage models:/NAME@champion) or "
                               "dataset=<digest>")
    tracking_uri = values.get("tracking_uri")
    if "dataset" in values:
        digest = str(values["dataset"])
        refs = versions_from_dataset(digest, tracking_uri=tracking_uri)
        text = json.dumps([dataclasses.asdict(r) for r in refs], indent=1) if values.get("json") else \
            render_versions(digest, refs)
    else:
        chain = lineage(str(values["uri"]), tracking_uri=tracking_uri)
        text = json.dumps(dataclasses.asdict(chain), indent=1) if values.get("json") else chain.render()
    print(text)
    return 0


PROMOTE_COMMAND = Command("promote", "move a registry alias: yolov12 promote NAME VERSION --alias champion",
                          promote_command)
LINEAGE_COMMAND = Command("lineage", "lineage of a model or dataset: yolov12 lineage models:/NAME@champion",
                          lineage_command)
