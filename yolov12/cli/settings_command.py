"""``yolov12 settings``: show the settings and where each value comes from, set some, or reset them all.

    yolov12 settings                          # every setting, its value and its origin (env / file / default)
    yolov12 settings datasets_dir=/data       # set and save (several key=value pairs at once are fine)
    yolov12 settings mlflow_uri=null          # remove one from the file: its default applies again
    yolov12 settings reset                    # remove the settings file: every default applies again
"""

from __future__ import annotations

from yolov12.cli.arguments import CommandLineError, parse_key_values
from yolov12.settings import ENVIRONMENT, Settings, describe_settings, reset_settings, save_settings, settings_path

USAGE = "yolov12 settings [key=value ...] | yolov12 settings reset"


def run(arguments: list[str]) -> int:
    """Print, update or reset the settings; returns the exit code."""
    if arguments == ["reset"]:
        path = reset_settings()
        print(f"settings reset to their defaults ({path} removed)")
    elif arguments:
        bare = [argument for argument in arguments if "=" not in argument]
        if bare:
            raise CommandLineError(f"unexpected argument '{bare[0]}'; usage: {USAGE}")
        values = parse_key_values(arguments, list(Settings.model_fields))
        path = save_settings(values)
        print(f"saved {', '.join(values)} to {path}")
    print(settings_table())
    return 0


def settings_table() -> str:
    """One line per setting: name, value and origin; a note for every value the environment overrides."""
    rows = describe_settings()
    path = settings_path()
    lines = [f"settings file: {path}{'' if path.exists() else ' (not written yet)'}"]
    width, value_width = max(len(row.name) for row in rows), max(len(str(row.value)) for row in rows)
    for row in rows:
        origin = {"env": f"env {row.detail}", "file": "file", "default": "default"}[row.origin]
        lines.append(f"  {row.name:<{width}}  {row.value!s:<{value_width}}  ({origin})")
    overridden = [row for row in rows if row.origin == "env"]
    if overridden:
        names = ", ".join(f"${ENVIRONMENT[row.name]}" for row in overridden)
        lines.append(f"environment variables win over the file: unset {names} to use the file's values")
    return "\n".join(lines)
