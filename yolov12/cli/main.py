"""Entry point of the ``yolov12`` console script."""

from __future__ import annotations

import difflib
import logging
import os
import sys

from yolov12.cli.arguments import CommandLineError
from yolov12.cli.commands import available_commands
from yolov12.utils.extras import MissingExtraError

USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, FileExistsError, KeyError, RuntimeError,
                                                MissingExtraError)


def usage(commands: dict) -> str:
    lines = ["usage: yolov12 <command> key=value ...", "", "commands:"]
    lines += [f"  {name:<10} {command.summary}" for name, command in sorted(commands.items())]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run one command; user errors print one line to stderr and exit 2 (set YOLOV12_DEBUG=1 for tracebacks)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    commands = available_commands()
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage(commands))
        return 0
    name, rest = argv[0], argv[1:]
    if name in ("-V", "--version", "version"):
        from yolov12 import __version__  # noqa: PLC0415

        print(__version__)
        return 0
    command = commands.get(name)
    if command is None:
        close = difflib.get_close_matches(name, list(commands), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        print(f"yolov12: unknown command '{name}'{hint} Commands: {', '.join(sorted(commands))}", file=sys.stderr)
        return 2
    try:
        return command.run(rest)
    except (CommandLineError, *USER_ERRORS) as exc:
        if os.environ.get("YOLOV12_DEBUG"):
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"yolov12 {name}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
