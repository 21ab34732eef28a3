"""``yolov12 tune``: the sweep driver as a command of the core CLI (registered through the entry point group).

    yolov12 tune config=configs/sweeps/sample-asha.yaml search.num_samples=4 epochs=2
    yolov12 tune configs/sweeps/sample-asha.yaml --num-cpus 2          # same; options in either style

pyproject: ``[project.entry-points."yolov12.commands"]`` ``tune = "tune.cli:TUNE_COMMAND"``.
"""

from __future__ import annotations

from yolov12.cli.arguments import CommandLineError
from yolov12.cli.commands import Command

OPTIONS = ("config", "ray_address", "num_cpus")


def split_arguments(arguments: list[str]) -> tuple[dict[str, str], list[str]]:
    """``config=...``/``--config ...``/a bare first path and ``ray_address``/``num_cpus`` vs. sweep overrides."""
    options: dict[str, str] = {}
    overrides: list[str] = []
    items = iter(arguments)
    for argument in items:
        if argument.startswith("--"):
            key, sep, value = argument[2:].partition("=")
            if not sep:
                value = next(items, None)
                if value is None:
                    raise CommandLineError(f"option {argument} needs a value")
            key = key.replace("-", "_")
            if key not in OPTIONS:
                raise CommandLineError(f"unknown option --{key}; options: {', '.join(OPTIONS)}")
            options[key] = value
        elif "=" not in argument:
            if "config" in options:
                raise CommandLineError(f"unexpected argument '{argument}': use key=value overrides")
            options["config"] = argument
        elif argument.split("=", 1)[0] in OPTIONS:
            key, _, value = argument.partition("=")
            options[key] = value
        else:
            overrides.append(argument)
    return options, overrides


def tune_command(arguments: list[str]) -> int:
    from tune.config import load_sweep_config  # noqa: PLC0415 - Ray is imported only when the command runs
    from tune.sweep import run_sweep  # noqa: PLC0415

    options, overrides = split_arguments(arguments)
    if "config" not in options:
        raise CommandLineError("tune needs a sweep config: yolov12 tune config=configs/sweeps/sample-asha.yaml "
                               "[key=value ...]")
    sweep = load_sweep_config(options["config"], overrides)
    sweep.resolve()  # a bad search space fails here, before Ray starts
    num_cpus = int(options["num_cpus"]) if "num_cpus" in options else None
    run_sweep(sweep, ray_address=options.get("ray_address"), num_cpus=num_cpus)
    return 0


TUNE_COMMAND = Command("tune", "hyperparameter sweep (Ray Tune): yolov12 tune config=configs/sweeps/sample-asha.yaml",
                       tune_command)
