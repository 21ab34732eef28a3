"""Ultralytics-style training callbacks: functions ``fn(trainer)`` registered by event name.

:class:`UltralyticsEventCallbacks` is an engine :class:`~yolov12.engine.callbacks.Callback` that maps the loop's hooks
to Ultralytics' event names, so the same object works in a local ``fit`` (``YOLO.add_callback`` builds one) and in
Ray Train workers (pass it to ``pipelines.train.run_pipeline(config, callbacks=[...])``; it is pickled to every
worker, so the functions must be picklable, e.g. module-level functions or cloudpickle-able closures).

Events, in the order they fire, and the hook each comes from:

================================  ===========================  ====================================================
event                             engine hook                  note
================================  ===========================  ====================================================
``on_pretrain_routine_start``     ``on_train_data``            after data, model and optimiser are built
``on_pretrain_routine_end``       ``on_train_data``
``on_train_start``                ``on_fit_start``             on resume, ``epoch`` is the epoch training resumes at
``on_train_epoch_start``          ``on_epoch_start``
``on_train_batch_end``            ``on_batch_end``             ``loss_items``: running means of this epoch
``on_train_epoch_end``            ``on_epoch_end``             validation has already run
``on_fit_epoch_end``              ``on_epoch_end``             after validation
``on_model_save``                 ``on_checkpoint``            the rank that writes checkpoints (rank 0) only
``on_train_end``                  ``on_fit_end``
================================  ===========================  ====================================================

Differences from Ultralytics:

- every event but ``on_model_save`` fires on **every rank** of a distributed run (Ultralytics drops callbacks under
  DDP); use ``trainer.rank`` to act on one rank only;
- ``fn`` receives a :class:`CallbackContext`, a read-only snapshot with a subset of the Ultralytics trainer's
  attributes, not the trainer itself: assigning to it raises, and settings cannot be changed from a callback;
- both ``on_pretrain_routine_*`` events fire once setup is done; ``on_fit_epoch_end`` fires before
  ``on_model_save`` (Ultralytics: after), and at ``on_train_epoch_end`` the epoch's validation metrics are ready;
- events the loop has no hook for (``on_train_batch_start``, ``optimizer_step``, ``on_val_*``, ...) are refused
  by :func:`check_event` instead of never firing.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from yolov12.engine.callbacks import Callback

__all__ = ["SUPPORTED_EVENTS", "UNSUPPORTED_EVENTS", "CallbackContext", "CallbackEventError",
           "UltralyticsEventCallbacks", "check_event"]

SUPPORTED_EVENTS: tuple[str, ...] = (
    "on_pretrain_routine_start", "on_pretrain_routine_end", "on_train_start", "on_train_epoch_start",
    "on_train_batch_end", "on_train_epoch_end", "on_fit_epoch_end", "on_model_save", "on_train_end",
)
_TRAIN_LOOP_ONLY = "the training loop has no hook there"
_NOT_TRAINING = "it is not a training event; only training events can be registered"
# Ultralytics events that this training loop does not fire, and why.
UNSUPPORTED_EVENTS: dict[str, str] = {
    "on_train_batch_start": _TRAIN_LOOP_ONLY, "optimizer_step": _TRAIN_LOOP_ONLY,
    "on_before_zero_grad": _TRAIN_LOOP_ONLY, "on_params_update": _TRAIN_LOOP_ONLY, "teardown": _TRAIN_LOOP_ONLY,
    "on_val_start": "validation inside training has no hooks", "on_val_batch_start": _NOT_TRAINING,
    "on_val_batch_end": _NOT_TRAINING, "on_val_end": "validation inside training has no hooks",
    "on_predict_start": _NOT_TRAINING, "on_predict_batch_start": _NOT_TRAINING,
    "on_predict_batch_end": _NOT_TRAINING, "on_predict_postprocess_end": _NOT_TRAINING,
    "on_predict_end": _NOT_TRAINING, "on_export_start": _NOT_TRAINING, "on_export_end": _NOT_TRAINING,
}

EventFunction = Callable[["CallbackContext"], Any]


class CallbackEventError(ValueError):
    """A callback was registered for an event name that does not exist or that the training loop does not fire."""


def check_event(event: str) -> str:
    """Return ``event`` if it is one of :data:`SUPPORTED_EVENTS`, else raise a one-line :class:`CallbackEventError`.

    Example:
        >>> check_event("on_train_epoch_ends")
        Traceback (most recent call last):
        CallbackEventError: unknown callback event 'on_train_epoch_ends'; did you mean 'on_train_epoch_end'? ...
    """
    if event in SUPPORTED_EVENTS:
        return event
    supported = f"supported events: {', '.join(SUPPORTED_EVENTS)}"
    if event in UNSUPPORTED_EVENTS:
        raise CallbackEventError(f"callback event '{event}' is not supported: {UNSUPPORTED_EVENTS[event]}; {supported}")
    close = difflib.get_close_matches(str(event), [*SUPPORTED_EVENTS, *UNSUPPORTED_EVENTS], n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise CallbackEventError(f"unknown callback event '{event}'{hint} {supported}")


@dataclass(frozen=True)
class CallbackContext:
    """What an event function receives in place of Ultralytics' trainer: a read-only snapshot of the run.

    Attributes:
        event: the event being fired (``on_fit_epoch_end``).
        epoch: the current epoch, 0-based (as ``trainer.epoch``).
        epochs: the number of epochs of the run.
        rank, world_size: this process's rank and the number of processes (0 and 1 without DDP).
        save_dir: the run folder (``weights/``, ``results.csv``); under Ray Train each worker's local folder.
        args: the training settings under their flat (Ultralytics) names: ``trainer.args.imgsz``.
        model: the model being trained, without its DDP wrapper.
        ema: the EMA model, which is validated and saved.
        metrics: validation metrics of the latest epoch (``metrics/mAP50-95(B)``...; empty before the first
            validation or with ``val=False``), as ``trainer.metrics``.
        loss_items: mean training losses of the current epoch by name (``train/box_loss``...).
        lr: learning rate per parameter group (``lr/pg0``...), as ``trainer.lr``.
        epoch_metrics: the whole row of the latest finished epoch (what ``results.csv`` gets, without ``epoch``).
        best_fitness: the best fitness so far, or None before the first epoch ends.
        saved: at ``on_model_save``, the checkpoint files just written by kind (``last``, ``best``...); else empty.
    """

    event: str
    epoch: int
    epochs: int
    rank: int
    world_size: int
    save_dir: Path
    args: SimpleNamespace
    model: Any
    ema: Any
    metrics: dict[str, float] = field(default_factory=dict)
    loss_items: dict[str, float] = field(default_factory=dict)
    lr: dict[str, float] = field(default_factory=dict)
    epoch_metrics: dict[str, float] = field(default_factory=dict)
    best_fitness: float | None = None
    saved: dict[str, Path] = field(default_factory=dict)

    @property
    def wdir(self) -> Path:
        """The weights folder, as ``trainer.wdir``."""
        return self.save_dir / "weights"

    @property
    def last(self) -> Path:
        """Where the last weights are saved (``weights/last.safetensors``), as ``trainer.last``."""
        return self.wdir / "last.safetensors"

    @property
    def best(self) -> Path:
        """Where the best weights are saved (``weights/best.safetensors``), as ``trainer.best``."""
        return self.wdir / "best.safetensors"


class UltralyticsEventCallbacks(Callback):
    """Calls functions registered by Ultralytics event name from the engine's hooks (see the module docstring).

    Args:
        functions: event name -> functions ``fn(trainer)``; every name is checked with :func:`check_event`.

    Example:
        >>> events = UltralyticsEventCallbacks({"on_fit_epoch_end": [lambda trainer: print(trainer.metrics)]})
        >>> events.add("on_train_end", lambda trainer: print("done on rank", trainer.rank))
        >>> fit(model, config, callbacks=[events])  # doctest: +SKIP
    """

    def __init__(self, functions: Mapping[str, Iterable[EventFunction]] | None = None) -> None:
        self.functions: dict[str, list[EventFunction]] = {event: [] for event in SUPPORTED_EVENTS}
        for event, event_functions in (functions or {}).items():
            for function in event_functions:
                self.add(event, function)
        self._reset()

    def add(self, event: str, function: EventFunction) -> None:
        """Register ``function`` for ``event``; functions of one event run in the order they were added."""
        check_event(event)
        if not callable(function):
            raise TypeError(f"the callback for '{event}' must be a function fn(trainer), got {type(function).__name__}")
        self.functions[event].append(function)

    def clear(self, event: str) -> None:
        """Remove every function registered for ``event``."""
        self.functions[check_event(event)] = []

    def __bool__(self) -> bool:
        return any(self.functions.values())

    def _reset(self) -> None:
        self._metrics: dict[str, float] = {}
        self._loss_items: dict[str, float] = {}
        self._epoch_metrics: dict[str, float] = {}

    def _fire(self, event: str, state: Any, saved: dict[str, Path] | None = None) -> None:
        functions = self.functions.get(event)
        if not functions:
            return
        context = self._context(event, state, saved or {})
        for function in functions:
            function(context)

    def _context(self, event: str, state: Any, saved: dict[str, Path]) -> CallbackContext:
        from yolov12.engine.ema import unwrap  # noqa: PLC0415 - torch only once a run fires an event

        lr = {f"lr/pg{i}": float(group["lr"]) for i, group in enumerate(state.optimiser.param_groups)}
        return CallbackContext(
            event=event, epoch=state.epoch, epochs=state.epochs, rank=state.rank, world_size=state.world_size,
            save_dir=Path(state.run_dir), args=SimpleNamespace(**state.config.to_flat()),
            model=unwrap(state.model), ema=state.ema.ema, metrics=dict(self._metrics),
            loss_items=dict(self._loss_items), lr=lr, epoch_metrics=dict(self._epoch_metrics),
            best_fitness=state.best_fitness, saved=dict(saved))

    # -- engine hooks -----------------------------------------------------------------------------------------------
    def on_train_data(self, state: Any, data: Any) -> None:
        self._reset()
        self._fire("on_pretrain_routine_start", state)
        self._fire("on_pretrain_routine_end", state)

    def on_fit_start(self, state: Any) -> None:
        self._fire("on_train_start", state)

    def on_epoch_start(self, state: Any) -> None:
        self._loss_items = {}
        self._fire("on_train_epoch_start", state)

    def on_batch_end(self, state: Any, metrics: dict[str, float]) -> None:
        self._loss_items = {k: float(v) for k, v in metrics.items() if k.startswith("train/")}
        self._fire("on_train_batch_end", state)

    def on_epoch_end(self, state: Any, metrics: dict[str, float]) -> None:
        self._epoch_metrics = {k: float(v) for k, v in metrics.items()}
        self._loss_items = {k: v for k, v in self._epoch_metrics.items() if k.startswith("train/")}
        self._metrics = {k: v for k, v in self._epoch_metrics.items() if k.startswith(("metrics/", "val/"))}
        self._fire("on_train_epoch_end", state)
        self._fire("on_fit_epoch_end", state)

    def on_checkpoint(self, state: Any, paths: dict[str, Path]) -> None:
        self._fire("on_model_save", state, saved=paths)

    def on_fit_end(self, state: Any, metrics: dict[str, float]) -> None:
        self._fire("on_train_end", state)
