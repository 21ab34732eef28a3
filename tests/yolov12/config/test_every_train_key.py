"""Every key of TrainConfig has an effect: a table maps each flat key to a changed value and what it changes.

Each entry builds what the key feeds (loaders, pipeline, optimiser and schedule, loss, EMA, precision, run folder)
from a base config and from the base config with the key changed, and asserts that the observed value differs.
Keys that only act inside ``fit`` (patience, save_period, plots, verbose, multi_scale) are read from two short runs
(2 epochs of one 64 px batch). A key added to the config without an entry here fails
:func:`test_every_key_has_an_entry`.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
import yaml

from yolov12.config.train import KEY_TO_SECTION, TrainConfig
from yolov12.data.augment import AugmentPolicy
from yolov12.engine.data_setup import build_training_data
from yolov12.engine.distill import DistillationLoss
from yolov12.engine.distributed import DistributedContext
from yolov12.engine.freeze import freeze_layers
from yolov12.engine.losses import build_classification_loss, build_detection_loss, build_loss
from yolov12.engine.schedule import apply_schedule
from yolov12.engine.time_budget import TimeBudget, follow_time_budget
from yolov12.engine.trainer import _resolve_run_dir, build_state, fit, seed_everything, validates
from yolov12.models import build_model, load_architecture
from yolov12.models.transfer import pretrained_path
from yolov12.utils.device import DeviceError, select_device
from yolov12.weights import save_checkpoint

NAMES = ("a", "b")
CONTEXT = DistributedContext(0, 1, 0)


def write_dataset(root: Path, count: int = 8, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        for index in range(count):
            image = rng.integers(0, 255, (48 + 8 * (index % 3), 64, 3), dtype=np.uint8)
            (root / "images" / split).mkdir(parents=True, exist_ok=True)
            (root / "labels" / split).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / "images" / split / f"{index}.jpg"), image)
            (root / "labels" / split / f"{index}.txt").write_text(f"{index % 2} 0.5 0.5 0.4 0.3\n")
    (root / "data.yaml").write_text(yaml.safe_dump({"path": str(root), "train": "images/train",
                                                    "val": "images/val", "names": list(NAMES)}))
    return root / "data.yaml"


@dataclass
class Probe:
    """Builds what a config feeds (memoised) for the observers of the table, and holds the short runs."""

    root: Path
    data: str
    other_data: str
    model: torch.nn.Module
    teacher_path: Path
    policy_path: Path
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    _data_memo: dict[str, Any] = field(default_factory=dict)

    def base(self, **extra: Any) -> TrainConfig:
        """The config every entry starts from (SGD, so that lr0 and momentum are used as given)."""
        return TrainConfig.from_overrides({
            "data": self.data, "imgsz": 64, "batch": 4, "workers": 0, "val": False, "optimizer": "SGD",
            "epochs": 30, "device": "cpu", "amp": False, "plots": False, "verbose": False,
            "project": str(self.root / "runs"), "seed": 1, **extra})

    def resolve(self, value: Any) -> Any:
        """Entry values that depend on the fixture's files are given as ``lambda probe: ...``."""
        return value(self) if callable(value) else value

    def training_data(self, config: TrainConfig):
        key = repr((config.data, config.augment, config.run.seed, config.run.val))
        if key not in self._data_memo:
            self._data_memo[key] = build_training_data(config, "detect", CONTEXT)
        return self._data_memo[key]

    def first_batch(self, config: TrainConfig) -> dict:
        data = self.training_data(config)
        data.set_epoch(0, config.run.epochs)
        return next(iter(data.train_loader))

    def shuffle_order(self, config: TrainConfig) -> list[list[int]]:
        data = self.training_data(config)
        data.set_epoch(0, config.run.epochs)
        return list(data.train_loader.batch_sampler)

    def pipeline(self, config: TrainConfig, epoch: int = 0) -> str:
        """The training pipeline's repr (it lists every parameter) at ``epoch``."""
        data = self.training_data(config)
        data.pipeline.set_epoch(epoch, config.run.epochs)
        return repr(data.pipeline)

    def state(self, config: TrainConfig):
        model = copy.deepcopy(self.model)
        freeze_layers(model, config.optim.freeze)
        return build_state(model, config, self.training_data(config), CONTEXT, self.root / "state")

    def schedule(self, config: TrainConfig, step: int, epoch: int) -> list[tuple]:
        """(lr, momentum) of each parameter group at iteration ``step`` of ``epoch``."""
        state = self.state(config)
        apply_schedule(state.optimiser, config.optim, step, epoch, state.epochs, state.warmup_steps,
                       state.base_momentum)
        return [(round(g["lr"], 9), g.get("momentum", g.get("betas"))) for g in state.optimiser.param_groups]

    def distill(self, config: TrainConfig) -> tuple:
        """The GKD loss's settings, built around a prebuilt teacher (no file load per entry)."""
        student, teacher = copy.deepcopy(self.model), copy.deepcopy(self.model)
        with captured_logs() as logs:
            loss = DistillationLoss.build(student, build_detection_loss(student, config.loss), config.distill,
                                          teachers=[teacher])
        balancer = loss.balancer
        return (loss.temperature, loss.terms, loss.fade_epochs, balancer.ratio, balancer.mode, balancer.constant,
                "teacher_half is ignored" in logs.text)


class captured_logs(logging.Handler):  # noqa: N801 - used as a context manager
    """``with captured_logs() as logs: ...; logs.text`` (the yolov12 loggers, INFO and up)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def __enter__(self) -> captured_logs:
        self.logger = logging.getLogger("yolov12")
        self.saved_level = self.logger.level
        self.logger.addHandler(self)
        self.logger.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self)
        self.logger.setLevel(self.saved_level)


@dataclass(frozen=True)
class Effect:
    """``observe(probe, config)`` differs between ``probe.base(**base)`` and the same with ``key=value``.

    With ``run``, the key acts inside ``fit``: ``observe(run)`` differs between the ``base`` run and run ``run``,
    whose config differs from the base run's in this key (``value``).
    """

    value: Any
    observe: Callable[..., Any]
    base: dict[str, Any] = field(default_factory=dict)
    run: str | None = None


def _run_dir(probe: Probe, config: TrainConfig) -> str:
    (Path(config.run.project) / config.run.name).mkdir(parents=True, exist_ok=True)  # an earlier run of that name
    return str(_resolve_run_dir(config, CONTEXT).relative_to(probe.root))


def _device(probe: Probe, config: TrainConfig) -> str:
    try:
        return str(select_device(config.run.device))
    except DeviceError:
        return "refused"


def _deterministic(probe: Probe, config: TrainConfig) -> bool:
    torch.backends.cudnn.deterministic = not config.run.deterministic
    seed_everything(config.run.seed, config.run.deterministic)
    return torch.backends.cudnn.deterministic


def _precision(probe: Probe, config: TrainConfig) -> tuple:
    with captured_logs() as logs:
        state = probe.state(config)
    return state.precision.mode, "amp:" in logs.text


def _time(probe: Probe, config: TrainConfig) -> tuple[bool, int]:
    """What fit does after the first epoch: (stop?, the run's epoch count from then on)."""
    state = probe.state(config)
    state.epoch = 1
    return follow_time_budget(TimeBudget(config.run.time), state, CONTEXT), state.epochs


def _validated_epochs(probe: Probe, config: TrainConfig) -> list[int]:
    """The epochs (1-based) of the first ten that ``fit`` validates."""
    state = probe.state(config)
    state.history = [{"epoch": 1, "metrics/mAP50-95(B)": 0.1}]  # a validation to carry
    validated = []
    for state.epoch in range(10):
        validated += [state.epoch + 1] if validates(state) else []
    return validated


def _weights(run: dict) -> list[str]:
    return sorted(f.name for f in (run["dir"] / "weights").iterdir())


AUGMENT = {"hsv_h": 0.5, "hsv_s": 0.2, "hsv_v": 0.1, "degrees": 10.0, "translate": 0.3, "scale": 0.2, "shear": 5.0,
           "perspective": 0.0005, "flipud": 0.5, "fliplr": 0.0, "mosaic": 0.5, "mixup": 0.3, "copy_paste": 0.4}
DISTILL = {"distill_temperature": 4.0, "distill_ratio": 1.0, "distill_terms": ["cls"], "distill_fade_epochs": 1,
           "distill_weighting": "constant", "distill_weight": 2.0, "distill_teacher_half": True}


def _teachers(probe: Probe) -> list[str]:
    return [str(probe.teacher_path)]


EFFECTS: dict[str, Effect] = {
    # data
    "data": Effect(lambda p: p.other_data, lambda p, c: p.training_data(c).train_loader.dataset.records[0].path),
    "imgsz": Effect(96, lambda p, c: tuple(p.first_batch(c)["images"].shape[2:])),
    "batch": Effect(2, lambda p, c: p.training_data(c).train_loader.batch_size),
    "workers": Effect(1, lambda p, c: p.training_data(c).train_loader.num_workers),
    "fraction": Effect(0.5, lambda p, c: len(p.training_data(c).train_loader.dataset)),
    "cache": Effect("ram", lambda p, c: type(p.training_data(c).train_loader.dataset.cache).__name__),
    "rect": Effect(True, lambda p, c: type(p.training_data(c).val_loader.dataset).__name__, base={"val": True}),
    "mixing_buffer": Effect(4, lambda p, c: p.training_data(c).partners.capacity),
    "multi_scale": Effect(True, lambda run: sorted(set(run["input_sizes"])), run="changed"),
    # augment: the training pipeline
    **{key: Effect(value, lambda p, c: p.pipeline(c)) for key, value in AUGMENT.items()},
    "close_mosaic": Effect(1, lambda p, c: p.pipeline(c, epoch=c.run.epochs - 2)),
    "augment_policy": Effect(lambda p: str(p.policy_path), lambda p, c: p.pipeline(c)),
    # optim: optimiser, schedule, accumulation, precision
    "optimizer": Effect("AdamW", lambda p, c: type(p.state(c).optimiser).__name__),
    "lr0": Effect(0.05, lambda p, c: p.schedule(c, step=10**6, epoch=0)),
    "lrf": Effect(0.5, lambda p, c: p.schedule(c, step=10**6, epoch=c.run.epochs - 1)),
    "momentum": Effect(0.8, lambda p, c: p.schedule(c, step=10**6, epoch=5)),
    "weight_decay": Effect(0.01, lambda p, c: p.state(c).optimiser.param_groups[1]["weight_decay"]),
    "warmup_epochs": Effect(1.0, lambda p, c: p.state(c).warmup_steps),
    "warmup_momentum": Effect(0.5, lambda p, c: p.schedule(c, step=0, epoch=0)),
    "warmup_bias_lr": Effect(0.3, lambda p, c: p.schedule(c, step=0, epoch=0)),
    "nbs": Effect(8, lambda p, c: p.state(c).accumulate),
    "cos_lr": Effect(True, lambda p, c: p.schedule(c, step=10**6, epoch=10)),
    "max_grad_norm": Effect(1.0, lambda p, c: p.state(c).precision.max_norm),
    "freeze": Effect(5, lambda p, c: sum(len(g["params"]) for g in p.state(c).optimiser.param_groups)),
    # loss
    "box": Effect(1.0, lambda p, c: build_loss(p.model, c.loss).gains),
    "cls": Effect(1.0, lambda p, c: build_loss(p.model, c.loss).gains),
    "dfl": Effect(1.0, lambda p, c: build_loss(p.model, c.loss).gains),
    "label_smoothing": Effect(0.1, lambda p, c: build_classification_loss(None, c.loss).label_smoothing),
    # run
    "epochs": Effect(3, lambda p, c: p.state(c).epochs),
    "device": Effect("cpu" if torch.cuda.is_available() else "cuda:0", _device, base={"device": "auto"}),
    "amp": Effect(True, _precision),
    "seed": Effect(2, lambda p, c: p.shuffle_order(c)),
    "deterministic": Effect(False, _deterministic),
    "ema_decay": Effect(0.99, lambda p, c: p.state(c).ema.decay),
    "ema_tau": Effect(10.0, lambda p, c: p.state(c).ema.tau),
    "project": Effect(lambda p: str(p.root / "other-runs"), _run_dir),
    "name": Effect("other", _run_dir),
    "exist_ok": Effect(True, _run_dir),
    "resume": Effect(lambda p: str(p.root / "runs" / "a" / "weights" / "last.state.pt"), _run_dir),
    "patience": Effect(1, lambda run: "early stop" in run["logs"], run="changed"),
    "save_period": Effect(1, _weights, run="changed"),
    "val": Effect(True, lambda p, c: p.training_data(c).val_loader is None),
    "val_period": Effect(3, _validated_epochs, base={"val": True}),
    "plots": Effect(True, lambda run: sorted(f.name for f in run["dir"].glob("*.png")), run="changed"),
    "verbose": Effect(True, lambda run: "epoch 1/" in run["logs"], run="changed"),
    "pretrained": Effect(lambda p: str(p.teacher_path), lambda p, c: pretrained_path(p.model, c.run.pretrained)),
    "time": Effect(1e-9, _time),
    # distill: the teacher spec is loaded by build_loss; the other keys shape the GKD loss
    "distill_teachers": Effect(_teachers, lambda p, c: type(build_loss(p.model, c.loss, distill=c.distill)).__name__),
    **{key: Effect(value, lambda p, c: p.distill(c), base={"distill_teachers": _teachers})
       for key, value in DISTILL.items()},
}

RUNS = {  # the short runs of the keys that act inside fit; "base" has every such key at its default
    "base": {},
    "changed": {"patience": 1, "multi_scale": True, "save_period": 1, "plots": True, "verbose": True},
}


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Probe:
    root = tmp_path_factory.mktemp("keys")
    torch.manual_seed(0)
    model = build_model(load_architecture("yolov12n.yaml").with_overrides(num_classes=len(NAMES)),
                        names=dict(enumerate(NAMES)))
    policy_path = root / "policy.yaml"
    policy = AugmentPolicy.from_dict({"ops": [{"name": "HueSaturationValue", "p": 0.5, "magnitude": 0.5}]})
    policy_path.write_text(yaml.safe_dump(policy.to_dict()))
    return Probe(root, str(write_dataset(root / "data")), str(write_dataset(root / "other", seed=1)), model,
                 save_checkpoint(model, root / "teacher.safetensors"), policy_path)


@pytest.fixture(scope="module")
def fit_runs(probe: Probe) -> dict[str, dict[str, Any]]:
    """Each run of :data:`RUNS`: its config, folder, log text and the side of every model input."""
    for name, changes in RUNS.items():
        config = probe.base(epochs=2, batch=8, name=name, **changes)
        sizes: list[int] = []
        model = copy.deepcopy(probe.model)  # the dataset's classes: fit keeps this model (and the hook)
        model.register_forward_pre_hook(lambda module, args, sizes=sizes: sizes.append(int(args[0].shape[-1])))
        with captured_logs() as logs:
            result = fit(model, config)
        probe.runs[name] = {"config": config, "dir": result.run_dir, "logs": logs.text, "input_sizes": sizes}
    return probe.runs


def test_every_key_has_an_entry() -> None:
    assert set(EFFECTS) == set(KEY_TO_SECTION), "add an entry to EFFECTS for each new training key"
    assert {key for changes in RUNS.values() for key in changes} == {k for k, e in EFFECTS.items() if e.run}


@pytest.mark.parametrize("key", sorted(EFFECTS))
def test_key_has_an_effect(key: str, probe: Probe, fit_runs: dict) -> None:
    effect = EFFECTS[key]
    value = probe.resolve(effect.value)
    if effect.run is not None:
        base_run, run = fit_runs["base"], fit_runs[effect.run]
        assert run["config"].to_flat()[key] == value != base_run["config"].to_flat()[key]
        before, after = effect.observe(base_run), effect.observe(run)
    else:
        base = probe.base(**{k: probe.resolve(v) for k, v in effect.base.items()})
        changed = base.updated(**{key: value})
        assert changed.to_flat()[key] != base.to_flat()[key], f"{key}={value!r} is the base value"
        before, after = effect.observe(probe, base), effect.observe(probe, changed)
    assert before != after, f"{key}={value!r} changed nothing observable: {before!r}"
