"""The model of a training run, built from the resolved config (:mod:`.config`) and the data set's description."""

from __future__ import annotations

from typing import Any, Dict

import torch

from .. import checkpoint
from ..family import family
from ..models.presets import check_config
from ..models.presets import preset as preset_config
from ..schedule import Schedule
from .batches import STREAM_INIT, step_seed
from .config import ConfigError, net_overrides


def dataset_info(dataset) -> Dict[str, Any]:
    """What the config resolution and the model need of a data set: kind, channels, image size, classes, size."""
    return {"kind": dataset.kind, "channels": dataset.channels, "image_size": dataset.image_size,
            "num_classes": dataset.num_classes, "size": len(dataset) if dataset.kind == "image" else None}


def network_config(c: Dict[str, Any], info: Dict[str, Any]) -> Dict[str, Any]:
    """The preset, fitted to the data (image size, channels), to --nz and to the --net overrides."""
    net = preset_config(c["preset"])
    if info["kind"] == "image" and (net["image_size"], net["channels"]) != (info["image_size"], info["channels"]):
        net["image_size"], net["channels"] = info["image_size"], info["channels"]
        for role in ("generator", "discriminator", "denoiser"):
            net[role].update(image_size=info["image_size"], in_channels=info["channels"])
    if c["nz"] is not None:
        net["generator"]["nz"] = c["nz"]
    for role, values in (net_overrides(c["net"]) if c.get("net") else {}).items():
        net[role].update(values)  # every preset describes all of ROLES
    return net


def schedule(c: Dict[str, Any]) -> Schedule:
    """The training schedule that --schedule and --T name."""
    if c["schedule"] == "cosine":
        return Schedule.cosine(c["T"], power=c["cosine_power"])
    return {"ddgan": Schedule.ddgan, "linear": Schedule.linear}[c["schedule"]](c["T"])


def model_options(c: Dict[str, Any]) -> Dict[str, Any]:
    """The keyword options of the model family (DDGAN / DDPM) that the config sets."""
    if c["model"] == "ddgan":
        loss_options = {k: c[k] for k in ("gp_lambda", "n_critic", "drift") if c.get(k) is not None}
        return dict(loss=c["loss"], loss_options={**loss_options, "generator_form": c["generator_form"]},
                    r1_gamma=c["r1_gamma"], lazy_reg=c["lazy_reg"], lr_g=c["lr_g"], lr_d=c["lr_d"],
                    betas=(0.5, c["adam_beta2"]), ema_decay=c["ema_decay"],
                    total_steps=c["steps"] if c["lr_decay"] == "cosine" else None,
                    p_uncond=c["p_uncond"], amp=c["amp"], compile=c["compile"], diffaug=c["diffaug"],
                    diversity=c["diversity"], diversity_steps=c["diversity_steps"])
    return dict(prediction=c["prediction"], p_uncond=c["p_uncond"], lr=c["lr"], ema_decay=c["ema_decay"],
                amp=c["amp"], compile=c["compile"])


def _cannot_build(c: Dict[str, Any], err: Exception) -> ConfigError:
    given = f"--preset {c['preset']}" + (f" --net {c['net']}" if c.get("net") else "")
    return ConfigError(f"{given}: cannot build it for this data ({err})")


def check_networks(c: Dict[str, Any], info: Dict[str, Any]) -> None:
    """Refuse (ConfigError) networks that cannot be built as the config asks: an unknown --net key, a size out of
    bounds, a value of the wrong type; checked on the meta device, before the run folder is touched."""
    try:
        check_config(network_config(c, info), family(c["model"]).roles, info["num_classes"] if c["cond"] else None)
    except (ValueError, TypeError) as err:
        raise _cannot_build(c, err) from None


def build_model(c: Dict[str, Any], info: Dict[str, Any]):
    """A DDGAN or DDPM from the resolved config (initialised from the run seed)."""
    torch.manual_seed(step_seed(c["seed"], 0, 0, STREAM_INIT))
    num_classes = info["num_classes"] if c["cond"] else None
    try:
        return checkpoint.from_preset(c["model"], network_config(c, info), schedule(c), num_classes,
                                      **model_options(c))
    except (ValueError, TypeError) as err:
        raise _cannot_build(c, err) from None


__all__ = ["dataset_info", "network_config", "check_networks", "schedule", "model_options", "build_model"]
