"""``python -m yolov12`` runs the CLI."""

import sys

from yolov12.cli.main import main

sys.exit(main())
