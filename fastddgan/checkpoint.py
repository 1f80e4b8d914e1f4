"""Building models from presets, checkpoints that rebuild them, and reading exports.

    model = fastddgan.checkpoint.from_preset("ddgan", "mnist", schedule=4, loss="hellinger")
    fastddgan.save(model, "runs/mnist/ckpt.pt")      # atomic: a crash never leaves a half-written file
    model = fastddgan.load("runs/mnist/ckpt.pt")     # networks, EMA, optimisers, step, schedule

A checkpoint is a ``torch.save`` dict: ``{"format": "fastddgan", "version": 1, "kind": "ddgan" | "ddpm",
"config": <what from_preset was given>, "schedule": {betas, timesteps, name}, "model": state_dict,
"optimizers": {...}, "schedulers": [...], "grad_scalers": {...} (the fp16 loss scalers' state, when enabled),
"step": int, "extra": {...}}``; the entries from "optimizers" to "step" are the model's
:class:`~fastddgan.train_state.TrainState` ``state_dict()``. It holds tensors and plain Python values only, so it
loads with ``weights_only=True``.

Models are used through the protocol of :mod:`fastddgan.family` only: the family named by "kind" rebuilds the model
(its ``roles`` are the preset networks it is built from), ``state_dict()`` and ``train_state`` are saved. An export
folder (written by :mod:`fastddgan.export`) holds the sampling network only and is read by :func:`load` too.
"""

from __future__ import annotations

import copy
import errno
import json
import os
import shutil
from typing import Any, Dict, Optional, Union

import torch

from . import _checks
from ._io import atomic_write, load_versioned, one_line
from .family import family, is_model, kinds
from .models import build, preset as preset_config
from .models.presets import accepted_kwargs, check_config
from .schedule import Schedule

FORMAT, VERSION = "fastddgan", 1
RUNTIME_OPTIONS = ("amp", "compile")
# an export folder (fastddgan.export): the sampling network's weights and how to rebuild the model
EXPORT_FORMAT, EXPORT_VERSION = "fastddgan-export", 1
EXPORT_WEIGHTS, EXPORT_CONFIG = "network.safetensors", "config.json"


class DiskFullError(OSError):
    """A checkpoint could not be written because the disk (or the quota) is full; the message is one line."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


def _sample_shape(config: Dict[str, Any]):
    for key in ("channels",) + (("image_size",) if config["kind"] == "image" else ()):
        if not isinstance(config.get(key), int):
            raise ValueError(f"preset: the config dict needs an integer {key!r} entry, got {config.get(key)!r}")
    if config["kind"] == "toy":
        return (config["channels"],)
    return (config["channels"], config["image_size"], config["image_size"])


def _check_options(cls: type, kind: str, options: Dict[str, Any]) -> None:
    taken = accepted_kwargs(cls) - {*cls.roles, "generator", "discriminator", "model", "schedule", "num_classes"}
    unknown = sorted(str(k) for k in set(options) - taken)
    if unknown:
        raise ValueError(f"options: unknown {kind} option(s) {unknown}; {cls.__name__} takes {sorted(taken)}")


def from_preset(kind: str, preset: Union[str, Dict[str, Any]], schedule: Union[Schedule, int, None] = None,
                num_classes: Optional[int] = None, **options):
    """A DDGAN or DDPM whose networks are the preset's, remembering how it was built (so it can be saved).

    ``schedule``: a Schedule or T (DDGAN: ``Schedule.ddgan(T)``, default 4; DDPM: ``Schedule.linear(T)``, default
    1000). ``options`` go to ``DDGAN(...)`` / ``DDPM(...)`` (loss, lr_g, ema_decay, p_uncond, ...).
    """
    cls = family(kind)
    config = preset_config(preset) if isinstance(preset, str) else copy.deepcopy(preset)
    # every network's config and the options first, so that a bad or oversized config allocates nothing
    check_config(config, cls.roles, num_classes)
    _check_options(cls, kind, options)
    sched = schedule if isinstance(schedule, Schedule) else cls.default_schedule(schedule)
    options = dict(options)
    options.setdefault("sample_shape", _sample_shape(config))
    options.setdefault("clip_x0", config["kind"] == "image")
    networks = {role: build(config, role, num_classes) for role in cls.roles}  # in order: the same random init
    model = cls.from_networks(networks, sched, num_classes, **options)
    # how the model is run (autocast, compilation) is not part of what it is: a checkpoint rebuilds it without them
    saved = {k: v for k, v in options.items() if k not in RUNTIME_OPTIONS}
    model.build_config = {"kind": kind, "preset": config, "num_classes": num_classes, "options": saved}
    return model


def optimizers(model) -> Dict[str, torch.optim.Optimizer]:
    """The model's optimisers by name (its training state's)."""
    return dict(model.train_state.optimizers)


def estimated_size(model) -> int:
    """About how many bytes :func:`save` writes for ``model``: its state dict (networks, EMA) plus the optimisers'
    state (Adam: two moments per parameter), whether or not a step has created that state yet."""
    tensors = {id(t): t for t in model.state_dict().values() if isinstance(t, torch.Tensor)}
    return sum(t.numel() * t.element_size() for t in tensors.values()) + model.train_state.state_bytes()


def save(model, path: Union[str, os.PathLike], extra: Optional[Dict[str, Any]] = None) -> None:
    """Write ``model`` (built by :func:`from_preset`) to ``path`` atomically (temporary file, then rename)."""
    if not is_model(model):
        raise TypeError(f"model: expected a fastddgan.DDGAN or fastddgan.DDPM, got {type(model).__name__}")
    config = getattr(model, "build_config", None)
    if config is None:
        raise ValueError("model: only models built with fastddgan.checkpoint.from_preset can be saved and rebuilt "
                         "(it records the preset); save model.state_dict() yourself for hand-built networks")
    state = {
        "format": FORMAT, "version": VERSION, "kind": config["kind"], "config": config,
        "schedule": {"betas": model.schedule.betas.cpu(), "timesteps": model.schedule.timesteps.cpu(),
                     "name": model.schedule.name},
        "model": model.state_dict(),
        **model.train_state.state_dict(),  # optimizers, schedulers, grad_scalers, step
        "extra": extra or {},
    }
    try:
        atomic_write(path, lambda f: torch.save(state, f))
    except (OSError, RuntimeError) as err:
        need, free = estimated_size(model), _free_bytes(path)
        short = free is not None and free < 1.25 * need
        # ENOSPC / EDQUOT from a Python file; torch's own writer raises a RuntimeError without the errno
        if getattr(err, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or (
                isinstance(err, RuntimeError) and "write" in str(err) and short):
            room = f", {_mb(free)} MB free" if short else ""
            raise DiskFullError(errno.ENOSPC, f"disk full writing {os.fspath(path)} (need ~{_mb(need)} MB{room})") \
                from None
        raise


def _mb(size: int) -> str:
    return f"{size / 1e6:.0f}" if size >= 1e6 else f"{size / 1e6:.2g}"


def _free_bytes(path) -> Optional[int]:
    try:
        return shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free
    except OSError:
        return None


def read(path: Union[str, os.PathLike], map_location="cpu") -> Dict[str, Any]:
    """The validated contents of the checkpoint at ``path`` (errors name the file: missing, truncated, corrupt,
    not a fastddgan checkpoint, another format version, or weights that are not finite)."""
    path = os.fspath(path)
    state = load_versioned(path, FORMAT, VERSION, "checkpoint", map_location)
    missing = [k for k in ("kind", "config", "schedule", "model") if k not in state]
    if missing:
        raise ValueError(f"path: {path!r} is an incomplete fastddgan checkpoint (missing {missing})")
    problem = _malformed(state)
    if problem:
        raise ValueError(f"path: {path!r} is a malformed fastddgan checkpoint ({problem})")
    check_finite(state["model"], f"path: {path!r}")
    return state


# the optional entries of a checkpoint and their types (checked by read, so that a malformed file is one line, not
# a KeyError / TypeError deep inside restore)
_OPTIONAL = {"optimizers": dict, "schedulers": list, "grad_scalers": dict, "step": int, "extra": dict}


def _malformed(state: Dict[str, Any]) -> Optional[str]:
    """What is wrong with the structure of a checkpoint's entries, or None (their values are checked where they are
    used: the config by from_config, the tables by Schedule, the tensors' shapes by restore)."""
    if not isinstance(state["kind"], str) or state["kind"] not in kinds():
        return f"'kind' is {state['kind']!r}; expected one of {kinds()}"
    model = state["model"]
    if not isinstance(model, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in model.items()):
        return f"'model' is of type {type(model).__name__}; expected a state dict of tensors"
    sched = state["schedule"]
    if not isinstance(sched, dict) or not all(isinstance(sched.get(k), torch.Tensor) for k in ("betas", "timesteps")) \
            or not isinstance(sched.get("name"), (str, type(None))):
        return "'schedule' is not a dict of the tensors 'betas' and 'timesteps' and a 'name'"
    for key, kind in _OPTIONAL.items():
        value = state.get(key, kind())
        if not (_checks.is_int(value) if kind is int else isinstance(value, kind)):
            return f"'{key}' is of type {type(value).__name__}; expected {kind.__name__}"
    if not all(isinstance(v, dict) for v in state.get("optimizers", {}).values()) or \
            not all(isinstance(v, dict) for v in state.get("schedulers", [])):
        return "'optimizers' / 'schedulers' do not hold state dicts"
    if not all(isinstance(v, dict) for v in state.get("grad_scalers", {}).values()):
        return "'grad_scalers' does not hold state dicts"
    train_config = state.get("extra", {}).get("train_config", {})
    if not isinstance(train_config, dict):  # written by python -m fastddgan.train; read by evaluate and --resume
        return f"the training config in 'extra' is of type {type(train_config).__name__}; expected dict"
    return None


def check_finite(tensors: Dict[str, Any], where: str) -> None:
    """A one-line ValueError starting with ``where`` when floating-point tensors of the state dict ``tensors`` hold
    a NaN or an infinity: such a model samples NaN, so it is neither loaded, nor evaluated, nor exported."""
    bad = [k for k, v in tensors.items()
           if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise ValueError(f"{where} holds non-finite weights (NaN or inf in {len(bad)} tensor"
                         f"{'s' if len(bad) > 1 else ''}: {', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}); "
                         f"use an earlier checkpoint")


def stored_step(path: Union[str, os.PathLike]) -> Optional[int]:
    """The training step saved in the checkpoint at ``path``, read without loading its tensors (they are
    memory-mapped, ``weights_only=True``); None when it cannot be read."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        step = state["step"]
    except Exception:  # noqa: BLE001 - unreadable: the caller ranks it by its name, or last
        return None
    return step if _checks.is_int(step) else None


def schedule_of(state: Dict[str, Any], path: str = "the checkpoint") -> Schedule:
    """The checkpoint's schedule; tables that make no schedule are one line naming ``path``."""
    sched = state["schedule"]
    try:
        return Schedule(sched["betas"], timesteps=sched["timesteps"], name=sched.get("name"))
    except (ValueError, TypeError, KeyError, RuntimeError) as err:
        raise ValueError(f"path: {path!r} holds an invalid schedule ({type(err).__name__}: {one_line(str(err))})") \
            from None


def restore(model, state: Dict[str, Any], with_optimizers: bool = True) -> None:
    """Load a checkpoint's networks, EMA and (``with_optimizers=True``) optimisers, LR schedules, fp16 loss scalers
    (those the model has enabled and the checkpoint holds) and step into ``model``, which must have been built with
    the same config (tensors are moved to the model's device).

    Weights or optimiser states that do not fit the model (missing or unexpected keys, other shapes) raise a
    one-line ValueError naming ``state["path"]`` (or "the checkpoint") rather than torch's multi-line errors."""
    try:
        model.load_state_dict(state["model"])
        if with_optimizers:
            model.train_state.load_state_dict(state)
    except (RuntimeError, ValueError, TypeError, KeyError, IndexError) as err:
        where = state.get("path", "the checkpoint")
        what = f"missing {err}" if isinstance(err, KeyError) else one_line(str(err), 300)
        raise ValueError(f"path: {where!r} does not fit the model its config describes ({type(err).__name__}: "
                         f"{what})") from None
    model.train_state.step = int(state.get("step", 0))
    model.checkpoint_extra = state.get("extra", {})


def from_config(config: Any, schedule: Schedule, path: str):
    """The model that a checkpoint's (or export's) build config ``config`` describes, untrained; a malformed,
    unknown or oversized config is refused with one line naming ``path``, before any network is built."""
    try:
        if not isinstance(config, dict) or not isinstance(config.get("options"), dict) or any(
                k not in config for k in ("kind", "preset", "num_classes")):
            raise ValueError("expected a dict with 'kind', 'preset', 'num_classes' and 'options' (a dict)")
        num_classes, options = config["num_classes"], config["options"]
        if num_classes is not None:
            _checks.integer("num_classes", num_classes, 1, expected="None or an integer >= 1")
        model = from_preset(config["kind"], config["preset"], schedule, num_classes, **options)
        shape = _sample_shape(model.build_config["preset"])
        if tuple(model.sample_shape) != shape:
            raise ValueError(f"options: sample_shape {options['sample_shape']!r} is not the shape of the preset's "
                             f"data {shape}")
        return model
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        raise ValueError(f"path: {path!r} holds an invalid model config ({type(err).__name__}: "
                         f"{one_line(str(err), 300)})") from None


def load(path: Union[str, os.PathLike], map_location="cpu"):
    """Rebuild the model saved at ``path``: a checkpoint file (networks, EMA, optimisers, LR schedules, step,
    schedule) or a folder written by :func:`fastddgan.export.export` (the EMA network only, for sampling), given
    as the folder or as one of its two files (``network.safetensors``, ``config.json``)."""
    folder = export_folder(path)
    if folder is not None:
        return load_export(folder, map_location)
    state = read(path)
    state["path"] = os.fspath(path)
    model = from_config(state["config"], schedule_of(state, state["path"]), state["path"])
    restore(model, state)
    return model.to(map_location)


# ---------------------------------------------------------------------------------------------- export folders
def export_folder(path: Union[str, os.PathLike]) -> Optional[str]:
    """The export folder that ``path`` names (the folder itself, or its ``network.safetensors`` or ``config.json``
    file), or None when ``path`` is not about an export."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return path
    if os.path.basename(path) in (EXPORT_WEIGHTS, EXPORT_CONFIG) and os.path.isfile(path):
        folder = os.path.dirname(os.path.abspath(path))
        if os.path.basename(path) == EXPORT_WEIGHTS or os.path.isfile(os.path.join(folder, EXPORT_WEIGHTS)):
            return folder
    return None


def safetensors():
    try:
        import safetensors.torch as st
    except ImportError:
        raise ImportError("export needs the safetensors package: pip install safetensors") from None
    return st


def load_export(folder: Union[str, os.PathLike], map_location="cpu"):
    """Rebuild a model from an export folder (the network and its EMA copy both hold the exported weights)."""
    folder = os.fspath(folder)
    config_path, weights_path = os.path.join(folder, EXPORT_CONFIG), os.path.join(folder, EXPORT_WEIGHTS)
    if not (os.path.isfile(config_path) and os.path.isfile(weights_path)):
        raise FileNotFoundError(f"path: {folder!r} is a folder but not a fastddgan export (expected {EXPORT_CONFIG} "
                                f"and {EXPORT_WEIGHTS} in it)")
    try:
        with open(config_path) as f:
            meta = json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError(f"path: cannot read {config_path!r} ({err})") from None
    if meta.get("format") != EXPORT_FORMAT or meta.get("version") != EXPORT_VERSION:
        raise ValueError(f"path: {config_path!r} is not a fastddgan export of version {EXPORT_VERSION}")
    st = safetensors()
    try:
        weights = st.load_file(weights_path)
    except Exception as err:  # noqa: BLE001 - a corrupt or truncated file
        raise ValueError(f"path: {weights_path!r} is truncated or corrupt ({err})") from None
    check_finite(weights, f"path: {weights_path!r}")
    config, sched = meta["config"], meta["schedule"]
    schedule = Schedule(torch.tensor(sched["betas"], dtype=torch.float64),
                        timesteps=torch.tensor(sched["timesteps"], dtype=torch.long), name=sched["name"])
    model = from_config(config, schedule, config_path)
    model.load_sampling_weights(weights)
    model.train_state.step = int(meta.get("step", 0))
    return model.to(map_location)
