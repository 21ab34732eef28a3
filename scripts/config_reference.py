"""Write docs/configuration.md from the config objects (``python scripts/config_reference.py [--check]``).

Sections come from the core library (prediction, training) and, when installed, the upper packages' configs.
``--check`` exits 1 when the file is out of date (the docs test runs it).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
from pathlib import Path

from yolov12.config.predict import PredictConfig
from yolov12.config.reference import render_reference
from yolov12.config.train import SECTION_TYPES
from yolov12.config.val import ValConfig

TARGET = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
# (heading, "module:Class") of the upper packages' config sections, documented when importable
UPPER_SECTIONS: list[tuple[str, str]] = []


def sections() -> list[tuple[str, type]]:
    found: list[tuple[str, type]] = [("predict (`model.predict(...)`, `yolov12 predict`)", PredictConfig)]
    found.append(("val (`model.val(...)`, `yolov12 val`)", ValConfig))
    found += [(f"train: {name} (`model.train(...)`, `yolov12 train`)", cls) for name, cls in SECTION_TYPES.items()]
    for heading, target in UPPER_SECTIONS:
        module, name = target.split(":")
        found.append((heading, getattr(importlib.import_module(module), name)))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when docs/configuration.md is out of date")
    args = parser.parse_args(argv)
    # Defaults that follow `yolov12 settings` (the runs folder) are documented as shipped, not as this machine has them
    os.environ["YOLOV12_CONFIG_DIR"] = tempfile.mkdtemp(prefix="config-reference-")
    os.environ.pop("YOLOV12_RUNS_DIR", None)
    text = render_reference(sections())
    if args.check:
        if not TARGET.is_file() or TARGET.read_text(encoding="utf-8") != text:
            print(f"{TARGET} is out of date: run python scripts/config_reference.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
