"""Command-line arguments of the Ray commands, in the one ``key=value`` grammar of the ``yolov12`` CLI.

Every command parses with :func:`yolov12.cli.arguments.parse_key_values`; ``--option VALUE`` / ``--option=VALUE``
and declared bare words (``yolov12 promote NAME 3``) are aliases, turned into ``key=value`` first by
:func:`normalise_options`. :func:`pipeline_keys` lists every key a pipeline override may set, so that an unknown one
fails with the closest valid key.

Example:
    >>> normalise_options(["--config", "configs/sample.yaml", "epochs=3", "-c", "b.yaml"], short={"c": "config"})
    ['config=configs/sample.yaml', 'epochs=3', 'config=b.yaml']
"""

from __future__ import annotations

from collections.abc import Iterable

from yolov12.cli.arguments import CommandLineError, parse_key_values
from yolov12.config.train import COMMON_MISTAKES, KEY_TO_SECTION, SECTION_TYPES

PIPELINE_MISTAKES = {**COMMON_MISTAKES, "num_workers": "scaling.num_workers"}

__all__ = ["normalise_options", "parse_overrides", "parse_pipeline_arguments", "pipeline_keys"]


def normalise_options(arguments: Iterable[str], short: dict[str, str] | None = None) -> list[str]:
    """``["--alias", "champion"]`` -> ``["alias=champion"]`` (and ``-c X`` -> ``config=X`` for ``short={"c":
    "config"}``), so both CLI styles parse as key=value."""
    out: list[str] = []
    items = iter(arguments)
    for argument in items:
        key = None
        if argument.startswith("--") and "=" not in argument:
            key = argument[2:]
        elif short and argument.startswith("-") and argument[1:] in short:
            key = short[argument[1:]]
        if key is None:
            out.append(argument)
            continue
        value = next(items, None)
        if value is None:
            raise CommandLineError(f"option {argument} needs a value, e.g. {key}=VALUE")
        out.append(f"{key}={value}")
    return out


def pipeline_keys() -> list[str]:
    """Every key a pipeline override takes (see :mod:`pipelines.config`): top-level keys, flat training keys
    (``epochs``), their ``train.`` and section spellings (``train.epochs``, ``optim.lr0``, ``train.optim.lr0``) and
    the pipeline sections' keys (``scaling.num_workers``)."""
    from pipelines.config import SECTIONS, TOP_LEVEL  # noqa: PLC0415

    keys = [*TOP_LEVEL, *KEY_TO_SECTION, *(f"train.{key}" for key in KEY_TO_SECTION)]
    for name, section in SECTION_TYPES.items():
        keys += [f"{name}.{key}" for key in section.model_fields]
        keys += [f"train.{name}.{key}" for key in section.model_fields]
    for name, section in SECTIONS.items():
        keys += [f"{name}.{key}" for key in section.model_fields]
    return keys


def parse_overrides(arguments: Iterable[str], valid: list[str], *, positional: tuple[str, ...] = (),
                    hints: dict[str, str] | None = None, sections: str = "") -> dict:
    """:func:`~yolov12.cli.arguments.parse_key_values` for commands with hundreds of keys: an unknown key's message
    keeps the closest valid key and names the key families (``sections``) instead of listing every key."""
    try:
        return parse_key_values(arguments, valid, positional=positional, hints=hints)
    except CommandLineError as exc:
        message = str(exc)
        if " Valid keys: " not in message:
            raise
        head = message.split(" Valid keys: ")[0].rstrip(";")
        raise CommandLineError(f"{head} Keys: {sections} (see docs/configuration.md)") from None


def parse_pipeline_arguments(arguments: Iterable[str]) -> tuple[str | None, dict]:
    """``config=PATH`` (or ``--config PATH``, ``-c PATH``, a bare first word) and typed overrides.

    Example:
        >>> parse_pipeline_arguments(["config=configs/sample.yaml", "epochs=3", "scaling.num_workers=1"])
        ('configs/sample.yaml', {'epochs': 3, 'scaling.num_workers': 1})
    """
    values = parse_overrides(normalise_options(arguments, short={"c": "config"}), ["config", *pipeline_keys()],
                             positional=("config",), hints=PIPELINE_MISTAKES,
                             sections="config=, model=, export_onnx=, training keys (epochs=, data=, lr0=, ...), "
                                      "scaling.*, storage.*, failure.*, checkpoint.*, tracking.*")
    config = values.pop("config", None)
    return (None if config is None else str(config)), values
