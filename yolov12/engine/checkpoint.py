"""Run checkpoints: ``weights/{last,best}.safetensors`` (EMA model, native format) + ``last.state.pt`` to resume.

The resume file holds only tensors and plain data (model, EMA, optimiser and scaler state, counters, config, and the
loss's own training state: the GKD balancer and feature adapters) and is
read with ``torch.load(weights_only=True)``. Every file is written to a temporary name and renamed into place.

``last.safetensors`` and ``last.state.pt`` are one unit: after both are written, ``weights/last.json`` (the manifest)
is written, last, naming the epoch and the sha256 and size of each. A run that stops between the writes leaves a
manifest that still describes the previous pair, so a resume sees what is inconsistent: a resume state that is not
the listed one is refused (the message says what to do), and ``last.safetensors`` newer than the listed state only
costs a warning (the resume runs that epoch again and rewrites it). The manifest uses file names relative to its
folder, so copies of the run folder (Ray Train and Tune checkpoints) stay valid.

A resume takes the run's hyper-parameters from that file (``"saved"``, the default: the run goes on as it started)
or from the caller's config (``"own"``: the weights, EMA, optimiser moments and counters are the run's, while the
config, and with it the optimiser groups' ``initial_lr``/``weight_decay``/momentum, is the caller's; a Tune trial
that continues another trial's run under perturbed values needs this). Either way the keys of :data:`RUNTIME_KEYS`
(device, loader workers, run folder, output switches, teacher paths) that the caller sets are the caller's: they
describe the process, and the file was written by rank 0 on its own machine. The file itself is only read.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Literal, get_args

import torch

from yolov12.config.base import ConfigError
from yolov12.config.train import TrainConfig
from yolov12.engine.ema import unwrap
from yolov12.engine.state import TrainState
from yolov12.utils.atomic import atomic_write
from yolov12.weights import save_checkpoint

logger = logging.getLogger(__name__)

STATE_FORMAT_VERSION = 1
MANIFEST_FORMAT_VERSION = 1
WEIGHTS_NAME, STATE_NAME, MANIFEST_NAME = "last.safetensors", "last.state.pt", "last.json"
RESUME_FIELDS = ("epoch", "global_step", "last_optimiser_step", "best_fitness", "model", "ema", "optimiser",
                 "precision", "config")  # what a restore reads from the resume state
_WHAT_TO_DO = ("point resume at an earlier copy of the run folder (a Ray Train or Tune checkpoint), or start a new "
               "run without resume")

ResumeHyperparameters = Literal["saved", "own"]  # whose hyper-parameters a resumed run trains with (see above)

# Flat training keys that describe the process running the run, not the run. Rank 0 writes the resume state with its
# own values (its GPU, its loader workers, its node's paths), and every rank of a restarted job resumes from a copy
# of it, so the file's values would put all ranks on rank 0's device and paths: a resume takes each of these keys
# from the caller's config whenever the caller sets it (Ray Train workers set their device, teachers...). Keys the
# caller leaves unset keep the run's values, so that a bare ``resume=True`` goes on as the run was started (with its
# teachers, cache, output switches), as Ultralytics resumes.
RUNTIME_KEYS = frozenset({
    "device",  # each rank's own accelerator (Ray Train assigns one per worker)
    "workers", "cache", "mixing_buffer",  # data loading on this machine: its cores and memory
    "verbose", "plots",  # what this process prints and draws
    "project", "name", "exist_ok", "resume",  # where this process's run folder is
    "distill_teachers",  # teacher checkpoints as paths on this node (s3:// ones are downloaded per node)
    "distill_teacher_half",  # fp16 teachers: a property of the accelerator this process has
})


class ResumeError(RuntimeError):
    """The run cannot be resumed from what is on disk; the message says what is missing."""


def _atomic_torch_save(obj: Any, path: Path) -> None:
    with atomic_write(path, "wb") as handle:
        torch.save(obj, handle)


def save_run_checkpoint(state: TrainState, metrics: dict[str, float], is_best: bool) -> dict[str, Path]:
    """Write last (and best) weights, the resume state and, last, the manifest of the pair; returns the written
    paths by kind: ``last``, ``best``, ``periodic``, ``state``, ``manifest`` (rank 0 only)."""
    weights = state.weights_dir
    weights.mkdir(parents=True, exist_ok=True)
    paths = _save_weights(state, metrics, is_best)
    paths["state"] = weights / STATE_NAME
    _atomic_torch_save(_resume_dict(state), paths["state"])
    paths["manifest"] = write_manifest(weights, state.epoch + 1, [paths["last"], paths["state"]])
    return paths


def _save_weights(state: TrainState, metrics: dict[str, float], is_best: bool) -> dict[str, Path]:
    weights = state.weights_dir
    training = {"epoch": state.epoch + 1, "epochs": state.epochs, "metrics": metrics,
                "args": state.config.to_flat()}
    paths = {"last": save_checkpoint(state.ema.ema, weights / WEIGHTS_NAME, overwrite=True,
                                     training_args=training)}
    if is_best:
        paths["best"] = save_checkpoint(state.ema.ema, weights / "best.safetensors", overwrite=True,
                                        training_args=training)
    period = state.config.run.save_period
    if period > 0 and (state.epoch + 1) % period == 0:
        paths["periodic"] = save_checkpoint(state.ema.ema, weights / f"epoch{state.epoch + 1}.safetensors",
                                            overwrite=True, training_args=training)
    return paths


def _resume_dict(state: TrainState) -> dict[str, Any]:
    return {
        "format_version": STATE_FORMAT_VERSION,
        "epoch": state.epoch + 1,  # the next epoch to run
        "global_step": state.global_step,
        "last_optimiser_step": state.last_optimiser_step,
        "best_fitness": state.best_fitness,
        "model": unwrap(state.model).state_dict(),
        # Gradients still being accumulated towards the next optimiser step (accumulation spans epochs).
        "pending_gradients": {name: p.grad.detach().clone() for name, p in unwrap(state.model).named_parameters()
                              if p.grad is not None},
        "ema": state.ema.state_dict(),
        "optimiser": state.optimiser.state_dict(),
        "precision": state.precision.state_dict(),
        "config": state.config.to_flat(),
        "history": state.history,
        # Trainable state of the loss beyond the model (GKD: the balancer's running norms, the feature adapters).
        **({"loss": state.loss_fn.state_dict()} if hasattr(state.loss_fn, "state_dict") else {}),
    }


def write_manifest(weights: Path, epoch: int, files: list[Path]) -> Path:
    """Write ``weights/last.json``: ``epoch`` and the sha256 and size of each of ``files`` (all in ``weights``)."""
    manifest = {"format_version": MANIFEST_FORMAT_VERSION, "epoch": epoch,
                "files": {path.name: _fingerprint(path) for path in files}}
    path = weights / MANIFEST_NAME
    with atomic_write(path, "w") as stream:
        stream.write(json.dumps(manifest, indent=2))
    return path


def _fingerprint(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    return {"sha256": digest, "bytes": path.stat().st_size}


def load_resume_state(run_dir: Path) -> dict[str, Any]:
    """Read ``weights/last.state.pt`` of a run (tensors and plain data only), checked against ``weights/last.json``.

    Raises:
        ResumeError: the state is missing, truncated, corrupt, not the one the manifest lists, or lacks a field;
            the message names the file and what to do.
    """
    weights = Path(run_dir) / "weights"
    path = weights / STATE_NAME
    if not path.is_file():
        raise ResumeError(f"cannot resume: {path} does not exist (was the run started with this project/name?)")
    manifest = read_manifest(weights)
    state = _read_state(path)
    if manifest is None:
        logger.warning("no %s beside %s (a run written by an older version?): resuming without checking that it "
                       "and %s are from the same epoch", MANIFEST_NAME, path, WEIGHTS_NAME)
    else:
        _check_state_listed(path, state["epoch"], manifest)
        _check_weights_listed(weights / WEIGHTS_NAME, manifest)
    return state


def read_manifest(weights: Path) -> dict[str, Any] | None:
    """The manifest of ``weights`` (None when there is none); :class:`ResumeError` when it is malformed."""
    path = weights / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ResumeError(f"cannot resume: {path} is not a valid checkpoint manifest ({exc}); delete it to resume "
                          f"from {weights / STATE_NAME} unchecked") from None
    problem = _manifest_problem(manifest)
    if problem:
        raise ResumeError(f"cannot resume: {path} is not a valid checkpoint manifest ({problem}); delete it to "
                          f"resume from {weights / STATE_NAME} unchecked")
    return manifest


def _manifest_problem(manifest: Any) -> str:
    """What is wrong with the structure of a manifest ('' when nothing)."""
    if not isinstance(manifest, dict):
        return f"a JSON {type(manifest).__name__}, not an object"
    if manifest.get("format_version") != MANIFEST_FORMAT_VERSION:
        return f"format_version {manifest.get('format_version')!r}, expected {MANIFEST_FORMAT_VERSION}"
    if type(manifest.get("epoch")) is not int:
        return "'epoch' is not an integer"
    files = manifest.get("files")
    if not isinstance(files, dict):
        return "'files' is not an object"
    for name in (WEIGHTS_NAME, STATE_NAME):
        entry = files.get(name)
        if not (isinstance(entry, dict) and isinstance(entry.get("sha256"), str) and type(entry.get("bytes")) is int):
            return f"'files' has no sha256 and bytes for {name}"
    return ""


def _mismatch(path: Path, entry: dict[str, Any]) -> str:
    """How ``path`` differs from its manifest entry ('' when it matches)."""
    if not path.is_file():
        return "it does not exist"
    actual = _fingerprint(path)
    if actual["bytes"] != entry["bytes"]:
        return f"it is {actual['bytes']} bytes, the manifest lists {entry['bytes']}"
    if actual["sha256"] != entry["sha256"]:
        return f"its sha256 is {actual['sha256'][:16]}..., the manifest lists {entry['sha256'][:16]}..."
    return ""


def _check_state_listed(path: Path, epoch: int, manifest: dict[str, Any]) -> None:
    """Refuse a resume state (complete: it was read) that is not the one the manifest lists."""
    problem = _mismatch(path, manifest["files"][STATE_NAME])
    if problem:
        listed = path.with_name(MANIFEST_NAME)
        raise ResumeError(
            f"cannot resume from {path}: it holds the state after epoch {epoch}, but {listed}, written after the pair, "
            f"lists the one after epoch {manifest['epoch']} ({problem}): the run stopped between writing the state and "
            f"the manifest, or the file was replaced; delete {listed} to resume after epoch {epoch} with this file "
            f"as it is, or {_WHAT_TO_DO}"
        )


def _check_weights_listed(path: Path, manifest: dict[str, Any]) -> None:
    problem = _mismatch(path, manifest["files"][WEIGHTS_NAME])
    if problem:
        logger.warning("%s is not the one %s lists for epoch %d (%s): the run stopped after writing the next epoch's "
                       "weights but before its resume state; resuming after epoch %d, which runs the next epoch again "
                       "and rewrites %s", path, path.with_name(MANIFEST_NAME), manifest["epoch"], problem,
                       manifest["epoch"], path.name)


def _read_state(path: Path) -> dict[str, Any]:
    """``torch.load`` of a resume state, with every way it can fail said as a :class:`ResumeError` naming the file."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError, EOFError, UnpicklingError... for bad files
        reason = str(exc).splitlines()[0].split(". ")[0][:200] if str(exc) else "no details"
        raise ResumeError(f"cannot resume from {path}: the file is truncated or corrupt ({type(exc).__name__}: "
                          f"{reason}); {_WHAT_TO_DO}") from None
    if not isinstance(state, dict):
        raise ResumeError(f"cannot resume from {path}: it holds a {type(state).__name__}, not a resume state; "
                          f"{_WHAT_TO_DO}")
    if state.get("format_version") != STATE_FORMAT_VERSION:
        raise ResumeError(f"cannot resume from {path}: state format {state.get('format_version')} is not supported")
    missing = [name for name in RESUME_FIELDS if name not in state]
    if missing:
        raise ResumeError(f"cannot resume from {path}: it lacks {', '.join(map(repr, missing))}; {_WHAT_TO_DO}")
    if type(state["epoch"]) is not int or state["epoch"] < 0:
        raise ResumeError(f"cannot resume from {path}: its epoch {state['epoch']!r:.40} is not a count; {_WHAT_TO_DO}")
    return state


def check_resume_hyperparameters(value: str) -> None:
    """Raise :class:`ConfigError` unless ``value`` is ``"saved"`` or ``"own"``."""
    if value not in get_args(ResumeHyperparameters):
        raise ConfigError(f"resume_hyperparameters={value!r}: use 'saved' (the run's own config) or 'own' (the "
                          "config passed in)")


def resume_config(saved: dict[str, Any], config: TrainConfig, hyperparameters: ResumeHyperparameters) -> TrainConfig:
    """The config a resumed run trains with: the one in the resume state (``"saved"``) or ``config`` (``"own"``).

    :data:`RUNTIME_KEYS` (device, loader workers, run folder, ...) come from ``config`` where it sets them.

    ``"own"`` needs the optimiser the run was written with (its moment buffers are loaded): ``ResumeError`` else.
    """
    check_resume_hyperparameters(hyperparameters)
    if hyperparameters == "saved":
        given = {key: value for key, value in config.set_keys().items() if key in RUNTIME_KEYS}
        return TrainConfig.from_overrides({**saved["config"], **given, "resume": config.run.resume})
    written_with = saved["config"].get("optimizer")
    if written_with != config.optim.optimizer:
        raise ResumeError(f"cannot resume a run written with optimizer={written_with} under optimizer="
                          f"{config.optim.optimizer}: its optimiser state does not fit; keep optimizer={written_with} "
                          "or start a new run")
    return config


def restore(state: TrainState, saved: dict[str, Any], *, hyperparameters: ResumeHyperparameters = "saved") -> None:
    """Load a resume dict into a freshly built state (same model; the config per :func:`resume_config`).

    With ``hyperparameters="own"`` the optimiser's parameter groups keep the values ``state`` was built with
    (``initial_lr``, ``lr``, ``weight_decay``, momentum or betas...): only the per-parameter state (moments, step
    counts) comes from ``saved``; the schedule then sets each step's lr from this config's ``initial_lr``.
    """
    check_resume_hyperparameters(hyperparameters)
    own_groups = [{key: value for key, value in group.items() if key != "params"}
                  for group in state.optimiser.param_groups]
    model = unwrap(state.model)
    model.load_state_dict(saved["model"])
    pending = saved.get("pending_gradients", {})
    for name, parameter in model.named_parameters():
        parameter.grad = pending[name].to(parameter.device) if name in pending else None
    state.ema.load_state_dict(saved["ema"])
    state.optimiser.load_state_dict(saved["optimiser"])  # also loads the groups' hyper-parameters of the saved run
    if hyperparameters == "own":
        for group, own in zip(state.optimiser.param_groups, own_groups, strict=True):
            group.update(own)
    state.precision.load_state_dict(saved["precision"])
    _restore_loss(state.loss_fn, saved)
    state.epoch = int(saved["epoch"])
    state.global_step = int(saved["global_step"])
    state.last_optimiser_step = int(saved["last_optimiser_step"])
    state.best_fitness = saved["best_fitness"]
    state.history = list(saved.get("history", []))


def _restore_loss(loss_fn: Any, saved: dict[str, Any]) -> None:
    """Load the loss's own training state (GKD balancer and adapters) when both the loss and the file have one."""
    if not hasattr(loss_fn, "load_state_dict"):
        return
    if "loss" in saved:
        try:
            loss_fn.load_state_dict(saved["loss"])
        except (RuntimeError, KeyError, TypeError, ValueError) as exc:
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise ResumeError(f"cannot resume: the loss state in the resume file does not fit this run's loss (were "
                              f"distill teachers or terms changed?): {reason}; resume with the run's distill "
                              f"settings, or {_WHAT_TO_DO}") from None
    else:
        logger.warning("the resume state has no loss state (written by an older version?): the distillation "
                       "balancer and feature adapters start afresh")
