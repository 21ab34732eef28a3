"""``yolov12 tune``: the sweep driver as a command of the core CLI (registered through the entry point group).

    yolov12 tune config=configs/sweeps/sample-asha.yaml search.num_samples=4 epochs=2 num_cpus=2
    yolov12 tune configs/sweeps/sample-asha.yaml --num-cpus 2          # same; the older forms stay as aliases

Every argument is ``key=value``: ``config``, ``ray_address``, ``num_cpus`` and the sweep's overrides (top-level sweep
keys, ``search.*`` ... sections, flat training keys, ``space.<key>="{uniform: [0, 1]}"``); an unknown key fails with
the closest valid one. The sweep, its search space, the model source and the data are checked before Ray starts.

pyproject: ``[project.entry-points."yolov12.commands"]`` ``tune = "tune.cli:TUNE_COMMAND"``.
"""

from __future__ import annotations

from typing import Any

from yolov12.cli.arguments import CommandLineError
from yolov12.cli.commands import Command
from yolov12.config.train import COMMON_MISTAKES, KEY_TO_SECTION

OPTIONS = ("config", "ray_address", "num_cpus")
SPACE_PREFIX = "space."


def sweep_keys() -> list[str]:
    """The keys a sweep override takes besides ``space.*`` (see :mod:`tune.config`)."""
    from tune.config import SECTIONS, TOP_LEVEL  # noqa: PLC0415

    keys = [*TOP_LEVEL, *KEY_TO_SECTION, *(f"train.{key}" for key in KEY_TO_SECTION)]
    return keys + [f"{name}.{key}" for name, section in SECTIONS.items() for key in section.model_fields]


def split_arguments(arguments: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(``config``/``ray_address``/``num_cpus``, sweep overrides), both typed; ``--option VALUE`` and a bare first
    path are aliases. ``space.*`` values are passed on as text (the sweep loader reads them as YAML and checks the
    key against the searchable ones)."""
    from pipelines.arguments import normalise_options, parse_overrides  # noqa: PLC0415 - needs the [ray] extra

    space: dict[str, Any] = {}
    rest: list[str] = []
    for item in normalise_options(arguments):
        key, sep, text = item.partition("=")
        key = key.strip().lstrip("-")
        if sep and key.startswith(SPACE_PREFIX):
            space[key] = text.strip()
        else:
            rest.append(item)
    values = parse_overrides(rest, [*OPTIONS, *sweep_keys()], positional=("config",), hints=COMMON_MISTAKES,
                             sections="config=, ray_address=, num_cpus=, name=, base=, model=, storage_path=, training "
                                      "keys (epochs=, data=, ...), search.*, scheduler.*, objective.*, resources.*, "
                                      "failure.*, tracking.*, space.*")
    options = {key: values.pop(key) for key in OPTIONS if key in values}
    return options, {**values, **space}


def tune_command(arguments: list[str]) -> int:
    from pipelines.preflight import preflight_pipeline  # noqa: PLC0415 - Ray is imported only when the command runs
    from tune.config import load_sweep_config  # noqa: PLC0415
    from tune.sweep import run_sweep  # noqa: PLC0415

    options, overrides = split_arguments(arguments)
    if "config" not in options:
        raise CommandLineError("tune needs a sweep config: yolov12 tune config=configs/sweeps/sample-asha.yaml "
                               "[key=value ...]")
    sweep = load_sweep_config(str(options["config"]), overrides)
    preflight_pipeline(sweep.resolve().pipeline)  # bad space, model or data: fails here, before Ray starts
    num_cpus = int(options["num_cpus"]) if "num_cpus" in options else None
    ray_address = str(options["ray_address"]) if "ray_address" in options else None
    run_sweep(sweep, ray_address=ray_address, num_cpus=num_cpus)
    return 0


TUNE_COMMAND = Command("tune", "hyperparameter sweep (Ray Tune): yolov12 tune config=configs/sweeps/sample-asha.yaml "
                       "search.num_samples=4", tune_command)
