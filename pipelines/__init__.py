"""Ray pipelines on top of the ``yolov12`` library: Ray Train (``pipelines.train``), MLflow tracking and lineage.

Nothing here is imported by ``yolov12``; the ``yolov12`` CLI finds the commands through entry points.
Needs the ``[ray]`` extra (Ray, MLflow); serving a ``models:/`` URI needs ``[mlflow]`` beside ``[serve]``. Every
module here that talks to MLflow imports it at its top, so the check for it is made once, here.
"""

from yolov12.utils.extras import require

require("ray", extra="ray", feature="pipelines")
require("mlflow", extra="mlflow", feature="pipelines")
