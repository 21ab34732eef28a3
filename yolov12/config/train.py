"""Training settings: one validated object split by concern, built from the flat keys users type.

``TrainConfig.from_overrides(epochs=..., lr0=..., hsv_s=...)`` takes the Ultralytics argument names verbatim and routes
each key to its section (data, augment, optim, loss, run, distill; distillation keys are flat as ``distill_*``). Each
builder receives only its own section. ``to_flat()`` gives the flat form back (for CLI echo, YAML files, MLflow
params and Ray Tune search spaces).
"""

from __future__ import annotations

import difflib
from functools import partial
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from yolov12.config.base import ConfigError, Section, format_validation_error
from yolov12.settings import default_project
from yolov12.utils.device import normalise_device


class DataSection(Section):
    """What to train on and how it is batched.

    Attributes:
        data: a data.yaml, an ImageNet-style folder, ``s3://bucket/prefix``, or a built-in name (``sample``,
            ``sample-photo``, ``sample-cls``).
        imgsz: training and validation image size in pixels (square).
        batch: images per batch over all processes, as in Ultralytics: with N DDP workers each loads batch / N
            (batch must then be a multiple of N).
        workers: data-loading worker processes per training process (0 loads in the training process).
        fraction: share of the training images to use (seeded subset, for quick runs).
        cache: keep the decoded training images (detection: resized to imgsz on the long side; classification: as
            decoded): ``ram`` (or True) in memory, filled before the loader workers start; ``disk`` as ``.npy``
            files beside the images (``img.jpg`` -> ``img.npy`` + ``img.npy.json`` recording the image's size and
            mtime, rewritten when the image changes; images whose ``.npy`` cannot be written stay in RAM). The
            batches are the same as without the cache. Validation images are read from their files.
        rect: rectangular validation batches: images sorted by aspect ratio, each batch letterboxed to the smallest
            stride multiple that fits its images (detection only; training batches stay square).
        multi_scale: resize each training batch to a random square side in [0.5, 1.5] x imgsz, a multiple of the
            model stride (detection only).
        mixing_buffer: recent training images (resized) each loader process keeps to draw mosaic and mixup partners
            from, instead of decoding three more images per mosaic (detection only): unset = min(images, 8 x the
            process's batch, 1000), Ultralytics' rule (about 0.9 MB per image at 640); 0 = decode every partner
            from the whole split. With ``data.loader=ray_data`` it is the buffer of each decoding process (unset:
            min(images, 8 x batch, 1000); 0 is refused).
    """

    data: str = "sample"
    imgsz: int = Field(640, ge=32, le=4096)
    batch: int = Field(16, ge=1, le=4096)
    workers: int = Field(2, ge=0, le=64)
    fraction: float = Field(1.0, gt=0.0, le=1.0)
    cache: Literal[False, "ram", "disk"] = False
    rect: bool = False
    multi_scale: bool = False
    mixing_buffer: int | None = Field(None, ge=0, le=100000)

    @field_validator("cache", mode="before")
    @classmethod
    def _cache_mode(cls, value: object) -> object:
        text = str(value).strip().lower()
        if value is None or value is False or text in ("false", "none", "no", "off", "0", ""):
            return False
        if value is True or text in ("true", "yes", "on", "1", "ram"):
            return "ram"
        return "disk" if text == "disk" else value


class AugmentSection(Section):
    """Augmentation strengths (Ultralytics names and defaults) and the optional AutoAlbument-Lite policy.

    Attributes:
        hsv_h, hsv_s, hsv_v: maximum hue / saturation / value gain of the HSV jitter (fractions).
        degrees: maximum rotation of the random affine, in degrees.
        translate: maximum translation, as a fraction of the image size (at most half of it).
        scale: scale gain range (1 ± scale, so below 1: a gain of 0 would empty the image).
        shear: maximum shear, in degrees.
        perspective: perspective distortion (0 - 0.001).
        flipud, fliplr: probability of a vertical / horizontal flip.
        mosaic: probability of a 4-image mosaic.
        mixup: probability of MixUp with a second (mosaic) sample.
        copy_paste: probability of copy-paste for objects with segments.
        close_mosaic: turn mosaic (and MixUp, copy-paste) off for the last N epochs.
        augment_policy: AutoAlbument-Lite policy (YAML/JSON file or shipped name, e.g. sample-photo-best).
    """

    hsv_h: float = Field(0.015, ge=0.0, le=1.0)
    hsv_s: float = Field(0.7, ge=0.0, le=1.0)
    hsv_v: float = Field(0.4, ge=0.0, le=1.0)
    degrees: float = Field(0.0, ge=0.0, le=180.0)
    translate: float = Field(0.1, ge=0.0, le=0.5)
    scale: float = Field(0.5, ge=0.0, lt=1.0)
    shear: float = Field(0.0, ge=0.0, le=90.0)
    perspective: float = Field(0.0, ge=0.0, le=0.001)
    flipud: float = Field(0.0, ge=0.0, le=1.0)
    fliplr: float = Field(0.5, ge=0.0, le=1.0)
    mosaic: float = Field(1.0, ge=0.0, le=1.0)
    mixup: float = Field(0.0, ge=0.0, le=1.0)
    copy_paste: float = Field(0.0, ge=0.0, le=1.0)
    close_mosaic: int = Field(10, ge=0)
    augment_policy: str | None = None  # path to an AutoAlbument-Lite policy YAML/JSON


class OptimSection(Section):
    """Optimiser, learning-rate schedule and warm-up.

    Attributes:
        optimizer: ``SGD``, ``Adam``, ``AdamW`` or ``auto`` (AdamW for short runs, SGD for long ones).
        lr0: initial learning rate.
        lrf: final learning rate as a fraction of lr0.
        momentum: SGD momentum / Adam beta1.
        weight_decay: weight decay of conv/linear weights (not norms or biases), scaled with the nominal batch.
        warmup_epochs: linear warm-up length in epochs (fractions allowed; never into the last epoch). Gradient
            accumulation also ramps from 1 batch to round(nbs / batch) over it.
        warmup_momentum: momentum at the start of the warm-up.
        warmup_bias_lr: bias learning rate at the start of the warm-up.
        nbs: nominal batch size: gradients are accumulated up to it.
        cos_lr: cosine instead of linear learning-rate decay.
        max_grad_norm: gradient-norm clip (after unscaling).
        freeze: layers that keep their initial (pretrained) weights: the first N layers, or a list of layer
            indices. Their parameters get no gradient and no optimiser slot; their norm layers keep their running
            statistics (eval mode). The DFL layer is always frozen.
    """

    optimizer: Literal["SGD", "Adam", "AdamW", "auto"] = "auto"
    lr0: float = Field(0.01, gt=0.0, le=10.0)
    lrf: float = Field(0.01, gt=0.0, le=1.0)
    momentum: float = Field(0.937, ge=0.0, lt=1.0)
    weight_decay: float = Field(0.0005, ge=0.0, le=0.1)
    warmup_epochs: float = Field(3.0, ge=0.0)
    warmup_momentum: float = Field(0.8, ge=0.0, lt=1.0)
    warmup_bias_lr: float = Field(0.1, ge=0.0, le=10.0)
    nbs: int = Field(64, ge=1)
    cos_lr: bool = False
    max_grad_norm: float = Field(10.0, gt=0.0)
    freeze: int | list[int] | None = None

    @field_validator("freeze", mode="before")
    @classmethod
    def _freeze_list(cls, value: object) -> object:
        if isinstance(value, str):  # CLI: freeze=0,1,2 (freeze=10 arrives as an int)
            parts = [part.strip() for part in value.strip("[]() ").split(",") if part.strip()]
            return [int(part) if part.lstrip("-").isdigit() else part for part in parts]
        return value

    @field_validator("freeze")
    @classmethod
    def _freeze_not_negative(cls, value: int | list[int] | None) -> int | list[int] | None:
        if value is not None and min([value] if isinstance(value, int) else value or [0]) < 0:
            raise ValueError("give a layer count or layer indices, all >= 0")
        return value

    @field_validator("optimizer", mode="before")
    @classmethod
    def _canonical_optimizer(cls, value: object) -> object:
        names = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "auto": "auto"}
        return names.get(str(value).lower(), value)


class LossSection(Section):
    """Loss gains (detection) and label smoothing (classification).

    Attributes:
        box: CIoU box-loss gain.
        cls: BCE class-loss gain.
        dfl: distribution-focal-loss gain.
        label_smoothing: label smoothing of the classification cross-entropy.
    """

    box: float = Field(7.5, ge=0.0)
    cls: float = Field(0.5, ge=0.0)
    dfl: float = Field(1.5, ge=0.0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)


class RunSection(Section):
    """Length, hardware, reproducibility, outputs.

    Attributes:
        epochs: training epochs.
        device: ``auto`` (``cuda:0``, else ``mps``, else ``cpu``; logged once), ``cpu``, ``cuda``, ``cuda:0``, a GPU
            index, or several GPUs (``0,1`` / ``[0, 1]``: one DDP worker per GPU through Ray Train).
        amp: mixed precision (bf16 autocast on CPUs that support it, fp16 + loss scaling on CUDA).
        seed: random seed of the run.
        deterministic: deterministic algorithms where available (bit-exact resume on CPU).
        ema_decay, ema_tau: EMA decay d and ramp τ: d·(1 − exp(−updates/τ)).
        project, name: the run folder is ``project/name`` (numbered when it exists).
        exist_ok: reuse an existing run folder instead of numbering a new one.
        resume: ``True`` (the run folder of project/name) or the path of a run folder / ``last.state.pt``.
        patience: stop after this many epochs without improvement (0 = never).
        save_period: also keep a checkpoint every N epochs (-1 = off).
        val: validate during training (every ``val_period`` epochs).
        val_period: validate every N epochs, and after the first and the last epoch; in the epochs between,
            results.csv and the reports carry the last validation's metrics, and only validated epochs can become
            ``best.safetensors`` or end the run early (``patience``). Not an Ultralytics key (it validates every
            epoch). Under DDP each rank validates its share of the batches and rank 0 computes the metrics.
        plots: write plots to the run folder at the end.
        verbose: progress bar and per-epoch lines.
        pretrained: start from weights: ``True`` looks for the model's zoo checkpoint (``yolov12n.safetensors`` or
            ``.pt``) in the working folder and ``~/.cache/yolov12-platform/weights`` (nothing is downloaded), a
            path names a ``.safetensors`` or Ultralytics ``.pt`` file; every tensor whose name and shape match is
            copied into the model. Ignored when resuming.
        time: training budget in hours; overrides ``epochs``: after each epoch the number of epochs that fit is
            re-estimated (the learning-rate schedule follows it) and the run stops after the epoch that reaches it.
    """

    epochs: int = Field(100, ge=1)
    device: str = "auto"
    amp: bool = True
    seed: int = 0
    deterministic: bool = True
    ema_decay: float = Field(0.9999, gt=0.0, lt=1.0)
    ema_tau: float = Field(2000.0, gt=0.0)
    project: str = Field(default_factory=partial(default_project, "train"))  # <runs_dir>/train
    name: str = "exp"
    exist_ok: bool = False
    resume: bool | str = False
    patience: int = Field(100, ge=0)
    save_period: int = Field(-1, ge=-1)
    val: bool = True
    val_period: int = Field(1, ge=1)
    plots: bool = True
    verbose: bool = True
    pretrained: bool | str = False
    time: float | None = Field(None, gt=0.0)

    @field_validator("pretrained", mode="before")
    @classmethod
    def _pretrained_flag(cls, value: object) -> object:
        if value is None:
            return False
        if isinstance(value, str) and value.strip().lower() in ("true", "false", ""):
            return value.strip().lower() == "true"
        return value

    @field_validator("device", mode="before")
    @classmethod
    def _normalise_device(cls, value: object) -> str:
        return normalise_device(value)


class DistillSection(Section):
    """Gradient-aware knowledge distillation (GKD) from frozen teachers; off while ``teachers`` is empty.

    Detectors distil their head maps from detectors; classifiers distil their logits (KL at temperature T) from
    classifiers. Either way teachers have the student's class names, and the distillation weight is set from the
    gradient norms of the task loss and of the distillation loss at the student's last shared layer.

    Flat keys carry a ``distill_`` prefix (``distill_teachers=a.safetensors,b.safetensors``); the section form is
    ``distill={"teachers": [...], "temperature": 2.0, ...}`` (also in YAML).

    Attributes:
        teachers: teacher models (checkpoints or zoo names) of the student's task with its classes (and, for
            detectors, its strides); averaged.
        temperature: softening temperature T of the class (and DFL-bin) distributions; terms are scaled by T^2.
        ratio: gradient-aware mode: target of |grad distill| / |grad task loss| at the student's last shared layer.
        terms: distillation terms. Detectors: any of ``cls`` (class KL), ``box`` (DFL-bin KL), ``feat`` (neck
            imitation); classifiers: ``cls`` (logit KL). Empty: the task's default (``cls, box``; ``cls``).
        fade_epochs: the distillation weight fades linearly to zero over the last N epochs (0 = no fade).
        weighting: ``gradient`` (weight adapted every step to keep ``ratio``) or ``constant`` (``weight``).
        weight: the distillation weight in ``constant`` mode.
        teacher_half: run the teachers in fp16 (CUDA only; ignored on CPU).
    """

    teachers: list[str] = []
    temperature: float = Field(2.0, gt=0.0, le=20.0)
    ratio: float = Field(0.5, gt=0.0, le=10.0)
    terms: list[Literal["cls", "box", "feat"]] = []
    fade_epochs: int = Field(5, ge=0)
    weighting: Literal["gradient", "constant"] = "gradient"
    weight: float = Field(1.0, ge=0.0)
    teacher_half: bool = False

    @field_validator("teachers", "terms", mode="before")
    @classmethod
    def _split_comma_list(cls, value: object) -> object:
        if isinstance(value, str):  # CLI: distill_teachers=a.safetensors,b.safetensors
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("terms")
    @classmethod
    def _terms_unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("give each of cls, box, feat at most once (an empty list means the task's default)")
        return value

    @property
    def enabled(self) -> bool:
        return bool(self.teachers)


SECTION_TYPES: dict[str, type[Section]] = {
    "data": DataSection, "augment": AugmentSection, "optim": OptimSection, "loss": LossSection, "run": RunSection,
    "distill": DistillSection,
}
FLAT_PREFIX: dict[str, str] = {"distill": "distill_"}  # sections whose generic field names are prefixed when flat
KEY_TO_SECTION: dict[str, str] = {FLAT_PREFIX.get(name, "") + key: name for name, cls in SECTION_TYPES.items()
                                  for key in cls.model_fields}
COMMON_MISTAKES = {"lr": "lr0", "learning_rate": "lr0", "batch_size": "batch", "img_size": "imgsz",
                   "image_size": "imgsz", "epoch": "epochs", "num_workers": "workers", "wd": "weight_decay"}
UNSUPPORTED_ULTRALYTICS_KEYS: dict[str, str] = {
    "profile": "'profile' (Ultralytics' ONNX/TensorRT speed profile during training) is not part of training here; "
               "profile the trained model with 'yolov12 benchmark model=best.safetensors formats=torch,onnx'",
    "overlap_mask": "'overlap_mask' is a segmentation setting and segmentation is not supported (detect, classify "
                    "are); remove it",
}
"""Ultralytics training keys that are refused, each with what to do instead."""


class TrainConfig(BaseModel):
    """All training settings, one section per concern."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data: DataSection = DataSection()
    augment: AugmentSection = AugmentSection()
    optim: OptimSection = OptimSection()
    loss: LossSection = LossSection()
    run: RunSection = Field(default_factory=RunSection)  # built per config: its project follows the settings
    distill: DistillSection = DistillSection()

    @classmethod
    def from_overrides(cls, overrides: dict[str, Any] | None = None, **kwargs: Any) -> TrainConfig:
        """Build from flat keys (``lr0=0.01``) and/or section dicts (``optim={"lr0": 0.01}``)."""
        values = {**(overrides or {}), **kwargs}
        sections: dict[str, dict[str, Any]] = {name: {} for name in SECTION_TYPES}
        problems = []
        for key, value in values.items():
            if key in SECTION_TYPES and isinstance(value, dict):
                sections[key].update(value)
            elif key in KEY_TO_SECTION:
                section = KEY_TO_SECTION[key]
                sections[section][key.removeprefix(FLAT_PREFIX.get(section, ""))] = value
            elif key in UNSUPPORTED_ULTRALYTICS_KEYS:
                problems.append(UNSUPPORTED_ULTRALYTICS_KEYS[key])
            else:
                close = [COMMON_MISTAKES[key]] if key in COMMON_MISTAKES else difflib.get_close_matches(
                    key, list(KEY_TO_SECTION), n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                problems.append(f"unknown key '{key}'{hint}")
        if problems:
            raise ConfigError("; ".join(problems) + f". Valid keys: {', '.join(sorted(KEY_TO_SECTION))}")
        built: dict[str, Section] = {}
        for name, vals in sections.items():
            try:
                built[name] = SECTION_TYPES[name](**vals)
            except ValidationError as exc:  # every bad value of every section, each with its allowed range
                problems.append(format_validation_error(exc, SECTION_TYPES[name]))
        if problems:
            raise ConfigError("; ".join(problems))
        return cls(**built)

    def to_flat(self) -> dict[str, Any]:
        """Flat ``{key: value}`` view, the inverse of :meth:`from_overrides`."""
        flat: dict[str, Any] = {}
        for name in SECTION_TYPES:
            prefix = FLAT_PREFIX.get(name, "")
            flat.update({prefix + key: value for key, value in getattr(self, name).model_dump().items()})
        return flat

    def set_keys(self) -> dict[str, Any]:
        """Flat ``{key: value}`` of the keys that were given (not defaults), e.g. to tell an explicit ``lr0``."""
        flat: dict[str, Any] = {}
        for name in SECTION_TYPES:
            section, prefix = getattr(self, name), FLAT_PREFIX.get(name, "")
            flat.update({prefix + key: getattr(section, key) for key in section.model_fields_set})
        return flat

    def updated(self, **changes: Any) -> TrainConfig:
        """A validated copy with ``changes`` applied; keys given before stay given (see :meth:`set_keys`)."""
        return TrainConfig.from_overrides({**self.set_keys(), **changes})
