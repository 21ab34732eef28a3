"""Ray Tune sweeps over the training engine: learning-rate and augmentation-policy search.

``python -m tune.sweep --config configs/sweeps/sample-asha.yaml [key=value ...]`` (or ``yolov12 tune ...``).
Pieces: :mod:`tune.space` (search space YAML -> validated parameters -> Ray Tune domains), :mod:`tune.config`
(``SweepConfig``), :mod:`tune.trainable` (one trial = one call of the engine's ``fit``), :mod:`tune.sweep` (the
driver: new or restored ``Tuner``, table, best config, plots) and ``pipelines.sweep_tracking`` (MLflow).

Nothing here is imported by ``yolov12``. Needs the ``[ray]`` extra (Ray Tune, Optuna, MLflow).
"""

from yolov12.utils.extras import require

require("ray", extra="ray", feature="tune")
require("mlflow", extra="ray", feature="tune")
