"""Ultralytics-style ``add_callback``: events fire in Ultralytics' order with a read-only trainer snapshot."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import pytest

from yolov12 import YOLO
from yolov12.engine.callbacks import Callback
from yolov12.engine.event_callbacks import (
    SUPPORTED_EVENTS,
    CallbackContext,
    CallbackEventError,
    UltralyticsEventCallbacks,
    check_event,
)

TINY = dict(data="sample", imgsz=64, batch=16, fraction=0.1, workers=0, verbose=False, seed=0, warmup_epochs=0,
            close_mosaic=0, mosaic=0.0, optimizer="SGD", lr0=0.01, amp=False, plots=False)


class Seen:
    """Records every context it is called with (a class instance, so it pickles)."""

    def __init__(self) -> None:
        self.calls: list[CallbackContext] = []

    def __call__(self, trainer: CallbackContext) -> None:
        self.calls.append(trainer)


class EpochCounter(Callback):
    """An engine callback given to ``train(callbacks=...)`` beside the registered functions."""

    def __init__(self) -> None:
        self.epochs = 0

    def on_epoch_end(self, state, metrics) -> None:
        self.epochs += 1


@pytest.mark.slow  # a real 2-epoch fit (model build, training, validation, checkpoints)
def test_events_fire_in_order_with_the_run_state(tmp_path: Path) -> None:
    seen, counter = Seen(), EpochCounter()
    model = YOLO("yolov12n.yaml")
    for event in SUPPORTED_EVENTS:
        model.add_callback(event, seen)
    metrics = model.train(epochs=2, project=str(tmp_path), name="events", callbacks=[counter], **TINY)

    events = [c.event for c in seen.calls if c.event != "on_train_batch_end"]
    epoch = ["on_train_epoch_start", "on_train_epoch_end", "on_fit_epoch_end", "on_model_save"]
    assert events == ["on_pretrain_routine_start", "on_pretrain_routine_end", "on_train_start", *epoch, *epoch,
                      "on_train_end"]
    assert counter.epochs == 2  # engine callbacks passed to train() still run
    batches = [c for c in seen.calls if c.event == "on_train_batch_end"]
    assert {c.epoch for c in batches} == {0, 1}
    assert set(batches[0].loss_items) == {"train/box_loss", "train/cls_loss", "train/dfl_loss"}

    by_event = {c.event: c for c in seen.calls}  # the last call of each event
    fit_end = by_event["on_fit_epoch_end"]
    assert fit_end.epoch == 1 and fit_end.epochs == 2 and (fit_end.rank, fit_end.world_size) == (0, 1)
    assert fit_end.metrics == {k: v for k, v in metrics.items() if k.startswith("metrics/")} and fit_end.metrics
    assert fit_end.loss_items["train/box_loss"] == metrics["train/box_loss"]
    assert fit_end.epoch_metrics == metrics and "lr/pg0" in fit_end.lr and fit_end.best_fitness is not None
    assert fit_end.args.imgsz == 64 and fit_end.args.epochs == 2
    assert fit_end.save_dir == model.trainer_result.run_dir and fit_end.model is not fit_end.ema
    saved = by_event["on_model_save"]
    assert saved.saved["last"] == saved.last and saved.last.is_file() and saved.best.is_file()
    assert not by_event["on_train_start"].metrics and by_event["on_train_end"].metrics == fit_end.metrics
    with pytest.raises(dataclasses.FrozenInstanceError):
        fit_end.stop = True  # read-only: Ultralytics' trainer.stop has no effect here, so it is refused


def test_add_callback_refuses_unknown_and_unsupported_events() -> None:
    model = YOLO("yolov12n.yaml")
    with pytest.raises(CallbackEventError, match=r"^unknown callback event 'on_train_epoch_ends'; did you mean "
                                                 r"'on_train_epoch_end'\? supported events: on_pretrain_routine_start"):
        model.add_callback("on_train_epoch_ends", print)
    with pytest.raises(CallbackEventError, match=r"'on_train_batch_start' is not supported: the training loop has no "
                                                 r"hook there; supported events: .*on_train_batch_end"):
        model.add_callback("on_train_batch_start", print)
    with pytest.raises(CallbackEventError, match="'on_predict_end' is not supported: it is not a training event"):
        model.add_callback("on_predict_end", print)
    with pytest.raises(TypeError, match="must be a function fn\\(trainer\\), got int"):
        model.add_callback("on_train_end", 3)
    for message in ("unknown callback event 'on_banana'", "supported events:"):
        with pytest.raises(CallbackEventError) as error:
            check_event("on_banana")
        assert message in str(error.value) and "\n" not in str(error.value)


def test_callbacks_dict_and_clear_callback() -> None:
    model = YOLO("yolov12n.yaml")
    assert set(model.callbacks) == set(SUPPORTED_EVENTS) and not any(model.callbacks.values())
    model.add_callback("on_train_end", print)
    model.callbacks["on_train_end"].append(repr)  # the dict is live, as in Ultralytics
    assert model.callbacks["on_train_end"] == [print, repr]
    model.clear_callback("on_train_end")
    assert model.callbacks["on_train_end"] == [] and not model._event_callbacks
    with pytest.raises(CallbackEventError):
        model.clear_callback("on_train_ends")


def test_event_callbacks_pickle_with_their_functions() -> None:
    events = UltralyticsEventCallbacks({"on_fit_epoch_end": [Seen()], "on_train_end": [print]})
    copy = pickle.loads(pickle.dumps(events))
    assert isinstance(copy.functions["on_fit_epoch_end"][0], Seen) and copy.functions["on_train_end"] == [print]
    with pytest.raises(CallbackEventError):
        UltralyticsEventCallbacks({"on_val_start": [print]})
